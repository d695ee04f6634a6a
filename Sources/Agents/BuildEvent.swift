import FarmCore
import Foundation

/// How a build ended, as the agent's `finished` event and exit code say.
public enum BuildStatus: String, Sendable, Hashable, Codable, CaseIterable {
    case succeeded
    /// A dry run completed (nothing was built).
    case dryRun = "dry-run"
    /// The build itself failed; another host would fail the same way.
    case failed
    /// The host could not build (disk, toolchain, CPU flags, docker): retry elsewhere.
    case hostProblem = "host-problem"
    /// Bad arguments or a contradictory environment.
    case usage
    case cancelled

    /// The status `build.sh` exits with `code` for (`nil` for codes outside the protocol).
    public init?(exitCode code: Int32) {
        switch code {
        case 0: self = .succeeded
        case 1: self = .failed
        case 2: self = .usage
        case 3: self = .hostProblem
        case 4: self = .cancelled
        default: return nil
        }
    }

    /// The exit code `build.sh` uses for this status.
    public var exitCode: Int32 {
        switch self {
        case .succeeded, .dryRun: 0
        case .failed: 1
        case .usage: 2
        case .hostProblem: 3
        case .cancelled: 4
        }
    }

    /// True when another host might succeed where this one did not.
    public var isRetryableElsewhere: Bool { self == .hostProblem }
}

/// One event of the build protocol: a JSON line `build.sh` prints on stdout (`agents/README.md`).
///
/// Unknown events and keys are tolerated, so that newer agents can talk to older coordinators.
public enum BuildEvent: Sendable, Hashable {
    /// The build began.
    public struct Started: Sendable, Hashable {
        public var protocolVersion: Int?
        public var host: String?
        public var arch: String?
        public var pid: Int?
        public var jobDirectory: String?
        public var log: String?
        public var dryRun: Bool
    }

    /// A wheel the build produced.
    public struct Artifact: Sendable, Hashable {
        /// The wheel's file name.
        public var file: String
        /// Its absolute path on the host.
        public var path: String
        public var size: Int64
        public var sha256: SHA256Digest
        public init(file: String, path: String, size: Int64, sha256: SHA256Digest) {
            self.file = file; self.path = path; self.size = size; self.sha256 = sha256
        }
    }

    /// The build's end.
    public struct Finished: Sendable, Hashable {
        public var status: BuildStatus
        public var exit: Int32
        /// The phase the build was in.
        public var phase: String?
        public var message: String?
        /// The log file on the host.
        public var log: String?
    }

    case started(Started)
    /// A phase began; `logLine` is the log's line count at that moment.
    case phase(name: String, logLine: Int?)
    /// Host checks passed (`ok`), or in a dry run, one failed check.
    case check(ok: Bool, problem: String?)
    /// Dry run: a command that would run, with the build environment set so far.
    case command(argv: [String], cwd: String?, environment: [String: String])
    /// A command failed; its output starts at `line` of the log at `path`.
    case logPointer(path: String, line: Int, command: String?, exit: Int?)
    case artifact(Artifact)
    case finished(Finished)
    /// An event this coordinator does not know.
    case unknown(name: String)

    /// The fields any event may carry; decoded leniently.
    private struct Wire: Decodable {
        var event: String
        var job: String?
        var phase: String?
        var logLine: Int?
        var ok: Bool?
        var problem: String?
        var argv: [String]?
        var cwd: String?
        var env: [String: String]?
        var path: String?
        var line: Int?
        var command: String?
        var exit: Int?
        var file: String?
        var size: Int64?
        var sha256: String?
        var status: String?
        var message: String?
        var log: String?
        var `protocol`: Int?
        var host: String?
        var arch: String?
        var pid: Int?
        var jobDir: String?
        var dryRun: Bool?
    }

    /// Parses one line of the agent's stdout.
    ///
    /// Returns `nil` for a line that is not a JSON object with an `event` key (the protocol says
    /// stdout carries only events, but a broken host shell profile may print text); throws when a
    /// known event lacks a field it must have.
    public static func parse(line: some StringProtocol) throws(AgentError) -> BuildEvent? {
        let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
        guard trimmed.hasPrefix("{") else { return nil }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        guard let w = try? decoder.decode(Wire.self, from: Data(trimmed.utf8)) else { return nil }
        func need<T>(_ value: T?, _ key: String) throws(AgentError) -> T {
            guard let value else {
                throw .malformedOutput(what: "'\(w.event)' event", detail: "missing '\(key)' in \(trimmed)")
            }
            return value
        }
        switch w.event {
        case "started":
            return .started(Started(protocolVersion: w.protocol, host: w.host, arch: w.arch, pid: w.pid,
                                    jobDirectory: w.jobDir, log: w.log, dryRun: w.dryRun ?? false))
        case "phase":
            return .phase(name: try need(w.phase, "phase"), logLine: w.logLine)
        case "check":
            return .check(ok: w.ok ?? false, problem: w.problem)
        case "command":
            return .command(argv: try need(w.argv, "argv"), cwd: w.cwd, environment: w.env ?? [:])
        case "log":
            return .logPointer(path: try need(w.path, "path"), line: try need(w.line, "line"), command: w.command, exit: w.exit)
        case "artifact":
            let hex = try need(w.sha256, "sha256")
            guard let digest = SHA256Digest(hex: hex) else {
                throw .malformedOutput(what: "'artifact' event", detail: "'\(hex)' is not a SHA-256 digest")
            }
            return .artifact(Artifact(file: try need(w.file, "file"), path: try need(w.path, "path"),
                                      size: try need(w.size, "size"), sha256: digest))
        case "finished":
            let exit = Int32(truncatingIfNeeded: try need(w.exit, "exit"))
            let status = w.status.flatMap(BuildStatus.init(rawValue:)) ?? BuildStatus(exitCode: exit) ?? .failed
            return .finished(Finished(status: status, exit: exit, phase: w.phase?.isEmpty == false ? w.phase : nil,
                                      message: w.message?.isEmpty == false ? w.message : nil, log: w.log))
        default:
            return .unknown(name: w.event)
        }
    }
}
