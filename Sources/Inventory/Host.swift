import FarmCore

/// A build host as the inventory describes it, after defaults and groups were applied.
///
/// Foundation on Linux also declares a `Host`; files importing both write
/// `import struct Inventory.Host` to pick this one.
public struct Host: Sendable, Hashable, Codable {
    /// How the coordinator reaches the host.
    public enum Connection: String, Sendable, Hashable, Codable, CaseIterable {
        /// Over SSH (libssh2).
        case ssh
        /// On the coordinator's own machine, without SSH.
        case local
    }

    /// Unique name in the inventory.
    public var name: String
    /// DNS name or IP address (defaults to the name).
    public var address: String
    /// SSH port.
    public var port: Int
    /// SSH user (defaults to the coordinator's user).
    public var user: String?
    /// Private key file for SSH authentication, tried after ssh-agent.
    public var identityFile: String?
    /// Name of an environment variable holding the identity file's passphrase.
    public var passphraseEnv: String?
    /// `ssh` or `local`.
    public var connection: Connection
    /// The host's CPU architecture.
    public var arch: Arch
    /// CPU flags the host has, normalised to `/proc/cpuinfo` names.
    public var capabilities: Set<Capability>
    /// Flags that reserve the host: it takes only jobs whose variant requires one of them.
    public var reserved: Set<Capability>
    /// How many builds may run at once.
    public var slots: Int
    /// Cores to give one build (MAX_JOBS); `nil` lets the agent use the host's core count.
    public var maxJobs: Int?
    /// Relative speed: 2.0 builds twice as fast as 1.0.
    public var speed: Double
    /// Free-form labels.
    public var labels: Set<String>
    /// When true the host takes no new work; running jobs finish.
    public var drain: Bool
    /// A pinned SSH host key (`ssh-ed25519 AAAA…`), checked in addition to known_hosts.
    public var hostKey: String?
    /// The directory on the host where agents, builds and caches live.
    public var workDir: String
    /// Bastions to connect through, in OpenSSH's `ProxyJump` form (`[user@]host[:port],…`, or
    /// `none`); `nil` leaves it to ssh_config.
    public var proxyJump: String?
    /// Where the inventory set each of this host's SSH values (`address`, `port`, `user`,
    /// `identity_file`, `proxy_jump`), as `file:line`. A key missing here was left out of the
    /// inventory, so ssh_config may supply it. `nil` for hosts built in code: every value they
    /// carry counts as set.
    public var sshOrigins: [String: String]?

    public init(name: String, address: String? = nil, port: Int = 22, user: String? = nil,
                identityFile: String? = nil, passphraseEnv: String? = nil, connection: Connection = .ssh,
                arch: Arch, capabilities: Set<Capability> = [], reserved: Set<Capability> = [],
                slots: Int = 1, maxJobs: Int? = nil, speed: Double = 1.0, labels: Set<String> = [],
                drain: Bool = false, hostKey: String? = nil, workDir: String = Host.defaultWorkDir,
                proxyJump: String? = nil, sshOrigins: [String: String]? = nil) {
        self.name = name; self.address = address ?? name; self.port = port; self.user = user
        self.identityFile = identityFile; self.passphraseEnv = passphraseEnv; self.connection = connection
        self.arch = arch; self.capabilities = capabilities; self.reserved = reserved; self.slots = slots
        self.maxJobs = maxJobs; self.speed = speed; self.labels = labels; self.drain = drain
        self.hostKey = hostKey; self.workDir = workDir; self.proxyJump = proxyJump; self.sshOrigins = sshOrigins
    }

    /// The work directory used when the inventory names none.
    public static let defaultWorkDir = "/var/tmp/wheelfarm"

    /// True when the host has every one of `flags`.
    public func has(_ flags: some Sequence<Capability>) -> Bool { flags.allSatisfy(capabilities.contains) }
}
