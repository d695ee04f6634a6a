import Foundation

/// Client-side settings of SSH connections that do not come from the inventory.
public struct SSHClientOptions: Sendable, Hashable {
    /// The ssh-agent socket to try first; `nil` skips the agent. Defaults to `SSH_AUTH_SOCK`.
    public var agentSocket: String?
    /// Where passphrase variables named by `passphrase_env` are looked up.
    public var environment: [String: String]
    /// The remote user for hosts whose inventory entry names none (defaults to the local user).
    public var defaultUser: String
    /// How many idle authenticated sessions a transport keeps per host for reuse.
    public var maxIdleSessions: Int
    /// The coordinator's user name (`Match localuser`, `%u`).
    public var localUser: String
    /// The user's OpenSSH configuration (`~` is `$HOME`); `nil` reads none. Ignored when the
    /// inventory names a configuration file (`ssh_config:`, like `ssh -F`).
    public var userConfigPath: String?
    /// The system-wide OpenSSH configuration, read after the user's; `nil` reads none.
    public var systemConfigPath: String?
    /// The system-wide known_hosts files, read after the user's, unless ssh_config sets
    /// `GlobalKnownHostsFile`.
    public var globalKnownHostsFiles: [String]

    /// Options taken from `environment` (by default, this process's environment).
    public init(environment: [String: String] = ProcessInfo.processInfo.environment,
                agentSocket: String?? = nil, defaultUser: String? = nil, maxIdleSessions: Int = 2,
                userConfigPath: String? = "~/.ssh/config", systemConfigPath: String? = "/etc/ssh/ssh_config",
                globalKnownHostsFiles: [String] = ["/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"]) {
        self.environment = environment
        self.agentSocket = agentSocket ?? environment["SSH_AUTH_SOCK"].flatMap { $0.isEmpty ? nil : $0 }
        localUser = Self.currentUser()
        self.defaultUser = defaultUser ?? environment["USER"] ?? environment["LOGNAME"] ?? localUser
        self.maxIdleSessions = maxIdleSessions
        self.userConfigPath = userConfigPath; self.systemConfigPath = systemConfigPath
        self.globalKnownHostsFiles = globalKnownHostsFiles
    }

    private static func currentUser() -> String {
        guard let entry = getpwuid(geteuid()), let name = entry.pointee.pw_name else { return "root" }
        return String(cString: name)
    }
}

/// `~` and `~/…` expanded against `HOME`.
func expandTilde(_ path: String, environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
    guard path == "~" || path.hasPrefix("~/") else { return path }
    let home = environment["HOME"] ?? NSHomeDirectory()
    return home + path.dropFirst()
}
