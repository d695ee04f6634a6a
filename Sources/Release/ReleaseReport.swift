import Foundation

/// What a release did, for people (summary table, HTML with a timeline) and machines (JSON).
///
/// Written to `<dist>/reports/<run>.json` and `.html` at the end of every run, whatever its
/// outcome, so a failed night can be read the next morning.
public struct ReleaseReport: Codable, Sendable {
    /// One build attempt of a job on a host.
    public struct Attempt: Codable, Sendable {
        public var host: String
        public var start: Date
        public var end: Date
        /// `succeeded`, `build-failed`, `host-failed`, `verify-failed`, `cancelled`.
        public var outcome: String
        public var detail: String?
        public init(host: String, start: Date, end: Date, outcome: String, detail: String? = nil) {
            self.host = host; self.start = start; self.end = end; self.outcome = outcome; self.detail = detail
        }
    }

    /// One verification check's outcome.
    public struct Check: Codable, Sendable {
        public var id: String
        /// `pass`, `fail`, `warn`, `skip`.
        public var outcome: String
        public var message: String
        public init(id: String, outcome: String, message: String) { self.id = id; self.outcome = outcome; self.message = message }
    }

    /// A job's whole story.
    public struct Job: Codable, Sendable {
        public var id: String
        public var package: String
        public var arch: String
        public var python: String
        public var version: String
        /// Final state (see `JobState`).
        public var state: String
        public var attempts: [Attempt]
        public var wheel: String?
        public var sha256: String?
        public var size: Int64?
        public var checks: [Check]
        /// Instructions counted per ISA extension by the audit.
        public var isaCounts: [String: Int]
        /// Where the wheel was published (`uploaded`/`already there` per target).
        public var publications: [String]
        public var detail: String?

        public init(id: String, package: String, arch: String, python: String, version: String, state: String,
                    attempts: [Attempt] = [], wheel: String? = nil, sha256: String? = nil, size: Int64? = nil,
                    checks: [Check] = [], isaCounts: [String: Int] = [:], publications: [String] = [], detail: String? = nil) {
            self.id = id; self.package = package; self.arch = arch; self.python = python; self.version = version
            self.state = state; self.attempts = attempts; self.wheel = wheel; self.sha256 = sha256; self.size = size
            self.checks = checks; self.isaCounts = isaCounts; self.publications = publications; self.detail = detail
        }
    }

    public var schema = "wheelfarm.report/1"
    public var runID: String
    public var recipe: String
    public var startedAt: Date
    public var finishedAt: Date
    /// `succeeded` or `failed`.
    public var status: String
    public var hosts: [String]
    public var jobs: [Job]

    public init(runID: String, recipe: String, startedAt: Date, finishedAt: Date, status: String, hosts: [String], jobs: [Job]) {
        self.runID = runID; self.recipe = recipe; self.startedAt = startedAt; self.finishedAt = finishedAt
        self.status = status; self.hosts = hosts; self.jobs = jobs
    }

    /// Counts of jobs by final state, e.g. `["published": 10, "failed": 1]`.
    public var stateCounts: [String: Int] { Dictionary(grouping: jobs, by: \.state).mapValues(\.count) }

    // MARK: JSON

    /// Pretty, key-sorted JSON with ISO 8601 dates.
    public func json() throws -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        e.dateEncodingStrategy = .iso8601
        return try e.encode(self)
    }

    /// Reads a report written by ``json()``.
    public static func decode(_ data: Data) throws -> ReleaseReport {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .iso8601
        return try d.decode(ReleaseReport.self, from: data)
    }

    // MARK: text

    /// The summary table printed at the end of a run.
    public func summaryTable() -> String {
        let header = ["JOB", "STATE", "HOST", "TRIES", "WHEEL / REASON"]
        var rows = [header]
        for j in jobs {
            rows.append([j.id, j.state, j.attempts.last?.host ?? "-", String(j.attempts.count), j.wheel ?? j.detail ?? ""])
        }
        let widths = header.indices.map { i in rows.map { $0[i].count }.max() ?? 0 }
        var lines = rows.map { row in
            row.enumerated().map { i, c in i == row.count - 1 ? c : c.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
                .joined(separator: "  ")
        }
        let counts = stateCounts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
        lines.append("")
        lines.append("\(jobs.count) jobs: \(counts) · \(Self.duration(finishedAt.timeIntervalSince(startedAt)))")
        return lines.joined(separator: "\n")
    }

    /// `1h 02m 03s` style.
    public static func duration(_ seconds: TimeInterval) -> String {
        let s = Int(seconds.rounded())
        if s >= 3600 { return String(format: "%dh %02dm %02ds", s / 3600, s % 3600 / 60, s % 60) }
        if s >= 60 { return String(format: "%dm %02ds", s / 60, s % 60) }
        return "\(s)s"
    }

    // MARK: HTML

    /// A self-contained HTML page: summary, a timeline (hosts × time, one bar per attempt,
    /// coloured by outcome) and per-wheel verification and ISA audit results.
    public func html() -> String {
        let span = max(finishedAt.timeIntervalSince(startedAt), 1)
        let rowHeight = 28.0, labelWidth = 140.0, chartWidth = 900.0
        let hostRows = hosts.isEmpty ? Array(Set(jobs.flatMap { $0.attempts.map(\.host) })).sorted() : hosts
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(labelWidth + chartWidth + 20))\" height=\"\(Int(Double(hostRows.count) * rowHeight + 40))\" role=\"img\" aria-label=\"timeline\">"
        for (i, host) in hostRows.enumerated() {
            let y = Double(i) * rowHeight + 10
            svg += "<text x=\"4\" y=\"\(y + 18)\" class=\"host\">\(Self.escape(host))</text>"
            svg += "<line x1=\"\(labelWidth)\" x2=\"\(labelWidth + chartWidth)\" y1=\"\(y + rowHeight - 2)\" y2=\"\(y + rowHeight - 2)\" class=\"grid\"/>"
        }
        for job in jobs {
            for a in job.attempts {
                guard let row = hostRows.firstIndex(of: a.host) else { continue }
                let x = labelWidth + a.start.timeIntervalSince(startedAt) / span * chartWidth
                let w = max(2, a.end.timeIntervalSince(a.start) / span * chartWidth)
                let y = Double(row) * rowHeight + 12
                svg += "<rect x=\"\(Self.fmt(x))\" y=\"\(y)\" width=\"\(Self.fmt(w))\" height=\"\(rowHeight - 8)\" class=\"bar \(Self.escape(a.outcome))\">"
                svg += "<title>\(Self.escape(job.id)) on \(Self.escape(a.host)): \(Self.escape(a.outcome)), \(Self.duration(a.end.timeIntervalSince(a.start)))\(a.detail.map { " — " + Self.escape($0) } ?? "")</title></rect>"
            }
        }
        let axisY = Double(hostRows.count) * rowHeight + 30
        for k in 0...4 {
            let x = labelWidth + Double(k) / 4 * chartWidth
            svg += "<text x=\"\(Self.fmt(x))\" y=\"\(axisY)\" class=\"axis\">\(Self.duration(span * Double(k) / 4))</text>"
        }
        svg += "</svg>"

        var rows = ""
        for j in jobs {
            let failed = j.checks.filter { $0.outcome == "fail" }
            let warned = j.checks.filter { $0.outcome == "warn" }
            var verification = j.checks.isEmpty ? "—" : failed.isEmpty ? "passed (\(j.checks.count) checks)" : "<b>failed</b>: " + failed.map { Self.escape("\($0.id): \($0.message)") }.joined(separator: "<br>")
            if !warned.isEmpty { verification += "<br>warnings: " + warned.map { Self.escape("\($0.id): \($0.message)") }.joined(separator: "<br>") }
            let isa = j.isaCounts.isEmpty ? "—" : j.isaCounts.sorted { $0.key < $1.key }.map { "\(Self.escape($0.key)) \($0.value)" }.joined(separator: "<br>")
            rows += "<tr class=\"\(Self.escape(j.state))\"><td>\(Self.escape(j.id))</td><td>\(Self.escape(j.state))</td>"
            rows += "<td>\(j.attempts.map { Self.escape("\($0.host): \($0.outcome)") }.joined(separator: "<br>"))</td>"
            rows += "<td>\(Self.escape(j.wheel ?? j.detail ?? ""))\(j.sha256.map { "<br><code>sha256 \(Self.escape($0))</code>" } ?? "")</td>"
            rows += "<td>\(verification)</td><td>\(isa)</td><td>\(j.publications.map(Self.escape).joined(separator: "<br>"))</td></tr>"
        }
        let counts = stateCounts.sorted { $0.key < $1.key }.map { "\($0.value) \(Self.escape($0.key))" }.joined(separator: ", ")
        return """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>wheelfarm release \(Self.escape(runID))</title>
        <style>
        body{font:14px system-ui,sans-serif;margin:24px;color:#222}
        table{border-collapse:collapse;margin-top:16px}td,th{border:1px solid #ddd;padding:4px 8px;vertical-align:top;text-align:left}
        .host{font:12px monospace}.axis{font:11px monospace;fill:#666}.grid{stroke:#eee}
        .bar{stroke:#333;stroke-width:.5}.bar.succeeded{fill:#3a9d5d}.bar.build-failed{fill:#d9534f}.bar.host-failed{fill:#f0ad4e}
        .bar.verify-failed{fill:#b03a2e}.bar.cancelled{fill:#999}
        tr.failed td,tr.unplaceable td{background:#fdecea}code{font-size:11px}
        </style></head><body>
        <h1>Release \(Self.escape(runID)): \(Self.escape(status))</h1>
        <p>recipe <b>\(Self.escape(recipe))</b> · \(jobs.count) jobs: \(counts) · started \(Self.escape(startedAt.formatted(.iso8601))) · took \(Self.duration(span))</p>
        <h2>Timeline</h2>
        \(svg)
        <p>green: built · red: build failed · orange: host failed · dark red: failed verification · grey: cancelled</p>
        <h2>Wheels</h2>
        <table><tr><th>job</th><th>state</th><th>attempts</th><th>wheel</th><th>verification</th><th>ISA audit (instructions)</th><th>published</th></tr>
        \(rows)
        </table></body></html>
        """
    }

    private static func fmt(_ d: Double) -> String { String(format: "%.1f", d) }

    /// Escapes text for HTML element content and attribute values.
    static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.count)
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(c)
            }
        }
        return out
    }

    /// Writes `<dir>/<run>.json` and `<dir>/<run>.html`; returns their paths.
    @discardableResult
    public func write(to dir: URL) throws -> (json: URL, html: URL) {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let json = dir.appendingPathComponent("\(runID).json"), html = dir.appendingPathComponent("\(runID).html")
        try self.json().write(to: json, options: .atomic)
        try Data(self.html().utf8).write(to: html, options: .atomic)
        return (json, html)
    }
}
