import Agents
import FarmCore
import Foundation
import struct Inventory.Host
import struct Inventory.SSHSettings
import Logging
import Recipes
import Remote
import Scheduling
import Synchronization
import Wheels

/// One authenticated transport per host, reused for every operation on it.
actor TransportPool {
    private var transports: [String: (host: Host, transport: any Transport)] = [:]
    private let ssh: SSHSettings
    private let logger: Logger

    init(ssh: SSHSettings, logger: Logger) { self.ssh = ssh; self.logger = logger }

    /// The transport for `host`; a new one when the host's definition changed.
    func transport(for host: Host) async -> any Transport {
        if let existing = transports[host.name], existing.host.address == host.address,
           existing.host.port == host.port, existing.host.user == host.user, existing.host.connection == host.connection {
            return existing.transport
        }
        if let old = transports[host.name] { await old.transport.close() }
        let t = Transports.make(for: host, ssh: ssh, logger: logger)
        transports[host.name] = (host, t)
        return t
    }

    /// Drops a host's transport (after a connection failure), so the next use reconnects.
    func discard(_ name: String) async {
        if let old = transports.removeValue(forKey: name) { await old.transport.close() }
    }

    func closeAll() async {
        for (_, entry) in transports { await entry.transport.close() }
        transports = [:]
    }
}


/// Runs a job on a host for the scheduler: the agent builds it there, the wheel comes back with
/// its digest checked, and the coordinator verifies it before the job counts as built.
///
/// How a failed attempt counts (the scheduler acts on it):
/// - a failing command of the build step (git, pip, the compiler: the agent's `failed`), a
///   usage error, or a wheel whose labels are wrong (name, version, tags, ISA) would fail the same
///   way again on that host: ``JobOutcome/buildFailedOnHost(_:)``, retried only elsewhere;
/// - a wheel damaged on its way (ZIP or RECORD checks fail) or a protocol slip may not recur:
///   ``JobOutcome/buildFailed(_:)``, retried, preferably elsewhere;
/// - an unreachable host, a lost connection, a host the agent finds unfit (disk, toolchain), a
///   download that does not match: host failures; the job goes elsewhere, the host is quarantined.
///
/// A build failure's message quotes the first error lines of its log with their line numbers.
/// Journal writes that resume depends on are never skipped: one that fails fails the attempt with
/// the SQLite error (before the remote build starts, when it is the attempt's first record).
struct ReleaseJobRunner: JobRunner {
    let configuration: ReleaseConfiguration
    let layout: DistLayout
    let runID: String
    let journal: Journal
    let pool: TransportPool
    let buildRunner: BuildRunner
    let verifier: WheelVerifier
    let source: SourceArchive?
    let display: ProgressDisplay
    let ledger: SharedLedger
    let inFlight: InFlightBuilds
    let logger: Logger

    /// The job's id on the host: unique per job, coordinator run and attempt, so two coordinators
    /// sharing a host never use one job directory, and no log overwrites another.
    static func remoteJobID(for job: BuildJob, runID: String, attempt: Int) -> String {
        "\(BuildRequest.jobID(for: job, attempt: attempt))-\(runID)"
    }

    func run(job: BuildJob, on host: Host, attempt: Int) async throws -> JobOutcome {
        var host = host
        if let maxJobs = configuration.maxJobs { host.maxJobs = maxJobs }
        var request = BuildRequest(job: job, recipe: configuration.recipe, host: host,
                                   source: source == nil ? configuration.recipe.source : nil,
                                   attempt: attempt, builder: configuration.builder)
        request.jobID = Self.remoteJobID(for: job, runID: runID, attempt: attempt)
        request.hostSlots = host.slots
        var log = logger
        log[metadataKey: "release.job"] = "\(job.id)"
        log[metadataKey: "release.host"] = "\(host.name)"
        log[metadataKey: "release.attempt"] = "\(attempt)"
        let record: AttemptRecorder
        do {
            record = try AttemptRecorder(runner: self, job: job, host: host, attempt: attempt, remoteJobID: request.jobID)
        } catch {
            log.error("attempt not started: the journal could not record it", metadata: ["release.error": "\(error)"])
            return .buildFailed("the attempt could not be recorded in the journal, so it was not started: \(error)")
        }
        let transport = await pool.transport(for: host)
        inFlight.started(.init(job: job.id, host: host.name, address: host.connection == .local ? "local" : host.address,
                               workDir: host.workDir, remoteJobID: request.jobID))
        log.info("build starting", metadata: ["release.remote_job": "\(request.jobID)", "release.log": "\(record.logURL.path)"])
        let outcome: BuildOutcome
        do {
            outcome = try await buildRunner.run(request, on: transport, source: source, dist: layout.root,
                                                watchdog: configuration.buildLimits.watchdog(estimatedMinutes: job.variant.estimatedMinutes,
                                                                                             speed: host.speed),
                                                onEvent: { event in
                                                    if case let .phase(name, _) = event { display.phase(job: job.id, phase: Self.phaseText(name)) }
                                                },
                                                onLog: { data in record.write(data) })
        } catch {
            return await failed(error, record: record, host: host, log: log)
        }
        if outcome.status == .cancelled { return await cancelled(record: record, host: host, detail: outcome.message, log: log) }
        if outcome.status != .succeeded { return await buildFailed(outcome, record: record, host: host, log: log) }
        inFlight.ended(remoteJobID: request.jobID)
        return await verify(outcome, record: record, host: host, log: log)
    }

    /// What the display says for an agent's phase.
    static func phaseText(_ phase: String) -> String {
        phase == "slot-wait" ? "waiting for a build slot: every slot of the host is held by another coordinator's build" : phase
    }

    /// A thrown error: cancellation, a host failure or an unclassified build failure.
    private func failed(_ error: any Error, record: AttemptRecorder, host: Host, log: Logger) async -> JobOutcome {
        if Task.isCancelled || (error as? TransportError)?.kind == .cancelled {
            return await cancelled(record: record, host: host, detail: nil, log: log)
        }
        inFlight.ended(remoteJobID: record.remoteJobID)
        let message = "\(error)"
        var hostFailure: JobOutcome?
        if let t = error as? TransportError {
            if t.isPermanent {
                // Retrying cannot help (host key, refused keys, SSH configuration): the host is
                // taken out of the run at once.
                await pool.discard(host.name)
                log.info("host refused", metadata: ["release.error": "\(t.message)"])
                return record.finish(.hostRefused(t.message), outcome: "host-refused", detail: t.message)
            }
            switch t.kind {
            case .unreachable, .authentication, .hostKey: hostFailure = JobRunnerError.hostUnreachable(message).outcome
            case .connectionLost, .timeout, .transferCorrupt, .outputTooLarge: hostFailure = JobRunnerError.connectionLost(message).outcome
            default: break
            }
            if hostFailure != nil { await pool.discard(host.name) }
            if t.kind == .connectionLost, let reason = await refusalAfterLostConnection(host) {
                let m = "the connection was lost, and reconnecting found: \(reason)"
                log.info("host refused", metadata: ["release.error": "\(m)"])
                return record.finish(.hostRefused(m), outcome: "host-refused", detail: m)
            }
        } else if let agentError = error as? AgentError, case .artifactMismatch = agentError {
            hostFailure = JobRunnerError.connectionLost(message).outcome
        }
        if let hostFailure {
            log.info("host failure", metadata: ["release.error": "\(message)"])
            return record.finish(hostFailure, outcome: "host-failed", detail: message)
        }
        log.info("build failed", metadata: ["release.error": "\(message)"])
        return record.finish(.buildFailed(message), outcome: "build-failed", detail: message)
    }

    /// The run was cancelled: the remote build is confirmed stopped (``BuildRunner`` ran
    /// `cancel.sh`; asking again tells whether it worked). One that cannot be confirmed keeps
    /// its attempt open in the journal, so the next run's orphan sweep stops it.
    private func cancelled(record: AttemptRecorder, host: Host, detail: String?, log: Logger) async -> JobOutcome {
        let transport = await pool.transport(for: host)
        let remoteJobID = record.remoteJobID, buildRunner = self.buildRunner
        let confirmed = await Task { try await buildRunner.cancel(remoteJobID: remoteJobID, on: transport) }.result
        switch confirmed {
        case .success:
            inFlight.ended(remoteJobID: remoteJobID)
            log.info("remote build stopped", metadata: ["release.remote_job": "\(remoteJobID)"])
            return record.finish(.cancelled, outcome: "cancelled", detail: detail ?? "cancelled by the coordinator")
        case let .failure(error):
            log.error("remote build may still run", metadata: ["release.remote_job": "\(remoteJobID)", "release.error": "\(error)"])
            record.note(outcome: "cancelled", detail: "cancelled; could not confirm that the build stopped on \(host.name): \(error)")
            return .cancelled
        }
    }

    /// The agent reported a failure: a host problem, or a build failure quoting the log's first errors.
    private func buildFailed(_ outcome: BuildOutcome, record: AttemptRecorder, host: Host, log: Logger) async -> JobOutcome {
        inFlight.ended(remoteJobID: record.remoteJobID)
        if outcome.status == .hostProblem {
            let m = outcome.message ?? "host problem"
            log.info("host problem", metadata: ["release.error": "\(m)"])
            return record.finish(JobRunnerError.hostUnreachable(m).outcome, outcome: "host-failed", detail: m)
        }
        record.close()
        let excerpt = BuildLogExcerpt(log: record.logURL, from: outcome.failureLogLine ?? 1)
        var m = outcome.message ?? "build failed"
        if !m.contains("phase") { m += " (phase \(outcome.phase ?? "?"))" }
        if let errors = excerpt.summary { m += "; \(errors)" }
        m += "; log \(record.logURL.path)"
        display.note("✗ \(record.jobID) on \(host.name): \(m)")
        log.info("build failed", metadata: ["release.error": "\(m)"])
        return record.finish(.buildFailedOnHost(m), outcome: "build-failed", detail: m)
    }

    /// Central verification of the pulled-back wheel; the job counts as built only when it passes
    /// and the journal has recorded it.
    private func verify(_ outcome: BuildOutcome, record: AttemptRecorder, host: Host, log: Logger) async -> JobOutcome {
        guard outcome.wheels.count == 1, let wheel = outcome.wheels.first else {
            outcome.wheels.forEach(ArtifactStaging.discard)
            let m = "the build produced \(outcome.wheels.count) wheels, expected exactly 1"
            return record.finish(.buildFailedOnHost(m), outcome: "build-failed", detail: m)
        }
        display.phase(job: record.jobID, phase: "verifying")
        let report = await verifier.verify(path: wheel.path.path, expectation: WheelExpectation(job: record.job, recipe: configuration.recipe))
        ledger.update(record.jobID) { $0.verification = report }
        guard report.passed else {
            ArtifactStaging.discard(wheel)   // only this attempt's staged copy
            let failures = report.failures.map { "\($0.id.rawValue): \($0.message)" }.joined(separator: "; ")
            let m = "wheel \(wheel.file) failed verification and was deleted: \(failures)"
            display.note("✗ \(record.jobID) on \(host.name): \(m)")
            log.info("verification failed", metadata: ["release.wheel": "\(wheel.file)", "release.error": "\(failures)"])
            // Wrong labels come from the build itself and would come again from the same host; a
            // damaged archive (a ZIP, RECORD or metadata check fails too) makes every other
            // finding moot, and a rebuild anywhere may succeed.
            let damaged = report.failures.contains { !Self.labelChecks.contains($0.id) }
            let outcome: JobOutcome = damaged ? .buildFailed(m) : .buildFailedOnHost(m)
            return record.finish(outcome, outcome: "verify-failed", detail: m)
        }
        // Into the dist directory, never over a verified wheel already there.
        let placed: BuiltWheel
        do {
            placed = try ArtifactStaging.promote(wheel, into: layout.root) { (try? journal.artifact(filename: $0))??.verified == true }
        } catch {
            return record.finish(.buildFailed("\(error)"), outcome: "build-failed", detail: "\(error)")
        }
        do {
            let json = try? JSONEncoder().encode(report)
            try journal.recordArtifact(ArtifactRecord(filename: placed.file, sha256: placed.sha256, size: placed.size, jobID: record.jobID,
                                                      host: host.name, verified: true, report: json.map { String(decoding: $0, as: UTF8.self) }))
        } catch {
            let m = "wheel \(wheel.file) passed verification, but the journal could not record it: \(error)"
            log.error("journal write failed", metadata: ["release.error": "\(error)"])
            return record.finish(.buildFailed(m), outcome: "build-failed", detail: m)
        }
        ledger.update(record.jobID) { $0.built = placed; $0.state = .verified(placed.path) }
        log.info("wheel verified", metadata: ["release.wheel": "\(placed.file)", "release.sha256": "\(placed.sha256.hex)"])
        return record.finish(.succeeded, outcome: "succeeded", detail: nil)
    }

    /// Checks whose failure means the wheel's labels are wrong (a property of the build, not of
    /// the transfer): name, version, tags, arch, required files, ISA, platform.
    static let labelChecks: Set<WheelCheckID> = [
        .filenameFormat, .filenamePlatform, .filenameArch, .filenameExpectation, .metadataNameVersion, .wheelTags,
        .wheelRootIsPurelib, .contentRequiredFiles, .elfMachine, .isaExpected, .isaExcluded,
        .platformSymbols, .platformLibraries, .platformRequirement,
    ]

    func checkHealth(of host: Host) async -> Bool { await healthCheck(of: host) == .healthy }

    func healthCheck(of host: Host) async -> HealthCheckResult {
        let transport = await pool.transport(for: host)
        do {
            try await transport.connect()
            return .healthy
        } catch {
            logger.info("health check failed", metadata: ["release.host": "\(host.name)", "release.error": "\(error)"])
            await pool.discard(host.name)
            if let t = error as? TransportError, t.isPermanent { return .refused(t.message) }
            return .unhealthy
        }
    }

    /// After a lost connection: reconnects for up to `limit` to tell an outage from a host that
    /// now refuses the coordinator (reinstalled with a new key, keys removed), so such a host is
    /// taken out within seconds instead of after rounds of quarantine. `nil` for an outage.
    func refusalAfterLostConnection(_ host: Host, limit: Duration = .seconds(10)) async -> String? {
        let clock = ContinuousClock()
        let deadline = clock.now + limit
        while clock.now < deadline, !Task.isCancelled {
            let transport = await pool.transport(for: host)
            do {
                try await transport.connect()
                return nil
            } catch let error as TransportError where error.isPermanent {
                await pool.discard(host.name)
                return error.message
            } catch {
                await pool.discard(host.name)
                try? await Task.sleep(for: .seconds(1))
            }
        }
        return nil
    }
}

/// One attempt's records: its journal row (begun before anything runs on the host), its log
/// file in the dist directory, and its entry in the ledger.
final class AttemptRecorder: Sendable {
    let job: BuildJob
    let jobID: String
    let remoteJobID: String
    let logURL: URL
    private let host: String
    private let started = Date()
    private let row: Int64
    private let journal: Journal
    private let ledger: SharedLedger
    private let display: ProgressDisplay
    private let logger: Logger
    private let log: Mutex<FileHandle?>

    /// Records the attempt's start in the journal (throwing the SQLite error when it cannot) and
    /// creates its log.
    init(runner: ReleaseJobRunner, job: BuildJob, host: Host, attempt: Int, remoteJobID: String) throws {
        self.job = job; jobID = job.id; self.remoteJobID = remoteJobID; self.host = host.name
        journal = runner.journal; ledger = runner.ledger; display = runner.display; logger = runner.logger
        logURL = runner.layout.buildLog(remoteJobID: remoteJobID)
        row = try journal.beginAttempt(run: runner.runID, jobID: job.id, number: attempt, host: host.name,
                                       remoteBuildDir: "\(host.workDir)/jobs/\(remoteJobID)", hostSpeed: host.speed)
        try journal.setJob(run: runner.runID, job: JobRecord(jobID: job.id, package: job.variant.package, arch: job.arch.rawValue,
                                                             python: job.python.description, version: job.version.description,
                                                             state: .building, host: host.name, attempts: attempt))
        try FileManager.default.createDirectory(at: runner.layout.logsDirectory, withIntermediateDirectories: true)
        guard FileManager.default.createFile(atPath: logURL.path, contents: nil) else {
            throw FarmError(code: "release.log", message: "cannot create the build log '\(logURL.path)'")
        }
        log = Mutex(try FileHandle(forWritingTo: logURL))
    }

    /// Appends build output to the log. A log that cannot be written is reported once and closed:
    /// the build goes on (the host keeps its own copy).
    func write(_ data: Data) {
        log.withLock { handle in
            guard let h = handle else { return }
            do { try h.write(contentsOf: data) } catch {
                logger.error("build log not written", metadata: ["release.log": "\(logURL.path)", "release.error": "\(error)"])
                try? h.close()
                handle = nil
            }
        }
    }

    /// Closes the log (so it can be read whole).
    func close() { log.withLock { try? $0?.close(); $0 = nil } }

    /// Records the end of the attempt in the journal and the ledger, and returns `result`; a
    /// failed journal write turns a success into a build failure carrying the SQLite error.
    func finish(_ result: JobOutcome, outcome: String, detail: String?) -> JobOutcome {
        close()
        var result = result, outcome = outcome, detail = detail
        do {
            try journal.finishAttempt(row, outcome: outcome, detail: detail, logPath: logURL.path)
        } catch {
            logger.error("journal write failed", metadata: ["release.job": "\(jobID)", "release.error": "\(error)"])
            let m = "the journal could not record the end of the attempt: \(error)"
            if case .succeeded = result { result = .buildFailed(m); outcome = "build-failed" }
            detail = [detail, m].compactMap { $0 }.joined(separator: "; ")
        }
        note(outcome: outcome, detail: detail)
        return result
    }

    /// Adds the attempt to the job's record in the ledger (without touching the journal).
    func note(outcome: String, detail: String?) {
        let attempt = ReleaseReport.Attempt(host: host, start: started, end: Date(), outcome: outcome, detail: detail, log: logURL.lastPathComponent)
        ledger.update(jobID) { $0.attempts.append(attempt) }
    }
}
