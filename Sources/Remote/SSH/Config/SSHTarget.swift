import Inventory

/// Where an effective SSH setting came from.
public enum SSHValueOrigin: Sendable, Hashable, CustomStringConvertible {
    /// Written in the inventory under `key`; `file` is empty (and `line` 0) for values given in code.
    case inventory(file: String, line: Int, key: String)
    /// Written in an ssh_config file.
    case sshConfig(file: String, line: Int)
    /// Taken from an environment variable (`SSH_AUTH_SOCK`).
    case environment(String)
    /// Nothing set it: the default (OpenSSH's, or wheelfarm's where they differ).
    case builtIn(String)

    public var description: String {
        switch self {
        case let .inventory(file, line, key): file.isEmpty ? "inventory (\(key))" : "inventory '\(file)' line \(line) (\(key))"
        case let .sshConfig(file, line): "\(file) line \(line)"
        case let .environment(name): "environment variable \(name)"
        case let .builtIn(what): "default (\(what))"
        }
    }

    /// `inventory`, `ssh_config`, `environment` or `default`, for JSON.
    /// The file and line, when the value was written in one.
    public var location: (file: String, line: Int)? {
        switch self {
        case let .inventory(file, line, _) where !file.isEmpty: (file, line)
        case let .sshConfig(file, line): (file, line)
        default: nil
        }
    }

    /// Parses the `file:line` form the inventory loader records.
    static func inventory(_ fileLine: String?, key: String) -> SSHValueOrigin {
        guard let fileLine, let colon = fileLine.lastIndex(of: ":"), let line = Int(fileLine[fileLine.index(after: colon)...]) else {
            return .inventory(file: fileLine ?? "", line: 0, key: key)
        }
        return .inventory(file: String(fileLine[..<colon]), line: line, key: key)
    }

    public var kind: String {
        switch self {
        case .inventory: "inventory"
        case .sshConfig: "ssh_config"
        case .environment: "environment"
        case .builtIn: "default"
        }
    }
}

/// An identity file to authenticate with, after `~`, `%` tokens and `${VAR}` were expanded.
public struct SSHIdentity: Sendable, Hashable {
    /// The expanded path.
    public var path: String
    /// As written (`~/.ssh/id_%h`).
    public var written: String
    /// Where it was named.
    public var origin: SSHValueOrigin
    /// One of the default identities (`~/.ssh/id_ed25519`, `~/.ssh/id_ecdsa`), tried only when
    /// nothing names one; a missing or unusable default is skipped, not an error.
    public var isDefault: Bool
}

/// Everything needed to reach one SSH server: its address, user, keys, host key policy and
/// timeouts, each with where it came from. A build host's target lists the bastions it is
/// reached through (`jumps`, in connection order); a bastion's own target has none.
public struct SSHTarget: Sendable, Hashable {
    /// The inventory name, or the bastion as the `ProxyJump` spec names it (for messages).
    public var label: String
    /// The name ssh_config was evaluated for (as in `ssh NAME`).
    public var configName: String
    /// The address to connect to.
    public var hostname: String
    /// The TCP port.
    public var port: Int
    /// The remote user.
    public var user: String
    /// Identity files to try after the agent, in order.
    public var identities: [SSHIdentity]
    /// `IdentitiesOnly yes`: use only agent keys that belong to an identity file.
    public var identitiesOnly: Bool
    /// The ssh-agent socket, `nil` for none.
    public var agentSocket: String?
    /// known_hosts files read first (the first one is written under accept-new).
    public var userKnownHosts: [String]
    /// known_hosts files read after the user's (`/etc/ssh/ssh_known_hosts`).
    public var globalKnownHosts: [String]
    /// The name to look the host key up under, instead of the host name and port.
    public var hostKeyAlias: String?
    /// `HashKnownHosts yes`: a key recorded under accept-new is written with a hashed host name.
    public var hashKnownHosts: Bool
    /// How unknown host keys are treated (changed ones are always refused).
    public var hostKeyChecking: SSHSettings.HostKeyChecking
    /// Seconds for TCP connect, handshake and authentication.
    public var connectTimeout: Double
    /// Seconds between keepalives; 0 for none.
    public var keepaliveInterval: Int
    /// Keepalives that may go unanswered before the connection counts as lost (`ServerAliveCountMax`).
    public var keepaliveCountMax: Int = 3
    /// A key pinned in the inventory (`host_key`), build hosts only.
    public var pinnedHostKey: String?
    /// The environment variable holding the identity files' passphrase, build hosts only.
    public var passphraseEnv: String?
    /// Bastions, first connected first; empty for a direct connection.
    public var jumps: [SSHTarget]
    /// Where each effective value came from, by ssh_config keyword (`hostname`, `user`, …).
    public var origins: [String: SSHValueOrigin]
    /// ssh_config options that apply to this host but that wheelfarm does not act on, and other
    /// remarks (e.g. `StrictHostKeyChecking no` taken as accept-new).
    public var notes: [String]

    /// `hostname:port`.
    public var endpoint: String { hostname.contains(":") ? "[\(hostname)]:\(port)" : "\(hostname):\(port)" }

    /// The name known_hosts lists the host under: the alias, `host` on port 22, `[host]:port` otherwise.
    public var knownHostsName: String {
        if let hostKeyAlias { return hostKeyAlias }
        return port == 22 ? hostname : "[\(hostname)]:\(port)"
    }
}

/// One hop of a `ProxyJump` list: `[user@]host[:port]` or `ssh://[user@]host[:port]`.
struct ProxyJumpSpec: Sendable, Hashable, CustomStringConvertible {
    var user: String?
    var host: String
    var port: Int?

    struct ParseError: Error, Sendable { var message: String }

    var description: String {
        let h = host.contains(":") ? "[\(host)]" : host
        return (user.map { "\($0)@" } ?? "") + h + (port.map { ":\($0)" } ?? "")
    }

    /// The hops of a comma list, in connection order.
    static func parseList(_ text: String) throws(ParseError) -> [ProxyJumpSpec] {
        var hops: [ProxyJumpSpec] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            hops.append(try parse(String(part)))
        }
        return hops
    }

    /// One hop.
    static func parse(_ raw: String) throws(ParseError) -> ProxyJumpSpec {
        var text = raw.trimmingCharacters(in: .whitespaces)
        if text.lowercased().hasPrefix("ssh://") {
            text = String(text.dropFirst(6))
            if text.hasSuffix("/") { text.removeLast() }
            if text.contains("/") { throw ParseError(message: "an ssh:// hop cannot have a path") }
        }
        guard !text.isEmpty else { throw ParseError(message: "empty hop") }
        var user: String?
        if let at = text.lastIndex(of: "@") {
            user = String(text[..<at])
            text = String(text[text.index(after: at)...])
            if user?.isEmpty == true { throw ParseError(message: "empty user name before '@'") }
        }
        var host = text
        var port: Int?
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw ParseError(message: "unclosed '[' in '\(raw)'") }
            host = String(text[text.index(after: text.startIndex)..<close])
            let after = text[text.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":"), let n = Int(after.dropFirst()) else { throw ParseError(message: "bad port in '\(raw)'") }
                port = n
            }
        } else if let colon = text.lastIndex(of: ":"), text.filter({ $0 == ":" }).count == 1 {
            host = String(text[..<colon])
            guard let n = Int(text[text.index(after: colon)...]) else { throw ParseError(message: "bad port in '\(raw)'") }
            port = n
        }
        if let port, !(1...65535).contains(port) { throw ParseError(message: "port \(port) is out of range") }
        guard !host.isEmpty, !host.contains(where: { $0 == " " || $0 == "\t" || $0 == "@" }) else {
            throw ParseError(message: "bad host name in '\(raw)'")
        }
        return ProxyJumpSpec(user: user, host: host, port: port)
    }
}
