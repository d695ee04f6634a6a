import FarmCore
import Foundation
import GRDB
import Scheduling

/// The crash-safe record of releases in a dist directory: runs, jobs, attempts, hosts, artifacts
/// and publications, in SQLite (WAL mode) through GRDB.
///
/// The journal is what makes a release resumable. Artifacts and publications are keyed by wheel
/// filename and SHA-256, not by run, so running the same command again after a crash finds
/// what was already verified (not rebuilt) and already published (not re-uploaded). Every write
/// is one transaction; a coordinator killed at any moment leaves the last committed state.
/// Secrets are never written: callers pass the command line with credentials removed.
public final class Journal: Sendable {
    private let db: DatabaseQueue
    /// The SQLite file.
    public let path: String

    /// Opens (creating and migrating as needed) the journal of `distDir`.
    public convenience init(distDir: URL) throws { try self.init(layout: DistLayout(root: distDir)) }

    /// Opens (creating and migrating as needed) the journal of a dist directory.
    public init(layout: DistLayout) throws {
        try FileManager.default.createDirectory(at: layout.stateDirectory, withIntermediateDirectories: true)
        path = layout.journalFile.path
        var config = Configuration()
        config.busyMode = .timeout(5)
        db = try DatabaseQueue(path: path, configuration: config)
        try Self.migrator.migrate(db)
    }

    private static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
            try db.create(table: "run") { t in
                t.primaryKey("id", .text)
                t.column("startedAt", .datetime).notNull()
                t.column("finishedAt", .datetime)
                t.column("status", .text).notNull()        // running, succeeded, failed, interrupted
                t.column("recipe", .text).notNull()
                t.column("inventory", .text).notNull()
                t.column("arguments", .text).notNull()     // the command line, secrets removed
                t.column("coordinatorPID", .integer).notNull()
            }
            try db.create(table: "job") { t in
                t.column("runID", .text).notNull().references("run", onDelete: .cascade)
                t.column("jobID", .text).notNull()
                t.column("package", .text).notNull()
                t.column("arch", .text).notNull()
                t.column("python", .text).notNull()
                t.column("version", .text).notNull()
                t.column("state", .text).notNull()         // see JobState
                t.column("host", .text)
                t.column("attempts", .integer).notNull().defaults(to: 0)
                t.column("wheel", .text)
                t.column("detail", .text)
                t.column("updatedAt", .datetime).notNull()
                t.primaryKey(["runID", "jobID"])
            }
            try db.create(table: "attempt") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("runID", .text).notNull()
                t.column("jobID", .text).notNull()
                t.column("number", .integer).notNull()
                t.column("host", .text).notNull()
                t.column("startedAt", .datetime).notNull()
                t.column("finishedAt", .datetime)
                t.column("outcome", .text)                 // succeeded, build-failed, host-failed, verify-failed, cancelled
                t.column("detail", .text)
                t.column("logPath", .text)
                t.column("remoteBuildDir", .text)
            }
            try db.create(table: "artifact") { t in
                t.primaryKey("filename", .text)
                t.column("sha256", .text).notNull()
                t.column("size", .integer).notNull()
                t.column("jobID", .text).notNull()
                t.column("host", .text)
                t.column("verified", .boolean).notNull()
                t.column("report", .text)                  // verification report (JSON)
                t.column("recordedAt", .datetime).notNull()
            }
            try db.create(table: "publication") { t in
                t.column("filename", .text).notNull()
                t.column("sha256", .text).notNull()
                t.column("target", .text).notNull()        // index URL or github:<repo>@<tag>
                t.column("outcome", .text).notNull()       // uploaded, already-there
                t.column("at", .datetime).notNull()
                t.primaryKey(["filename", "target"])
            }
        }
        m.registerMigration("v2-hosts") { db in
            // The hosts of each run: what pre-flight found and what happened to them during it.
            try db.create(table: "host") { t in
                t.column("runID", .text).notNull().references("run")
                t.column("name", .text).notNull()
                t.column("address", .text)
                t.column("arch", .text)
                t.column("state", .text).notNull()        // reachable, unreachable, joined, left, quarantined, lost, …
                t.column("detail", .text)
                t.column("updatedAt", .datetime).notNull()
                t.primaryKey(["runID", "name"])
            }
        }
        m.registerMigration("v3-host-speed") { db in
            // The host's speed factor when the attempt ran, so that durations learned on one host
            // can be scaled to another (older attempts fall back to the inventory's current value).
            try db.alter(table: "attempt") { t in t.add(column: "hostSpeed", .double) }
        }
        return m
    }

    // MARK: runs

    /// Records the start of a run and returns its id (`YYYYMMDD-HHMMSS-xxxx`).
    public func beginRun(recipe: String, inventory: String, arguments: [String], now: Date = Date()) throws -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX"); f.timeZone = TimeZone(identifier: "UTC"); f.dateFormat = "yyyyMMdd-HHmmss"
        let id = "\(f.string(from: now))-\(UUID().uuidString.prefix(4).lowercased())"
        try db.write { db in
            // A run left "running" by a coordinator that died is marked interrupted.
            try db.execute(sql: "UPDATE run SET status = 'interrupted' WHERE status = 'running'")
            try db.execute(sql: """
                INSERT INTO run (id, startedAt, status, recipe, inventory, arguments, coordinatorPID)
                VALUES (?, ?, 'running', ?, ?, ?, ?)
                """, arguments: [id, now, recipe, inventory, arguments.joined(separator: " "), Int(getpid())])
        }
        return id
    }

    /// Marks a run finished.
    public func finishRun(_ id: String, status: RunStatus, now: Date = Date()) throws {
        try db.write { db in
            try db.execute(sql: "UPDATE run SET status = ?, finishedAt = ? WHERE id = ?", arguments: [status.rawValue, now, id])
        }
    }

    // MARK: jobs and attempts

    /// Creates or updates a job's row in a run.
    public func setJob(run: String, job: JobRecord, now: Date = Date()) throws {
        try db.write { db in
            try db.execute(sql: """
                INSERT INTO job (runID, jobID, package, arch, python, version, state, host, attempts, wheel, detail, updatedAt)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(runID, jobID) DO UPDATE SET state = excluded.state, host = excluded.host,
                  attempts = excluded.attempts, wheel = excluded.wheel, detail = excluded.detail, updatedAt = excluded.updatedAt
                """, arguments: [run, job.jobID, job.package, job.arch, job.python, job.version, job.state.rawValue,
                                 job.host, job.attempts, job.wheel, job.detail, now])
        }
    }

    /// Records the start of an attempt; returns its row id.
    public func beginAttempt(run: String, jobID: String, number: Int, host: String, remoteBuildDir: String?,
                             hostSpeed: Double? = nil, now: Date = Date()) throws -> Int64 {
        try db.write { db in
            try db.execute(sql: """
                INSERT INTO attempt (runID, jobID, number, host, startedAt, remoteBuildDir, hostSpeed) VALUES (?, ?, ?, ?, ?, ?, ?)
                """, arguments: [run, jobID, number, host, now, remoteBuildDir, hostSpeed])
            return db.lastInsertedRowID
        }
    }

    /// How many attempts at `jobID` every run recorded so far: attempt numbers continue across
    /// runs, so each attempt's log and remote job directory have names of their own.
    public func attemptCount(jobID: String) throws -> Int {
        try db.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM attempt WHERE jobID = ?", arguments: [jobID]) ?? 0 }
    }

    /// The successful attempts of every run, as durations for the scheduler's ``DurationModel``:
    /// package, arch and version from the attempt's job row, the host and its speed at the time
    /// (`speeds` gives it for attempts recorded before speeds were kept), and wall-clock seconds.
    public func durationSamples(speeds: [String: Double] = [:]) throws -> [DurationSample] {
        try db.read { db in
            try Row.fetchAll(db, sql: """
                SELECT attempt.host, attempt.hostSpeed, attempt.startedAt, attempt.finishedAt, job.package, job.arch, job.version
                FROM attempt JOIN job ON job.runID = attempt.runID AND job.jobID = attempt.jobID
                WHERE attempt.outcome = 'succeeded' AND attempt.finishedAt IS NOT NULL ORDER BY attempt.id
                """).compactMap { row -> DurationSample? in
                let start: Date = row["startedAt"], end: Date = row["finishedAt"]
                guard let arch = Arch(rawValue: row["arch"]) else { return nil }
                let host: String = row["host"]
                let version = PEP440Version(row["version"] as String).map(DurationModel.family(of:))
                return DurationSample(package: row["package"], arch: arch, versionFamily: version, host: host,
                                      hostSpeed: row["hostSpeed"] ?? speeds[host] ?? 1, seconds: end.timeIntervalSince(start))
            }
        }
    }

    /// Records how an attempt ended.
    public func finishAttempt(_ id: Int64, outcome: String, detail: String? = nil, logPath: String? = nil, now: Date = Date()) throws {
        try db.write { db in
            try db.execute(sql: "UPDATE attempt SET finishedAt = ?, outcome = ?, detail = ?, logPath = ? WHERE id = ?",
                           arguments: [now, outcome, detail, logPath, id])
        }
    }

    /// Attempts that were started but never finished (the coordinator died): their remote builds
    /// are found again or restarted cleanly on resume.
    public func unfinishedAttempts() throws -> [AttemptRecord] {
        try db.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM attempt WHERE finishedAt IS NULL ORDER BY id").map(AttemptRecord.init(row:))
        }
    }

    // MARK: artifacts and publications

    /// Records a wheel pulled back (and whether it passed verification).
    public func recordArtifact(_ a: ArtifactRecord, now: Date = Date()) throws {
        try db.write { db in
            try db.execute(sql: """
                INSERT INTO artifact (filename, sha256, size, jobID, host, verified, report, recordedAt)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(filename) DO UPDATE SET sha256 = excluded.sha256, size = excluded.size, jobID = excluded.jobID,
                  host = excluded.host, verified = excluded.verified, report = excluded.report, recordedAt = excluded.recordedAt
                """, arguments: [a.filename, a.sha256.hex, a.size, a.jobID, a.host, a.verified, a.report, now])
        }
    }

    /// Forgets an artifact (a wheel that failed verification and was deleted).
    public func removeArtifact(filename: String) throws {
        try db.write { db in try db.execute(sql: "DELETE FROM artifact WHERE filename = ?", arguments: [filename]) }
    }

    /// The verified artifact of a job, if one is recorded.
    public func verifiedArtifact(jobID: String) throws -> ArtifactRecord? {
        try db.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM artifact WHERE jobID = ? AND verified = 1 ORDER BY recordedAt DESC", arguments: [jobID])
                .map(ArtifactRecord.init(row:))
        }
    }

    /// The artifact recorded for a filename.
    public func artifact(filename: String) throws -> ArtifactRecord? {
        try db.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM artifact WHERE filename = ?", arguments: [filename]).map(ArtifactRecord.init(row:))
        }
    }

    /// Records that a file reached a target (an index or a GitHub release).
    public func recordPublication(filename: String, sha256: SHA256Digest, target: String, outcome: String, now: Date = Date()) throws {
        try db.write { db in
            try db.execute(sql: """
                INSERT INTO publication (filename, sha256, target, outcome, at) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT(filename, target) DO UPDATE SET sha256 = excluded.sha256, outcome = excluded.outcome, at = excluded.at
                """, arguments: [filename, sha256.hex, target, outcome, now])
        }
    }

    /// Whether exactly this file (name and digest) is recorded as published to `target`.
    public func isPublished(filename: String, sha256: SHA256Digest, target: String) throws -> Bool {
        try db.read { db in
            try Bool.fetchOne(db, sql: "SELECT 1 FROM publication WHERE filename = ? AND sha256 = ? AND target = ?",
                              arguments: [filename, sha256.hex, target]) ?? false
        }
    }

    // MARK: hosts

    /// Records what is known of a host in a run (the latest state wins; address and arch are
    /// kept when a later update does not give them).
    public func setHost(run: String, _ host: HostRecord, now: Date = Date()) throws {
        try db.write { db in
            try db.execute(sql: """
                INSERT INTO host (runID, name, address, arch, state, detail, updatedAt) VALUES (?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(runID, name) DO UPDATE SET address = COALESCE(excluded.address, address),
                  arch = COALESCE(excluded.arch, arch), state = excluded.state, detail = excluded.detail, updatedAt = excluded.updatedAt
                """, arguments: [run, host.name, host.address, host.arch, host.state, host.detail, now])
        }
    }

    // MARK: status

    /// The last run, or the run with `id`, with its jobs.
    public func summary(run id: String? = nil) throws -> RunSummary? {
        try db.read { db in
            let row: Row? = if let id {
                try Row.fetchOne(db, sql: "SELECT * FROM run WHERE id = ?", arguments: [id])
            } else {
                try Row.fetchOne(db, sql: "SELECT * FROM run ORDER BY startedAt DESC, rowid DESC LIMIT 1")
            }
            guard let row else { return nil }
            let runID: String = row["id"]
            let jobs = try Row.fetchAll(db, sql: "SELECT * FROM job WHERE runID = ? ORDER BY rowid", arguments: [runID]).map(JobRecord.init(row:))
            let hosts = try Row.fetchAll(db, sql: "SELECT * FROM host WHERE runID = ? ORDER BY rowid", arguments: [runID]).map {
                HostRecord(name: $0["name"], address: $0["address"], arch: $0["arch"], state: $0["state"], detail: $0["detail"])
            }
            return RunSummary(id: runID, startedAt: row["startedAt"], finishedAt: row["finishedAt"],
                              status: RunStatus(rawValue: row["status"]) ?? .interrupted, recipe: row["recipe"],
                              inventory: row["inventory"], arguments: row["arguments"], jobs: jobs, hosts: hosts)
        }
    }

    /// Ids of all runs, newest first.
    public func runIDs() throws -> [String] {
        try db.read { db in try String.fetchAll(db, sql: "SELECT id FROM run ORDER BY startedAt DESC, rowid DESC") }
    }
}

/// How a run ended.
public enum RunStatus: String, Sendable, Codable {
    /// `cancelled`: stopped by SIGINT/SIGTERM (the same command resumes); `interrupted`: the
    /// coordinator died without finishing the run.
    case running, succeeded, failed, interrupted, cancelled
}

/// Where a job stands.
public enum JobState: String, Sendable, Codable, CaseIterable {
    case queued, building, built, verified, published, skipped, failed, unplaceable, cancelled
}

/// A job's row in the journal.
public struct JobRecord: Sendable, Codable, Equatable {
    public var jobID: String
    public var package: String
    public var arch: String
    public var python: String
    public var version: String
    public var state: JobState
    public var host: String?
    public var attempts: Int
    public var wheel: String?
    public var detail: String?

    public init(jobID: String, package: String, arch: String, python: String, version: String, state: JobState,
                host: String? = nil, attempts: Int = 0, wheel: String? = nil, detail: String? = nil) {
        self.jobID = jobID; self.package = package; self.arch = arch; self.python = python; self.version = version
        self.state = state; self.host = host; self.attempts = attempts; self.wheel = wheel; self.detail = detail
    }

    init(row: Row) {
        self.init(jobID: row["jobID"], package: row["package"], arch: row["arch"], python: row["python"], version: row["version"],
                  state: JobState(rawValue: row["state"]) ?? .queued, host: row["host"], attempts: row["attempts"],
                  wheel: row["wheel"], detail: row["detail"])
    }
}

/// An attempt's row.
public struct AttemptRecord: Sendable, Equatable {
    public let id: Int64
    public let runID: String
    public let jobID: String
    public let number: Int
    public let host: String
    public let remoteBuildDir: String?
    public let outcome: String?

    init(row: Row) {
        id = row["id"]; runID = row["runID"]; jobID = row["jobID"]; number = row["number"]; host = row["host"]
        remoteBuildDir = row["remoteBuildDir"]; outcome = row["outcome"]
    }
}

/// A wheel known to the journal.
public struct ArtifactRecord: Sendable, Equatable {
    public var filename: String
    public var sha256: SHA256Digest
    public var size: Int64
    public var jobID: String
    public var host: String?
    public var verified: Bool
    /// The verification report as JSON.
    public var report: String?

    public init(filename: String, sha256: SHA256Digest, size: Int64, jobID: String, host: String?, verified: Bool, report: String? = nil) {
        self.filename = filename; self.sha256 = sha256; self.size = size; self.jobID = jobID; self.host = host
        self.verified = verified; self.report = report
    }

    init(row: Row) {
        self.init(filename: row["filename"], sha256: SHA256Digest(hex: row["sha256"]) ?? SHA256Digest(bytes: []),
                  size: row["size"], jobID: row["jobID"], host: row["host"], verified: row["verified"], report: row["report"])
    }
}

/// A run and its jobs, for `wheelfarm status`.
public struct RunSummary: Sendable {
    public let id: String
    public let startedAt: Date
    public let finishedAt: Date?
    public let status: RunStatus
    public let recipe: String
    public let inventory: String
    public let arguments: String
    public let jobs: [JobRecord]
    public let hosts: [HostRecord]
}

/// A host's row in a run.
public struct HostRecord: Sendable, Codable, Equatable {
    public var name: String
    public var address: String?
    public var arch: String?
    /// `reachable`, `unreachable`, `joined`, `left`, `draining`, `quarantined`, `recovered`, `lost`.
    public var state: String
    public var detail: String?

    public init(name: String, address: String? = nil, arch: String? = nil, state: String, detail: String? = nil) {
        self.name = name; self.address = address; self.arch = arch; self.state = state; self.detail = detail
    }
}
