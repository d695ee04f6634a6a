import Foundation
import Synchronization

/// A change of the inventory file seen by an ``InventoryWatcher``.
public enum InventoryChange: Sendable {
    /// The file changed and the new content validated.
    case updated(Inventory)
    /// The file changed but did not validate (the message names the problem); the last good
    /// inventory stays in force.
    case rejected(String)
}

/// Watches an inventory for edits during a run, by polling.
///
/// Every `interval` the watcher reads the file's bytes and compares them with the last bytes it
/// saw (content, not modification time: an editor can write twice within the mtime's
/// resolution). When they differ it loads the inventory: a valid one is reported as
/// ``InventoryChange/updated(_:)``, an invalid one once as ``InventoryChange/rejected(_:)``.
/// Polling rather than inotify/kqueue: it is portable, survives editors that replace the file
/// by renaming, and a few-second delay is all the scheduler needs.
public struct InventoryWatcher: Sendable {
    /// Time between two looks at the file.
    public let interval: Duration
    private let read: @Sendable () -> [UInt8]?
    private let load: @Sendable ([UInt8]) throws -> Inventory

    /// Creates a watcher from the two file operations it needs.
    ///
    /// - Parameters:
    ///   - read: the current bytes of the file, or `nil` when it cannot be read.
    ///   - load: parses and validates those bytes, throwing an error that names the problem.
    public init(interval: Duration = .seconds(2), read: @escaping @Sendable () -> [UInt8]?,
                load: @escaping @Sendable ([UInt8]) throws -> Inventory) {
        self.interval = interval; self.read = read; self.load = load
    }

    /// Changes from now on, checked every ``interval`` on `clock`; ends when the consuming task is
    /// cancelled.
    public func changes<C: Clock>(clock: C) -> AsyncStream<InventoryChange> where C.Duration == Duration {
        let last = Mutex<[UInt8]?>(read())
        let read = self.read, load = self.load, interval = self.interval
        return AsyncStream(unfolding: {
            while true {
                do { try await clock.sleep(for: interval) } catch { return nil }
                let bytes = read()
                let changed: Bool = last.withLock { old in
                    guard bytes != old else { return false }
                    old = bytes
                    return true
                }
                guard changed else { continue }
                guard let bytes else { return .rejected("the inventory file cannot be read (was it removed?)") }
                do { return .updated(try load(bytes)) } catch { return .rejected(String(describing: error)) }
            }
        })
    }
}

extension InventoryWatcher {
    /// A watcher of the inventory file at `path`, validating edits with ``InventoryLoader``.
    public init(path: String, interval: Duration = .seconds(2), environment: LoaderEnvironment = .live) {
        self.init(interval: interval,
                  read: { FileManager.default.contents(atPath: path).map { [UInt8]($0) } },
                  load: { bytes in
                      try InventoryLoader.parse(String(decoding: bytes, as: UTF8.self), file: path, environment: environment)
                  })
    }
}
