import Foundation
import Synchronization
import UnixSignals

/// Turns SIGINT and SIGTERM into cancellation of one operation (swift-service-lifecycle's
/// `UnixSignalsSequence` does the trapping): the first signal cancels the operation's task,
/// which then winds down cleanly; a second one exits the process at once, after `onSecond` has
/// said what that leaves behind.
enum SignalCancellation {
    /// The exit status of a process ended by `signal`, as shells report it (128 + signal number):
    /// 130 for SIGINT, 143 for SIGTERM.
    static func exitStatus(for signal: UnixSignal) -> Int32 { 128 + signal.rawValue }

    /// Runs `operation` until it ends; returns its result and the first signal received, if any.
    ///
    /// - Parameters:
    ///   - onFirst: called once when the first signal arrives, before the task is cancelled.
    ///   - onSecond: called when a second signal arrives; the process then exits with that
    ///     signal's status without waiting for the operation.
    static func run<T: Sendable>(_ operation: @escaping @Sendable () async throws -> T,
                                 onFirst: @escaping @Sendable (UnixSignal) -> Void,
                                 onSecond: @escaping @Sendable (UnixSignal) -> Void) async throws -> (result: T, signal: UnixSignal?) {
        let received = Mutex<UnixSignal?>(nil)
        let signals = await UnixSignalsSequence(trapping: .sigint, .sigterm)
        let work = Task { try await operation() }
        let watcher = Task {
            for await signal in signals {
                let first = received.withLock { r -> Bool in
                    guard r == nil else { return false }
                    r = signal
                    return true
                }
                if first {
                    onFirst(signal)
                    work.cancel()
                } else {
                    onSecond(signal)
                    exit(exitStatus(for: signal))
                }
            }
        }
        defer { watcher.cancel() }
        let result = try await work.value
        return (result, received.withLock { $0 })
    }
}
