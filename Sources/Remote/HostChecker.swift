import struct Inventory.Host
import FarmCore
import Foundation
import Inventory
import Logging

/// The outcome of checking one host (`wheelfarm hosts check`).
public struct HostCheckResult: Sendable, Hashable, Codable {
    /// Inventory name.
    public var host: String
    /// `address:port`, or `local`.
    public var endpoint: String
    /// True when the host was reached, its key accepted, the login worked and a command ran.
    public var ok: Bool
    /// Whether a TCP connection and SSH handshake succeeded (`nil` when not tried).
    public var reachable: Bool?
    /// Whether authentication succeeded (`nil` when not reached).
    public var authenticated: Bool?
    /// `known`, `pinned`, `recorded`, `refused`, or `nil` when not reached (or local).
    public var hostKey: String?
    /// The remote user.
    public var user: String?
    /// What authenticated the session.
    public var authenticatedBy: String?
    /// Seconds to connect, verify and authenticate.
    public var connectSeconds: Double?
    /// Seconds for one command round trip (`true`) on the established session.
    public var roundTripSeconds: Double?
    /// The error kind when the check failed.
    public var errorKind: String?
    /// The error message when the check failed.
    public var error: String?

    enum CodingKeys: String, CodingKey {
        case host, endpoint, ok, reachable, authenticated, user, error
        case hostKey = "host_key", authenticatedBy = "authenticated_by", connectSeconds = "connect_seconds"
        case roundTripSeconds = "round_trip_seconds", errorKind = "error_kind"
    }
}

/// Checks that hosts can be reached and logged into.
public enum HostChecker {
    /// Checks `hosts` in parallel, at most `concurrency` at a time, and returns results in input order.
    public static func check(_ hosts: [Host], ssh: SSHSettings, options: SSHClientOptions = SSHClientOptions(),
                             concurrency: Int = 8, logger: Logger) async -> [HostCheckResult] {
        await withTaskGroup(of: (Int, HostCheckResult).self) { group in
            var results = [HostCheckResult?](repeating: nil, count: hosts.count)
            var next = 0
            func addNext() {
                guard next < hosts.count else { return }
                let index = next, host = hosts[index]
                next += 1
                group.addTask { (index, await checkOne(host, ssh: ssh, options: options, logger: logger)) }
            }
            for _ in 0..<max(1, concurrency) { addNext() }
            for await (index, result) in group {
                results[index] = result
                addNext()
            }
            return results.compactMap { $0 }
        }
    }

    /// Checks one host.
    public static func checkOne(_ host: Host, ssh: SSHSettings, options: SSHClientOptions = SSHClientOptions(),
                                logger: Logger) async -> HostCheckResult {
        let endpoint = host.connection == .local ? "local" : "\(host.address):\(host.port)"
        var result = HostCheckResult(host: host.name, endpoint: endpoint, ok: false)
        let transport = Transports.make(for: host, ssh: ssh, options: options, logger: logger)
        let clock = ContinuousClock()
        do {
            let connectTime = try await clock.measure { try await transport.connect() }
            result.connectSeconds = connectTime.seconds
            result.reachable = true
            result.authenticated = true
            if let sshTransport = transport as? SSHTransport, let info = await sshTransport.lastConnection {
                result.user = info.user
                result.authenticatedBy = info.authenticatedBy
                result.hostKey = info.hostKeyStatus.rawValue
            }
            var status: ExecStatus = .exited(-1)
            let roundTrip = try await clock.measure {
                // What a login shell prints around `true` is read only up to a small cap.
                status = try await transport.run(ExecRequest("true", timeout: .seconds(max(5, ssh.connectTimeout)),
                                                             outputLimit: 64 << 10)).status
            }
            result.roundTripSeconds = roundTrip.seconds
            if status.isSuccess {
                result.ok = true
            } else {
                result.errorKind = TransportError.Kind.commandFailed.rawValue
                result.error = "'true' ended with \(status) on the host"
            }
        } catch let error as TransportError {
            result.errorKind = error.kind.rawValue
            result.error = error.message
            switch error.kind {
            case .unreachable: result.reachable = false
            case .hostKey: result.reachable = true; result.hostKey = "refused"
            case .authentication: result.reachable = true; result.authenticated = false
            default: break
            }
        } catch {
            result.errorKind = "unknown"
            result.error = String(describing: error)
        }
        await transport.close()
        return result
    }
}
