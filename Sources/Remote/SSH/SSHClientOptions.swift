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

    /// Options taken from `environment` (by default, this process's environment).
    public init(environment: [String: String] = ProcessInfo.processInfo.environment,
                agentSocket: String?? = nil, defaultUser: String? = nil, maxIdleSessions: Int = 2) {
        self.environment = environment
        self.agentSocket = agentSocket ?? environment["SSH_AUTH_SOCK"].flatMap { $0.isEmpty ? nil : $0 }
        self.defaultUser = defaultUser ?? environment["USER"] ?? environment["LOGNAME"] ?? Self.currentUser()
        self.maxIdleSessions = maxIdleSessions
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
