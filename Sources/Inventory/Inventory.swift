import FarmCore

/// A validated set of build hosts, as loaded from one inventory file.
public struct Inventory: Sendable, Hashable {
    /// The hosts, in file order.
    public var hosts: [Host]
    /// How SSH connections are made and host keys checked.
    public var ssh: SSHSettings
    /// The file the inventory came from (for messages), or `nil` when built in code.
    public var source: String?

    public init(hosts: [Host], ssh: SSHSettings = SSHSettings(), source: String? = nil) {
        self.hosts = hosts; self.ssh = ssh; self.source = source
    }

    /// The host with that name.
    public subscript(name: String) -> Host? { hosts.first { $0.name == name } }
}

/// Inventory-wide SSH settings (the `ssh:` section).
public struct SSHSettings: Sendable, Hashable, Codable {
    /// How unknown and changed host keys are treated.
    public enum HostKeyChecking: String, Sendable, Hashable, Codable, CaseIterable {
        /// Unknown or changed keys refuse the connection (default).
        case strict
        /// Unknown keys are recorded in known_hosts; changed keys still refuse (OpenSSH's accept-new).
        case acceptNew = "accept-new"
    }

    /// The OpenSSH known_hosts file to check and (with accept-new) to write; `~` is expanded.
    public var knownHosts: String
    public var hostKeyChecking: HostKeyChecking
    /// Seconds to wait for TCP connect + handshake.
    public var connectTimeout: Double
    /// Seconds between keepalive messages; 0 turns keepalive off.
    public var keepaliveInterval: Int
    /// The OpenSSH client configuration to apply, like `ssh -F`: a path, or `none` for no
    /// configuration at all; `nil` reads `~/.ssh/config` and then `/etc/ssh/ssh_config`, as `ssh` does.
    public var sshConfig: String?
    /// Where the inventory set each of these values (`known_hosts`, `host_key_checking`,
    /// `connect_timeout`, `keepalive`, `ssh_config`), as `file:line`. A key missing here was left
    /// out, so ssh_config may supply it. `nil` for settings built in code: every value counts as set.
    public var origins: [String: String]?

    public init(knownHosts: String = "~/.ssh/known_hosts", hostKeyChecking: HostKeyChecking = .strict,
                connectTimeout: Double = 10, keepaliveInterval: Int = 30, sshConfig: String? = nil,
                origins: [String: String]? = nil) {
        self.knownHosts = knownHosts; self.hostKeyChecking = hostKeyChecking
        self.connectTimeout = connectTimeout; self.keepaliveInterval = keepaliveInterval
        self.sshConfig = sshConfig; self.origins = origins
    }
}
