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


/// What the release learned about one job, collected for the journal and the report.
final class JobRecordBook: Sendable {
    struct Entry: Sendable {
        var attempts: [ReleaseReport.Attempt] = []
        var wheel: BuiltWheel?
        var report: WheelReport?
        var lastFailure: String?
    }
    private let entries = Mutex([String: Entry]())

    func update(_ id: String, _ body: (inout Entry) -> Void) { entries.withLock { body(&$0[id, default: Entry()]) } }
    func entry(_ id: String) -> Entry? { entries.withLock { $0[id] } }
}

/// Runs a job on a host for the scheduler: the agent builds it there, the wheel comes back with
/// its digest checked, and the coordinator verifies it before the job counts as built.
///
/// A wheel that fails verification is deleted and the attempt counts as a failed build, so the
/// scheduler rebuilds it (preferably on another host) within the attempt limit. Transport
/// failures are host failures: the job goes elsewhere and the host is quarantined.
struct ReleaseJobRunner: JobRunner {
    let configuration: ReleaseConfiguration
    let runID: String
    let journal: Journal
    let pool: TransportPool
    let buildRunner: BuildRunner
    let verifier: WheelVerifier
    let source: SourceArchive?
    let display: ProgressDisplay
    let book: JobRecordBook
    let logger: Logger

    var logsDir: URL { configuration.distDir.appendingPathComponent("logs") }

    func run(job: BuildJob, on host: Host, attempt: Int) async throws -> JobOutcome {
        var host = host
        if let maxJobs = configuration.maxJobs { host.maxJobs = maxJobs }
        let transport = await pool.transport(for: host)
        let request = BuildRequest(job: job, recipe: configuration.recipe, host: host,
                                   source: source == nil ? configuration.recipe.source : nil,
                                   attempt: attempt, builder: configuration.builder)
        let started = Date()
        let attemptRow = try? journal.beginAttempt(run: runID, jobID: job.id, number: attempt, host: host.name,
                                                   remoteBuildDir: "\(host.workDir)/jobs/\(request.jobID)")
        try? journal.setJob(run: runID, job: record(job, .building, host: host.name, attempts: attempt))
        try FileManager.default.createDirectory(at: logsDir, withIntermediateDirectories: true)
        let logURL = logsDir.appendingPathComponent("\(request.jobID).log")
        FileManager.default.createFile(atPath: logURL.path, contents: nil)
        let log = try FileHandle(forWritingTo: logURL)
        defer { try? log.close() }
        let jobID = job.id
        let display = display

        func finish(_ outcome: String, _ detail: String?) {
            if let attemptRow { try? journal.finishAttempt(attemptRow, outcome: outcome, detail: detail, logPath: logURL.path) }
            book.update(job.id) {
                $0.attempts.append(.init(host: host.name, start: started, end: Date(), outcome: outcome, detail: detail))
                if outcome != "succeeded" { $0.lastFailure = detail }
            }
        }

        let outcome: BuildOutcome
        do {
            outcome = try await buildRunner.run(request, on: transport, source: source, dist: configuration.distDir,
                                                onEvent: { event in
                                                    if case let .phase(name, _) = event { display.phase(job: jobID, phase: name) }
                                                },
                                                onLog: { data in log.write(data) })
        } catch {
            if Task.isCancelled { finish("cancelled", nil); return .cancelled }
            let message = "\(error)"
            if let t = error as? TransportError {
                if t.isPermanent {
                    // Retrying cannot help (host key, refused keys, SSH configuration): the host is
                    // taken out of the run at once.
                    await pool.discard(host.name)
                    finish("host-refused", t.message)
                    throw JobRunnerError.hostRefused(t.message)
                }
                switch t.kind {
                case .cancelled: finish("cancelled", nil); return .cancelled
                case .unreachable, .authentication, .hostKey:
                    await pool.discard(host.name)
                    finish("host-failed", message)
                    throw JobRunnerError.hostUnreachable(message)
                case .connectionLost, .timeout, .transferCorrupt:
                    await pool.discard(host.name)
                    if t.kind == .connectionLost, let reason = await refusalAfterLostConnection(host) {
                        let m = "the connection was lost, and reconnecting found: \(reason)"
                        finish("host-refused", m)
                        throw JobRunnerError.hostRefused(m)
                    }
                    finish("host-failed", message)
                    throw JobRunnerError.connectionLost(message)
                default: break
                }
            }
            if let agentError = error as? AgentError, case .artifactMismatch = agentError {
                finish("host-failed", message)
                throw JobRunnerError.connectionLost(message)
            }
            finish("build-failed", message)
            throw JobRunnerError.buildFailed(message)
        }

        switch outcome.status {
        case .succeeded: break
        case .cancelled:
            finish("cancelled", outcome.message)
            return .cancelled
        case .hostProblem:
            let m = outcome.message ?? "host problem"
            finish("host-failed", m)
            throw JobRunnerError.hostUnreachable(m)
        default:
            let tail = outcome.logTail.split(separator: "\n").suffix(15).joined(separator: "\n")
            let m = "\(outcome.message ?? "build failed") (phase \(outcome.phase ?? "?"); log \(logURL.path))"
            display.note("✗ \(job.id) on \(host.name): \(m)\n\(tail)")
            finish("build-failed", m)
            return .buildFailed(m)
        }

        guard outcome.wheels.count == 1, let wheel = outcome.wheels.first else {
            for w in outcome.wheels { try? FileManager.default.removeItem(at: w.path) }
            let m = "the build produced \(outcome.wheels.count) wheels, expected exactly 1"
            finish("build-failed", m)
            return .buildFailed(m)
        }
        // Central verification: a wheel is untrusted until this passes.
        display.phase(job: job.id, phase: "verifying")
        let expectation = WheelExpectation(job: job, recipe: configuration.recipe)
        let report = await verifier.verify(path: wheel.path.path, expectation: expectation)
        let reportJSON = (try? JSONEncoder().encode(report)).map { String(decoding: $0, as: UTF8.self) }
        guard report.passed else {
            try? FileManager.default.removeItem(at: wheel.path)
            let failures = report.failures.map { "\($0.id.rawValue): \($0.message)" }.joined(separator: "; ")
            let m = "wheel \(wheel.file) failed verification and was deleted: \(failures)"
            display.note("✗ \(job.id) on \(host.name): \(m)")
            book.update(job.id) { $0.report = report }
            finish("verify-failed", m)
            return .buildFailed(m)
        }
        try journal.recordArtifact(ArtifactRecord(filename: wheel.file, sha256: wheel.sha256, size: wheel.size, jobID: job.id,
                                                  host: host.name, verified: true, report: reportJSON))
        try? journal.setJob(run: runID, job: record(job, .verified, host: host.name, attempts: attempt, wheel: wheel.file))
        book.update(job.id) { $0.wheel = wheel; $0.report = report }
        finish("succeeded", nil)
        return .succeeded
    }

    func checkHealth(of host: Host) async -> Bool { await healthCheck(of: host) == .healthy }

    func healthCheck(of host: Host) async -> HealthCheckResult {
        let transport = await pool.transport(for: host)
        do {
            try await transport.connect()
            return .healthy
        } catch {
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

    func record(_ job: BuildJob, _ state: JobState, host: String? = nil, attempts: Int = 0, wheel: String? = nil, detail: String? = nil) -> JobRecord {
        JobRecord(jobID: job.id, package: job.variant.package, arch: job.arch.rawValue, python: job.python.description,
                  version: job.version.description, state: state, host: host, attempts: attempts, wheel: wheel, detail: detail)
    }
}
