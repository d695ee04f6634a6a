internal import CLibSSH2
import Foundation
import Inventory
#if canImport(Glibc)
import Glibc
#endif

extension SSHSession {
    /// Runs `request` on a new channel, streaming output until the remote side closes it.
    ///
    /// Process groups: sshd starts each exec's shell as the leader of a new session, so the shell's
    /// PID is also its process group. The command line first writes that PID on stdout behind a
    /// marker (consumed here, never passed on), then `exec`s `/bin/sh -c` with the user's command
    /// (see ``Shell/script(for:)``), keeping the PID. On cancellation or timeout a second channel runs
    /// `kill -TERM -- -PGID`, waits the grace period and sends SIGKILL: everything the command
    /// started goes, unless it moved itself to another process group (`setsid`, daemons).
    func exec(_ request: ExecRequest, control: OperationControl,
              output: @Sendable (ExecOutput) -> Void) throws -> ExecStatus {
        guard let session = handle, isUsable else {
            throw TransportError(.connectionLost, host: host.name, "the connection to '\(endpoint)' is closed")
        }
        let what = "running '\(request.command)'"
        let marker = "wheelfarm-pgid:"
        let script = "echo \(marker)$$; " + Shell.script(for: request)
        let channel: OpaquePointer
        do {
            guard let opened = try retryPointer(control, { wf_channel_open_session(session) }) else {
                throw failure(libssh2_session_last_errno(session), while: "opening a channel for \(what)")
            }
            channel = opened
            let rc = try retry(control) { wf_channel_exec(channel, script, UInt32(script.utf8.count)) }
            guard rc == 0 else {
                freeChannel(channel)
                throw failure(rc, while: "starting '\(request.command)'")
            }
        } catch let interruption as Interruption {
            throw interrupted(interruption, while: what, timeout: request.timeout)
        }

        var pgid: Int32?
        var pidLine = Data()
        // Lines before the marker line (printed by the login shell's start-up files) are output.
        func deliverStdout(_ data: Data) {
            if pgid != nil { output(.stdout(data)); return }
            pidLine.append(data)
            while pgid == nil, let newline = pidLine.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: pidLine[pidLine.startIndex..<newline], as: UTF8.self)
                let rest = Data(pidLine[pidLine.index(after: newline)...])
                if line.hasPrefix(marker) {
                    pgid = Int32(line.dropFirst(marker.count)) ?? -1
                    if !rest.isEmpty { output(.stdout(rest)) }
                } else {
                    output(.stdout(Data(pidLine[pidLine.startIndex...newline])))
                }
                pidLine = rest
            }
        }

        let stdinData = request.stdin ?? Data()
        var stdinOffset = 0
        var stdinOpen = true
        var writeBlockedOutbound = false
        let bufferSize = 256 * 1024
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bufferSize, alignment: 16)
        defer { buffer.deallocate() }
        let base = buffer.baseAddress!.assumingMemoryBound(to: CChar.self)
        // Same arguments on every retry: libssh2 requires a half-sent packet to be retried as is.
        func writeStdinChunk() -> Int {
            let chunk = min(stdinData.count - stdinOffset, 32 * 1024)
            return stdinData.withUnsafeBytes { bytes in
                wf_channel_write(channel, bytes.baseAddress!.assumingMemoryBound(to: CChar.self) + stdinOffset, chunk)
            }
        }

        do {
            while true {
                var progressed = false
                // Stdin first while a packet is half-sent: libssh2 must finish it before anything else.
                if stdinOpen {
                    if stdinOffset < stdinData.count {
                        let n = writeStdinChunk()
                        if n > 0 {
                            stdinOffset += n; progressed = true; writeBlockedOutbound = false
                        } else if n == LIBSSH2_ERROR_EAGAIN {
                            writeBlockedOutbound = libssh2_session_block_directions(session) & LIBSSH2_SESSION_BLOCK_OUTBOUND != 0
                        } else if SSHSession.isConnectionError(Int32(n)) {
                            throw failure(Int32(n), while: what)
                        } else {
                            stdinOpen = false  // the command closed its stdin early: stop feeding it
                        }
                    }
                    if stdinOpen && stdinOffset >= stdinData.count {
                        let rc = libssh2_channel_send_eof(channel)
                        if rc == 0 { stdinOpen = false; progressed = true; writeBlockedOutbound = false }
                        else if rc == LIBSSH2_ERROR_EAGAIN {
                            writeBlockedOutbound = libssh2_session_block_directions(session) & LIBSSH2_SESSION_BLOCK_OUTBOUND != 0
                        } else if SSHSession.isConnectionError(rc) { throw failure(rc, while: what) }
                        else { stdinOpen = false }
                    }
                }
                if !writeBlockedOutbound {
                    // Drain stdout and stderr together: EOF is only reported once both are empty.
                    for isStdout in [true, false] {
                        while true {
                            let n = isStdout ? wf_channel_read_stdout(channel, base, bufferSize)
                                             : wf_channel_read_stderr(channel, base, bufferSize)
                            if n > 0 {
                                progressed = true
                                let data = Data(bytes: base, count: n)
                                if isStdout { deliverStdout(data) } else { output(.stderr(data)) }
                                if n < bufferSize { break }
                            } else if n == 0 || n == LIBSSH2_ERROR_EAGAIN {
                                break
                            } else {
                                throw failure(Int32(n), while: what)
                            }
                        }
                    }
                    if libssh2_channel_eof(channel) != 0 { break }
                }
                if !progressed { try waitSocket(control) }
            }
        } catch let interruption as Interruption {
            if writeBlockedOutbound && stdinOffset < stdinData.count {
                // Finish the half-sent stdin packet before the channel that stops the command.
                _ = try? retry(OperationControl(timeout: .seconds(5))) { Int32(truncatingIfNeeded: writeStdinChunk()) }
            }
            stopRemoteGroup(pgid, channel: channel, grace: request.killGracePeriod)
            throw interrupted(interruption, while: what, timeout: request.timeout)
                .withNote("its remote processes were stopped")
        } catch {
            freeChannel(channel)
            throw error
        }

        // Closing the channel makes sure the exit status (sent before the close) has arrived.
        let status: ExecStatus
        do {
            var rc = try retry(control) { libssh2_channel_close(channel) }
            if rc == 0 { rc = try retry(control) { libssh2_channel_wait_closed(channel) } }
            if rc != 0 && SSHSession.isConnectionError(rc) {
                freeChannel(channel)
                throw failure(rc, while: what)
            }
            status = exitStatus(of: channel)
        } catch let interruption as Interruption {
            freeChannel(channel)
            throw interrupted(interruption, while: what, timeout: request.timeout)
        }
        freeChannel(channel)
        return status
    }

    /// The exit signal or status the server reported for `channel`.
    private func exitStatus(of channel: OpaquePointer) -> ExecStatus {
        var signal: UnsafeMutablePointer<CChar>?
        var signalLength = 0
        _ = libssh2_channel_get_exit_signal(channel, &signal, &signalLength, nil, nil, nil, nil)
        if let signal {
            let name = String(cString: signal)
            libssh2_free(handle, signal)
            if !name.isEmpty { return .signaled(name) }
        }
        return .exited(libssh2_channel_get_exit_status(channel))
    }

    /// Stops the process group of an interrupted command through a second channel, then closes
    /// the command's channel. Failures here are logged, not thrown: the interruption is reported.
    private func stopRemoteGroup(_ pgid: Int32?, channel: OpaquePointer, grace: Duration) {
        let control = OperationControl(timeout: grace + .seconds(10))
        guard let session = handle else { return }
        do {
            if let pgid, pgid > 1 {
                let script = Shell.killGroupScript(pgid: pgid, grace: grace)
                if let killer = try retryPointer(control, { wf_channel_open_session(session) }) {
                    var rc = try retry(control) { wf_channel_exec(killer, script, UInt32(script.utf8.count)) }
                    if rc == 0 {
                        // Discard the killer's and the command's output while waiting.
                        let sink = UnsafeMutablePointer<CChar>.allocate(capacity: 32 * 1024)
                        defer { sink.deallocate() }
                        while libssh2_channel_eof(killer) == 0 {
                            var moved = false
                            for target in [killer, channel] {
                                if wf_channel_read_stdout(target, sink, 32 * 1024) > 0 { moved = true }
                                if wf_channel_read_stderr(target, sink, 32 * 1024) > 0 { moved = true }
                            }
                            if !moved { try waitSocket(control) }
                        }
                        rc = try retry(control) { libssh2_channel_close(killer) }
                    }
                    freeChannel(killer)
                }
            }
            _ = try retry(control) { libssh2_channel_close(channel) }
        } catch {
            logger.warning("could not stop remote process group", metadata: ["host": "\(host.name)", "pgid": "\(pgid ?? -1)"])
            markBroken()
        }
        freeChannel(channel)
    }

    /// Frees a channel, waiting briefly if libssh2 must still send something.
    func freeChannel(_ channel: OpaquePointer) {
        let control = OperationControl(timeout: .seconds(5))
        if (try? retry(control, { libssh2_channel_free(channel) })) == nil { markBroken() }
    }
}

extension TransportError {
    /// The same error with `note` appended to its message.
    func withNote(_ note: String) -> TransportError {
        TransportError(kind, host: host, message + "; " + note)
    }
}
