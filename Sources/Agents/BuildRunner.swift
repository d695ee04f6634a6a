import struct Inventory.Host
import FarmCore
import Foundation
import Logging
import Remote

/// A wheel built on a host and now in the local dist directory, its digest verified.
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
    public func run(_ request: BuildRequest, on transport: any Transport, source: SourceArchive? = nil, dist: URL,
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
        let stream = EventStream(onEvent: onEvent, onLog: onLog)
        let status: ExecStatus
        do {
            status = try await transport.exec(ExecRequest(command)) { stream.receive($0) }
        } catch {
            if Task.isCancelled || (error as? TransportError)?.kind == .cancelled {
                await cancelRemote(job: request.jobID, agentDir: agentDir, workDir: workDir, transport: transport)
                let (events, tail) = stream.finish()
                return BuildOutcome(status: .cancelled, exitCode: nil, message: "cancelled by the coordinator", phase: nil,
                                    wheels: [], remoteLog: nil, failureLogLine: nil, logTail: tail, events: events)
            }
            throw error
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

        try FileManager.default.createDirectory(at: dist, withIntermediateDirectories: true)
        for artifact in artifacts {
            guard !artifact.file.contains("/"), artifact.file.hasSuffix(".whl") else {
                throw AgentError.malformedOutput(what: "artifact event", detail: "'\(artifact.file)' is not a wheel file name")
            }
            let local = dist.appendingPathComponent(artifact.file)
            do {
                let result = try await transport.download(artifact.path, to: local.path,
                                                          expected: ExpectedFile(digest: artifact.sha256, size: artifact.size))
                outcome.wheels.append(BuiltWheel(path: local, file: artifact.file, size: result.size, sha256: result.digest))
            } catch let error as TransportError where error.kind == .transferCorrupt {
                throw AgentError.artifactMismatch(file: artifact.file, expected: "sha256 \(artifact.sha256.hex), \(artifact.size) bytes",
                                                  found: error.message)
            } catch {
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
        let r = try await transport.run(ExecRequest(command, timeout: .seconds(60)))
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

/// Splits the agent's stdout into event lines and keeps a tail of its log, as output arrives on a
/// transport thread.
final class EventStream: @unchecked Sendable {  // all state is guarded by `lock`
    private let lock = NSLock()
    private var pending = Data()
    private var events: [BuildEvent] = []
    private var tail = Data()
    private let onEvent: @Sendable (BuildEvent) -> Void
    private let onLog: @Sendable (Data) -> Void
    static let tailLimit = 64 << 10

    init(onEvent: @escaping @Sendable (BuildEvent) -> Void, onLog: @escaping @Sendable (Data) -> Void) {
        self.onEvent = onEvent; self.onLog = onLog
    }

    func receive(_ piece: ExecOutput) {
        switch piece {
        case let .stderr(data):
            lock.withLock {
                tail.append(data)
                if tail.count > Self.tailLimit { tail.removeFirst(tail.count - Self.tailLimit) }
            }
            onLog(data)
        case let .stdout(data):
            let parsed: [BuildEvent] = lock.withLock {
                pending.append(data)
                var out: [BuildEvent] = []
                while let newline = pending.firstIndex(of: 0x0A) {
                    let line = String(decoding: pending[pending.startIndex..<newline], as: UTF8.self)
                    pending.removeSubrange(pending.startIndex...newline)
                    if let event = try? BuildEvent.parse(line: line) { out.append(event) }
                }
                events += out
                return out
            }
            parsed.forEach(onEvent)
        }
    }

    func finish() -> ([BuildEvent], String) {
        lock.withLock {
            if let event = try? BuildEvent.parse(line: String(decoding: pending, as: UTF8.self)) { events.append(event) }
            pending.removeAll()
            return (events, String(decoding: tail, as: UTF8.self))
        }
    }
}
