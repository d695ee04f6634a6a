import struct Inventory.Host
import Foundation
import Inventory
import Logging

/// Runs commands and moves files on a host over SSH (libssh2).
///
/// Sessions are reused: an operation takes an idle authenticated session or, when all are busy
/// (operations running at the same time), connects another one; afterwards the session goes
/// back to the idle list (at most ``SSHClientOptions/maxIdleSessions`` are kept). A session whose
/// connection broke is dropped, and the next operation connects anew.
public actor SSHTransport: Transport {
    /// The host this transport reaches.
    public nonisolated let host: Host
    /// The inventory's SSH settings.
    public nonisolated let settings: SSHSettings
    /// Client options (agent socket, environment for passphrases).
    public nonisolated let options: SSHClientOptions
    private let logger: Logger
    private var idle: [SSHSession] = []
    private var busy: [ObjectIdentifier: SSHSession] = [:]
    /// How many sessions this transport has opened so far.
    public private(set) var sessionsOpened = 0
    /// Facts from the most recent successful connect (for `hosts check`).
    public private(set) var lastConnection: ConnectionInfo?

    /// Creates a transport; nothing connects until the first operation or ``connect()``.
    public init(host: Host, settings: SSHSettings, options: SSHClientOptions = SSHClientOptions(), logger: Logger) {
        self.host = host; self.settings = settings; self.options = options; self.logger = logger
    }

    public func connect() async throws {
        let session = try await checkout()
        checkin(session)
    }

    public nonisolated func exec(_ request: ExecRequest, output: @escaping @Sendable (ExecOutput) -> Void) async throws -> ExecStatus {
        try await withSession { session in
            let control = OperationControl(timeout: request.timeout)
            return try await session.perform(control) { try session.exec(request, control: control, output: output) }
        }
    }

    public nonisolated func upload(_ source: UploadSource, to remotePath: String, mode: Int) async throws {
        try await withSession { session in
            let control = OperationControl(timeout: nil)
            try await session.perform(control) { try session.upload(source, to: remotePath, mode: mode, control: control) }
        }
    }

    public nonisolated func download(_ remotePath: String, to localPath: String, expected: ExpectedFile) async throws -> DownloadResult {
        try await withSession { session in
            let control = OperationControl(timeout: nil)
            return try await session.perform(control) {
                try session.download(remotePath, to: localPath, expected: expected, control: control)
            }
        }
    }

    /// Disconnects the idle sessions and waits until they are freed; sessions still running an
    /// operation are closed when it ends.
    public func close() async {
        let sessions = idle
        idle.removeAll()
        for session in sessions { await session.shutdownAndWait() }
    }

    /// Runs `body` with a session of its own, returning the session for reuse afterwards.
    private nonisolated func withSession<T: Sendable>(_ body: @Sendable (SSHSession) async throws -> T) async throws -> T {
        let session = try await checkout()
        do {
            let result = try await body(session)
            await checkin(session)
            return result
        } catch {
            await checkin(session)
            throw error
        }
    }

    private func checkout() async throws -> SSHSession {
        while let session = idle.popLast() {
            if session.isUsable {
                busy[ObjectIdentifier(session)] = session
                return session
            }
            session.shutdown()
        }
        let target = try effectiveTarget()
        let session = try await SSHSession.connect(name: host.name, target: target, options: options, logger: logger)
        sessionsOpened += 1
        lastConnection = ConnectionInfo(user: session.user, authenticatedBy: session.authenticatedBy,
                                        hostKeyStatus: session.hostKeyStatus,
                                        bastions: session.bastions.map {
                                            BastionInfo(name: $0.target.label, endpoint: $0.endpoint, user: $0.user,
                                                        authenticatedBy: $0.authenticatedBy, hostKeyStatus: $0.hostKeyStatus)
                                        })
        busy[ObjectIdentifier(session)] = session
        return session
    }

    /// The host's settings after the inventory, ssh_config and the defaults (read again for each
    /// new connection, so an edited ssh_config takes effect); a problem is a permanent failure.
    public nonisolated func effectiveTarget() throws -> SSHTarget {
        do {
            return try SSHTargetResolver.resolve(host: host, settings: settings, options: options)
        } catch {
            throw TransportError(.configuration, host: host.name,
                                 "the SSH configuration for '\(host.name)' is unusable: " + error.diagnostics.map(\.description).joined(separator: "; "))
        }
    }

    private func checkin(_ session: SSHSession) {
        busy[ObjectIdentifier(session)] = nil
        if session.isUsable && idle.count < options.maxIdleSessions {
            idle.append(session)
        } else {
            session.shutdown()
        }
    }
}

/// What a successful SSH connection established.
public struct ConnectionInfo: Sendable, Hashable, Codable {
    /// The remote user.
    public var user: String
    /// The key that was accepted (e.g. `ssh-agent key 'me@laptop' (ssh-ed25519)`).
    public var authenticatedBy: String
    /// How the host key was accepted.
    public var hostKeyStatus: HostKeyStatus
    /// The bastions the connection runs through, first connected first.
    public var bastions: [BastionInfo] = []
}

/// One bastion of a connection (`ProxyJump`).
public struct BastionInfo: Sendable, Hashable, Codable {
    /// The bastion as the `ProxyJump` spec names it.
    public var name: String
    /// `address:port`.
    public var endpoint: String
    /// The user logged in on the bastion.
    public var user: String
    /// The key that was accepted there.
    public var authenticatedBy: String
    /// How its host key was accepted.
    public var hostKeyStatus: HostKeyStatus

    enum CodingKeys: String, CodingKey {
        case name, endpoint, user
        case authenticatedBy = "authenticated_by", hostKeyStatus = "host_key"
    }
}
