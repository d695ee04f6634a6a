import Foundation
import Synchronization
import Remote

/// Splits the agent's stdout into event lines and keeps a tail of its log, as output arrives on a
/// transport thread — in bounded memory and linear time, whatever a host sends.
///
/// Each byte is looked at once: a line is accumulated until its newline, and a line longer than
/// ``BuildWatchdog/maxEventLineBytes`` is dropped as it grows (and recorded as a
/// ``violation``, which stops the build). At most ``BuildWatchdog/maxRetainedEvents`` events are
/// kept; past that only the ones the outcome needs (`started`, `artifact`, `log`, `finished`)
/// are, up to a small number, and the rest are counted.
final class EventStream: Sendable {
    /// What the stream has seen, guarded by one lock.
    private struct State {
        var line: [UInt8] = []
        var lineTooLong = false
        var events: [BuildEvent] = []
        var essential: [BuildEvent] = []
        var dropped = 0
        var tail = Data()
        var lastOutput = ContinuousClock.now
        var problem: String?
    }
    private let state = Mutex(State())
    private let limits: BuildWatchdog
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
    var violation: String? { state.withLock { $0.problem } }

    /// When the agent last printed anything (stdout or stderr).
    var lastOutputAt: ContinuousClock.Instant { state.withLock { $0.lastOutput } }

    func receive(_ piece: ExecOutput) {
        switch piece {
        case let .stderr(data):
            state.withLock { s in
                s.lastOutput = .now
                s.tail.append(data)
                if s.tail.count > Self.tailLimit { s.tail.removeFirst(s.tail.count - Self.tailLimit) }
            }
            onLog(data)
        case let .stdout(data):
            let parsed: [BuildEvent] = state.withLock { s in
                s.lastOutput = .now
                var out: [BuildEvent] = []
                data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) in
                    var start = 0
                    while start < bytes.count {
                        let rest = UnsafeRawBufferPointer(rebasing: bytes[start...])
                        if let newline = rest.firstIndex(of: 0x0A) {
                            accumulate(UnsafeRawBufferPointer(rebasing: rest[..<newline]), into: &s)
                            if let event = endLine(&s) { out.append(event) }
                            start += newline + 1
                        } else {
                            accumulate(rest, into: &s)
                            break
                        }
                    }
                }
                for event in out { keep(event, in: &s) }
                return out
            }
            parsed.forEach(onEvent)
        }
    }

    /// Adds bytes to the current line, or drops it once it is longer than the limit.
    private func accumulate(_ bytes: UnsafeRawBufferPointer, into s: inout State) {
        guard !s.lineTooLong else { return }
        if s.line.count + bytes.count > limits.maxEventLineBytes {
            s.lineTooLong = true
            s.line = []
            if s.problem == nil {
                s.problem = "the agent printed an event line longer than \(limits.maxEventLineBytes) bytes on stdout (the protocol is one short JSON object per line)"
            }
            return
        }
        s.line.append(contentsOf: bytes)
    }

    /// Ends the current line: its event, if it is one.
    private func endLine(_ s: inout State) -> BuildEvent? {
        defer { s.line.removeAll(keepingCapacity: s.line.count <= 64 << 10); s.lineTooLong = false }
        guard !s.lineTooLong, !s.line.isEmpty else { return nil }
        return try? BuildEvent.parse(line: String(decoding: s.line, as: UTF8.self))
    }

    private func keep(_ event: BuildEvent, in s: inout State) {
        if s.events.count < limits.maxRetainedEvents { s.events.append(event); return }
        switch event {
        case .started, .artifact, .logPointer, .finished:
            if s.essential.count < Self.essentialLimit { s.essential.append(event); return }
            if s.problem == nil { s.problem = "the agent printed more than \(limits.maxRetainedEvents + Self.essentialLimit) events" }
        default:
            break
        }
        s.dropped += 1
    }

    /// Every event kept, in order, the unfinished last line parsed, and the log's tail.
    func finish() -> ([BuildEvent], String) {
        state.withLock { s in
            if let event = endLine(&s) { keep(event, in: &s) }
            return (s.events + s.essential, String(decoding: s.tail, as: UTF8.self))
        }
    }
}
