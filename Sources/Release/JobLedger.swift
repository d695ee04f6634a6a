import Agents
import FarmCore
import Foundation
import Publishing
import Recipes
import Scheduling
import Synchronization
import Wheels

/// Everything a release knows about its jobs: one record per job, each in one state.
///
/// The pipeline is a sequence of phases over the ledger (pre-flight classifies each job, the build
/// phase builds and verifies the ones to build, the rewrite, publish and GitHub phases move
/// verified wheels on); the journal's job rows and the report are both read from it, so they
/// cannot disagree. Like the scheduler's `SchedulerCore`, it is a plain value: every decision
/// it makes is testable without I/O, and the pipeline does the I/O between them.
public struct JobLedger: Sendable {
    /// Where a job stands, with the facts that state carries.
    public enum State: Sendable {
        /// The destination listed its wheel before this run: nothing to build or upload.
        case alreadyPublished(IndexedFile)
        /// Its wheel is in the dist directory with the digest the journal recorded at
        /// verification; pre-flight verifies it again before it counts as verified.
        case reused(URL)
        /// To be built on the farm.
        case toBuild
        /// No host can build it (the reason names the closest host and what it lacks).
        case unplaceable(String)
        /// It failed for good in this run.
        case failed(String)
        /// The run was cancelled before it was done.
        case cancelled
        /// Its wheel passed central verification.
        case verified(URL)
        /// Its verified wheel was rewritten (version suffix or README), and the result verified.
        case rewritten(URL)
        /// Its wheel is on the destination index.
        case published(PublishableWheel)
        /// Its wheel is on the index and attached to its GitHub release.
        case attached(PublishableWheel)

        /// A one-word name, as the journal and the report spell it.
        public var name: String {
            switch self {
            case .alreadyPublished: "already-published"
            case .reused: "reused"
            case .toBuild: "to-build"
            case .unplaceable: "unplaceable"
            case .failed: "failed"
            case .cancelled: "cancelled"
            case .verified: "verified"
            case .rewritten: "rewritten"
            case .published: "published"
            case .attached: "attached"
            }
        }
    }

    /// One job's record.
    public struct Record: Sendable {
        /// The job as selected (its version carries any `--version-suffix`).
        public let job: BuildJob
        /// Why no host can take it, from the plan (nil when some host can).
        public let unplaceableReason: String?
        /// Where it stands.
        public internal(set) var state: State = .toBuild { didSet { if let w = wheel { lastWheel = w } } }
        /// The last local wheel the job had (kept when a later step fails).
        public internal(set) var lastWheel: URL?
        /// Every build attempt of this run.
        public internal(set) var attempts: [ReleaseReport.Attempt] = []
        /// The last verification report of its wheel.
        public internal(set) var verification: WheelReport?
        /// The wheel pulled back from its build host, with its digest.
        public internal(set) var built: BuiltWheel?
        /// The file the destination listed before this run, if any.
        public internal(set) var listed: IndexedFile?
        /// Where the wheel went (`uploaded → url`, `already there → url`).
        public internal(set) var publications: [String] = []
        /// A note on the way (a rebuild after a failed re-verification), kept for the report.
        public internal(set) var note: String?

        /// The job the farm builds (the suffix is applied afterwards by rewriting).
        public var buildJob: BuildJob { ReleaseConfiguration.buildJob(job) }
        /// The job's id (without the suffix), as the scheduler and the journal know it.
        public var id: String { buildJob.id }

        /// The local wheel the record's state points at.
        public var wheel: URL? {
            switch state {
            case let .reused(u), let .verified(u), let .rewritten(u): u
            case let .published(w), let .attached(w): URL(fileURLWithPath: w.path)
            default: nil
            }
        }

        /// Why it failed, when it did.
        public var failure: String? {
            switch state {
            case let .failed(why), let .unplaceable(why): why
            default: nil
            }
        }
    }

    /// Records in the order of the job matrix.
    public private(set) var records: [Record]
    private var index: [String: Int] = [:]

    /// A ledger of `jobs` (as selected), each to build unless the plan says no host can take it.
    public init(jobs: [BuildJob], unplaceable: [String: String] = [:]) {
        records = jobs.map { job in
            let id = ReleaseConfiguration.buildJob(job).id
            var r = Record(job: job, unplaceableReason: unplaceable[id])
            if let why = unplaceable[id] { r.state = .unplaceable(why) }
            return r
        }
        for (i, r) in records.enumerated() { index[r.id] = i }
    }

    /// The record of job `id`.
    public subscript(id: String) -> Record? { index[id].map { records[$0] } }

    /// Applies `body` to the record of job `id` (nothing when there is none).
    public mutating func update(_ id: String, _ body: (inout Record) -> Void) {
        guard let i = index[id] else { return }
        body(&records[i])
    }

    /// Sets the state of job `id`.
    public mutating func set(_ id: String, _ state: State) { update(id) { $0.state = state } }

    /// Fails job `id` with `reason`.
    public mutating func fail(_ id: String, _ reason: String) { set(id, .failed(reason)) }

    // MARK: queries

    /// Jobs in a given state, by a predicate on it.
    public func ids(where predicate: (State) -> Bool) -> [String] { records.filter { predicate($0.state) }.map(\.id) }

    /// Jobs to build, in matrix order.
    public var toBuild: [BuildJob] { records.filter { if case .toBuild = $0.state { true } else { false } }.map(\.buildJob) }

    /// Jobs whose wheel awaits its re-verification, with that wheel.
    public var reused: [(id: String, wheel: URL)] {
        records.compactMap { if case let .reused(u) = $0.state { ($0.id, u) } else { nil } }
    }

    /// Jobs whose verified (or rewritten) wheel is ready to publish, in id order.
    public var readyToPublish: [(id: String, wheel: URL)] {
        records.compactMap { r -> (String, URL)? in
            switch r.state {
            case let .verified(u), let .rewritten(u): (r.id, u)
            default: nil
            }
        }.sorted { $0.0 < $1.0 }
    }

    /// Jobs verified in this run (built or re-verified), in id order.
    public var verified: [(id: String, wheel: URL)] {
        records.compactMap { if case let .verified(u) = $0.state { ($0.id, u) } else { nil } }.sorted { $0.0 < $1.0 }
    }

    /// Jobs published by this run, in id order.
    public var published: [(id: String, wheel: PublishableWheel)] {
        records.compactMap { if case let .published(w) = $0.state { ($0.id, w) } else { nil } }.sorted { $0.0 < $1.0 }
    }

    /// Jobs the destination held before this run, with the listed file.
    public var alreadyPublished: [(id: String, file: IndexedFile)] {
        records.compactMap { if case let .alreadyPublished(f) = $0.state { ($0.id, f) } else { nil } }
    }

    /// How many jobs are in each pre-flight state: the counts pre-flight prints.
    public var preflightCounts: (toBuild: Int, verified: Int, alreadyPublished: Int, unplaceable: Int) {
        var c = (0, 0, 0, 0)
        for r in records {
            switch r.state {
            case .toBuild: c.0 += 1
            case .verified: c.1 += 1
            case .alreadyPublished: c.2 += 1
            case .unplaceable: c.3 += 1
            default: break
            }
        }
        return c
    }

    // MARK: endings

    /// Gives every job a final state at the end of a run: jobs never built are cancelled (the run
    /// was cancelled) or failed; verified wheels that were not published are failed, except when
    /// the run was cancelled (they are published by the next run) or only rewrote READMEs; a
    /// runtime `fault` is the reason for whatever it stopped.
    public mutating func settle(cancelled: Bool, readmeOnly: Bool, fault: String?) {
        for i in records.indices {
            switch records[i].state {
            case .toBuild, .reused:
                records[i].state = cancelled ? .cancelled : .failed(fault.map { "the run stopped before it was built: \($0)" } ?? "not built")
            case .verified, .rewritten:
                guard !cancelled, !readmeOnly || fault != nil else { continue }
                records[i].state = .failed(fault.map { "the run stopped before it was published: \($0)" } ?? "not published")
            default: break
            }
        }
    }

    /// The journal's state of a record at the end of a run (`readmeOnly`: `--update-readme`,
    /// where verified is the goal).
    public static func journalState(_ r: Record) -> JobState {
        switch r.state {
        case .alreadyPublished, .published, .attached: .published
        case .verified, .rewritten, .reused: .verified
        case .toBuild: .queued
        case .unplaceable: .unplaceable
        case .failed: .failed
        case .cancelled: .cancelled
        }
    }

    /// Whether the release reached its goal for every job: published (or, with
    /// `--update-readme`, verified and rewritten).
    public func succeeded(readmeOnly: Bool) -> Bool {
        records.allSatisfy { r in
            switch r.state {
            case .alreadyPublished, .published, .attached: !readmeOnly
            case .verified, .rewritten: readmeOnly
            default: false
            }
        }
    }

    /// The journal row of a record.
    public func journalRecord(_ id: String) -> JobRecord? {
        guard let r = self[id] else { return nil }
        let detail = r.failure ?? (r.listed != nil ? "published before this run" : r.note)
        return JobRecord(jobID: r.id, package: r.job.variant.package, arch: r.job.arch.rawValue, python: r.job.python.description,
                         version: r.job.version.description, state: Self.journalState(r), host: r.attempts.last?.host,
                         attempts: r.attempts.count, wheel: (r.wheel ?? r.lastWheel)?.lastPathComponent ?? r.listed?.filename, detail: detail)
    }
}

/// The ledger shared by the pipeline and the job runner's attempts, which run concurrently.
final class SharedLedger: Sendable {
    private let ledger: Mutex<JobLedger>

    init(_ ledger: JobLedger) { self.ledger = Mutex(ledger) }

    /// A copy of the ledger as it is now.
    var snapshot: JobLedger { ledger.withLock { $0 } }

    /// Reads or changes the ledger under its lock.
    @discardableResult
    func with<T: Sendable>(_ body: (inout JobLedger) -> T) -> T { ledger.withLock { body(&$0) } }

    /// Changes the record of job `id`.
    func update(_ id: String, _ body: (inout JobLedger.Record) -> Void) { ledger.withLock { $0.update(id, body) } }
}
