internal import CLibSSH2
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A libssh2 channel handed from one job of the session thread to the next.
private final class ChannelBox: @unchecked Sendable {
    // @unchecked: created and used only on the owning session's thread.
    let channel: OpaquePointer
    init(_ channel: OpaquePointer) { self.channel = channel }
}

extension SSHSession {
    /// Opens a `direct-tcpip` channel from this bastion to `next` and returns one end of a local
    /// socket pair whose other end this session's thread forwards through the channel, so that a
    /// libssh2 session for `next` can run over it like over a TCP socket (`ssh -J`).
    ///
    /// The forwarding loop then owns this session's thread: a bastion session carries one tunnel
    /// and nothing else. It ends when the next hop closes its end, the channel closes or the
    /// session is shut down.
    func openTunnel(to next: SSHTarget) async throws -> Int32 {
        let control = OperationControl(timeout: .milliseconds(Int(target.connectTimeout * 1000)))
        let pump = OperationControl(timeout: nil)
        pumpControl = pump
        return try await perform(control) { [self] in
            guard let session = handle else { throw TransportError(.connectionLost, host: host.name, "the connection to '\(endpoint)' is closed") }
            let channel: OpaquePointer?
            do {
                channel = try retryPointer(control) {
                    libssh2_channel_direct_tcpip_ex(session, next.hostname, Int32(next.port), "127.0.0.1", 22)
                }
            } catch {
                throw TransportError(.unreachable, host: host.name, "bastion '\(target.label)' (\(endpoint)) did not open a connection to '\(next.endpoint)' within \(target.connectTimeout) s")
            }
            guard let channel else {
                let text = lastErrorText()
                throw TransportError(.unreachable, host: host.name,
                                     "bastion '\(target.label)' (\(endpoint)) refused to forward a connection to '\(next.endpoint)': \(text); check that the bastion can reach it and that its sshd allows TCP forwarding (AllowTcpForwarding)")
            }
            var fds: [Int32] = [-1, -1]
            guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else {
                _ = libssh2_channel_free(channel)
                throw TransportError(.localIO, host: host.name, "cannot create a socket pair for the tunnel: \(errnoText())")
            }
            let box = ChannelBox(channel)
            let local = fds[0]
            thread.submit { [self] in forward(box.channel, local: local, control: pump) }
            return fds[1]
        }
    }

    /// Copies bytes between `local` and `channel` until either side ends (runs on the thread).
    private func forward(_ channel: OpaquePointer, local: Int32, control: OperationControl) {
        defer {
            _ = libssh2_channel_free(channel)
            close(local)
            markBroken()
        }
        let capacity = 32 * 1024
        var buffer = [UInt8](repeating: 0, count: capacity)
        var toChannel: [UInt8] = [], toLocal: [UInt8] = []
        var localEOF = false, channelEOF = false, sentEOF = false
        while !control.isCancelled {
            var progressed = false
            if toChannel.isEmpty && !localEOF {
                let n = read(local, &buffer, capacity)
                if n > 0 { toChannel.append(contentsOf: buffer[0..<n]); progressed = true }
                else if n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) { localEOF = true; progressed = true }
            }
            if !toChannel.isEmpty {
                let rc = toChannel.withUnsafeBufferPointer { raw in
                    raw.withMemoryRebound(to: CChar.self) { wf_channel_write(channel, $0.baseAddress, $0.count) }
                }
                if rc > 0 { toChannel.removeFirst(rc); progressed = true }
                else if rc != Int(LIBSSH2_ERROR_EAGAIN) { return }
            }
            if localEOF && toChannel.isEmpty && !sentEOF {
                let rc = libssh2_channel_send_eof(channel)
                if rc != LIBSSH2_ERROR_EAGAIN { sentEOF = true; progressed = true }
                // The next hop closed its end: nothing more will be read from the channel.
                return
            }
            if toLocal.isEmpty && !channelEOF {
                let rc = buffer.withUnsafeMutableBufferPointer { raw in
                    raw.withMemoryRebound(to: CChar.self) { wf_channel_read_stdout(channel, $0.baseAddress, capacity) }
                }
                if rc > 0 { toLocal.append(contentsOf: buffer[0..<rc]); progressed = true }
                else if rc == 0 { if libssh2_channel_eof(channel) != 0 { channelEOF = true; progressed = true } }
                else if rc != Int(LIBSSH2_ERROR_EAGAIN) { return }
            }
            if !toLocal.isEmpty {
                let n = toLocal.withUnsafeBufferPointer { write(local, $0.baseAddress, $0.count) }
                if n > 0 { toLocal.removeFirst(n); progressed = true }
                else if errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR { return }
            }
            if channelEOF && toLocal.isEmpty { return }
            if progressed { continue }
            waitForTunnel(local: local, wantRead: toChannel.isEmpty && !localEOF, wantWrite: !toLocal.isEmpty, control: control)
        }
    }

    /// Waits until the bastion's socket, the local end or the wake-up pipe is ready, sending
    /// the bastion's keepalives when due.
    private func waitForTunnel(local: Int32, wantRead: Bool, wantWrite: Bool, control: OperationControl) {
        guard let session = handle else { return }
        let directions = libssh2_session_block_directions(session)
        var events = Int16(POLLIN)
        if directions & LIBSSH2_SESSION_BLOCK_OUTBOUND != 0 { events |= Int16(POLLOUT) }
        var localEvents: Int16 = 0
        if wantRead { localEvents |= Int16(POLLIN) }
        if wantWrite { localEvents |= Int16(POLLOUT) }
        var fds = [pollfd(fd: socketDescriptor, events: events, revents: 0),
                   pollfd(fd: local, events: localEvents, revents: 0),
                   pollfd(fd: control.wakeFD, events: Int16(POLLIN), revents: 0)]
        let cap: Int32 = target.keepaliveInterval > 0 ? Int32(min(target.keepaliveInterval, 5) * 1000) : 5000
        let ready = poll(&fds, 3, cap)
        if ready > 0 && fds[2].revents != 0 { control.drainWake() }
        sendKeepaliveIfDue()
    }
}
