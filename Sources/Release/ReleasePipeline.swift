import Agents
import FarmCore
import Foundation
import Inventory
import Logging
import Publishing
import Recipes
import Remote
import Scheduling
import Wheels

/// Helpers the command line shares with the pipeline.
public enum ReleasePipelineSupport {
    /// What a wheel of `job` must be; the version is the published one (with any suffix).
    public static func expectation(for job: BuildJob, recipe: Recipe) -> WheelExpectation {
        var e = WheelExpectation(job: ReleaseConfiguration.buildJob(job), recipe: recipe)
        e.version = job.publishedVersion
        return e
    }

    /// Whether `file` on an index is the wheel `job` publishes: name, the published version
    /// exactly (with any suffix), Python tag and arch.
    public static func isPublishedFile(_ file: String, of job: BuildJob) -> Bool {
        isWheel(file, of: job) { $0 == PEP440Version(job.publishedVersion) }
    }

    /// Whether a wheel file name is the one `job` produces (name, version with or without the
    /// suffix, Python tag, arch).
    public static func matches(file: String, job: BuildJob) -> Bool {
        isWheel(file, of: job) { $0 == job.version || $0 == PEP440Version(job.publishedVersion) }
    }

    private static func isWheel(_ file: String, of job: BuildJob, version accepts: (PEP440Version?) -> Bool) -> Bool {
        guard let name = WheelFilename(file) else { return false }
        return Variant.normalize(name.name) == job.variant.normalizedPackage
            && accepts(PEP440Version(name.version))
            && serves(name, python: job.python)
            && name.platformTags.contains { $0.hasSuffix(job.arch.wheelTagSuffix) }
    }

    /// Whether a wheel runs on CPython `python`: its Python tag names it, or it is a stable-ABI
    /// (`abi3`) wheel whose `cpXY` tag is that version or an older one (`cp38-abi3` serves 3.13).
    static func serves(_ name: WheelFilename, python: PythonVersion) -> Bool {
        if name.pythonTags.contains(python.cpythonTag) { return true }
        guard name.abiTags.contains("abi3") else { return false }
        return name.pythonTags.contains { tag in
            guard tag.hasPrefix("cp"), let version = PythonVersion(tag) else { return false }
            return version <= python
        }
    }
}

/// Makes the index publisher for one project (credentials can differ per package).
public struct PublisherFactory: Sendable {
    /// Where wheels go, for messages and the journal.
    public let destination: String
    /// The publisher for a distribution name; throws for missing or insecure credentials.
    public let make: @Sendable (_ package: String) throws -> any WheelPublisher
    public init(destination: String, make: @escaping @Sendable (_ package: String) throws -> any WheelPublisher) {
        self.destination = destination; self.make = make
    }
}

/// `wheelfarm release`: pre-flight, farm builds, central verification, publication, GitHub release,
/// with a journal that makes every step resumable and a report at the end.
///
/// Order of trust: a wheel is built on a host chosen by the scheduler, pulled back with its digest
/// checked, verified by the coordinator (a failure deletes it and rebuilds, 2 attempts in total),
/// rewritten only through the verifying rewriter (`--version-suffix`, `--update-readme`), and
/// published only through a ``PublicationVerifier`` — so nothing unverified reaches an index.
public final class ReleasePipeline: Sendable {
    public let configuration: ReleaseConfiguration
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
    ///     be per package), created at pre-flight so credential problems stop the run before
    ///     anything is built.
    ///   - makeGitHub: the GitHub Releases publisher, nil when no repository is configured.
    public init(configuration: ReleaseConfiguration, logger: Logger, display: ProgressDisplay,
                publicationVerifier: any PublicationVerifier,
                publishers: PublisherFactory,
                makeGitHub: (@Sendable () throws -> GitHubReleasePublisher)?,
                out: @escaping @Sendable (String) -> Void = { FileHandle.standardOutput.write(Data(($0 + "\n").utf8)) }) {
        self.configuration = configuration; self.logger = logger; self.display = display
        self.publicationVerifier = publicationVerifier; self.publishers = publishers
        self.makeGitHub = makeGitHub; self.out = out
    }

    /// How a run ended.
    public struct Outcome: Sendable {
        /// 0 all done, 1 some jobs failed.
        public var exitCode: Int32
        public var report: ReleaseReport
        public var reportFiles: (json: URL, html: URL)?
    }

    /// Runs the release. Throws only for configuration problems found at pre-flight (exit 2).
    public func run() async throws -> Outcome {
        let config = configuration
        let startedAt = Date()
        let dist = config.distDir
        let plan = PlanAnalysis(jobs: config.jobs.map(ReleaseConfiguration.buildJob), hosts: config.inventory.hosts)

        if config.dryRun { return try await dryRun(plan: plan, startedAt: startedAt) }

        try FileManager.default.createDirectory(at: dist, withIntermediateDirectories: true)
        let lock = try CoordinatorLock(distDir: dist)
        defer { withExtendedLifetime(lock) {} }
        let journal = try Journal(distDir: dist)
        let runID = try journal.beginRun(recipe: config.recipe.name, inventory: config.inventoryPath ?? "-", arguments: config.arguments)
        out("wheelfarm release \(runID) · recipe \(config.recipe.name) · \(config.jobs.count) jobs")

        // Phase 0: pre-flight.
        out("\n=== Phase 0: Pre-flight checks ===")
        var publisherByProject: [String: any WheelPublisher] = [:]
        if config.updateReadme == nil {
            for package in Set(config.jobs.map(\.variant.package)) { publisherByProject[package] = try publishers.make(package) }
        }
        let destination = publishers.destination
        let gitHub = config.skipGitHub || config.updateReadme != nil ? nil : try makeGitHub?()
        for note in config.notes { out(note) }
        out("publish to: \(destination)\(gitHub.map { " · GitHub releases in \($0.repository)" } ?? (config.skipGitHub ? " · GitHub skipped (--skip-github)" : " · no GitHub repository configured"))")
        // Jobs whose wheel the destination already holds are done: an index never takes a
        // filename twice, so rebuilding them could publish nothing.
        let onIndex = await publishedBeforeRun(publisherByProject)   // jobID → its file
        let book = JobRecordBook()
        var alreadyPublished: [String: IndexedFile] = [:]
        var reused: [String: URL] = [:]        // jobID → wheel already in dist, verified again below
        var toBuild: [BuildJob] = []
        var unplaceable: [String: String] = [:]
        var failures: [String: String] = [:]
        let dwheels = existingWheels(in: dist)
        let canBuild = !config.skipBuild && config.updateReadme == nil
        for entry in plan.entries {
            let job = entry.job
            if let artifact = try journal.verifiedArtifact(jobID: job.id), let file = dwheels[artifact.filename] {
                if (try? StreamingDigest.file(at: file.path))?.digest == artifact.sha256 {
                    reused[job.id] = file
                    continue
                }
                out("  \(artifact.filename) changed since it was verified (SHA-256 differs from the journal's)\(canBuild ? ": it will be rebuilt" : "")")
                try journal.removeArtifact(filename: artifact.filename)
                if canBuild { try? FileManager.default.removeItem(at: file) }
            }
            if !canBuild {
                if let file = dwheels.values.first(where: { ReleasePipelineSupport.matches(file: $0.lastPathComponent, job: job) }) { reused[job.id] = file }
                else { unplaceable[job.id] = "no wheel for it in '\(dist.path)' (\(config.skipBuild ? "--skip-build" : "--update-readme") builds nothing)" }
                continue
            }
            if let file = onIndex[job.id] {
                alreadyPublished[job.id] = file
                out("  \(job.id): already published as \(file.filename) (not rebuilt)")
                continue
            }
            if let reason = entry.unplaceableReason { unplaceable[job.id] = reason; continue }
            toBuild.append(job)
        }

        // Wheels already in dist are verified again before anything is built: one that fails now
        // (edited, truncated, or verified by an older wheelfarm with fewer checks) is deleted and
        // rebuilt, so a resumed run never publishes a wheel on the strength of an old verdict.
        var verified: [String: URL] = [:]     // jobID → wheel path
        if !reused.isEmpty {
            out("verifying \(reused.count) wheel\(reused.count == 1 ? "" : "s") already in \(dist.path)")
            let byJob = Dictionary(uniqueKeysWithValues: plan.entries.map { ($0.job.id, $0) })
            let order = reused.keys.sorted()
            let reports = await WheelVerifier().verifyAll(order.map { (reused[$0]!.path, WheelExpectation(job: byJob[$0]!.job, recipe: config.recipe)) })
            for (jobID, report) in zip(order, reports) {
                let file = reused[jobID]!
                book.update(jobID) { $0.report = report }
                if report.passed { verified[jobID] = file; out("  ✓ \(file.lastPathComponent)"); continue }
                let m = report.failures.map { "\($0.id.rawValue): \($0.message)" }.joined(separator: "; ")
                reused[jobID] = nil
                if canBuild, let entry = byJob[jobID], entry.unplaceableReason == nil {
                    try? journal.removeArtifact(filename: file.lastPathComponent)
                    try? FileManager.default.removeItem(at: file)
                    toBuild.append(entry.job)
                    book.update(jobID) { $0.lastFailure = "existing wheel failed verification: \(m)" }
                    out("  ✗ \(file.lastPathComponent) failed verification and was deleted; it will be rebuilt: \(m)")
                } else {
                    failures[jobID] = "existing wheel failed verification: \(m)"
                    out("  ✗ \(file.lastPathComponent): \(m)")
                }
            }
        }
        for (id, reason) in unplaceable.sorted(by: { $0.key < $1.key }) { out("  cannot build \(id): \(reason)") }
        out("\(toBuild.count) to build · \(verified.count) already built and verified in \(dist.path) · \(alreadyPublished.count) already published · \(unplaceable.count) cannot be built")
        for job in plan.entries.map(\.job) {
            try journal.setJob(run: runID, job: JobRecord(jobID: job.id, package: job.variant.package, arch: job.arch.rawValue,
                                                          python: job.python.description, version: job.version.description,
                                                          state: alreadyPublished[job.id] != nil ? .published : verified[job.id] != nil ? .verified : unplaceable[job.id] != nil ? .unplaceable
                                                              : failures[job.id] != nil ? .failed : .queued,
                                                          wheel: verified[job.id]?.lastPathComponent ?? alreadyPublished[job.id]?.filename,
                                                          detail: unplaceable[job.id] ?? failures[job.id]))
        }

        let pool = TransportPool(ssh: config.inventory.ssh, logger: logger)
        var facts: [String: HostFacts] = [:]
        await stopOrphanedBuilds(journal: journal, pool: pool)
        if !toBuild.isEmpty {
            facts = await probeHosts(pool: pool, journal: journal, runID: runID)
        }

        // Phase 1: build (and verify centrally, inside each attempt).
        var schedule: ScheduleReport?
        if !toBuild.isEmpty {
            out("\n=== Phase 1: Build and verify (\(toBuild.count) jobs) ===")
            let bundle = try Self.agentBundle().including(recipe: config.recipe)
            let source = try sourceArchive(scratch: dist.appendingPathComponent(".wheelfarm/sources"))
            let runner = ReleaseJobRunner(configuration: config, runID: runID, journal: journal, pool: pool,
                                          buildRunner: BuildRunner(bundle: bundle, logger: logger),
                                          verifier: WheelVerifier(), source: source, display: display, book: book, logger: logger)
            var schedulerConfig = SchedulerConfiguration()
            schedulerConfig.maxBuildAttempts = config.maxAttempts
            let scheduler = Scheduler(jobs: toBuild, inventory: config.inventory, runner: runner, clock: ContinuousClock(),
                                      configuration: schedulerConfig, facts: facts)
            let feed = scheduler.progress.subscribe(replay: true)
            let initialHosts = Set(config.inventory.hosts.map(\.name))
            let displayTask = Task {
                var present = initialHosts   // their "joined" at the start says nothing new
                for await update in feed {
                    display.handle(update)
                    switch update.event {
                    case let .hostJoined(h) where present.contains(h): continue
                    case let .hostJoined(h): present.insert(h)
                    case let .hostLeft(h): present.remove(h)
                    default: break
                    }
                    if let record = Self.hostRecord(for: update.event) { try? journal.setHost(run: runID, record) }
                }
            }
            var changes: AsyncStream<InventoryChange>?
            if let path = config.inventoryPath {
                changes = InventoryWatcher(path: path).changes(clock: ContinuousClock())
            }
            schedule = await scheduler.run(inventoryChanges: changes)
            _ = await displayTask.value
        }
        await pool.closeAll()

        for result in schedule?.results ?? [] {
            if result.status == .succeeded, let w = book.entry(result.job.id)?.wheel { verified[result.job.id] = w.path }
            else { failures[result.job.id] = result.reason ?? book.entry(result.job.id)?.lastFailure ?? result.status.rawValue }
        }

        // Phase 1b: each wheel's test on the weakest eligible host (ReleasePipeline+Tests.swift).
        if config.recipe.test != nil, !verified.isEmpty, config.updateReadme == nil {
            await runTests(verified: &verified, failures: &failures, book: book, facts: facts, journal: journal)
        }

        // Rewrites: --update-readme (and stop), --version-suffix.
        var publishPaths: [String: URL] = verified
        if let readme = config.updateReadme {
            out("\n=== Update README in \(verified.count) wheels (nothing is built or uploaded) ===")
            let text = try String(contentsOf: readme, encoding: .utf8)
            let contentType = readme.pathExtension.lowercased() == "rst" ? "text/x-rst" : readme.pathExtension.lowercased() == "md" ? "text/markdown" : "text/plain"
            for (jobID, path) in verified.sorted(by: { $0.key < $1.key }) {
                do {
                    let result = try await WheelRewriter().rewrite(path: path.path, changes: .init(readme: (text, contentType)), inPlace: true)
                    out("  ✓ \(path.lastPathComponent)")
                    _ = result
                } catch { failures[jobID] = "README update failed: \(error)"; out("  ✗ \(path.lastPathComponent): \(error)") }
            }
            publishPaths = [:]
        } else if let suffixText = config.jobs.first?.suffix, let suffix = VersionSuffix(suffixText), !verified.isEmpty {
            out("\n=== Version suffix \(suffix) ===")
            for (jobID, path) in verified.sorted(by: { $0.key < $1.key }) {
                do {
                    let result = try await WheelRewriter().rewrite(path: path.path, changes: .init(versionSuffix: suffix, versionFile: config.recipe.versionFile),
                                                                   outputDirectory: dist.path)
                    publishPaths[jobID] = URL(fileURLWithPath: result.path)
                    out("  ✓ \(path.lastPathComponent) → \(URL(fileURLWithPath: result.path).lastPathComponent)")
                } catch { publishPaths[jobID] = nil; failures[jobID] = "version suffix rewrite failed: \(error)"; out("  ✗ \(path.lastPathComponent): \(error)") }
            }
        }

        // Phase 2: publish.
        var publications: [String: [String]] = [:]
        var publishable: [String: PublishableWheel] = [:]
        if !publishPaths.isEmpty {
            out("\n=== Phase 2: Publish to \(destination) ===")
            let packageOf = Dictionary(uniqueKeysWithValues: config.jobs.map { (ReleaseConfiguration.buildJob($0).id, $0.variant.package) })
            for (jobID, path) in publishPaths.sorted(by: { $0.key < $1.key }) {
                guard let package = packageOf[jobID], let publisher = publisherByProject[package] else { continue }
                do {
                    let wheel = try await publicationVerifier.verifiedForPublishing(wheelAt: path.path)
                    publishable[jobID] = wheel
                    if try journal.isPublished(filename: wheel.filename, sha256: wheel.sha256, target: publisher.destination) {
                        publications[jobID, default: []].append("already published to \(publisher.destination) (journal)")
                        out("  = \(wheel.filename): already published")
                        continue
                    }
                    let outcome = try await publisher.publish(wheel, dryRun: false)
                    if outcome.isSuccess {
                        try journal.recordPublication(filename: wheel.filename, sha256: wheel.sha256, target: publisher.destination, outcome: "\(outcome)")
                        publications[jobID, default: []].append("\(outcome) → \(publisher.destination)")
                        out("  ✓ \(wheel.filename): \(outcome)")
                    } else {
                        failures[jobID] = "not published: \(outcome)"
                        out("  ✗ \(wheel.filename): \(outcome)")
                    }
                } catch {
                    failures[jobID] = "not published: \(error)"
                    out("  ✗ \(path.lastPathComponent): \(error)")
                }
            }
        }

        // Phase 3: GitHub releases (only wheels the index accepted, and wheels the index held
        // before this run that their release lacks).
        if let gitHub, !publishable.isEmpty || !alreadyPublished.isEmpty {
            out("\n=== Phase 3: GitHub releases in \(gitHub.repository) ===")
            let packages = Dictionary(uniqueKeysWithValues: plan.entries.map { ($0.job.id, $0.job.variant.package) })
            let fromIndex = await fetchForGitHub(alreadyPublished, packages: packages, gitHub: gitHub,
                                                 publishers: publisherByProject, failures: &failures)
            let ready = publishable.filter { failures[$0.key] == nil }.merging(fromIndex) { built, _ in built }
            let results = await gitHub.publish(ready.values.sorted { $0.filename < $1.filename })
            for r in results {
                let jobID = ready.first { $0.value.filename == r.filename }?.key
                if r.outcome.isSuccess {
                    if let jobID { publications[jobID, default: []].append("\(r.outcome) → \(r.destination)") }
                    out("  ✓ \(r)")
                } else {
                    if let jobID { failures[jobID] = "GitHub release: \(r.outcome)" }
                    out("  ✗ \(r)")
                }
            }
        }

        // Report.
        let finishedAt = Date()
        var jobs: [ReleaseReport.Job] = []
        for job in config.jobs {
            let buildJob = ReleaseConfiguration.buildJob(job)
            let entry = book.entry(buildJob.id)
            let path = publishPaths[buildJob.id] ?? verified[buildJob.id]
            var state: JobState
            if let file = alreadyPublished[buildJob.id] {
                // Published before this run; failed only when its GitHub release could not be completed.
                let failure = failures[buildJob.id]
                jobs.append(ReleaseReport.Job(
                    id: buildJob.id, package: job.variant.package, arch: job.arch.rawValue, python: job.python.description,
                    version: job.publishedVersion, state: (failure == nil ? JobState.published : .failed).rawValue, attempts: [], wheel: file.filename,
                    sha256: file.sha256?.hex, size: nil, checks: [], isaCounts: [:],
                    publications: ["on \(destination) before this run"] + (publications[buildJob.id] ?? []), detail: failure))
                try? journal.setJob(run: runID, job: JobRecord(jobID: buildJob.id, package: job.variant.package, arch: job.arch.rawValue,
                                                               python: job.python.description, version: job.version.description,
                                                               state: failure == nil ? .published : .failed, wheel: file.filename,
                                                               detail: failure ?? "published before this run"))
                continue
            }
            if let reason = unplaceable[buildJob.id] { state = .unplaceable; failures[buildJob.id] = failures[buildJob.id] ?? reason }
            else if failures[buildJob.id] != nil { state = .failed }
            else if config.updateReadme != nil { state = .verified }
            else if path != nil { state = .published }
            else { state = .failed; failures[buildJob.id] = "not built" }
            let report = entry?.report
            // Digests already computed (by the publication gate, or while downloading) are reused.
            let digest: (digest: SHA256Digest, size: Int64)? =
                publishable[buildJob.id].map { ($0.sha256, $0.size) }
                ?? entry?.wheel.flatMap { $0.path == path ? ($0.sha256, $0.size) : nil }
                ?? path.flatMap { try? StreamingDigest.file(at: $0.path) }
            jobs.append(ReleaseReport.Job(
                id: buildJob.id, package: job.variant.package, arch: job.arch.rawValue, python: job.python.description,
                version: job.publishedVersion, state: state.rawValue, attempts: entry?.attempts ?? [],
                wheel: path?.lastPathComponent, sha256: digest?.digest.hex, size: digest?.size,
                checks: report?.checks.map { .init(id: $0.id.rawValue, outcome: $0.outcome.rawValue, message: $0.message) } ?? [],
                isaCounts: report?.isa?.byCapability ?? [:], publications: publications[buildJob.id] ?? [],
                detail: failures[buildJob.id]))
            try? journal.setJob(run: runID, job: JobRecord(jobID: buildJob.id, package: job.variant.package, arch: job.arch.rawValue,
                                                           python: job.python.description, version: job.version.description, state: state,
                                                           host: entry?.attempts.last?.host, attempts: entry?.attempts.count ?? 0,
                                                           wheel: path?.lastPathComponent, detail: failures[buildJob.id]))
        }
        let ok = jobs.allSatisfy { $0.state == JobState.published.rawValue || ($0.state == JobState.verified.rawValue && config.updateReadme != nil) }
        let report = ReleaseReport(runID: runID, recipe: config.recipe.name, startedAt: startedAt, finishedAt: finishedAt,
                                   status: ok ? "succeeded" : "failed", hosts: config.inventory.hosts.map(\.name), jobs: jobs)
        let files = try? report.write(to: dist.appendingPathComponent("reports"))
        try journal.finishRun(runID, status: ok ? .succeeded : .failed)
        out("\n=== Summary ===\n" + report.summaryTable())
        if let files { out("report: \(files.html.path) (JSON: \(files.json.lastPathComponent))") }
        out(ok ? "\nrelease \(runID) complete" : "\nrelease \(runID) finished with failures: run the same command again to resume")
        return Outcome(exitCode: ok ? 0 : 1, report: report, reportFiles: files)
    }

    // MARK: steps

    /// Probes every non-draining host in parallel; unreachable hosts are reported (the scheduler
    /// quarantines them and retries) and probe facts steer placement (Python, GCC).
    func probeHosts(pool: TransportPool, journal: Journal, runID: String) async -> [String: HostFacts] {
        guard let bundle = try? Self.agentBundle() else { return [:] }
        let prober = HostProber(bundle: bundle, cache: ProbeCache(directory: configuration.distDir.appendingPathComponent(".wheelfarm/probes")), logger: logger)
            .asking(about: configuration.recipe.allPrerequisites)
        let hosts = configuration.inventory.hosts.filter { !$0.drain }
        var facts: [String: HostFacts] = [:]
        await withTaskGroup(of: (String, Result<ProbeReport, any Error>).self) { group in
            for host in hosts {
                group.addTask {
                    let t = await pool.transport(for: host)
                    do { return (host.name, .success(try await prober.report(for: t, maxAge: 3600))) }
                    catch { return (host.name, .failure(error)) }
                }
            }
            let byName = Dictionary(hosts.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
            for await (name, result) in group {
                var record = HostRecord(name: name, address: byName[name]?.address, arch: byName[name]?.arch.rawValue, state: "reachable")
                switch result {
                case let .success(report):
                    let pythons = Set(report.pythonVersions)
                    facts[name] = HostFacts(report: report)
                    record.detail = "Python \(pythons.sorted().map(\.description).joined(separator: ", ")), gcc \(report.gcc?.version ?? "none")"
                    out("  host \(name): reachable, \(report.arch), \(record.detail!)")
                case let .failure(error):
                    record.state = "unreachable"
                    record.detail = "\(error)"
                    out("  host \(name): not usable now (\(error)); it will be retried")
                }
                try? journal.setHost(run: runID, record)
            }
        }
        return facts
    }

    /// What a scheduler event says about a host, for the journal.
    static func hostRecord(for event: ProgressEvent) -> HostRecord? {
        switch event {
        case let .hostJoined(h): HostRecord(name: h, state: "joined")
        case let .hostLeft(h): HostRecord(name: h, state: "left", detail: "removed from the inventory during the run")
        case let .hostDraining(h): HostRecord(name: h, state: "draining")
        case let .hostResumed(h): HostRecord(name: h, state: "in service")
        case let .hostQuarantined(h, _, failures, reason): HostRecord(name: h, state: "quarantined", detail: "failure \(failures): \(reason)")
        case let .hostRecovered(h): HostRecord(name: h, state: "recovered")
        case let .hostLost(h, reason): HostRecord(name: h, state: "lost", detail: reason)
        default: nil
        }
    }

    /// Stops the builds a coordinator that died left running (their attempts never finished; this
    /// run holds the lock, so no live coordinator owns them). Their jobs are rebuilt cleanly in this
    /// run: the agent refuses to start a job twice on a host, and a half-watched build's wheel could
    /// not be trusted anyway.
    func stopOrphanedBuilds(journal: Journal, pool: TransportPool) async {
        guard let orphans = try? journal.unfinishedAttempts(), !orphans.isEmpty else { return }
        let runner = (try? Self.agentBundle()).map { BuildRunner(bundle: $0, logger: logger) }
        let hosts = Dictionary(configuration.inventory.hosts.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        out("stopping \(orphans.count) build\(orphans.count == 1 ? "" : "s") left by an interrupted run")
        await withTaskGroup(of: (AttemptRecord, String).self) { group in
            for orphan in orphans {
                group.addTask {
                    let remoteID = orphan.remoteBuildDir.map { URL(fileURLWithPath: $0).lastPathComponent } ?? ""
                    guard let host = hosts[orphan.host] else {
                        return (orphan, "host '\(orphan.host)' is no longer in the inventory; its build was not stopped")
                    }
                    guard let runner, !remoteID.isEmpty else { return (orphan, "no remote build recorded") }
                    let transport = await pool.transport(for: host)
                    do {
                        let wasRunning = try await runner.cancel(remoteJobID: remoteID, on: transport)
                        return (orphan, wasRunning ? "still running on \(host.name): stopped" : "no longer running on \(host.name)")
                    } catch {
                        await pool.discard(host.name)
                        return (orphan, "could not reach \(host.name) to stop it (\(error)); the agent will refuse to run it twice")
                    }
                }
            }
            for await (orphan, detail) in group {
                try? journal.finishAttempt(orphan.id, outcome: "abandoned", detail: "the coordinator stopped during this attempt; \(detail)")
                out("  \(orphan.jobID) (run \(orphan.runID), attempt \(orphan.number)): \(detail)")
            }
        }
    }

    /// The `agents/` scripts shipped with wheelfarm.
    static func agentBundle() throws -> AgentBundle {
        guard let dir = AgentBundle.locate() else {
            throw FarmError(code: "release.agents", message: "cannot find the 'agents' folder (build.sh, lib.sh); run from the wheelfarm checkout or set WHEELFARM_AGENTS_DIR")
        }
        return try AgentBundle.load(from: dir)
    }

    /// The recipe's source as an archive to upload, when it is a folder of this repository.
    func sourceArchive(scratch: URL) throws -> SourceArchive? {
        let source = configuration.recipe.source
        guard !source.contains("://"), !source.hasPrefix("git@") else { return nil }
        let candidates = [URL(fileURLWithPath: source)] + (ResourceLocator.directory(source.components(separatedBy: "/").first ?? source)
            .map { [$0.deletingLastPathComponent().appendingPathComponent(source)] } ?? [])
        guard let dir = candidates.first(where: { FileManager.default.fileExists(atPath: $0.path) }) else {
            throw FarmError(code: "release.source", message: "the recipe's source folder '\(source)' does not exist")
        }
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        return try SourceArchive.make(from: dir, in: scratch)
    }

    /// The jobs whose wheel the destination lists already (exact name, published version with any
    /// suffix, Python tag and arch), by job id; a destination that cannot be read is reported and
    /// skipped (the publisher still checks each file before uploading).
    func publishedBeforeRun(_ publisherByProject: [String: any WheelPublisher]) async -> [String: IndexedFile] {
        var onIndex: [String: IndexedFile] = [:]
        for (package, publisher) in publisherByProject.sorted(by: { $0.key < $1.key }) {
            do {
                let files = try await publisher.listedFiles(project: package)
                // The selected jobs carry the published version (with any --version-suffix).
                for job in configuration.jobs where job.variant.package == package {
                    if let file = files.first(where: { ReleasePipelineSupport.isPublishedFile($0.filename, of: job) }) {
                        onIndex[ReleaseConfiguration.buildJob(job).id] = file
                    }
                }
            } catch {
                out("  could not list \(package) on \(publisher.destination) (\(error)); files already there are recognised at upload time")
            }
        }
        return onIndex
    }

    /// Wheels the destination held before this run (so none was built) whose GitHub release lacks
    /// them, by job id: each is downloaded from the destination (its listed SHA-256 checked) into
    /// `<dist>/.wheelfarm/from-index`, and verified exactly as a fresh build is before it may be
    /// attached. A run after a lost dist directory, or one whose GitHub phase failed, thus still
    /// completes every release without rebuilding anything. A wheel that cannot be fetched or
    /// fails verification is a failure of its job and is not attached.
    func fetchForGitHub(_ files: [String: IndexedFile], packages: [String: String], gitHub: GitHubReleasePublisher,
                        publishers: [String: any WheelPublisher], failures: inout [String: String]) async -> [String: PublishableWheel] {
        let wanted = files.sorted { $0.value.filename < $1.value.filename }.compactMap { jobID, file -> (jobID: String, tag: String, file: IndexedFile, publisher: any WheelPublisher)? in
            guard let name = WheelFilename(file.filename), let package = packages[jobID], let publisher = publishers[package] else { return nil }
            return (jobID, gitHub.tagTemplate.tag(version: name.version, name: package, pythonTag: name.pythonTags.joined(separator: ".")), file, publisher)
        }
        guard !wanted.isEmpty else { return [:] }
        let missing: Set<String>
        do {
            missing = try await gitHub.missing(wanted.map { ($0.tag, $0.file.filename) })
        } catch {
            out("  ✗ could not read the GitHub releases of wheels published before this run: \(error)")
            for w in wanted { failures[w.jobID] = "GitHub release: \(error)" }
            return [:]
        }
        let directory = configuration.distDir.appendingPathComponent(".wheelfarm/from-index")
        var fetched: [String: PublishableWheel] = [:]
        for w in wanted where missing.contains(w.file.filename) {
            let publisher = w.publisher
            let path = directory.appendingPathComponent(w.file.filename).path
            do {
                try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
                try? FileManager.default.removeItem(atPath: path)
                try await publisher.fetch(w.file, to: path)
                fetched[w.jobID] = try await publicationVerifier.verifiedForPublishing(wheelAt: path)
                out("  ↓ \(w.file.filename): fetched from \(publisher.destination) and verified, for its GitHub release")
            } catch {
                try? FileManager.default.removeItem(atPath: path)
                failures[w.jobID] = "GitHub release: the copy on \(publisher.destination) was not attached: \(error)"
                out("  ✗ \(w.file.filename): not attached to its GitHub release: \(error)")
            }
        }
        return fetched
    }

    /// `.whl` files directly in the dist directory, by file name.
    func existingWheels(in dist: URL) -> [String: URL] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dist.path)) ?? []
        return Dictionary(uniqueKeysWithValues: names.filter { $0.hasSuffix(".whl") }.map { ($0, dist.appendingPathComponent($0)) })
    }


    /// `--dry-run`: the plan and every command that would run; nothing is changed.
    func dryRun(plan: PlanAnalysis, startedAt: Date) async throws -> Outcome {
        let config = configuration
        out("=== Dry run: nothing will be built, changed or uploaded ===")
        for note in config.notes { out(note) }
        out("\n[DRY RUN] Phase 0: pre-flight would probe \(config.inventory.hosts.filter { !$0.drain }.count) hosts and check \(config.distDir.path) for verified wheels")
        // Read-only look-ups: what the destination lists, and which wheels dist already holds.
        var publisherByProject: [String: any WheelPublisher] = [:]
        if config.updateReadme == nil {
            for package in Set(config.jobs.map(\.variant.package)) { publisherByProject[package] = try? publishers.make(package) }
        }
        let onIndex = await publishedBeforeRun(publisherByProject)
        let inDist = existingWheels(in: config.distDir)
        out("\n[DRY RUN] Phase 1: \(plan.entries.count) jobs")
        for e in plan.entries {
            if let file = onIndex[e.job.id] {
                out("  \(e.job.id): already published as \(file.filename): would not be rebuilt")
                continue
            }
            if let file = inDist.keys.sorted().first(where: { ReleasePipelineSupport.matches(file: $0, job: e.job) }) {
                out("  \(e.job.id): \(file) is in \(config.distDir.path): would be verified again and reused if it passes (rebuilt otherwise)")
                continue
            }
            guard let host = e.eligible.first else {
                out("  \(e.job.id): cannot be placed: \(e.unplaceableReason ?? "")")
                continue
            }
            let request = BuildRequest(job: e.job, recipe: config.recipe, host: host, source: config.recipe.source, builder: config.builder)
            let agentDir = (try? Self.agentBundle().including(recipe: config.recipe))?.installDirectory(workDir: host.workDir) ?? "\(host.workDir)/agents/<version>"
            let command = (["bash", "\(agentDir)/build.sh"] + request.arguments(workDir: host.workDir))
                .map { $0.contains(" ") ? "'\($0)'" : $0 }.joined(separator: " ")
            out("  \(e.job.id) on one of \(e.eligible.map(\.name).joined(separator: ", ")):")
            out("    [DRY RUN] Would run on \(host.name): \(command)")
            out("    [DRY RUN] Would verify the wheel (zip, PEP 427, metadata, RECORD, required files, ELF, ISA audit)")
        }
        if let suffix = config.jobs.first?.suffix { out("\n[DRY RUN] Would rewrite each verified wheel with version suffix \(suffix)") }
        if config.updateReadme != nil { out("\n[DRY RUN] Would replace the README in the existing wheels; nothing would be uploaded") }
        else {
            out("\n[DRY RUN] Phase 2: would publish each verified wheel to \(publishers.destination) (skipping files already there with the same SHA-256)")
            if config.skipGitHub || makeGitHub == nil { out("[DRY RUN] Phase 3: no GitHub release\(config.skipGitHub ? " (--skip-github)" : " (no repository configured)")") }
            else { out("[DRY RUN] Phase 3: would create or complete the GitHub release of each tag and attach every wheel (a wheel published before this run that its release lacks is fetched from the index and verified first)") }
        }
        let report = ReleaseReport(runID: "dry-run", recipe: config.recipe.name, startedAt: startedAt, finishedAt: Date(),
                                   status: "dry-run", hosts: config.inventory.hosts.map(\.name), jobs: [])
        return Outcome(exitCode: plan.unplaceable.isEmpty ? 0 : 1, report: report, reportFiles: nil)
    }
}
