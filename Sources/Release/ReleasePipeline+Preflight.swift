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

extension ReleasePipeline {
    /// Phase 0: what the destination lists, what the dist directory holds (verified again), what
    /// no host can build; builds left running by a coordinator that died are stopped.
    func preflight(_ run: ReleaseRun) async throws {
        out("\n=== Phase 0: Pre-flight checks ===")
        for note in configuration.notes { out(note) }
        let gitHubNote = run.gitHub.map { " · GitHub releases in \($0.repository)" }
            ?? (configuration.skipGitHub ? " · GitHub skipped (--skip-github)" : " · no GitHub repository configured")
        out("publish to: \(run.destination)\(gitHubNote)")
        // Jobs whose wheel the destination already holds are done: an index never takes a
        // filename twice, so rebuilding them could publish nothing.
        let onIndex = await publishedBeforeRun(run.publishers)
        repairLocalIndexes(run)
        try classify(run, onIndex: onIndex)
        try await reverify(run)
        let ledger = run.ledger.snapshot
        for r in ledger.records { if case let .unplaceable(why) = r.state { out("  cannot build \(r.id): \(why)") } }
        let c = ledger.preflightCounts
        out("\(c.toBuild) to build · \(c.verified) already built and verified in \(layout.root.path) · \(c.alreadyPublished) already published · \(c.unplaceable) cannot be built")
        logger.info("pre-flight done", metadata: ["release.to_build": "\(c.toBuild)", "release.verified": "\(c.verified)",
                                                  "release.already_published": "\(c.alreadyPublished)", "release.unplaceable": "\(c.unplaceable)"])
        try run.syncJournal()
        await stopOrphanedBuilds(journal: run.journal, pool: run.pool)
    }

    /// A local index whose root pages a stopped run left missing or stale gets them back, even
    /// when this run publishes nothing new (everything may already be there).
    func repairLocalIndexes(_ run: ReleaseRun) {
        for publisher in run.publishers.values {
            guard let local = publisher as? LocalIndexPublisher else { continue }
            do {
                if try local.repairRootPages() { out("  \(local.destination): the index's root pages were missing or stale and were rewritten") }
            } catch {
                out("  \(local.destination): the index's root pages could not be rewritten: \(error)")
            }
        }
    }

    /// Decides each job's state from the journal, the dist directory and the destination's listing.
    func classify(_ run: ReleaseRun, onIndex: [String: IndexedFile]) throws {
        let canBuild = !configuration.skipBuild && configuration.updateReadme == nil
        let inDist = layout.wheels()
        for entry in run.plan.entries {
            let job = entry.job
            if let artifact = try run.journal.verifiedArtifact(jobID: job.id), let file = inDist[artifact.filename] {
                if (try? StreamingDigest.file(at: file.path))?.digest == artifact.sha256 {
                    run.ledger.with { $0.set(job.id, .reused(file)) }
                    continue
                }
                out("  \(artifact.filename) changed since it was verified (SHA-256 differs from the journal's)\(canBuild ? ": it will be rebuilt" : "")")
                try run.journal.removeArtifact(filename: artifact.filename)
                if canBuild { try? FileManager.default.removeItem(at: file) }
            }
            if !canBuild {
                let flag = configuration.skipBuild ? "--skip-build" : "--update-readme"
                let state: JobLedger.State = inDist.values.first(where: { ReleasePipelineSupport.matches(file: $0.lastPathComponent, job: job) })
                    .map { .reused($0) } ?? .unplaceable("no wheel for it in '\(layout.root.path)' (\(flag) builds nothing)")
                run.ledger.with { $0.set(job.id, state) }
                continue
            }
            if let file = onIndex[job.id] {
                run.ledger.update(job.id) { $0.state = .alreadyPublished(file); $0.listed = file }
                out("  \(job.id): already published as \(file.filename) (not rebuilt)")
                continue
            }
            run.ledger.with { $0.set(job.id, entry.unplaceableReason.map { .unplaceable($0) } ?? .toBuild) }
        }
    }

    /// Wheels already in dist are verified again before anything is built: one that fails now
    /// (edited, truncated, or verified by an older wheelfarm with fewer checks) is deleted and
    /// rebuilt, so a resumed run never publishes a wheel on the strength of an old verdict.
    func reverify(_ run: ReleaseRun) async throws {
        let reused = run.ledger.snapshot.reused.sorted { $0.id < $1.id }
        guard !reused.isEmpty else { return }
        out("verifying \(reused.count) wheel\(reused.count == 1 ? "" : "s") already in \(layout.root.path)")
        let canBuild = !configuration.skipBuild && configuration.updateReadme == nil
        let byJob = Dictionary(run.plan.entries.map { ($0.job.id, $0) }, uniquingKeysWith: { a, _ in a })
        let reports = await WheelVerifier().verifyAll(reused.map { ($0.wheel.path, WheelExpectation(job: byJob[$0.id]!.job, recipe: configuration.recipe)) })
        for ((jobID, file), report) in zip(reused, reports) {
            run.ledger.update(jobID) { $0.verification = report }
            if report.passed {
                run.ledger.with { $0.set(jobID, .verified(file)) }
                out("  ✓ \(file.lastPathComponent)")
                continue
            }
            let m = report.failures.map { "\($0.id.rawValue): \($0.message)" }.joined(separator: "; ")
            if canBuild, byJob[jobID]?.unplaceableReason == nil {
                try run.journal.removeArtifact(filename: file.lastPathComponent)
                try? FileManager.default.removeItem(at: file)
                run.ledger.update(jobID) { $0.state = .toBuild; $0.note = "existing wheel failed verification: \(m)" }
                out("  ✗ \(file.lastPathComponent) failed verification and was deleted; it will be rebuilt: \(m)")
            } else {
                run.ledger.with { $0.fail(jobID, "existing wheel failed verification: \(m)") }
                out("  ✗ \(file.lastPathComponent): \(m)")
            }
        }
    }

    /// Probes every non-draining host in parallel; unreachable hosts are reported (the scheduler
    /// quarantines them and retries) and probe facts steer placement (Python, GCC).
    func probeHosts(pool: TransportPool, journal: Journal, runID: String) async -> [String: HostFacts] {
        let bundle: AgentBundle
        do { bundle = try Self.agentBundle() } catch {
            // Not fatal here (the build phase fails on it with the same message), but never silent.
            logger.warning("hosts not probed: no agent bundle", metadata: ["release.error": "\(error)"])
            out("  hosts not probed: \(error)")
            return [:]
        }
        let prober = HostProber(bundle: bundle, cache: ProbeCache(directory: layout.probesDirectory), logger: logger)
            .asking(about: configuration.recipe.allPrerequisites)
        let hosts = configuration.inventory.hosts.filter { !$0.drain }
        var facts: [String: HostFacts] = [:]
        await withTaskGroup(of: (String, Result<ProbeReport, any Error>).self) { group in
            for host in hosts {
                group.addTask {
                    let t = await pool.transport(for: host)
                    // Not `do { return (name, .success(try await …)) }`: see Result(catching:).
                    let outcome = await Result { try await prober.report(for: t, maxAge: 3600) }
                    return (host.name, outcome)
                }
            }
            let byName = Dictionary(hosts.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
            for await (name, result) in group {
                var record = HostRecord(name: name, address: byName[name]?.address, arch: byName[name]?.arch.rawValue, state: "reachable")
                switch result {
                case let .success(report):
                    let pythons = Set(report.pythonVersions)
                    facts[name] = HostFacts(probe: report, builder: configuration.builder)
                    record.detail = "Python \(pythons.sorted().map(\.description).joined(separator: ", ")), gcc \(report.gcc?.version ?? "none"), \(report.libc?.description ?? "unknown libc")"
                    out("  host \(name): reachable, \(report.arch), \(record.detail!)")
                case let .failure(error) where (error as? TransportError)?.isPermanent == true:
                    // Retrying cannot help: the scheduler takes the host out of the run.
                    record.state = "refused"
                    record.detail = "\(error)"
                    facts[name] = HostFacts(refusal: (error as? TransportError)?.message ?? "\(error)")
                    out("  host \(name): taken out of this run: \(error)")
                case let .failure(error):
                    record.state = "unreachable"
                    record.detail = "\(error)"
                    out("  host \(name): not usable now (\(error)); it will be retried")
                }
                logger.info("host probed", metadata: ["release.host": "\(name)", "release.host_state": "\(record.state)", "release.detail": "\(record.detail ?? "")"])
                recordHost(record, journal: journal, runID: runID)
            }
        }
        return facts
    }

    /// Records a host's state in the journal; a failed write is logged and shown (the host table
    /// is for people: resume does not depend on it).
    func recordHost(_ record: HostRecord, journal: Journal, runID: String) {
        do { try journal.setHost(run: runID, record) } catch {
            logger.info("journal write failed", metadata: ["release.host": "\(record.name)", "release.error": "\(error)"])
            display.note("journal: could not record host \(record.name) (\(record.state)): \(error)")
        }
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
        case let .hostRefused(h, reason): HostRecord(name: h, state: "refused", detail: reason)
        default: nil
        }
    }

    /// Stops the builds a coordinator that died (or exited at a second Ctrl-C) left running: their
    /// attempts never finished, and this run holds the lock, so no live coordinator owns them.
    /// Their jobs are rebuilt cleanly in this run; a half-watched build's wheel could not be
    /// trusted anyway. An attempt whose host cannot be reached stays open for the next run.
    func stopOrphanedBuilds(journal: Journal, pool: TransportPool) async {
        let orphans: [AttemptRecord]
        do { orphans = try journal.unfinishedAttempts() } catch {
            out("  could not read the journal's unfinished attempts (\(error)); builds an interrupted run left are not stopped")
            return
        }
        guard !orphans.isEmpty else { return }
        let runner: BuildRunner?
        do { runner = BuildRunner(bundle: try Self.agentBundle(), logger: logger) } catch {
            logger.warning("orphaned builds cannot be stopped: no agent bundle", metadata: ["release.error": "\(error)"])
            runner = nil
        }
        let hosts = Dictionary(configuration.inventory.hosts.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        out("stopping \(orphans.count) build\(orphans.count == 1 ? "" : "s") left by an interrupted run")
        await withTaskGroup(of: (AttemptRecord, String, Bool).self) { group in
            for orphan in orphans {
                group.addTask {
                    let remoteID = orphan.remoteBuildDir.map { URL(fileURLWithPath: $0).lastPathComponent } ?? ""
                    guard let host = hosts[orphan.host] else {
                        return (orphan, "host '\(orphan.host)' is no longer in the inventory; its build was not stopped", true)
                    }
                    guard let runner, !remoteID.isEmpty else { return (orphan, "no remote build recorded", true) }
                    let transport = await pool.transport(for: host)
                    do {
                        let wasRunning = try await runner.cancel(remoteJobID: remoteID, on: transport)
                        return (orphan, wasRunning ? "still running on \(host.name): stopped" : "no longer running on \(host.name)", true)
                    } catch {
                        await pool.discard(host.name)
                        return (orphan, "could not reach \(host.name) to stop it (\(error)); the next run tries again", false)
                    }
                }
            }
            for await (orphan, detail, settled) in group {
                out("  \(orphan.jobID) (run \(orphan.runID), attempt \(orphan.number)): \(detail)")
                guard settled else { continue }
                do {
                    try journal.finishAttempt(orphan.id, outcome: "abandoned", detail: "the coordinator stopped during this attempt; \(detail)")
                } catch {
                    out("  could not record that in the journal (\(error)); the next run checks it again")
                }
            }
        }
    }

    /// The `agents/` scripts shipped with wheelfarm.
    static func agentBundle() throws -> AgentBundle {
        guard let dir = AgentBundle.locate() else {
            throw ReleaseError.configuration("cannot find the 'agents' folder (build.sh, lib.sh); run from the wheelfarm checkout or set WHEELFARM_AGENTS_DIR")
        }
        return try AgentBundle.load(from: dir)
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
                logger.info("listing failed", metadata: ["release.package": "\(package)", "release.error": "\(error)"])
                out("  could not list \(package) on \(publisher.destination) (\(error)); files already there are recognised at upload time")
            }
        }
        return onIndex
    }
}
