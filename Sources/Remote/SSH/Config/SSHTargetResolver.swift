import struct Inventory.Host
import Crypto
import FarmCore
import Foundation
import Inventory
#if canImport(Glibc)
import Glibc
#endif

/// Works out how to reach an inventory host: its inventory values, then the OpenSSH client
/// configuration (`~/.ssh/config`, then `/etc/ssh/ssh_config`, as `ssh NAME` reads them), then
/// the defaults — with bastions (`ProxyJump`) resolved the same way, hop by hop.
///
/// Inventory values act like `ssh -o KEY=VALUE`: they are obtained before any file, so they win,
/// and `Match host` sees the inventory's address. The inventory's `ssh:` section (known_hosts,
/// host key checking, timeouts) applies to bastions too; a host's own keys do not.
///
/// Problems are reported with file and line before anything connects: an `Include` loop, a
/// `ProxyJump` cycle, an identity file that cannot be read or that others can read (OpenSSH
/// refuses such a key), `ProxyCommand` (not supported: use `ProxyJump`), a bad keyword.
public enum SSHTargetResolver {
    /// The effective settings for `host`.
    public static func resolve(host: Host, settings: SSHSettings,
                               options: SSHClientOptions = SSHClientOptions()) throws(ConfigurationError) -> SSHTarget {
        var resolver = Resolver(settings: settings, options: options)
        return try resolver.target(for: host)
    }

    /// Checks every SSH host of an inventory (what `release` and the other commands do before
    /// starting anything); all problems are listed.
    public static func validate(_ inventory: Inventory, options: SSHClientOptions = SSHClientOptions()) throws(ConfigurationError) {
        var diagnostics: [Diagnostic] = []
        for host in inventory.hosts where host.connection == .ssh {
            do { _ = try resolve(host: host, settings: inventory.ssh, options: options) } catch {
                for d in error.diagnostics where !diagnostics.contains(d) { diagnostics.append(d) }
            }
        }
        if !diagnostics.isEmpty { throw ConfigurationError(kind: "ssh configuration", diagnostics: diagnostics) }
    }

    /// The identities wheelfarm tries when neither the inventory nor ssh_config names one (after
    /// the agent). OpenSSH also tries `id_rsa` and others; RSA cannot work with libssh2 1.10
    /// against OpenSSH ≥ 8.8, and the security-key types are not supported by libssh2.
    public static let defaultIdentities = ["~/.ssh/id_ed25519", "~/.ssh/id_ecdsa"]
    /// wheelfarm's keepalive when nothing sets one (OpenSSH's `ServerAliveInterval` default is 0).
    public static let defaultKeepalive = 30
    /// Seconds to connect when nothing sets `ConnectTimeout` (OpenSSH waits for the system's TCP timeout).
    public static let defaultConnectTimeout = 10.0
}

/// One resolution (a host and its bastions).
private struct Resolver {
    let settings: SSHSettings
    let options: SSHClientOptions
    let context: SSHConfigContext
    let files: [SSHConfigFile]
    var diagnostics: [Diagnostic] = []

    init(settings: SSHSettings, options: SSHClientOptions) {
        self.settings = settings
        self.options = options
        let home = options.environment["HOME"] ?? NSHomeDirectory()
        var name = [CChar](repeating: 0, count: 256)
        gethostname(&name, name.count)
        context = SSHConfigContext(localUser: options.localUser, home: home, environment: options.environment,
                                   thisHost: String(cString: name), uid: getuid())
        func display(_ path: String) -> String { path.hasPrefix(home + "/") ? "~" + path.dropFirst(home.count) : path }
        if let config = settings.sshConfig {
            if config.lowercased() == "none" {
                files = []
            } else {
                let path = config.hasPrefix("~/") ? home + config.dropFirst() : config
                files = [SSHConfigFile(displayPath: config, path: path, isUserConfig: true, checkPermissions: false, required: true)]
            }
        } else {
            var list: [SSHConfigFile] = []
            if let user = options.userConfigPath {
                let path = user.hasPrefix("~/") ? home + user.dropFirst() : user
                list.append(SSHConfigFile(displayPath: display(path), path: path, isUserConfig: true, checkPermissions: true, required: false))
            }
            if let system = options.systemConfigPath {
                list.append(SSHConfigFile(displayPath: system, path: system, isUserConfig: false, checkPermissions: false, required: false))
            }
            files = list
        }
    }

    // MARK: Build hosts

    mutating func target(for host: Host) throws(ConfigurationError) -> SSHTarget {
        // Inventory values first, like `ssh -o`: first obtained wins.
        var presets: [String: SSHConfigValue] = [:]
        var identities: [SSHConfigValue] = []
        func origin(_ key: String) -> SSHValueOrigin? {
            guard let origins = host.sshOrigins else { return .inventory(file: "", line: 0, key: "hosts.\(host.name).\(key)") }
            return origins[key].map { SSHValueOrigin.inventory($0, key: "hosts.\(host.name).\(key)") }
        }
        if let o = origin("address") { presets["hostname"] = value(host.address, o) }
        if let o = origin("port") { presets["port"] = value(String(host.port), o) }
        if let user = host.user, let o = origin("user") { presets["user"] = value(user, o) }
        if let file = host.identityFile, let o = origin("identity_file") { identities.append(value(file, o)) }
        if let jump = host.proxyJump, let o = origin("proxy_jump") { presets["proxyjump"] = value(jump, o) }
        addSettingsPresets(&presets)

        var visiting = [(name: host.name, via: SSHValueOrigin?.none)]
        var target = try hop(configName: host.name, label: host.name, presets: presets, identities: identities,
                             overrideJumps: nil, visiting: &visiting)
        target.pinnedHostKey = host.hostKey
        target.passphraseEnv = host.passphraseEnv
        if !diagnostics.isEmpty { throw ConfigurationError(kind: "ssh configuration", diagnostics: diagnostics) }
        return target
    }

    func value(_ text: String, _ origin: SSHValueOrigin) -> SSHConfigValue {
        SSHConfigValue(arguments: [text], rest: text, origin: origin)
    }

    /// The inventory's `ssh:` values, which apply to every connection (bastions included).
    func addSettingsPresets(_ presets: inout [String: SSHConfigValue]) {
        func origin(_ key: String) -> SSHValueOrigin? {
            guard let origins = settings.origins else { return .inventory(file: "", line: 0, key: "ssh.\(key)") }
            return origins[key].map { SSHValueOrigin.inventory($0, key: "ssh.\(key)") }
        }
        if let o = origin("known_hosts") {
            presets["userknownhostsfile"] = SSHConfigValue(arguments: [settings.knownHosts], rest: settings.knownHosts, origin: o)
        }
        if let o = origin("host_key_checking") {
            presets["stricthostkeychecking"] = value(settings.hostKeyChecking == .strict ? "yes" : "accept-new", o)
        }
        if let o = origin("connect_timeout") { presets["connecttimeout"] = value(String(settings.connectTimeout), o) }
        if let o = origin("keepalive") { presets["serveraliveinterval"] = value(String(settings.keepaliveInterval), o) }
    }

    // MARK: One hop

    mutating func hop(configName: String, label: String, presets: [String: SSHConfigValue], identities: [SSHConfigValue],
                      overrideJumps: (hops: [ProxyJumpSpec], origin: SSHValueOrigin)?,
                      visiting: inout [(name: String, via: SSHValueOrigin?)]) throws(ConfigurationError) -> SSHTarget {
        let config = try SSHConfigEvaluator.evaluate(host: configName, files: files, context: context,
                                                      presets: presets, presetIdentities: identities)
        var origins: [String: SSHValueOrigin] = [:]
        var notes: [String] = []
        func get(_ key: String, default fallback: String) -> String {
            if let v = config[key] { origins[key] = v.origin; return v.first }
            origins[key] = .builtIn(fallback)
            return fallback
        }

        let hostname = config.hostname
        origins["hostname"] = config["hostname"]?.origin ?? .builtIn("the name '\(configName)'")
        let port = Int(get("port", default: "22")) ?? 22
        let user: String
        if let v = config["user"] { user = v.first; origins["user"] = v.origin } else {
            user = options.defaultUser; origins["user"] = .builtIn("the local user '\(options.defaultUser)'")
        }
        let tokens = Tokens(context: context, hostArgument: configName, hostname: hostname, port: port, user: user,
                            hostKeyAlias: config["hostkeyalias"]?.first)

        // Identities: the inventory's and ssh_config's in order, else the defaults.
        var list: [SSHIdentity] = []
        for v in config.lists["identityfile"] ?? [] {
            list.append(SSHIdentity(path: tokens.expandPath(v.first), written: v.first, origin: v.origin, isDefault: false))
        }
        if list.isEmpty {
            for path in SSHTargetResolver.defaultIdentities {
                list.append(SSHIdentity(path: tokens.expandPath(path), written: path, origin: .builtIn("wheelfarm tries id_ed25519 and id_ecdsa"), isDefault: true))
            }
        }
        origins["identityfile"] = list.first?.origin
        for identity in list where !identity.isDefault { checkIdentity(identity) }

        let identitiesOnly = ["yes", "true"].contains(get("identitiesonly", default: "no").lowercased())
        var agent = options.agentSocket
        origins["identityagent"] = agent == nil ? .builtIn("no agent: SSH_AUTH_SOCK is not set") : .environment("SSH_AUTH_SOCK")
        if let v = config["identityagent"] {
            origins["identityagent"] = v.origin
            switch v.first {
            case "none": agent = nil
            case "SSH_AUTH_SOCK": agent = options.environment["SSH_AUTH_SOCK"]
            default:
                let raw = v.first.hasPrefix("$") && !v.first.hasPrefix("${") ? "${" + v.first.dropFirst() + "}" : v.first
                agent = tokens.expandPath(raw)
            }
        }

        func knownHostsFiles(_ key: String, _ defaults: [String]) -> [String] {
            guard let v = config[key] else { origins[key] = .builtIn(defaults.joined(separator: " ")); return defaults.map { tokens.expandPath($0) } }
            origins[key] = v.origin
            if v.arguments.first?.lowercased() == "none" { return [] }
            return v.arguments.map { tokens.expandPath($0) }
        }
        let userKnownHosts = knownHostsFiles("userknownhostsfile", ["~/.ssh/known_hosts", "~/.ssh/known_hosts2"])
        let globalKnownHosts = knownHostsFiles("globalknownhostsfile", options.globalKnownHostsFiles)

        var checking = SSHSettings.HostKeyChecking.strict
        if let v = config["stricthostkeychecking"] {
            origins["stricthostkeychecking"] = v.origin
            switch v.first.lowercased() {
            case "accept-new": checking = .acceptNew
            case "no", "off", "false":
                checking = .acceptNew
                notes.append("StrictHostKeyChecking \(v.first) (\(v.origin)) is taken as accept-new: wheelfarm records unknown keys but never connects to a host whose key changed")
            default: checking = .strict
            }
        } else {
            origins["stricthostkeychecking"] = .builtIn("strict: unknown keys are refused")
        }
        var timeout = SSHTargetResolver.defaultConnectTimeout
        if let v = config["connecttimeout"], v.first.lowercased() != "none", let s = Double(v.first) ?? SSHConfigEvaluator.seconds(v.first).map(Double.init), s > 0 {
            timeout = s; origins["connecttimeout"] = v.origin
        } else {
            origins["connecttimeout"] = .builtIn("\(Int(timeout)) s")
        }
        var keepalive = SSHTargetResolver.defaultKeepalive
        if let v = config["serveraliveinterval"], let s = Int(v.first) ?? SSHConfigEvaluator.seconds(v.first) {
            keepalive = s; origins["serveraliveinterval"] = v.origin
        } else {
            origins["serveraliveinterval"] = .builtIn("\(keepalive) s (OpenSSH's default is 0, none)")
        }
        var countMax = 3
        if let v = config["serveralivecountmax"], let n = Int(v.first), n > 0 { countMax = n; origins["serveralivecountmax"] = v.origin }
        if let v = config["hostkeyalias"] { origins["hostkeyalias"] = v.origin }
        if let v = config["proxycommand"], v.rest.lowercased() != "none" {
            if case let .sshConfig(file, line) = v.origin {
                diagnostics.append(Diagnostic(file: file, line: line, key: "proxycommand",
                                              message: "ProxyCommand is not supported by wheelfarm (it does not start local commands for connections); reach '\(configName)' with ProxyJump instead"))
            }
        }
        notes += Self.ignoredOptions(config)

        // Bastions.
        var jumps: [SSHTarget] = []
        var jumpSpecs = overrideJumps
        if jumpSpecs == nil, let v = config["proxyjump"], v.rest.lowercased() != "none" {
            if let hops = try? ProxyJumpSpec.parseList(v.rest) { jumpSpecs = (hops, v.origin) }
            origins["proxyjump"] = v.origin
        } else if let overrideJumps {
            origins["proxyjump"] = overrideJumps.origin
        }
        if let (hops, via) = jumpSpecs, let last = hops.last {
            jumps = try chain(to: last, before: Array(hops.dropLast()), via: via, visiting: &visiting)
        }

        return SSHTarget(label: label, configName: configName, hostname: hostname, port: port, user: user,
                         identities: list, identitiesOnly: identitiesOnly, agentSocket: agent,
                         userKnownHosts: userKnownHosts, globalKnownHosts: globalKnownHosts,
                         hostKeyAlias: config["hostkeyalias"]?.first,
                         hashKnownHosts: ["yes", "true"].contains(config["hashknownhosts"]?.first.lowercased() ?? "no"),
                         hostKeyChecking: checking,
                         connectTimeout: timeout, keepaliveInterval: keepalive, keepaliveCountMax: countMax,
                         pinnedHostKey: nil, passphraseEnv: nil, jumps: jumps, origins: origins, notes: notes)
    }

    /// The bastions to reach `last` through (its own first), then `last` itself; `before` are the
    /// hops written before it in the same `ProxyJump` (`ssh -J before last`).
    mutating func chain(to last: ProxyJumpSpec, before: [ProxyJumpSpec], via: SSHValueOrigin,
                        visiting: inout [(name: String, via: SSHValueOrigin?)]) throws(ConfigurationError) -> [SSHTarget] {
        if visiting.contains(where: { $0.name.lowercased() == last.host.lowercased() }) {
            let path = (visiting.map(\.name) + [last.host]).map { "'\($0)'" }.joined(separator: " → ")
            let location = via.location ?? (file: "ssh configuration", line: 0)
            let key: String
            if case let .inventory(_, _, k) = via { key = k } else { key = "proxyjump" }
            diagnostics.append(Diagnostic(file: location.file, line: location.line, key: key,
                                          message: "ProxyJump cycle: \(path); a bastion cannot be reached through itself"))
            throw ConfigurationError(kind: "ssh configuration", diagnostics: diagnostics)
        }
        visiting.append((last.host, via))
        defer { visiting.removeLast() }
        var presets: [String: SSHConfigValue] = [:]
        if let user = last.user { presets["user"] = value(user, via) }
        if let port = last.port { presets["port"] = value(String(port), via) }
        addSettingsPresets(&presets)
        let override: (hops: [ProxyJumpSpec], origin: SSHValueOrigin)? = before.isEmpty ? nil : (before, via)
        var bastion = try hop(configName: last.host, label: last.description, presets: presets, identities: [],
                              overrideJumps: override, visiting: &visiting)
        let below = bastion.jumps
        bastion.jumps = []
        return below + [bastion]
    }

    // MARK: Checks

    /// OpenSSH refuses a private key others can read ("UNPROTECTED PRIVATE KEY FILE"); one that
    /// cannot be read is a mistake worth stopping for. A missing file is skipped, as ssh skips it.
    mutating func checkIdentity(_ identity: SSHIdentity) {
        var st = stat()
        guard stat(identity.path, &st) == 0 else { return }
        var problem: String?
        if st.st_mode & S_IFMT != S_IFREG {
            problem = "identity file '\(identity.path)' is not a regular file; name the private key file"
        } else if st.st_uid == geteuid() && st.st_mode & 0o077 != 0 {
            problem = "permissions \(String(format: "%04o", st.st_mode & 0o777)) for '\(identity.path)' are too open: OpenSSH refuses a private key that others can read (UNPROTECTED PRIVATE KEY FILE); run 'chmod 600 \(identity.path)'"
        } else if access(identity.path, R_OK) != 0 {
            problem = "identity file '\(identity.path)' cannot be read (\(errnoText())); check its owner and permissions"
        }
        guard let problem else { return }
        let location = identity.origin.location ?? (file: identity.path, line: 0)
        var key = "identityfile"
        if case let .inventory(_, _, k) = identity.origin { key = k }
        let d = Diagnostic(file: location.file, line: location.line, key: key, message: problem)
        if !diagnostics.contains(d) { diagnostics.append(d) }
    }

    /// Options that apply but that wheelfarm does not act on (those that change how a connection
    /// is made or authenticated; cosmetic ones are left out).
    static func ignoredOptions(_ config: SSHConfigResult) -> [String] {
        let significant = ["hostkeyalgorithms", "pubkeyacceptedalgorithms", "kexalgorithms", "ciphers", "macs",
                           "certificatefile", "bindaddress", "bindinterface", "addressfamily", "canonicalizehostname",
                           "checkhostip", "preferredauthentications", "revokedhostkeys", "knownhostscommand",
                           "connectionattempts", "pkcs11provider", "securitykeyprovider",
                           "controlmaster", "controlpath", "batchmode", "updatehostkeys", "verifyhostkeydns"]
        var out: [String] = []
        for key in significant {
            if let v = config.values[key], case .sshConfig = v.origin { out.append("\(key) (\(v.origin)) is not applied by wheelfarm") }
            if let list = config.lists[key] { for v in list { out.append("\(key) (\(v.origin)) is not applied by wheelfarm") } }
        }
        return out
    }
}

/// OpenSSH's `%` tokens, `~` and `${VAR}` for paths (`IdentityFile`, `UserKnownHostsFile`, …).
struct Tokens {
    let context: SSHConfigContext
    let hostArgument: String
    let hostname: String
    let port: Int
    let user: String
    let hostKeyAlias: String?

    func expandPath(_ raw: String) -> String {
        var path = raw
        if path == "~" { path = context.home } else if path.hasPrefix("~/") { path = context.home + path.dropFirst() } else if path.hasPrefix("~") {
            let name = path.dropFirst().prefix { $0 != "/" }
            if let entry = getpwnam(String(name)), let dir = entry.pointee.pw_dir {
                path = String(cString: dir) + path.dropFirst(1 + name.count)
            }
        }
        return dollar(percent(path))
    }

    func percent(_ text: String) -> String {
        var out = ""
        var chars = text.makeIterator()
        let short = String(context.thisHost.prefix { $0 != "." })
        while let c = chars.next() {
            guard c == "%" else { out.append(c); continue }
            guard let t = chars.next() else { out += "%"; break }
            switch t {
            case "%": out += "%"
            case "h": out += hostname
            case "p": out += String(port)
            case "r": out += user
            case "u": out += context.localUser
            case "n": out += hostArgument
            case "d": out += context.home
            case "l": out += context.thisHost
            case "L": out += short
            case "i": out += String(context.uid)
            case "k": out += hostKeyAlias ?? hostArgument
            case "C":
                let digest = Insecure.SHA1.hash(data: Data((context.thisHost + hostname + String(port) + user).utf8))
                out += digest.map { String(format: "%02x", $0) }.joined()
            default: out += "%" + String(t)
            }
        }
        return out
    }

    func dollar(_ text: String) -> String {
        var out = ""
        var rest = Substring(text)
        while let start = rest.range(of: "${") {
            out += rest[..<start.lowerBound]
            guard let end = rest[start.upperBound...].firstIndex(of: "}") else { out += rest[start.lowerBound...]; return out }
            out += context.environment[String(rest[start.upperBound..<end])] ?? ""
            rest = rest[rest.index(after: end)...]
        }
        return out + rest
    }
}
