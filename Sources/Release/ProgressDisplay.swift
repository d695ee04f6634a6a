import FarmCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif
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

    /// Chooses ``Mode/live`` only when `fd` is an interactive terminal, outside CI.
    public static func automaticMode(environment: [String: String] = ProcessInfo.processInfo.environment,
                                     fd: Int32 = STDOUT_FILENO) -> Mode {
        let ci = environment["CI"].map { !$0.isEmpty && $0 != "false" && $0 != "0" } ?? false
        let dumb = environment["TERM"] == nil || environment["TERM"] == "dumb"
        return (isatty(fd) == 1 && !ci && !dumb) ? .live : .plain
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
        var ticker: Task<Void, Never>?
    }

    /// What is on the screen: the widths of the live view's lines as drawn (to move back over
    /// them, even after the terminal was narrowed and rewrapped them), and when.
    struct Drawn: Sendable {
        var widths: [Int] = []
        var lastDraw = Date.distantPast
    }

    public let mode: Mode
    private let state = Mutex(State())
    /// Held while writing to the terminal, so that a tick and an event never draw at once.
    private let drawn = Mutex(Drawn())
    private let sink: @Sendable (String) -> Void
    private let now: @Sendable () -> Date
    private let width: @Sendable () -> Int?

    /// Creates a display writing to `sink` (standard output by default).
    ///
    /// - Parameter width: the terminal's width in columns, asked at every redraw (so a resized
    ///   window is followed); live lines are clipped to it, since a line that wraps would take
    ///   two rows and leave a stale one behind at the next redraw. Default: standard output's
    ///   terminal size (no clipping when it has none).
    public init(mode: Mode, hosts: [String] = [], now: @escaping @Sendable () -> Date = Date.init,
                width: @escaping @Sendable () -> Int? = ProgressDisplay.terminalWidth,
                sink: @escaping @Sendable (String) -> Void = { FileHandle.standardOutput.write(Data($0.utf8)) }) {
        self.mode = mode; self.sink = sink; self.now = now; self.width = width
        state.withLock { $0.hosts = hosts }
    }

    /// Standard output's terminal width, or nil when it is not a terminal.
    @Sendable public static func terminalWidth() -> Int? { terminalWidth(fd: STDOUT_FILENO) }

    /// The width of the terminal `fd` is, or nil when it is not one.
    public static func terminalWidth(fd: Int32) -> Int? {
        var size = winsize()
        let rc = withUnsafeMutablePointer(to: &size) { ioctl(fd, UInt(TIOCGWINSZ), $0) }
        guard rc == 0, size.ws_col > 0 else { return nil }
        return Int(size.ws_col)
    }

    /// Starts redrawing the live view every second, so elapsed times move while a long compile
    /// runs (nothing in plain mode).
    public func start() {
        guard mode == .live else { return }
        let ticker = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                guard let self, !Task.isCancelled else { return }
                self.redraw(force: true)
            }
        }
        state.withLock { s in
            s.ticker?.cancel()
            s.ticker = ticker
        }
    }

    /// Stops the ticking and draws the final frame.
    public func stop() {
        let ticker = state.withLock { s -> Task<Void, Never>? in defer { s.ticker = nil }; return s.ticker }
        ticker?.cancel()
        if mode == .live { redraw(force: true) }
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
            drawn.withLock { d in
                let columns = width()
                sink(Self.moveBack(over: d.widths, columns: columns) + message + "\n")
                d.widths = []
                draw(&d, columns: columns)
            }
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
        drawn.withLock { d in
            guard force || t.timeIntervalSince(d.lastDraw) >= 0.5 else { return }
            draw(&d, columns: width())
        }
    }

    /// Replaces the live view on the screen with the current frame, each line clipped to the
    /// terminal's width.
    private func draw(_ d: inout Drawn, columns: Int?) {
        let lines = frame().map { Self.clip($0, to: columns) }
        let up = Self.moveBack(over: d.widths, columns: columns)
        d.widths = lines.map(Self.displayWidth)
        d.lastDraw = now()
        sink(up + lines.joined(separator: "\n") + "\n")
    }

    /// The escape sequence that moves the cursor back to the first row of lines drawn with the
    /// given widths and clears from there: one row per line, more for lines a since narrowed
    /// terminal has rewrapped.
    static func moveBack(over widths: [Int], columns: Int?) -> String {
        guard !widths.isEmpty else { return "" }
        let rows = widths.reduce(0) { sum, w in
            guard let columns, columns > 0, w > columns else { return sum + 1 }
            return sum + (w + columns - 1) / columns
        }
        return "\u{1B}[\(rows)F\u{1B}[J"
    }

    /// Terminal cells `line` takes.
    static func displayWidth(_ line: String) -> Int {
        line.reduce(0) { $0 + ($1.unicodeScalars.first.map(cellWidth) ?? 1) }
    }

    /// `line` cut to fit `columns - 1` terminal columns (one spare, so that no terminal wraps),
    /// ending in `…` when cut; unchanged when the width is unknown.
    static func clip(_ line: String, to columns: Int?) -> String {
        guard let columns, columns > 1 else { return line }
        var used = 0, out = ""
        for c in line {
            let w = c.unicodeScalars.first.map(Self.cellWidth) ?? 1
            if used + w > columns - 1 {
                while used + 1 > columns - 1, let last = out.popLast() { used -= last.unicodeScalars.first.map(Self.cellWidth) ?? 1 }
                return out + "…"
            }
            used += w
            out.append(c)
        }
        return out
    }

    /// Terminal cells a character takes: 2 for East Asian wide and emoji ranges, else 1.
    static func cellWidth(_ s: Unicode.Scalar) -> Int {
        switch s.value {
        case 0x1100...0x115F, 0x2E80...0xA4CF, 0xAC00...0xD7A3, 0xF900...0xFAFF, 0xFE30...0xFE4F, 0xFF00...0xFF60,
             0xFFE0...0xFFE6, 0x1F300...0x1F64F, 0x1F900...0x1F9FF, 0x20000...0x3FFFD: 2
        default: 1
        }
    }

    private func emit(line: String, at t: Date) {
        sink("\(t.formatted(.iso8601)) \(line)\n")
    }
}
