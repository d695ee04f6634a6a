internal import CLibSSH2
import FarmCore
import Foundation
import Inventory
#if canImport(Glibc)
import Glibc
#endif

extension SSHSession {
    /// Receives `remotePath` over SCP into a ``DownloadSink`` (temporary file, hashed as it arrives).
    ///
    /// SCP rather than SFTP: with libssh2 1.10 SFTP reads measured no faster than SCP on loopback,
    /// and SCP is one channel read loop with the size known up front, which also makes a truncated
    /// transfer (EOF before that size) easy to tell from a complete one. Benchmarks/ssh-download.sh
    /// compares it with OpenSSH `scp`.
    func download(_ remotePath: String, to localPath: String, expected: ExpectedFile,
                  control: OperationControl) throws -> DownloadResult {
        guard let session = handle, isUsable else {
            throw TransportError(.connectionLost, host: host.name, "the connection to '\(endpoint)' is closed")
        }
        let what = "downloading '\(remotePath)'"
        var info = stat()
        let channel: OpaquePointer
        do {
            guard let opened = try retryPointer(control, { libssh2_scp_recv2(session, remotePath, &info) }) else {
                let rc = libssh2_session_last_errno(session)
                if SSHSession.isConnectionError(rc) { throw failure(rc, while: what) }
                throw TransportError(.commandFailed, host: host.name,
                                     "cannot read remote file '\(remotePath)': \(lastErrorText()); check that the path exists on the host")
            }
            channel = opened
        } catch let interruption as Interruption {
            throw interrupted(interruption, while: what, timeout: nil)
        }
        let size = Int64(info.st_size)
        // SCP states the size first: a file larger than expected is refused before any byte moves.
        if let want = expected.size, size > want {
            freeChannel(channel)
            throw TransportError(.transferCorrupt, host: host.name,
                                 "'\(remotePath)' has \(size) bytes, more than the \(want) expected; it was not downloaded")
        }
        let sink: DownloadSink
        do {
            sink = try DownloadSink(destination: localPath, expected: expected, host: host.name, source: remotePath)
        } catch {
            freeChannel(channel)
            throw error
        }
        let bufferSize = 1 << 20
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bufferSize, alignment: 16)
        defer { buffer.deallocate() }
        let base = buffer.baseAddress!.assumingMemoryBound(to: CChar.self)
        do {
            while sink.received < size {
                let want = Int(min(Int64(bufferSize), size - sink.received))
                let n = wf_channel_read_stdout(channel, base, want)
                if n > 0 {
                    try sink.write(UnsafeRawBufferPointer(start: buffer.baseAddress, count: n))
                } else if n == LIBSSH2_ERROR_EAGAIN {
                    try waitSocket(control)
                } else if n == 0 {
                    if libssh2_channel_eof(channel) != 0 {
                        throw TransportError(.transferCorrupt, host: host.name,
                                             "'\(remotePath)' ended after \(sink.received) of \(size) bytes (truncated); the partial file was removed, retry the download")
                    }
                    try waitSocket(control)
                } else {
                    throw failure(Int32(n), while: what)
                }
            }
        } catch let interruption as Interruption {
            sink.abandon()
            freeChannel(channel)
            throw interrupted(interruption, while: what, timeout: nil)
        } catch {
            sink.abandon()
            freeChannel(channel)
            throw error
        }
        freeChannel(channel)
        return try sink.finish()
    }

    /// Sends `source` over SCP to a temporary name beside `remotePath`, then renames it into place
    /// with the requested mode through an exec; the temporary file is removed on failure.
    func upload(_ source: UploadSource, to remotePath: String, mode: Int, control: OperationControl) throws {
        guard let session = handle, isUsable else {
            throw TransportError(.connectionLost, host: host.name, "the connection to '\(endpoint)' is closed")
        }
        let what = "uploading '\(remotePath)'"
        let temporary = TemporaryName.beside(remotePath, tag: "upload")
        let reader: UploadReader
        do { reader = try UploadReader(source, host: host.name) } catch { throw error }
        defer { reader.close() }

        let channel: OpaquePointer
        do {
            guard let opened = try retryPointer(control, { wf_scp_send(session, temporary, 0o600, reader.size) }) else {
                let rc = libssh2_session_last_errno(session)
                if SSHSession.isConnectionError(rc) { throw failure(rc, while: what) }
                throw TransportError(.commandFailed, host: host.name,
                                     "cannot create '\(temporary)' on the host: \(lastErrorText()); check that the directory exists and is writable")
            }
            channel = opened
        } catch let interruption as Interruption {
            throw interrupted(interruption, while: what, timeout: nil)
        }
        do {
            var sent: Int64 = 0
            while let chunk = try reader.next() {
                var offset = 0
                while offset < chunk.count {
                    let n = chunk.withUnsafeBytes { bytes in
                        wf_channel_write(channel, bytes.baseAddress!.assumingMemoryBound(to: CChar.self) + offset, chunk.count - offset)
                    }
                    if n > 0 { offset += n } else if n == LIBSSH2_ERROR_EAGAIN { try waitSocket(control) }
                    else { throw failure(Int32(n), while: what) }
                }
                sent += Int64(chunk.count)
            }
            // SCP protocol: the source ends a file with one zero byte, which the sink (`scp -t`)
            // acknowledges; libssh2 leaves it to us. Without it scp exits 1 at EOF.
            while true {
                let n = wf_channel_write(channel, "", 1)
                if n == 1 { break }
                if n == LIBSSH2_ERROR_EAGAIN { try waitSocket(control) } else { throw failure(Int32(n), while: what) }
            }
            var rc = try retry(control) { libssh2_channel_send_eof(channel) }
            if rc == 0 { rc = try retry(control) { libssh2_channel_wait_eof(channel) } }
            if rc == 0 { rc = try retry(control) { libssh2_channel_close(channel) } }
            if rc == 0 { rc = try retry(control) { libssh2_channel_wait_closed(channel) } }
            if rc != 0 { throw failure(rc, while: what) }
            let status = libssh2_channel_get_exit_status(channel)
            guard status == 0, sent == reader.size else {
                throw TransportError(.commandFailed, host: host.name,
                                     "the host's scp could not write '\(temporary)' (exit status \(status)); check that the directory exists, free space and permissions")
            }
            freeChannel(channel)
        } catch let interruption as Interruption {
            freeChannel(channel)
            removeRemote(temporary)
            throw interrupted(interruption, while: what, timeout: nil)
        } catch {
            freeChannel(channel)
            if isUsable { removeRemote(temporary) }
            throw error
        }

        let finish = "chmod \(String(mode, radix: 8)) \(Shell.quote(temporary)) && mv -f \(Shell.quote(temporary)) \(Shell.quote(remotePath))"
        let collected = OutputCollector()
        let status = try exec(ExecRequest(finish), control: control) { collected.append($0) }
        guard status.isSuccess else {
            removeRemote(temporary)
            let (_, err) = collected.take()
            throw TransportError(.commandFailed, host: host.name,
                                 "cannot move the uploaded file into place as '\(remotePath)': \(String(decoding: err, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))")
        }
    }

    /// Best-effort removal of a remote temporary file.
    private func removeRemote(_ path: String) {
        _ = try? exec(ExecRequest("rm -f \(Shell.quote(path))"), control: OperationControl(timeout: .seconds(10))) { _ in }
    }
}

/// Reads an upload source in 1 MiB chunks.
final class UploadReader {
    let size: Int64
    private var data: Data?
    private var fd: Int32 = -1
    private let path: String
    private let host: String

    init(_ source: UploadSource, host: String) throws {
        self.host = host
        switch source {
        case .bytes(let bytes):
            data = bytes; size = Int64(bytes.count); path = "<bytes>"
        case .file(let file):
            path = file
            fd = open(file, O_RDONLY | O_CLOEXEC)
            var info = stat()
            guard fd >= 0, fstat(fd, &info) == 0 else {
                throw TransportError(.localIO, host: host, "cannot read '\(file)': \(errnoText())")
            }
            size = Int64(info.st_size)
        }
    }

    func next() throws -> Data? {
        if let bytes = data {
            data = nil
            return bytes.isEmpty ? nil : bytes
        }
        guard fd >= 0 else { return nil }
        var chunk = Data(count: 1 << 20)
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 { throw TransportError(.localIO, host: host, "cannot read '\(path)': \(errnoText())") }
        if n == 0 { return nil }
        chunk.count = n
        return chunk
    }

    func close() {
        if fd >= 0 { Glibc.close(fd); fd = -1 }
    }
}
