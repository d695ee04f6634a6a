import Foundation
import Remote

/// Splits the agent's stdout into event lines and keeps a tail of its log, as output arrives on a
/// transport thread — in bounded memory and linear time, whatever a host sends.
///
/// Each byte is looked at once: a line is accumulated until its newline, and a line longer than
/// ``BuildWatchdog/maxEventLineBytes`` is dropped as it grows (and recorded as a
/// ``violation``, which stops the build). At most ``BuildWatchdog/maxRetainedEvents`` events are
/// kept; past that only the ones the outcome needs (`started`, `artifact`, `log`, `finished`)
/// are, up to a small number, and the rest are counted.
final class EventStream: @unchecked Sendable {  // all state is guarded by `lock`
    private let lock = NSLock()
    private let limits: BuildWatchdog
    private var line: [UInt8] = []
    private var lineTooLong = false
    private var events: [BuildEvent] = []
    private var essential: [BuildEvent] = []
    private var dropped = 0
    private var tail = Data()
    private var lastOutput = ContinuousClock.now
    private var problem: String?
    private let onEvent: @Sendable (BuildEvent) -> Void
    private let onLog: @Sendable (Data) -> Void
    static let tailLimit = 64 << 10
    /// Essential events kept beyond the retained limit (a build reports one wheel).
    static let essentialLimit = 256

    init(limits: BuildWatchdog = BuildWatchdog(), onEvent: @escaping @Sendable (BuildEvent) -> Void,
         onLog: @escaping @Sendable (Data) -> Void) {
        self.limits = limits; self.onEvent = onEvent; self.onLog = onLog
    }

    /// Why the agent broke the protocol (an overlong event line, too many events), or nil.
    var violation: String? { lock.withLock { problem } }

    /// When the agent last printed anything (stdout or stderr).
    var lastOutputAt: ContinuousClock.Instant { lock.withLock { lastOutput } }

    func receive(_ piece: ExecOutput) {
        switch piece {
        case let .stderr(data):
            lock.withLock {
                lastOutput = .now
                tail.append(data)
                if tail.count > Self.tailLimit { tail.removeFirst(tail.count - Self.tailLimit) }
            }
            onLog(data)
        case let .stdout(data):
            let parsed: [BuildEvent] = lock.withLock {
                lastOutput = .now
                var out: [BuildEvent] = []
                data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) in
                    var start = 0
                    while start < bytes.count {
                        let rest = UnsafeRawBufferPointer(rebasing: bytes[start...])
                        if let newline = rest.firstIndex(of: 0x0A) {
                            accumulate(UnsafeRawBufferPointer(rebasing: rest[..<newline]))
                            if let event = endLine() { out.append(event) }
                            start += newline + 1
                        } else {
                            accumulate(rest)
                            break
                        }
                    }
                }
                for event in out { keep(event) }
                return out
            }
            parsed.forEach(onEvent)
        }
    }

    /// Adds bytes to the current line, or drops it once it is longer than the limit.
    private func accumulate(_ bytes: UnsafeRawBufferPointer) {
        guard !lineTooLong else { return }
        if line.count + bytes.count > limits.maxEventLineBytes {
            lineTooLong = true
            line = []
            if problem == nil {
                problem = "the agent printed an event line longer than \(limits.maxEventLineBytes) bytes on stdout (the protocol is one short JSON object per line)"
            }
            return
        }
        line.append(contentsOf: bytes)
    }

    /// Ends the current line: its event, if it is one.
    private func endLine() -> BuildEvent? {
        defer { line.removeAll(keepingCapacity: line.count <= 64 << 10); lineTooLong = false }
        guard !lineTooLong, !line.isEmpty else { return nil }
        return try? BuildEvent.parse(line: String(decoding: line, as: UTF8.self))
    }

    private func keep(_ event: BuildEvent) {
        if events.count < limits.maxRetainedEvents { events.append(event); return }
        switch event {
        case .started, .artifact, .logPointer, .finished:
            if essential.count < Self.essentialLimit { essential.append(event); return }
            if problem == nil { problem = "the agent printed more than \(limits.maxRetainedEvents + Self.essentialLimit) events" }
        default:
            break
        }
        dropped += 1
    }

    /// Every event kept, in order, the unfinished last line parsed, and the log's tail.
    func finish() -> ([BuildEvent], String) {
        lock.withLock {
            if let event = endLine() { keep(event) }
            return (events + essential, String(decoding: tail, as: UTF8.self))
        }
    }
}
