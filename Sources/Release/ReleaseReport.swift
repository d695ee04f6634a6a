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
        /// The attempt's build log, relative to the dist directory's `logs/`.
        public var log: String?
        public init(host: String, start: Date, end: Date, outcome: String, detail: String? = nil, log: String? = nil) {
            self.host = host; self.start = start; self.end = end; self.outcome = outcome; self.detail = detail; self.log = log
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

        enum CodingKeys: String, CodingKey {
            case id, package, arch, python, version, state, attempts, wheel, sha256, size, checks
            case isaCounts = "isa_counts", publications, detail
        }

        public init(id: String, package: String, arch: String, python: String, version: String, state: String,
                    attempts: [Attempt] = [], wheel: String? = nil, sha256: String? = nil, size: Int64? = nil,
                    checks: [Check] = [], isaCounts: [String: Int] = [:], publications: [String] = [], detail: String? = nil) {
            self.id = id; self.package = package; self.arch = arch; self.python = python; self.version = version
            self.state = state; self.attempts = attempts; self.wheel = wheel; self.sha256 = sha256; self.size = size
            self.checks = checks; self.isaCounts = isaCounts; self.publications = publications; self.detail = detail
        }
    }

    /// `wheelfarm.report/2`: every key is snake_case.
    public var schema = "wheelfarm.report/2"
    public var runID: String
    public var recipe: String
    public var startedAt: Date
    public var finishedAt: Date
    /// `succeeded`, `failed` or `cancelled` (`dry-run` for a dry run's report).
    public var status: String
    public var hosts: [String]
    public var jobs: [Job]
    /// The local fault that stopped the run early (a full disk, an I/O error), if one did.
    public var fault: String?

    enum CodingKeys: String, CodingKey {
        case schema, runID = "run_id", recipe, startedAt = "started_at", finishedAt = "finished_at", status, hosts, jobs, fault
    }

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
