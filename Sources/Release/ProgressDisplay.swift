import FarmCore
import Foundation
import Scheduling
import Synchronization

/// Shows a release's progress: a compact view redrawn in place on a terminal, or plain
/// timestamped lines in CI and when output is piped.
///
/// It consumes the scheduler's ``ProgressUpdate``s plus build phases reported by the agents
/// (``phase(job:phase:)``), and writes through an injected sink so tests can read it.
public final class ProgressDisplay: Sendable {
    /// How progress is shown.
    public enum Mode: Sendable, Equatable {
        /// Redraw a block in place (ANSI cursor movement).
        case live
        /// One timestamped line per event.
        case plain
    }

    /// Chooses ``Mode/live`` only for an interactive terminal outside CI.
    public static func automaticMode(environment: [String: String] = ProcessInfo.processInfo.environment) -> Mode {
        let ci = environment["CI"].map { !$0.isEmpty && $0 != "false" && $0 != "0" } ?? false
        let dumb = environment["TERM"] == nil || environment["TERM"] == "dumb"
        return (isatty(STDOUT_FILENO) == 1 && !ci && !dumb) ? .live : .plain
    }

    struct Running: Sendable {
        var job: String
        var phase: String
        var since: Date
        var attempt: Int
    }

    struct State: Sendable {
        var running: [String: [Running]] = [:]      // host → builds
        var queued = 0, finished = 0, failed = 0, requeued = 0
        var failures: [String] = []
        var hosts: [String] = []
        var refused: [String: String] = [:]         // host → why it was taken out of the run
        var linesDrawn = 0
        var lastDraw = Date.distantPast
    }

    public let mode: Mode
    private let state = Mutex(State())
    private let sink: @Sendable (String) -> Void
    private let now: @Sendable () -> Date

    /// Creates a display writing to `sink` (standard output by default).
    public init(mode: Mode, hosts: [String] = [], now: @escaping @Sendable () -> Date = Date.init,
                sink: @escaping @Sendable (String) -> Void = { FileHandle.standardOutput.write(Data($0.utf8)) }) {
        self.mode = mode; self.sink = sink; self.now = now
        state.withLock { $0.hosts = hosts }
    }

    /// Shows one scheduler update.
    public func handle(_ update: ProgressUpdate) {
        let t = now()
        let event = update.event
        state.withLock { s in
            switch event {
            case .jobQueued: s.queued += 1
            case let .jobStarted(job, host, attempt):
                s.queued = max(0, s.queued - 1)
                s.running[host, default: []].append(Running(job: job.id, phase: "starting", since: t, attempt: attempt))
                if !s.hosts.contains(host) { s.hosts.append(host) }
            case let .jobFinished(job, host, _, _):
                s.running[host]?.removeAll { $0.job == job.id }
                s.finished += 1
            case let .jobRequeued(job, host, attempt, reason):
                s.running[host]?.removeAll { $0.job == job.id }
                s.requeued += 1
                s.failures.append("\(job.id) on \(host) (attempt \(attempt)): \(reason)")
            case let .jobFailed(job, reason):
                for h in s.running.keys { s.running[h]?.removeAll { $0.job == job.id } }
                s.queued = max(0, s.queued - 1)
                s.failed += 1
                s.failures.append("\(job.id): \(reason)")
            case let .jobCancelled(job):
                for h in s.running.keys { s.running[h]?.removeAll { $0.job == job.id } }
            case let .hostJoined(h): if !s.hosts.contains(h) { s.hosts.append(h) }
            case let .hostRefused(h, reason): s.refused[h] = reason
            default: break
            }
        }
        switch mode {
        case .plain: emit(line: event.description, at: t)
        case .live: redraw(force: isMilestone(event))
        }
    }

    /// Shows a build phase reported by an agent (`fetching source`, `compiling`, `packaging`…).
    public func phase(job: String, phase: String) {
        state.withLock { s in
            for h in s.running.keys {
                if let i = s.running[h]?.firstIndex(where: { $0.job == job }) { s.running[h]![i].phase = phase }
            }
        }
        switch mode {
        case .plain: emit(line: "\(job): \(phase)", at: now())
        case .live: redraw(force: false)
        }
    }

    /// Prints a message above the live view (or as a plain line).
    public func note(_ message: String) {
        switch mode {
        case .plain: emit(line: message, at: now())
        case .live:
            let erase = state.withLock { s -> String in
                defer { s.linesDrawn = 0 }
                return s.linesDrawn > 0 ? "\u{1B}[\(s.linesDrawn)F\u{1B}[J" : ""
            }
            sink(erase + message + "\n")
            redraw(force: true)
        }
    }

    /// The lines of the live view at this moment (also used by tests).
    public func frame() -> [String] {
        let t = now()
        return state.withLock { s in
            var lines: [String] = []
            let width = max(8, s.hosts.map(\.count).max() ?? 8)
            for host in s.hosts {
                let builds = s.running[host] ?? []
                if builds.isEmpty {
                    let state = s.refused[host].map { "out of the run: \($0)" } ?? "idle"
                    lines.append(host.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + state)
                }
                for b in builds {
                    let elapsed = ReleaseReport.duration(t.timeIntervalSince(b.since))
                    let attempt = b.attempt > 1 ? " (attempt \(b.attempt))" : ""
                    lines.append(host.padding(toLength: width, withPad: " ", startingAt: 0) + "  \(b.job)\(attempt)  \(b.phase)  \(elapsed)")
                }
            }
            let running = s.running.values.reduce(0) { $0 + $1.count }
            lines.append("queued \(s.queued) · running \(running) · built \(s.finished) · retried \(s.requeued) · failed \(s.failed)")
            for f in s.failures.suffix(3) { lines.append("  ✗ \(f)") }
            return lines
        }
    }

    private func isMilestone(_ e: ProgressEvent) -> Bool {
        switch e {
        case .jobStarted, .jobFinished, .jobFailed, .jobRequeued, .finished, .hostRefused: true
        default: false
        }
    }

    private func redraw(force: Bool) {
        let t = now()
        let previous: Int? = state.withLock { s in
            guard force || t.timeIntervalSince(s.lastDraw) >= 0.5 else { return nil }
            s.lastDraw = t
            return s.linesDrawn
        }
        guard let previous else { return }
        let lines = frame()
        state.withLock { $0.linesDrawn = lines.count }
        let up = previous > 0 ? "\u{1B}[\(previous)F\u{1B}[J" : ""
        sink(up + lines.joined(separator: "\n") + "\n")
    }

    private func emit(line: String, at t: Date) {
        sink("\(t.formatted(.iso8601)) \(line)\n")
    }
}
