import struct Inventory.Host
import FarmCore
import Foundation
import Inventory

/// A way to run commands and move files on one build host: over SSH, or on this machine.
///
/// Implementations are safe to share between tasks. Every operation can be cancelled through its
/// task; cancelling or timing out an ``exec(_:output:)`` stops the command's whole process group.
/// All failures are ``TransportError`` values.
public protocol Transport: Sendable {
    /// The host this transport reaches.
    var host: Host { get }

    /// Makes sure a working connection exists (connects, checks the host key and authenticates).
    ///
    /// Other operations connect on demand; call this to surface connection problems early.
    func connect() async throws

    /// Runs a shell command, passing its output to `output` as it arrives, and returns how it ended.
    ///
    /// A non-zero exit status is a result, not an error. `output` is called on a transport thread,
    /// in arrival order; it should return quickly (a slow handler slows the command's output).
    func exec(_ request: ExecRequest, output: @escaping @Sendable (ExecOutput) -> Void) async throws -> ExecStatus

    /// Writes `source` to `remotePath` with permission bits `mode`, atomically: the data goes to a
    /// temporary name in the same directory, which is renamed over `remotePath` only when complete.
    func upload(_ source: UploadSource, to remotePath: String, mode: Int) async throws

    /// Copies `remotePath` to `localPath` in bounded memory, hashing while receiving.
    ///
    /// The file is written under a temporary name next to `localPath` and renamed when complete and
    /// matching `expected`; otherwise the partial file is removed and a `transferCorrupt` error thrown.
    func download(_ remotePath: String, to localPath: String, expected: ExpectedFile) async throws -> DownloadResult

    /// Closes connections; the transport may reconnect if used again.
    func close() async
}

/// A command to run on a host.
public struct ExecRequest: Sendable, Hashable {
    /// A command line for `/bin/sh -c`.
    public var command: String
    /// Bytes written to the command's standard input (then closed); `nil` gives an empty stdin.
    public var stdin: Data?
    /// Wall-clock limit; when it passes the process group is stopped and `timeout` is thrown.
    public var timeout: Duration?
    /// Directory to run in; `nil` is the login directory (SSH) or the current directory (local).
    public var workingDirectory: String?
    /// Extra environment variables. They appear in the remote shell's command line: never put
    /// secrets here, pass them on ``stdin`` instead.
    public var environment: [String: String]
    /// How long stopped commands get between SIGTERM and SIGKILL.
    public var killGracePeriod: Duration
    /// The most bytes (stdout and stderr together) ``Transport/run(_:)`` collects; a command that
    /// prints more is stopped and ``TransportError/Kind/outputTooLarge`` thrown. A host is
    /// untrusted: a probe that prints without end must not fill the coordinator's memory.
    /// (Streaming ``Transport/exec(_:output:)`` callers bound what they keep themselves.)
    public var outputLimit: Int

    /// The default ``outputLimit``: far above what probe, check and cancel print.
    public static let defaultOutputLimit = 4 << 20

    /// Creates a request.
    public init(_ command: String, stdin: Data? = nil, timeout: Duration? = nil, workingDirectory: String? = nil,
                environment: [String: String] = [:], killGracePeriod: Duration = .seconds(2),
                outputLimit: Int = ExecRequest.defaultOutputLimit) {
        self.command = command; self.stdin = stdin; self.timeout = timeout
        self.workingDirectory = workingDirectory; self.environment = environment
        self.killGracePeriod = killGracePeriod; self.outputLimit = outputLimit
    }
}

/// A piece of a command's output.
public enum ExecOutput: Sendable, Hashable {
    /// Bytes from standard output.
    case stdout(Data)
    /// Bytes from standard error.
    case stderr(Data)
}

/// How a command ended.
public enum ExecStatus: Sendable, Hashable, CustomStringConvertible {
    /// It exited with this status.
    case exited(Int32)
    /// It was killed by this signal (name without `SIG`, e.g. `KILL`).
    case signaled(String)

    /// True for exit status 0.
    public var isSuccess: Bool { self == .exited(0) }

    public var description: String {
        switch self {
        case .exited(let code): "exit status \(code)"
        case .signaled(let name): "signal \(name)"
        }
    }
}

/// A finished command with all of its output (see ``Transport/run(_:)``).
public struct ExecResult: Sendable, Hashable {
    /// How the command ended.
    public var status: ExecStatus
    /// Everything it wrote to standard output.
    public var stdout: Data
    /// Everything it wrote to standard error.
    public var stderr: Data

    /// Standard output as UTF-8 text.
    public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    /// Standard error as UTF-8 text.
    public var stderrText: String { String(decoding: stderr, as: UTF8.self) }
}

/// What to upload.
public enum UploadSource: Sendable, Hashable {
    /// The contents of a local file.
    case file(String)
    /// These bytes.
    case bytes(Data)
}

/// What a downloaded file must be; unset fields are not checked.
public struct ExpectedFile: Sendable, Hashable {
    /// The SHA-256 the file must have.
    public var digest: SHA256Digest?
    /// The size in bytes the file must have.
    public var size: Int64?

    /// Creates an expectation.
    public init(digest: SHA256Digest? = nil, size: Int64? = nil) { self.digest = digest; self.size = size }

    /// No expectation: any content is accepted (the digest is still computed and returned).
    public static let any = ExpectedFile()
}

/// A completed download.
public struct DownloadResult: Sendable, Hashable {
    /// Where the file now is.
    public var path: String
    /// Its size in bytes.
    public var size: Int64
    /// Its SHA-256, computed while receiving.
    public var digest: SHA256Digest
}

extension Transport {
    /// Runs a command and collects its output, at most ``ExecRequest/outputLimit`` bytes: past
    /// that the command is stopped (its process group, as on cancellation) and
    /// ``TransportError/Kind/outputTooLarge`` is thrown.
    public func run(_ request: ExecRequest) async throws -> ExecResult {
        let collected = OutputCollector(limit: request.outputLimit)
        let command = Task { try await exec(request) { collected.append($0) } }
        collected.onOverflow { command.cancel() }
        let status: ExecStatus
        do {
            status = try await withTaskCancellationHandler { try await command.value } onCancel: { command.cancel() }
        } catch {
            if collected.overflowed && !Task.isCancelled {
                throw TransportError(.outputTooLarge, host: host.name,
                                     "command '\(request.command.prefix(200))' printed more than \(request.outputLimit) bytes, the most wheelfarm reads from a host; it was stopped (check the host's shell profile and agent)")
            }
            throw error
        }
        if collected.overflowed {
            throw TransportError(.outputTooLarge, host: host.name,
                                 "command '\(request.command.prefix(200))' printed more than \(request.outputLimit) bytes, the most wheelfarm reads from a host")
        }
        let (out, err) = collected.take()
        return ExecResult(status: status, stdout: out, stderr: err)
    }

    /// Runs a command line and collects all of its output.
    public func run(_ command: String, stdin: Data? = nil, timeout: Duration? = nil) async throws -> ExecResult {
        try await run(ExecRequest(command, stdin: stdin, timeout: timeout))
    }

    /// Runs a command and throws `commandFailed` unless it exits with status 0; returns its stdout.
    @discardableResult
    public func checkedRun(_ request: ExecRequest) async throws -> ExecResult {
        let result = try await run(request)
        guard result.status.isSuccess else {
            let tail = String(result.stderrText.suffix(400)).trimmingCharacters(in: .whitespacesAndNewlines)
            throw TransportError(.commandFailed, host: host.name,
                                 "command '\(request.command)' ended with \(result.status), expected exit status 0"
                                 + (tail.isEmpty ? "" : "; stderr ends with '\(tail)'"))
        }
        return result
    }

    /// Runs a command, delivering its output and then its status as a stream of events.
    ///
    /// Ending the iteration early cancels the command (its process group is stopped).
    public func execStream(_ request: ExecRequest) -> AsyncThrowingStream<ExecEvent, any Error> {
        AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    let status = try await exec(request) { piece in
                        switch piece {
                        case .stdout(let d): continuation.yield(.stdout(d))
                        case .stderr(let d): continuation.yield(.stderr(d))
                        }
                    }
                    continuation.yield(.exit(status))
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }
}

/// An event of ``Transport/execStream(_:)``.
public enum ExecEvent: Sendable, Hashable {
    /// Bytes from standard output.
    case stdout(Data)
    /// Bytes from standard error.
    case stderr(Data)
    /// The command ended (always the last event).
    case exit(ExecStatus)
}
