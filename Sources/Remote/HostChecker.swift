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
    /// The effective SSH settings and where each came from (SSH hosts only).
    public var ssh: EffectiveSSHSettings?
    /// The bastions the connection went through, when it got that far.
    public var bastions: [BastionInfo]?

    enum CodingKeys: String, CodingKey {
        case host, endpoint, ok, reachable, authenticated, user, error, ssh, bastions
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
        var endpoint = host.connection == .local ? "local" : "\(host.address):\(host.port)"
        let transport = Transports.make(for: host, ssh: ssh, options: options, logger: logger)
        var effective: EffectiveSSHSettings?
        if let sshTransport = transport as? SSHTransport {
            do {
                let target = try sshTransport.effectiveTarget()
                effective = EffectiveSSHSettings(target)
                endpoint = target.endpoint
            } catch let error as TransportError {
                var result = HostCheckResult(host: host.name, endpoint: endpoint, ok: false)
                result.errorKind = error.kind.rawValue
                result.error = error.message
                return result
            } catch {}
        }
        var result = HostCheckResult(host: host.name, endpoint: endpoint, ok: false)
        result.ssh = effective
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
                if !info.bastions.isEmpty { result.bastions = info.bastions }
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

/// The SSH settings a connection to a host uses, each with where it came from (`hosts check --json`).
public struct EffectiveSSHSettings: Sendable, Hashable, Codable {
    /// One setting.
    public struct Setting: Sendable, Hashable, Codable {
        /// The value (a list for identity and known_hosts files).
        public var value: [String]
        /// `inventory`, `ssh_config`, `environment` or `default`.
        public var source: String
        /// The file that set it, when one did.
        public var file: String?
        /// The line in that file.
        public var line: Int?
        /// Where it came from, in words (`~/.ssh/config line 3`).
        public var from: String

        init(_ value: [String], _ origin: SSHValueOrigin?) {
            self.value = value
            source = origin?.kind ?? "default"
            file = origin?.location?.file
            line = origin?.location?.line
            from = origin.map(String.init(describing:)) ?? "default"
        }

        /// A list whose entries may each come from elsewhere (identity files).
        init(_ value: [String], origins: [SSHValueOrigin]) {
            self.init(value, origins.first)
            let distinct = origins.reduce(into: [SSHValueOrigin]()) { if !$0.contains($1) { $0.append($1) } }
            from = distinct.map(String.init(describing:)).joined(separator: "; ")
        }
    }

    /// By ssh_config keyword: `hostname`, `port`, `user`, `identityfile`, `identitiesonly`,
    /// `identityagent`, `userknownhostsfile`, `globalknownhostsfile`, `stricthostkeychecking`,
    /// `connecttimeout`, `serveraliveinterval`, `proxyjump`, `hostkeyalias`.
    public var settings: [String: Setting]
    /// The bastions, first connected first, with their own settings.
    public var bastions: [EffectiveSSHSettings]
    /// Options that apply but are not acted on, and other remarks.
    public var notes: [String]

    /// The settings of `target`.
    public init(_ target: SSHTarget) {
        let o = target.origins
        var s: [String: Setting] = [
            "hostname": Setting([target.hostname], o["hostname"]),
            "port": Setting([String(target.port)], o["port"]),
            "user": Setting([target.user], o["user"]),
            "identityfile": Setting(target.identities.map(\.path), origins: target.identities.map(\.origin)),
            "identitiesonly": Setting([target.identitiesOnly ? "yes" : "no"], o["identitiesonly"]),
            "identityagent": Setting(target.agentSocket.map { [$0] } ?? [], o["identityagent"]),
            "userknownhostsfile": Setting(target.userKnownHosts, o["userknownhostsfile"]),
            "globalknownhostsfile": Setting(target.globalKnownHosts, o["globalknownhostsfile"]),
            "stricthostkeychecking": Setting([target.hostKeyChecking.rawValue], o["stricthostkeychecking"]),
            "connecttimeout": Setting([String(format: "%g", target.connectTimeout)], o["connecttimeout"]),
            "serveraliveinterval": Setting([String(target.keepaliveInterval)], o["serveraliveinterval"]),
        ]
        if let origin = o["proxyjump"] { s["proxyjump"] = Setting(target.jumps.map(\.label), origin) }
        if let alias = target.hostKeyAlias { s["hostkeyalias"] = Setting([alias], o["hostkeyalias"]) }
        settings = s
        bastions = target.jumps.map(EffectiveSSHSettings.init)
        notes = target.notes
    }
}
