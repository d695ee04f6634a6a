import Agents
import FarmCore
import Foundation
import Inventory
import Logging
import Publishing
import Recipes
import Remote
import Scheduling
import Synchronization
import Wheels

/// `wheelfarm release`: pre-flight, farm builds, central verification, publication, GitHub release,
/// with a journal that makes every step resumable and a report at the end.
///
/// Order of trust: a wheel is built on a host chosen by the scheduler, pulled back with its digest
/// checked, verified by the coordinator (a failure deletes it and rebuilds, 2 attempts in total),
/// rewritten only through the verifying rewriter (`--version-suffix`, `--update-readme`), and
/// published only through a ``PublicationVerifier`` — so nothing unverified reaches an index.
///
/// The run is a sequence of short phases over one ``JobLedger`` (one record per job, in one
/// state): pre-flight classifies every job, build turns the ones to build into verified wheels,
/// rewrite, publish and GitHub move them on, and the report and the journal are read from the
/// ledger. Cancelling the task that runs ``run()`` (SIGINT/SIGTERM in the command) stops the
/// remote builds, skips what has not started, and still writes the journal, the summary and the
/// report; a runtime fault (a full disk, an I/O error) does the same and ends with exit 1.
public final class ReleasePipeline: Sendable {
    public let configuration: ReleaseConfiguration
    /// The dist directory's layout, built once for the whole run.
    public let layout: DistLayout
    /// The remote builds under way: what may still run where if the coordinator exits at once.
    public let inFlight = InFlightBuilds()
    let logger: Logger
    let display: ProgressDisplay
    let publicationVerifier: any PublicationVerifier
    let publishers: PublisherFactory
    let makeGitHub: (@Sendable () throws -> GitHubReleasePublisher)?
    let out: @Sendable (String) -> Void

    /// Creates a pipeline.
    ///
    /// - Parameters:
    ///   - publicationVerifier: verifies a wheel and returns it ready to publish (the only way to
    ///     obtain a ``PublishableWheel``).
    ///   - publishers: the index publisher per project (local index or upload API; credentials may
    ///     be per package), created before anything else so credential problems stop the run
    ///     before anything is built.
    ///   - makeGitHub: the GitHub Releases publisher, nil when no repository is configured.
    public init(configuration: ReleaseConfiguration, logger: Logger, display: ProgressDisplay,
                publicationVerifier: any PublicationVerifier,
                publishers: PublisherFactory,
                makeGitHub: (@Sendable () throws -> GitHubReleasePublisher)?,
                out: @escaping @Sendable (String) -> Void = { FileHandle.standardOutput.write(Data(($0 + "\n").utf8)) }) {
        self.configuration = configuration; self.logger = logger; self.display = display
        self.publicationVerifier = publicationVerifier; self.publishers = publishers
        self.makeGitHub = makeGitHub; self.out = out
        layout = DistLayout(root: configuration.distDir)
    }

    /// How a run ended.
    public struct Outcome: Sendable {
        /// 0 all done, 1 some jobs failed or a runtime fault stopped the run.
        public var exitCode: Int32
        /// True when the run was cancelled (the command exits 130 or 143).
        public var cancelled: Bool
        public var report: ReleaseReport
        public var reportFiles: (json: URL, html: URL)?
    }

    /// Runs the release.
    ///
    /// Throws ``ReleaseError/configuration(_:)`` for problems found before anything is recorded
    /// (credentials, a busy dist directory: exit 2) and other errors for local faults that stop
    /// the run before its journal exists (exit 1). Once the run is recorded, every fault ends in
    /// an ``Outcome`` with the summary and the report written.
    public func run() async throws -> Outcome {
        let startedAt = Date()
        let plan = PlanAnalysis(jobs: configuration.jobs.map(ReleaseConfiguration.buildJob), hosts: configuration.inventory.hosts)
        if configuration.dryRun { return try await dryRun(plan: plan, startedAt: startedAt) }
        let run = try begin(plan: plan, startedAt: startedAt)
        do {
            try await preflight(run)
            if !Task.isCancelled { try await build(run) }
            if !Task.isCancelled { try await test(run) }
            if !Task.isCancelled { try await rewrite(run) }
            if !Task.isCancelled { try await publish(run) }
            if !Task.isCancelled { try await attach(run) }
        } catch where Task.isCancelled {
            logger.info("run cancelled during a phase", metadata: ["release.run": "\(run.id)", "release.error": "\(error)"])
        } catch {
            run.fault("\(error)")
            out("\n✗ the run stopped: \(error)")
            logger.error("run stopped by a fault", metadata: ["release.run": "\(run.id)", "release.error": "\(error)"])
        }
        await run.pool.closeAll()
        // A signal that came after the last phase finished its work cancels nothing.
        let cancelled = Task.isCancelled && !run.ledger.snapshot.succeeded(readmeOnly: configuration.updateReadme != nil)
        return finish(run, cancelled: cancelled)
    }

    /// Creates the publishers (credential problems stop here), takes the dist directory's lock,
    /// opens the journal and records the run.
    func begin(plan: PlanAnalysis, startedAt: Date) throws -> ReleaseRun {
        let config = configuration
        var publisherByProject: [String: any WheelPublisher] = [:]
        var gitHub: GitHubReleasePublisher?
        do {
            if config.updateReadme == nil {
                for package in Set(config.jobs.map(\.variant.package)) { publisherByProject[package] = try publishers.make(package) }
            }
            gitHub = config.skipGitHub || config.updateReadme != nil ? nil : try makeGitHub?()
        } catch { throw ReleaseError.configuration("\(error)") }
        do {
            try FileManager.default.createDirectory(at: layout.root, withIntermediateDirectories: true)
        } catch { throw ReleaseError.local("cannot create the dist directory '\(layout.root.path)': \(error)") }
        let lock: CoordinatorLock
        do { lock = try CoordinatorLock(layout: layout) } catch { throw ReleaseError.configuration("\(error)") }
        ArtifactStaging.removeLeftovers(dist: layout.root)   // downloads of attempts an interrupted run never verified
        let journal = try Journal(layout: layout)
        let runID = try journal.beginRun(recipe: config.recipe.name, inventory: config.inventoryPath ?? "-", arguments: config.arguments)
        let unplaceable = Dictionary(plan.entries.compactMap { e in e.unplaceableReason.map { (e.job.id, $0) } }, uniquingKeysWith: { a, _ in a })
        let run = ReleaseRun(id: runID, startedAt: startedAt, plan: plan, lock: lock, journal: journal,
                             ledger: JobLedger(jobs: config.jobs, unplaceable: unplaceable),
                             publishers: publisherByProject, destination: publishers.destination, gitHub: gitHub,
                             pool: TransportPool(ssh: config.inventory.ssh, logger: logger))
        out("wheelfarm release \(runID) · recipe \(config.recipe.name) · \(config.jobs.count) jobs")
        logger.info("run started", metadata: ["release.run": "\(runID)", "release.jobs": "\(config.jobs.count)", "release.dist": "\(layout.root.path)"])
        return run
    }

    /// Settles every job, writes the report and the journal's last words, and prints the summary.
    /// Each write that fails is reported and the others still happen: a full disk must not cost
    /// the summary.
    func finish(_ run: ReleaseRun, cancelled: Bool) -> Outcome {
        let readmeOnly = configuration.updateReadme != nil
        let fault = run.faultText
        run.ledger.with { $0.settle(cancelled: cancelled, readmeOnly: readmeOnly, fault: fault) }
        let ledger = run.ledger.snapshot
        let ok = !cancelled && fault == nil && ledger.succeeded(readmeOnly: readmeOnly)
        let status = cancelled ? "cancelled" : ok ? "succeeded" : "failed"
        let report = ReleaseReport(run: run, ledger: ledger, status: status, configuration: configuration)
        var problems: [String] = []
        for record in ledger.records {
            guard let row = ledger.journalRecord(record.id) else { continue }
            do { try run.journal.setJob(run: run.id, job: row) } catch { problems.append("journal: \(error)"); break }
        }
        let files: (json: URL, html: URL)?
        do { files = try report.write(to: layout.reportsDirectory) } catch { files = nil; problems.append("report: \(error)") }
        do { try run.journal.finishRun(run.id, status: cancelled ? .cancelled : ok ? .succeeded : .failed) } catch { problems.append("journal: \(error)") }
        out("\n=== Summary ===\n" + report.summaryTable())
        if let files { out("report: \(files.html.path) (JSON: \(files.json.lastPathComponent))") }
        for p in problems { out("✗ not written: \(p)") }
        out("\n" + closingLine(run: run, ledger: ledger, ok: ok, cancelled: cancelled))
        logger.info("run finished", metadata: ["release.run": "\(run.id)", "release.status": "\(status)"])
        return Outcome(exitCode: ok ? 0 : 1, cancelled: cancelled, report: report, reportFiles: files)
    }

    /// The last line: done, cancelled, or what would help (running again, or changing the farm
    /// or the selection when the only failures are jobs no host can build).
    func closingLine(run: ReleaseRun, ledger: JobLedger, ok: Bool, cancelled: Bool) -> String {
        if ok { return "release \(run.id) complete" }
        if cancelled { return "release \(run.id) cancelled: run the same command again to resume" }
        let failed = ledger.records.filter { JobLedger.journalState($0) != .published && JobLedger.journalState($0) != .verified }
        if !failed.isEmpty, failed.allSatisfy({ if case .unplaceable = $0.state { true } else { false } }) {
            let remedies = PlanAnalysis.remedies(for: run.plan.unplaceable)
            return "release \(run.id) finished with failures: \(failed.count) job\(failed.count == 1 ? "" : "s") no host of the inventory can build; "
                + "running again will not help: " + remedies.joined(separator: "; ")
        }
        return "release \(run.id) finished with failures: run the same command again to resume"
    }
}

/// Why a release could not run.
public enum ReleaseError: Error, Sendable, CustomStringConvertible {
    /// A configuration or usage problem found before anything was recorded (exit 2).
    case configuration(String)
    /// A local fault (disk full, I/O error) before the run could be recorded (exit 1).
    case local(String)

    public var description: String {
        switch self {
        case let .configuration(m), let .local(m): m
        }
    }
}

/// The state of one run of the pipeline, shared by its phases.
final class ReleaseRun: Sendable {
    let id: String
    let startedAt: Date
    let plan: PlanAnalysis
    let lock: CoordinatorLock
    let journal: Journal
    let ledger: SharedLedger
    let publishers: [String: any WheelPublisher]
    let destination: String
    let gitHub: GitHubReleasePublisher?
    let pool: TransportPool
    private let faultMessage = Mutex<String?>(nil)

    init(id: String, startedAt: Date, plan: PlanAnalysis, lock: CoordinatorLock, journal: Journal, ledger: JobLedger,
         publishers: [String: any WheelPublisher], destination: String, gitHub: GitHubReleasePublisher?, pool: TransportPool) {
        self.id = id; self.startedAt = startedAt; self.plan = plan; self.lock = lock; self.journal = journal
        self.ledger = SharedLedger(ledger); self.publishers = publishers; self.destination = destination
        self.gitHub = gitHub; self.pool = pool
    }

    /// Records the fault that stopped the run.
    func fault(_ message: String) { faultMessage.withLock { $0 = $0 ?? message } }
    /// The fault that stopped the run, if one did.
    var faultText: String? { faultMessage.withLock { $0 } }

    /// The publisher of a job's project.
    func publisher(for id: String) -> (any WheelPublisher)? {
        ledger.snapshot[id].flatMap { publishers[$0.job.variant.package] }
    }

    /// Writes the journal rows of the jobs `ids` (all jobs when nil) from the ledger.
    func syncJournal(_ ids: [String]? = nil) throws {
        let ledger = self.ledger.snapshot
        for id in ids ?? ledger.records.map(\.id) {
            if let row = ledger.journalRecord(id) { try journal.setJob(run: self.id, job: row) }
        }
    }
}
