import struct Inventory.Host
import FarmCore
import Foundation
import Logging
import Remote

/// A wheel built on a host and now on this machine (in its attempt's staging directory until
/// ``ArtifactStaging/promote(_:into:isVerified:)`` moves it into the dist directory), its digest verified.
public struct BuiltWheel: Sendable, Hashable {
    public var path: URL
    public var file: String
    public var size: Int64
    public var sha256: SHA256Digest
}

/// How one build on one host ended.
public struct BuildOutcome: Sendable {
    public var status: BuildStatus
    /// The agent's exit status (`nil` when the agent did not run or did not end normally).
    public var exitCode: Int32?
    /// Why it ended that way (the agent's message, or the coordinator's).
    public var message: String?
    /// The phase the build was in when it ended.
    public var phase: String?
    /// Wheels pulled back into the dist directory.
    public var wheels: [BuiltWheel]
    /// The build log's path on the host.
    public var remoteLog: String?
    /// Where the failing command's output starts in that log.
    public var failureLogLine: Int?
    /// The end of the log as streamed (up to 64 KiB), for reports.
    public var logTail: String
    /// Every protocol event received.
    public var events: [BuildEvent]
}

/// Runs one job on one host: installs the agent if needed, uploads the source, starts `build.sh`,
/// streams its events and log to the caller, and pulls the wheels back with digest verification.
///
/// Cancelling the calling task stops the remote build: the runner runs `cancel.sh` for the job
/// (the build runs in a session of its own, which the transport's own cancellation does not reach).
///
/// The host is untrusted. A ``BuildWatchdog`` stops a build that runs too long, stays silent too
/// long, or breaks the protocol (an overlong event line) — through `cancel.sh`, as a host
/// problem naming the reason. Each `artifact` must be the request's own wheel, inside its job
/// directory, of a plausible size (``BuildRequest/artifactProblem(file:path:size:arch:workDir:maxBytes:)``),
/// else the attempt is a host problem; downloads go into a staging directory of the attempt's own
/// and stop as soon as more arrives than declared.
public struct BuildRunner: Sendable {
    public let installer: AgentInstaller
    let logger: Logger

    public init(bundle: AgentBundle, logger: Logger) {
        installer = AgentInstaller(bundle: bundle, logger: logger)
        self.logger = logger
    }

    /// Builds `request` on the transport's host.
    ///
    /// - Parameters:
    ///   - source: a local source archive to upload into the host's source cache; it replaces the
    ///     request's `source`.
    ///   - dist: the local directory the wheels are downloaded into.
    ///   - onEvent: every protocol event, as it arrives.
    ///   - onLog: build log bytes (the agent's stderr), as they arrive.
    /// - Returns: the outcome; host problems (work directory unusable, agent checks) are outcomes with
    ///   status `hostProblem`, not errors. Throws for transport failures and artifact mismatches.
    ///   - watchdog: the attempt's time, silence and protocol limits.
    public func run(_ request: BuildRequest, on transport: any Transport, source: SourceArchive? = nil, dist: URL,
                    watchdog: BuildWatchdog = BuildWatchdog(),
                    onEvent: @escaping @Sendable (BuildEvent) -> Void = { _ in },
                    onLog: @escaping @Sendable (Data) -> Void = { _ in }) async throws -> BuildOutcome {
        let host = transport.host
        let workDir = host.workDir
        var request = request
        let agentDir: String
        do {
            agentDir = try await installer.ensureInstalled(on: transport, workDir: workDir)
            if let source {
                request.source = try await source.ensureUploaded(on: transport, workDir: workDir, recipe: request.buildStep)
            }
        } catch let AgentError.hostUnusable(_, detail) {
            return BuildOutcome(status: .hostProblem, exitCode: nil, message: detail, phase: "install", wheels: [],
                                remoteLog: nil, failureLogLine: nil, logTail: "", events: [])
        }

        let command = request.commandLine(agentDirectory: agentDir, workDir: workDir)
        logger.info("build started", metadata: ["host": "\(host.name)", "job": "\(request.jobID)"])
        let stream = EventStream(limits: watchdog, onEvent: onEvent, onLog: onLog)
        let status: ExecStatus
        switch await supervise(ExecRequest(command), on: transport, stream: stream, watchdog: watchdog) {
        case let .ended(.success(ended)):
            status = ended
        case let .ended(.failure(error)):
            if Task.isCancelled || (error as? TransportError)?.kind == .cancelled {
                await cancelRemote(job: request.jobID, agentDir: agentDir, workDir: workDir, transport: transport)
                let (events, tail) = stream.finish()
                return BuildOutcome(status: .cancelled, exitCode: nil, message: "cancelled by the coordinator", phase: nil,
                                    wheels: [], remoteLog: nil, failureLogLine: nil, logTail: tail, events: events)
            }
            throw error
        case let .stopped(reason):
            // The watchdog stopped it: make sure the build itself (its own session) is gone too.
            await cancelRemote(job: request.jobID, agentDir: agentDir, workDir: workDir, transport: transport)
            let (events, tail) = stream.finish()
            logger.warning("build stopped", metadata: ["host": "\(host.name)", "job": "\(request.jobID)", "reason": "\(reason)"])
            return BuildOutcome(status: .hostProblem, exitCode: nil, message: reason, phase: events.lastPhase,
                                wheels: [], remoteLog: nil, failureLogLine: nil, logTail: tail, events: events)
        }
        let (events, tail) = stream.finish()

        var finished: BuildEvent.Finished?
        var artifacts: [BuildEvent.Artifact] = []
        var pointer: Int?
        var remoteLog: String?
        for event in events {
            switch event {
            case let .finished(f): finished = f
            case let .artifact(a): artifacts.append(a)
            case let .logPointer(path, line, _, _): pointer = line; remoteLog = path
            case let .started(s): remoteLog = remoteLog ?? s.log
            default: break
            }
        }
        let exitCode: Int32? = if case let .exited(code) = status { code } else { nil }
        guard let finished else {
            if let exitCode, let mapped = BuildStatus(exitCode: exitCode), mapped != .succeeded {
                return BuildOutcome(status: mapped, exitCode: exitCode, message: "the agent ended with \(status) without a result",
                                    phase: nil, wheels: [], remoteLog: remoteLog, failureLogLine: pointer, logTail: tail, events: events)
            }
            throw AgentError.noFinish(host: host.name, job: request.jobID, exitStatus: exitCode)
        }
        var outcome = BuildOutcome(status: finished.status, exitCode: exitCode, message: finished.message, phase: finished.phase,
                                   wheels: [], remoteLog: finished.log ?? remoteLog, failureLogLine: pointer, logTail: tail,
                                   events: events)
        guard finished.status == .succeeded else { return outcome }

        // Every artifact must be this job's own wheel in its own directory before anything is fetched.
        for artifact in artifacts {
            if let problem = request.artifactProblem(file: artifact.file, path: artifact.path, size: artifact.size, arch: host.arch,
                                                     workDir: workDir, maxBytes: watchdog.maxArtifactBytes) {
                outcome.status = .hostProblem
                outcome.message = "the agent reported an artifact that is not this job's wheel: \(problem); nothing was downloaded"
                return outcome
            }
        }
        if Set(artifacts.map(\.file)).count != artifacts.count {
            outcome.status = .hostProblem
            outcome.message = "the agent reported the same artifact twice; nothing was downloaded"
            return outcome
        }
        guard !artifacts.isEmpty else { return outcome }
        let staging = try ArtifactStaging.makeDirectory(dist: dist, jobID: request.jobID)
        let declared = artifacts.reduce(Int64(0)) { $0 + $1.size }
        if let free = Self.freeBytes(at: staging.path), free < declared + (64 << 20) {
            try? FileManager.default.removeItem(at: staging)
            throw TransportError(.localIO, host: host.name, "'\(dist.path)' has \(free) bytes free, too few for the \(declared) bytes of wheels this build made; free space and run again")
        }
        for artifact in artifacts {
            let local = staging.appendingPathComponent(artifact.file)
            do {
                let result = try await download(artifact, to: local, on: transport, watchdog: watchdog)
                outcome.wheels.append(BuiltWheel(path: local, file: artifact.file, size: result.size, sha256: result.digest))
            } catch let error as TransportError where error.kind == .transferCorrupt {
                try? FileManager.default.removeItem(at: staging)
                throw AgentError.artifactMismatch(file: artifact.file, expected: "sha256 \(artifact.sha256.hex), \(artifact.size) bytes",
                                                  found: error.message)
            } catch {
                defer { try? FileManager.default.removeItem(at: staging) }
                // Cancelled while pulling the wheels back (the build had just finished): a
                // cancelled outcome like any other, with nothing half-downloaded left behind.
                guard Task.isCancelled || (error as? TransportError)?.kind == .cancelled else { throw error }
                try? FileManager.default.removeItem(at: local)
                for wheel in outcome.wheels { try? FileManager.default.removeItem(at: wheel.path) }
                outcome.status = .cancelled
                outcome.message = "cancelled by the coordinator while downloading '\(artifact.file)'"
                outcome.wheels = []
                return outcome
            }
        }
        logger.info("build finished", metadata: ["host": "\(host.name)", "job": "\(request.jobID)", "wheels": "\(outcome.wheels.count)"])
        return outcome
    }

    /// How a supervised build ended.
    enum Supervised {
        /// The command ended by itself (or failed, or the caller cancelled it).
        case ended(Result<ExecStatus, any Error>)
        /// The watchdog stopped it, for this reason.
        case stopped(String)
    }

    /// Runs `request` while a watchdog looks twice a second at its run time, its silence and the
    /// stream's protocol violations; stops it when one is past its limit. Cancelling the caller
    /// cancels the command.
    func supervise(_ request: ExecRequest, on transport: any Transport, stream: EventStream,
                   watchdog: BuildWatchdog) async -> Supervised {
        let command = Task { try await transport.exec(request) { stream.receive($0) } }
        return await withTaskCancellationHandler {
            let clock = ContinuousClock()
            let start = clock.now
            let ended: Supervised = await withTaskGroup(of: Supervised?.self) { group in
                group.addTask { .ended(await command.result) }
                group.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: .milliseconds(500))
                        if Task.isCancelled { return nil }
                        if let problem = stream.violation { return .stopped(problem) }
                        let now = clock.now
                        if let reason = watchdog.expired(elapsed: start.duration(to: now), silent: stream.lastOutputAt.duration(to: now)) {
                            return .stopped(reason)
                        }
                    }
                    return nil
                }
                var first: Supervised?
                while let next = await group.next() {
                    guard first == nil, let next else { continue }
                    first = next
                    if case .stopped = next { command.cancel() }   // the other child then ends with it
                    group.cancelAll()
                }
                return first ?? .ended(.failure(CancellationError()))
            }
            return ended
        } onCancel: {
            command.cancel()
        }
    }

    /// Downloads one artifact (its size and digest checked by the transport), within
    /// ``BuildWatchdog/downloadLimit(bytes:)``: a host that trickles a wheel cannot hold the release.
    func download(_ artifact: BuildEvent.Artifact, to local: URL, on transport: any Transport,
                  watchdog: BuildWatchdog) async throws -> DownloadResult {
        let limit = watchdog.downloadLimit(bytes: artifact.size)
        let transfer = Task {
            try await transport.download(artifact.path, to: local.path, expected: ExpectedFile(digest: artifact.sha256, size: artifact.size))
        }
        enum Ended: Sendable { case finished(Result<DownloadResult, any Error>), timedOut }
        let ended: Ended = await withTaskCancellationHandler {
            await withTaskGroup(of: Ended?.self) { group in
                group.addTask { .finished(await transfer.result) }
                group.addTask {
                    do { try await Task.sleep(for: limit) } catch { return nil }
                    return .timedOut
                }
                var first: Ended?
                while let next = await group.next() {
                    guard first == nil, let next else { continue }
                    first = next
                    if case .timedOut = next { transfer.cancel() }   // the other child then ends with it
                    group.cancelAll()
                }
                return first ?? .finished(.failure(CancellationError()))
            }
        } onCancel: {
            transfer.cancel()
        }
        switch ended {
        case let .finished(result):
            return try result.get()
        case .timedOut:
            throw TransportError(.timeout, host: transport.host.name,
                                 "downloading '\(artifact.path)' (\(artifact.size) bytes) took longer than \(limit.minutesText); the partial file was removed")
        }
    }

    /// Free bytes of the file system holding `path`.
    static func freeBytes(at path: String) -> Int64? {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { return nil }
        return Int64(info.f_bavail) * Int64(info.f_frsize)
    }

    /// Runs `cancel.sh` for the job, outside the cancelled task.
    func cancelRemote(job: String, agentDir: String, workDir: String, transport: any Transport) async {
        let result = await Task { try await runCancel(job: job, agentDir: agentDir, workDir: workDir, transport: transport) }.result
        switch result {
        case let .success(r): logger.info("cancelled remote build", metadata: ["host": "\(transport.host.name)", "job": "\(job)", "running": "\(r)"])
        case let .failure(e): logger.error("could not cancel remote build", metadata: ["host": "\(transport.host.name)", "job": "\(job)", "error": "\(e)"])
        }
    }

    /// Stops the build `remoteJobID` on the transport's host if it still runs (for example one a
    /// coordinator that died left behind), installing the agent first when needed.
    ///
    /// - Returns: whether the build was still running (and is now stopped).
    public func cancel(remoteJobID: String, on transport: any Transport) async throws -> Bool {
        let workDir = transport.host.workDir
        let agentDir = try await installer.ensureInstalled(on: transport, workDir: workDir)
        return try await runCancel(job: remoteJobID, agentDir: agentDir, workDir: workDir, transport: transport)
    }

    private func runCancel(job: String, agentDir: String, workDir: String, transport: any Transport) async throws -> Bool {
        let command = shellCommand(["bash", "\(agentDir)/cancel.sh", "--work-dir", workDir, "--job-id", job])
        // What cancel.sh prints is read only up to a small cap (one JSON line is expected).
        let r = try await transport.run(ExecRequest(command, timeout: .seconds(60), outputLimit: 64 << 10))
        guard r.status == .exited(0) else {
            throw AgentError.malformedOutput(what: "cancel.sh", detail: "ended with \(r.status): \(r.stderrText)")
        }
        let line = r.stdoutText.split(separator: "\n").last.map(String.init) ?? ""
        guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], let running = object["running"] as? Bool else {
            throw AgentError.malformedOutput(what: "cancel.sh", detail: "expected one JSON line, found '\(line)'")
        }
        return running
    }
}

extension [BuildEvent] {
    /// The last phase the events name.
    var lastPhase: String? {
        for event in reversed() { if case let .phase(name, _) = event { return name } }
        return nil
    }
}
