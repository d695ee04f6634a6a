import struct Inventory.Host
internal import CLibSSH2
import FarmCore
import Foundation
import Inventory
import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The name a session reports errors under (the inventory host's).
struct SessionHost: Sendable, Hashable {
    let name: String
}

/// How a host's key was accepted when a session connected.
public enum HostKeyStatus: String, Sendable, Hashable, Codable {
    /// Found in known_hosts.
    case known
    /// Matched the key pinned in the inventory (and known_hosts had no entry for it).
    case pinned
    /// Unknown before; recorded in known_hosts under `accept-new`.
    case recorded
}

/// One authenticated SSH connection to a host: a TCP socket and a libssh2 session, driven by a
/// dedicated thread.
///
/// Every libssh2 call on the session runs on ``thread`` (libssh2 sessions are not thread-safe), in
/// non-blocking mode: a call that would block returns `EAGAIN`, and the thread then waits in
/// `poll()` on the socket (in the directions `libssh2_session_block_directions` names) and on the
/// operation's wake-up pipe, so cancellation and deadlines take effect at once and nothing spins.
/// Operations on one session run one after another; ``SSHTransport`` opens more sessions for
/// concurrent operations.
final class SSHSession: @unchecked Sendable {
    // @unchecked: `session`, `socketFD`, `nextKeepalive` and the connection facts are only touched
    // on `thread` (every method below that uses them is called from a job on that thread), or
    // before the first job is submitted; `broken` is atomic; `bastions` and `pumpControl` are
    // set before the session is handed out.
    let host: SessionHost
    /// Where and how this session connects (a build host, or one of its bastions).
    let target: SSHTarget
    let options: SSHClientOptions
    let logger: Logger
    let thread: BlockingThread
    private let keepaliveBox: KeepaliveBox

    private var session: OpaquePointer?
    private var socketFD: Int32 = -1
    private var nextKeepalive = ContinuousClock.now
    private let broken = Atomic<Bool>(false)
    private let closed = Atomic<Bool>(false)

    /// How the host key was accepted.
    var hostKeyStatus: HostKeyStatus = .known
    /// What authenticated the session (e.g. `ssh-agent key 'me@laptop'`).
    var authenticatedBy = ""
    /// The user the session is logged in as.
    var user = ""
    /// The bastions this session's connection runs through, first connected first.
    private(set) var bastions: [SSHSession] = []
    /// Stops the forwarding loop when this session carries a tunnel for the next hop.
    var pumpControl: OperationControl?

    /// The settings this session connects with.
    var settings: SSHTarget { target }

    private init(name: String, target: SSHTarget, options: SSHClientOptions, logger: Logger) {
        self.host = SessionHost(name: name); self.target = target; self.options = options; self.logger = logger
        let box = KeepaliveBox()
        keepaliveBox = box
        var hook: (@Sendable () -> Void)?
        if target.keepaliveInterval > 0 { hook = { box.session?.idleKeepalive() } }
        thread = BlockingThread(name: "wheelfarm-ssh-\(name)",
                                idleInterval: TimeInterval(max(1, target.keepaliveInterval)), idle: hook)
    }

    /// True while the session can take more operations.
    var isUsable: Bool {
        !broken.load(ordering: .relaxed) && !closed.load(ordering: .relaxed) && bastions.allSatisfy(\.isUsable)
    }

    /// Connects (through the target's bastions, if any), verifies each host key and
    /// authenticates, each hop within its connect timeout.
    static func connect(name: String, target: SSHTarget, options: SSHClientOptions,
                        logger: Logger) async throws -> SSHSession {
        guard LibSSH2.ensureInitialised() else {
            throw TransportError(.localIO, host: name, "libssh2 could not be initialised")
        }
        var chain: [SSHSession] = []
        var socket: Int32?
        do {
            for (index, bastion) in target.jumps.enumerated() {
                let next = try await open(name: name, target: bastion, socket: socket, options: options, logger: logger)
                chain.append(next)
                let nextHop = index + 1 < target.jumps.count ? target.jumps[index + 1] : target
                socket = try await next.openTunnel(to: nextHop)
            }
            let session = try await open(name: name, target: target, socket: socket, options: options, logger: logger)
            session.bastions = chain
            return session
        } catch {
            for bastion in chain.reversed() { await bastion.shutdownAndWait() }
            throw error
        }
    }

    /// One hop: a session over `socket` (a tunnel through `via`) or a new TCP connection.
    private static func open(name: String, target: SSHTarget, socket: Int32?, options: SSHClientOptions,
                             logger: Logger) async throws -> SSHSession {
        let session = SSHSession(name: name, target: target, options: options, logger: logger)
        let control = OperationControl(timeout: .milliseconds(Int(target.connectTimeout * 1000)))
        do {
            try await session.perform(control) { try session.establish(control, socket: socket) }
        } catch let error as TransportError {
            session.shutdown()
            if session.isBastion(of: name) { throw error.prefixed("bastion '\(target.label)': ") }
            throw error
        } catch {
            session.shutdown()
            throw error
        }
        session.keepaliveBox.session = session
        return session
    }

    /// True when this session's target is a bastion (not the build host itself).
    func isBastion(of name: String) -> Bool { target.label != name }

    /// Runs `body` on the session thread, forwarding task cancellation to `control`.
    func perform<T: Sendable>(_ control: OperationControl, _ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withTaskCancellationHandler {
            try await thread.run(body)
        } onCancel: {
            control.cancel()
        }
    }

    /// Like ``shutdown()``, and returns once libssh2 state is freed (so a process may exit safely).
    func shutdownAndWait() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            shutdown { continuation.resume() }
        }
    }

    /// Disconnects (politely if possible), frees libssh2 state and ends the thread; `done` runs
    /// on the thread afterwards (at once if the session was already shut down).
    func shutdown(_ done: (@Sendable () -> Void)? = nil) {
        guard !closed.exchange(true, ordering: .sequentiallyConsistent) else { done?(); return }
        keepaliveBox.session = nil
        pumpControl?.cancel()
        let bastions = self.bastions
        defer {
            // The bastions' tunnels end once this session's socket is closed (on the thread, below).
            thread.submit { for bastion in bastions.reversed() { bastion.shutdown() } }
            if let done { thread.submit(done) }
            thread.stop()
        }
        thread.submit { [self] in
            if let session {
                if !broken.load(ordering: .relaxed) {
                    // One attempt only: a disconnect that would block is not worth waiting for.
                    _ = wf_session_disconnect(session, "wheelfarm closing")
                }
                libssh2_session_free(session)
                self.session = nil
            }
            if socketFD >= 0 { Glibc.close(socketFD); socketFD = -1 }
        }
    }

    // MARK: - Waiting

    /// Waits until the socket is ready in the directions libssh2 is blocked on, the operation is
    /// woken, or its deadline passes; sends keepalives when due.
    func waitSocket(_ control: OperationControl) throws {
        if control.isCancelled { throw Interruption.cancelled }
        if control.isPastDeadline { throw Interruption.timedOut }
        guard let session else { throw Interruption.cancelled }
        let directions = libssh2_session_block_directions(session)
        var events: Int16 = 0
        if directions & LIBSSH2_SESSION_BLOCK_INBOUND != 0 { events |= Int16(POLLIN) }
        if directions & LIBSSH2_SESSION_BLOCK_OUTBOUND != 0 { events |= Int16(POLLOUT) }
        // No direction means libssh2 wants to be called again soon: wait briefly for input.
        var cap: Int32 = events == 0 ? 10 : -1
        if events == 0 { events = Int16(POLLIN) }
        if target.keepaliveInterval > 0 {
            let left = ContinuousClock.now.duration(to: nextKeepalive)
            let ms = Int32(clamping: max(0, left.components.seconds * 1000 + 1000))
            cap = cap < 0 ? ms : min(cap, ms)
        }
        var fds = [pollfd(fd: socketFD, events: events, revents: 0),
                   pollfd(fd: control.wakeFD, events: Int16(POLLIN), revents: 0)]
        let ready = poll(&fds, 2, control.pollTimeout(cap: cap))
        if ready > 0 && fds[1].revents != 0 { control.drainWake() }
        if control.isCancelled { throw Interruption.cancelled }
        if control.isPastDeadline { throw Interruption.timedOut }
        if directions & LIBSSH2_SESSION_BLOCK_OUTBOUND == 0 { sendKeepaliveIfDue() }
    }

    func sendKeepaliveIfDue() {
        guard target.keepaliveInterval > 0, let session, ContinuousClock.now >= nextKeepalive else { return }
        var seconds: Int32 = 0
        let rc = libssh2_keepalive_send(session, &seconds)
        if rc != 0 && rc != LIBSSH2_ERROR_EAGAIN && SSHSession.isConnectionError(rc) {
            broken.store(true, ordering: .relaxed)
        }
        nextKeepalive = ContinuousClock.now + .seconds(max(1, Int(seconds)))
    }

    /// Keepalive while no operation runs (called on the thread by ``BlockingThread``'s idle hook).
    fileprivate func idleKeepalive() {
        guard isUsable, session != nil else { return }
        sendKeepaliveIfDue()
    }

    /// Calls `call` until it returns something other than `EAGAIN`, waiting on the socket between.
    func retry(_ control: OperationControl, _ call: () -> Int32) throws -> Int32 {
        while true {
            let rc = call()
            if rc != LIBSSH2_ERROR_EAGAIN { return rc }
            try waitSocket(control)
        }
    }

    /// Calls `call` until it returns non-nil or fails with something other than `EAGAIN`.
    func retryPointer(_ control: OperationControl, _ call: () -> OpaquePointer?) throws -> OpaquePointer? {
        while true {
            if let pointer = call() { return pointer }
            guard let session, libssh2_session_last_errno(session) == LIBSSH2_ERROR_EAGAIN else { return nil }
            try waitSocket(control)
        }
    }

    // MARK: - Errors

    /// libssh2's last error message.
    func lastErrorText() -> String {
        guard let session else { return "no session" }
        var message: UnsafeMutablePointer<CChar>?
        var length: Int32 = 0
        _ = libssh2_session_last_error(session, &message, &length, 0)
        return message.map { String(cString: $0) } ?? "unknown error"
    }

    /// True for return codes that mean the connection itself is gone or unusable.
    static func isConnectionError(_ rc: Int32) -> Bool {
        switch rc {
        case LIBSSH2_ERROR_SOCKET_NONE, LIBSSH2_ERROR_BANNER_RECV, LIBSSH2_ERROR_BANNER_SEND,
             LIBSSH2_ERROR_INVALID_MAC, LIBSSH2_ERROR_KEX_FAILURE, LIBSSH2_ERROR_SOCKET_SEND,
             LIBSSH2_ERROR_TIMEOUT, LIBSSH2_ERROR_DECRYPT, LIBSSH2_ERROR_SOCKET_DISCONNECT,
             LIBSSH2_ERROR_PROTO, LIBSSH2_ERROR_SOCKET_TIMEOUT, LIBSSH2_ERROR_SOCKET_RECV,
             LIBSSH2_ERROR_ENCRYPT, LIBSSH2_ERROR_BAD_SOCKET, LIBSSH2_ERROR_BAD_USE:
            true
        default:
            false
        }
    }

    /// The error for a failed libssh2 call made while doing `what`; connection-level failures
    /// mark the session broken.
    func failure(_ rc: Int32, while what: String) -> TransportError {
        let text = lastErrorText()
        if SSHSession.isConnectionError(rc) {
            broken.store(true, ordering: .relaxed)
            return TransportError(.connectionLost, host: host.name,
                                  "connection to '\(endpoint)' was lost while \(what) (\(text)); the host may have gone down, rebooted or the network dropped")
        }
        return TransportError(.commandFailed, host: host.name, "\(what) failed: \(text) (libssh2 error \(rc))")
    }

    /// The error for an interrupted operation.
    func interrupted(_ interruption: Interruption, while what: String, timeout: Duration?) -> TransportError {
        switch interruption {
        case .cancelled:
            TransportError(.cancelled, host: host.name, "\(what) was cancelled")
        case .timedOut:
            TransportError(.timeout, host: host.name, "\(what) ran past its timeout of \(timeout ?? .zero)")
        }
    }

    /// Marks the session unusable (after an error that leaves it in an unknown state).
    func markBroken() { broken.store(true, ordering: .relaxed) }

    /// `address:port` for messages.
    var endpoint: String { target.endpoint }

    /// The socket (only on the thread).
    var socketDescriptor: Int32 { socketFD }

    /// The libssh2 session (only on the thread, after connecting).
    var handle: OpaquePointer? { session }

    // MARK: - Connecting

    private func establish(_ control: OperationControl, socket: Int32?) throws {
        socketFD = try socket ?? openSocket(control)
        guard let session = wf_session_init() else {
            throw TransportError(.localIO, host: host.name, "libssh2 could not create a session")
        }
        self.session = session
        libssh2_session_set_blocking(session, 0)
        let knownHosts = try loadKnownHosts()
        _ = libssh2_session_method_pref(session, LIBSSH2_METHOD_HOSTKEY, hostKeyPreference(knownHosts))
        let rc: Int32
        do {
            rc = try retry(control) { libssh2_session_handshake(session, libssh2_socket_t(socketFD)) }
        } catch Interruption.timedOut {
            throw TransportError(.unreachable, host: host.name,
                                 "'\(endpoint)' accepted the connection but no SSH handshake completed within \(target.connectTimeout) s; check that an SSH server listens there")
        } catch Interruption.cancelled {
            throw TransportError(.cancelled, host: host.name, "connecting to '\(endpoint)' was cancelled")
        }
        guard rc == 0 else {
            throw TransportError(.unreachable, host: host.name,
                                 "ssh handshake with '\(endpoint)' failed: \(lastErrorText()); check that an SSH server listens there")
        }
        try verifyHostKey(knownHosts)
        do {
            try authenticate(control)
        } catch let interruption as Interruption {
            throw interruption == .cancelled
                ? TransportError(.cancelled, host: host.name, "authenticating to '\(endpoint)' was cancelled")
                : TransportError(.authentication, host: host.name,
                                 "authentication on '\(endpoint)' did not finish within \(target.connectTimeout) s", permanent: false)
        }
        if target.keepaliveInterval > 0 {
            libssh2_keepalive_config(session, 1, UInt32(target.keepaliveInterval))
            nextKeepalive = ContinuousClock.now + .seconds(target.keepaliveInterval)
            // Unacknowledged data (keepalives included) fails the socket after ServerAliveCountMax
            // intervals (a tunnel's socket is not TCP: the option does not apply there).
            var userTimeout = UInt32(target.keepaliveInterval * target.keepaliveCountMax * 1000)
            _ = setsockopt(socketFD, Int32(IPPROTO_TCP), TCP_USER_TIMEOUT, &userTimeout, socklen_t(MemoryLayout<UInt32>.size))
        }
        logger.debug("ssh session ready", metadata: ["host": "\(host.name)", "auth": "\(authenticatedBy)"])
    }

    /// Host key algorithms in order of preference: the pinned key's type, then the types
    /// known_hosts lists for the host (as OpenSSH orders them), then ed25519 and ECDSA. Host
    /// certificates are never offered: libssh2 1.10 lists ECDSA certificate methods but has no
    /// host-key parser or verifier for them (they exist for client keys), so negotiating one
    /// would call a null function.
    private func hostKeyPreference(_ knownHosts: KnownHosts) -> String {
        var order = ["ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa"]
        var preferred = knownHosts.knownTypes(for: target.knownHostsName).filter(order.contains)
        preferred.sort { order.firstIndex(of: $0)! < order.firstIndex(of: $1)! }
        if let pinned = target.pinnedHostKey.flatMap(SSHKeyBlob.parse), order.contains(pinned.type) {
            preferred.removeAll { $0 == pinned.type }
            preferred.insert(pinned.type, at: 0)
        }
        order.removeAll { preferred.contains($0) }
        return (preferred + order).joined(separator: ",")
    }

    /// A connected non-blocking TCP socket to the host, within the connect timeout.
    private func openSocket(_ control: OperationControl) throws -> Int32 {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_family = AF_UNSPEC
        var list: UnsafeMutablePointer<addrinfo>?
        let gai = getaddrinfo(target.hostname, String(target.port), &hints, &list)
        guard gai == 0, let first = list else {
            let source = target.origins["hostname"].map { " (from \($0))" } ?? ""
            throw TransportError(.unreachable, host: host.name,
                                 "cannot resolve '\(target.hostname)'\(source): \(String(cString: gai_strerror(gai))); check the host's address in the inventory, or give it a HostName in ssh_config")
        }
        defer { freeaddrinfo(list) }
        var lastError = "no address"
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let info = cursor {
            cursor = info.pointee.ai_next
            let fd = socket(info.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { lastError = errnoText(); continue }
            var one: Int32 = 1
            _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            if Glibc.connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 { return fd }
            guard errno == EINPROGRESS else { lastError = errnoText(); Glibc.close(fd); continue }
            while true {
                var fds = [pollfd(fd: fd, events: Int16(POLLOUT), revents: 0),
                           pollfd(fd: control.wakeFD, events: Int16(POLLIN), revents: 0)]
                _ = poll(&fds, 2, control.pollTimeout())
                if control.isCancelled {
                    Glibc.close(fd)
                    throw TransportError(.cancelled, host: host.name, "connecting to '\(endpoint)' was cancelled")
                }
                if fds[0].revents != 0 { break }
                if control.isPastDeadline {
                    Glibc.close(fd)
                    throw TransportError(.unreachable, host: host.name,
                                         "no answer from '\(endpoint)' within \(target.connectTimeout) s; check that the host is up and reachable")
                }
            }
            var soError: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            _ = getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &length)
            if soError == 0 { return fd }
            lastError = errnoText(soError)
            Glibc.close(fd)
        }
        throw TransportError(.unreachable, host: host.name,
                             "cannot connect to '\(endpoint)': \(lastError.lowercased()); check that the host is up and sshd listens on port \(target.port)")
    }

    deinit {
        // Normally `shutdown()` ran; this only releases what an abandoned session still holds.
        if let session { libssh2_session_free(session) }
        if socketFD >= 0 { Glibc.close(socketFD) }
        thread.stop()
    }
}

/// Lets the thread's idle hook reach the session without a retain cycle.
/// Written by the connecting task and at shutdown, read on the session thread: behind a lock.
private final class KeepaliveBox: Sendable {
    private struct Weak { weak var session: SSHSession? }
    private let ref = Mutex(Weak())
    var session: SSHSession? {
        get { ref.withLock { $0.session } }
        set { ref.withLock { $0.session = newValue } }
    }
}
