import struct Inventory.Host
import FarmCore
import Foundation
import Inventory
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// Runs commands and moves files on the coordinator's own machine (`connection: local`).
///
/// It behaves like ``SSHTransport``: commands run under `/bin/sh -c` in a process group of their
/// own, which cancellation and timeouts stop (SIGTERM, then SIGKILL); uploads are atomic; downloads
/// are hashed and checked. Each operation runs on a thread of its own, off the concurrency pool.
public struct LocalTransport: Transport {
    /// The host this transport stands for.
    public let host: Host
    private let logger: Logger

    /// Creates a transport for `host` (normally one with `connection: local`).
    public init(host: Host, logger: Logger) {
        self.host = host
        self.logger = logger
    }

    /// Does nothing: the local machine is always reachable.
    public func connect() async throws {}

    public func exec(_ request: ExecRequest, output: @escaping @Sendable (ExecOutput) -> Void) async throws -> ExecStatus {
        let control = OperationControl(timeout: request.timeout)
        let name = host.name
        logger.debug("exec", metadata: ["host": "\(name)", "command": "\(request.command)"])
        // The coordinator's environment without any credential (tokens, twine's variables, the
        // ssh-agent socket, this host's passphrase variable): a build step that prints its
        // environment writes nothing secret into dist/logs.
        let environment = ChildEnvironment.sanitized(removing: Set([host.passphraseEnv].compactMap { $0 }))
        return try await runOnOwnThread(name: "wheelfarm-local-exec", control: control) { control in
            try LocalProcess.run(request, host: name, control: control, environment: environment, output: output)
        }
    }

    public func upload(_ source: UploadSource, to remotePath: String, mode: Int) async throws {
        let name = host.name
        let control = OperationControl(timeout: nil)
        try await runOnOwnThread(name: "wheelfarm-local-upload", control: control) { control in
            try LocalFiles.upload(source, to: remotePath, mode: mode, host: name, control: control)
        }
    }

    public func download(_ remotePath: String, to localPath: String, expected: ExpectedFile) async throws -> DownloadResult {
        let name = host.name
        let control = OperationControl(timeout: nil)
        return try await runOnOwnThread(name: "wheelfarm-local-download", control: control) { control in
            try LocalFiles.download(remotePath, to: localPath, expected: expected, host: name, control: control)
        }
    }

    /// Does nothing: there is no connection to close.
    public func close() async {}
}

/// Local file copies shared by ``LocalTransport``.
enum LocalFiles {
    static let chunkSize = 1 << 20

    static func upload(_ source: UploadSource, to path: String, mode: Int, host: String,
                       control: OperationControl) throws {
        let temporary = TemporaryName.beside(path, tag: "upload")
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode_t(0o600))
        guard fd >= 0 else {
            throw TransportError(.commandFailed, host: host, "cannot create '\(temporary)': \(errnoText())")
        }
        var done = false
        defer { if !done { unlink(temporary) } }
        do {
            defer { close(fd) }
            switch source {
            case .bytes(let data):
                try data.withUnsafeBytes { try writeAll(fd, $0, path: temporary, host: host) }
            case .file(let sourcePath):
                let input = open(sourcePath, O_RDONLY | O_CLOEXEC)
                guard input >= 0 else {
                    throw TransportError(.localIO, host: host, "cannot read '\(sourcePath)': \(errnoText())")
                }
                defer { close(input) }
                var buffer = [UInt8](repeating: 0, count: chunkSize)
                while true {
                    if control.isCancelled { throw TransportError(.cancelled, host: host, "upload to '\(path)' was cancelled") }
                    let n = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, chunkSize) }
                    if n < 0 { throw TransportError(.localIO, host: host, "cannot read '\(sourcePath)': \(errnoText())") }
                    if n == 0 { break }
                    try buffer.withUnsafeBytes { try writeAll(fd, UnsafeRawBufferPointer(rebasing: $0[0..<n]), path: temporary, host: host) }
                }
            }
            guard fchmod(fd, mode_t(mode)) == 0, fsync(fd) == 0 else {
                throw TransportError(.commandFailed, host: host, "cannot finish '\(temporary)': \(errnoText())")
            }
        }
        guard rename(temporary, path) == 0 else {
            throw TransportError(.commandFailed, host: host, "cannot rename '\(temporary)' to '\(path)': \(errnoText())")
        }
        done = true
    }

    /// Copies `source` (a regular file, not a symbolic link: a host's agent is untrusted and could
    /// name `/dev/zero` or a FIFO) to `path`, stopping as soon as more arrives than expected.
    static func download(_ source: String, to path: String, expected: ExpectedFile, host: String,
                         control: OperationControl) throws -> DownloadResult {
        // O_NONBLOCK: opening a FIFO must not wait for a writer; O_NOFOLLOW: the name itself.
        let input = open(source, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        guard input >= 0 else {
            let code = errno
            if code == ELOOP {
                throw TransportError(.transferCorrupt, host: host, "'\(source)' is a symbolic link; only regular files are downloaded")
            }
            throw TransportError(.commandFailed, host: host, "cannot read remote file '\(source)': \(errnoText(code))")
        }
        defer { close(input) }
        var info = stat()
        guard fstat(input, &info) == 0 else {
            throw TransportError(.commandFailed, host: host, "cannot read remote file '\(source)': \(errnoText())")
        }
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw TransportError(.transferCorrupt, host: host, "'\(source)' is not a regular file (a device, pipe or directory); only regular files are downloaded")
        }
        _ = fcntl(input, F_SETFL, fcntl(input, F_GETFL) & ~O_NONBLOCK)
        let sink = try DownloadSink(destination: path, expected: expected, host: host, source: source)
        var buffer = [UInt8](repeating: 0, count: chunkSize)
        while true {
            if control.isCancelled {
                sink.abandon()
                throw TransportError(.cancelled, host: host, "download of '\(source)' was cancelled")
            }
            let n = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, chunkSize) }
            if n < 0 {
                sink.abandon()
                throw TransportError(.commandFailed, host: host, "cannot read remote file '\(source)': \(errnoText())")
            }
            if n == 0 { break }
            try buffer.withUnsafeBytes { try sink.write(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        }
        return try sink.finish()
    }

    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String, host: String) throws {
        var offset = 0
        while offset < bytes.count {
            let n = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw TransportError(.localIO, host: host, "cannot write '\(path)': \(errnoText())")
            }
            offset += n
        }
    }
}

/// Receives a downloaded file: writes it under a temporary name, hashes it as it passes, and on
/// ``finish()`` checks it against the expectation and renames it into place.
final class DownloadSink {
    let destination: String
    let temporary: String
    let expected: ExpectedFile
    let host: String
    let source: String
    private var fd: Int32
    private var digest = StreamingDigest()

    init(destination: String, expected: ExpectedFile, host: String, source: String) throws {
        self.destination = destination; self.expected = expected; self.host = host; self.source = source
        temporary = TemporaryName.beside(destination, tag: "partial")
        fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode_t(0o644))
        guard fd >= 0 else {
            throw TransportError(.localIO, host: host, "cannot create '\(temporary)': \(errnoText())")
        }
    }

    /// Bytes received so far.
    var received: Int64 { digest.byteCount }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        // Past the expected size nothing more is written: a file that grows, or a lie about its
        // size, costs at most one chunk.
        if let want = expected.size, received + Int64(bytes.count) > want {
            abandon()
            throw TransportError(.transferCorrupt, host: host,
                                 "'\(source)' is larger than the \(want) bytes expected; the download was stopped and the partial file removed")
        }
        digest.update(bytes)
        do { try LocalFiles.writeAll(fd, bytes, path: temporary, host: host) } catch { abandon(); throw error }
    }

    /// Closes and removes the partial file.
    func abandon() {
        if fd >= 0 { close(fd); fd = -1 }
        unlink(temporary)
    }

    func finish() throws -> DownloadResult {
        let size = digest.byteCount
        let actual = digest.finalize()
        if let want = expected.size, want != size {
            abandon()
            throw TransportError(.transferCorrupt, host: host,
                                 "'\(source)' arrived with \(size) bytes, expected \(want); the partial file was removed, retry the download")
        }
        if let want = expected.digest, want != actual {
            abandon()
            throw TransportError(.transferCorrupt, host: host,
                                 "'\(source)' arrived with sha256 '\(actual.hex)', expected '\(want.hex)'; the file was removed, retry the download or rebuild it")
        }
        let closed = close(fd)
        fd = -1
        guard closed == 0, rename(temporary, destination) == 0 else {
            let text = errnoText()
            unlink(temporary)
            throw TransportError(.localIO, host: host, "cannot move '\(temporary)' to '\(destination)': \(text)")
        }
        return DownloadResult(path: destination, size: size, digest: actual)
    }

    deinit { if fd >= 0 { abandon() } }
}

/// Temporary names next to a destination (same directory, so `rename` is atomic).
enum TemporaryName {
    static func beside(_ path: String, tag: String) -> String {
        let slash = path.lastIndex(of: "/")
        let dir = slash.map { String(path[...$0]) } ?? ""
        let base = slash.map { String(path[path.index(after: $0)...]) } ?? path
        return "\(dir).\(base).wheelfarm-\(tag)-\(UUID().uuidString.prefix(8).lowercased())"
    }
}

/// The text of the current `errno`.
func errnoText(_ code: Int32 = errno) -> String { String(cString: strerror(code)) }
