import Agents
import FarmCore
import Foundation
import Inventory
import Logging
import Recipes
import Remote
import Scheduling
import Wheels

extension ReleasePipeline {
    /// Phase 1: the scheduler builds the jobs to build on the farm; each attempt's wheel is
    /// verified centrally inside the attempt. Expected durations come from the journal's earlier
    /// builds where there are some.
    func build(_ run: ReleaseRun) async throws {
        let toBuild = run.ledger.snapshot.toBuild
        guard !toBuild.isEmpty else { return }
        let facts = await probeHosts(pool: run.pool, journal: run.journal, runID: run.id)
        guard !Task.isCancelled else { return }
        out("\n=== Phase 1: Build and verify (\(toBuild.count) jobs) ===")
        let runner = ReleaseJobRunner(configuration: configuration, layout: layout, runID: run.id, journal: run.journal, pool: run.pool,
                                      buildRunner: BuildRunner(bundle: try Self.agentBundle().including(recipe: configuration.recipe), logger: logger),
                                      verifier: WheelVerifier(), source: try sourceArchive(), display: display,
                                      ledger: run.ledger, inFlight: inFlight, logger: logger)
        var schedulerConfig = SchedulerConfiguration()
        schedulerConfig.maxBuildAttempts = configuration.maxAttempts
        let durations = learnedDurations(run.journal)
        let scheduler = Scheduler(jobs: toBuild, inventory: configuration.inventory, runner: runner, clock: ContinuousClock(),
                                  configuration: schedulerConfig, facts: facts, durations: durations)
        let displayTask = followProgress(scheduler.progress.subscribe(replay: true), run: run)
        let changes = configuration.inventoryPath.map { InventoryWatcher(path: $0).changes(clock: ContinuousClock()) }
        display.start()
        let schedule = await scheduler.run(inventoryChanges: changes)
        _ = await displayTask.value
        display.stop()
        run.ledger.with { ledger in
            for result in schedule.results {
                switch result.status {
                case .succeeded: break    // the runner recorded the verified wheel
                case .failed: ledger.fail(result.job.id, result.reason ?? "failed")
                case .cancelled: ledger.set(result.job.id, .cancelled)
                }
            }
        }
        try run.syncJournal(toBuild.map(\.id))
    }

    /// The journal's earlier builds as the scheduler's duration history (a journal that cannot
    /// be read costs the history, not the run).
    func learnedDurations(_ journal: Journal) -> DurationModel {
        let speeds = Dictionary(configuration.inventory.hosts.map { ($0.name, $0.speed) }, uniquingKeysWith: { a, _ in a })
        do {
            let samples = try journal.durationSamples(speeds: speeds)
            logger.info("duration history", metadata: ["release.samples": "\(samples.count)"])
            return DurationModel(history: samples)
        } catch {
            logger.warning("duration history unreadable", metadata: ["release.error": "\(error)"])
            return DurationModel()
        }
    }

    /// Shows the scheduler's progress, logs its decisions, and records what happens to hosts.
    func followProgress(_ feed: AsyncStream<ProgressUpdate>, run: ReleaseRun) -> Task<Void, Never> {
        let initialHosts = Set(configuration.inventory.hosts.map(\.name))
        let display = self.display, logger = self.logger
        return Task {
            var present = initialHosts   // their "joined" at the start says nothing new
            for await update in feed {
                display.handle(update)
                Self.log(update.event, logger)
                switch update.event {
                case let .hostJoined(h) where present.contains(h): continue
                case let .hostJoined(h): present.insert(h)
                case let .hostLeft(h): present.remove(h)
                default: break
                }
                if let record = Self.hostRecord(for: update.event) { self.recordHost(record, journal: run.journal, runID: run.id) }
            }
        }
    }

    /// Logs the scheduler's placement decisions and retries (`--verbose`).
    static func log(_ event: ProgressEvent, _ logger: Logger) {
        switch event {
        case let .jobPlaced(job, host, attempt, expected):
            logger.info("job placed", metadata: ["release.job": "\(job.id)", "release.host": "\(host)", "release.attempt": "\(attempt)",
                                                 "scheduling.expected_seconds": "\(Int(expected))"])
        case let .jobRequeued(job, host, attempt, reason):
            logger.info("job retried", metadata: ["release.job": "\(job.id)", "release.host": "\(host)", "release.attempt": "\(attempt)",
                                                  "release.reason": "\(reason)"])
        case let .jobFailed(job, reason):
            logger.info("job failed", metadata: ["release.job": "\(job.id)", "release.reason": "\(reason)"])
        case let .hostQuarantined(host, _, failures, reason):
            logger.info("host quarantined", metadata: ["release.host": "\(host)", "scheduling.failures": "\(failures)", "release.reason": "\(reason)"])
        case let .hostLost(host, reason):
            logger.info("host given up", metadata: ["release.host": "\(host)", "release.reason": "\(reason)"])
        default: break
        }
    }

    /// The recipe's source as an archive to upload, when it is a folder of this repository.
    func sourceArchive() throws -> SourceArchive? {
        let source = configuration.recipe.source
        guard !source.contains("://"), !source.hasPrefix("git@") else { return nil }
        let candidates = [URL(fileURLWithPath: source)] + (ResourceLocator.directory(source.components(separatedBy: "/").first ?? source)
            .map { [$0.deletingLastPathComponent().appendingPathComponent(source)] } ?? [])
        guard let dir = candidates.first(where: { FileManager.default.fileExists(atPath: $0.path) }) else {
            throw FarmError(code: "release.source", message: "the recipe's source folder '\(source)' does not exist")
        }
        try FileManager.default.createDirectory(at: layout.sourcesDirectory, withIntermediateDirectories: true)
        return try SourceArchive.make(from: dir, in: layout.sourcesDirectory)
    }
}
