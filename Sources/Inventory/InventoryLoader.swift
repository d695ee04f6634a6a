import FarmCore
import Foundation

/// Loads and validates an inventory file (see `docs/INVENTORY-FORMAT.md`).
///
/// Validation is strict and complete: every problem in the file is reported at once with file,
/// line and key, and nothing partial is returned. Hosts inherit `defaults`, then the values of
/// their groups in the order listed; explicit host values win. List values (capabilities,
/// labels, reserved) accumulate across defaults, groups and the host.
public enum InventoryLoader {
    /// Keys a host may set.
    public static let hostKeys = [
        "address", "port", "user", "identity_file", "passphrase_env", "connection", "arch", "capabilities",
        "reserved", "slots", "max_jobs", "speed", "labels", "drain", "host_key", "work_dir", "groups", "proxy_jump",
    ]
    /// Keys `defaults` may set.
    public static let defaultKeys = hostKeys.filter { !["address", "host_key", "groups"].contains($0) }
    /// Keys a group may set.
    public static let groupKeys = defaultKeys + ["hosts"]
    static let topKeys = ["ssh", "defaults", "groups", "hosts"]
    static let sshKeys = ["known_hosts", "host_key_checking", "connect_timeout", "keepalive", "ssh_config"]

    /// Loads the inventory at `path`, throwing a ``ConfigurationError`` listing every problem.
    public static func load(path: String, environment: LoaderEnvironment = .live) throws(ConfigurationError) -> Inventory {
        let collector = DiagnosticCollector(file: path)
        guard let root = YAMLDocument.load(path: path, into: collector) else {
            throw ConfigurationError(kind: "inventory", diagnostics: collector.diagnostics)
        }
        return try build(root: root, collector: collector, source: path, environment: environment)
    }

    /// Parses inventory text (used by tests and by the file watcher); `file` names it in messages.
    public static func parse(_ text: String, file: String, environment: LoaderEnvironment = .live) throws(ConfigurationError) -> Inventory {
        let collector = DiagnosticCollector(file: file)
        guard let root = YAMLDocument.parse(text, into: collector) else {
            throw ConfigurationError(kind: "inventory", diagnostics: collector.diagnostics)
        }
        return try build(root: root, collector: collector, source: file, environment: environment)
    }

    /// A host's settings before inheritance, each remembered with where it was written.
    struct Layer {
        var scalars: [String: YAMLValue] = [:]
        var lists: [String: [(String, YAMLValue)]] = [:]
        var groupNames: [(String, YAMLValue)] = []
    }

    private static let listKeys: Set<String> = ["capabilities", "reserved", "labels"]

    private static func layer(from value: YAMLValue, allowed: [String], collector: DiagnosticCollector) -> Layer {
        var layer = Layer()
        for (key, v) in collector.entries(value, allowed: allowed) {
            if listKeys.contains(key) {
                layer.lists[key] = collector.stringList(v)
            } else if key == "groups" {
                layer.groupNames = collector.stringList(v)
            } else if key != "hosts" && key != "name" {
                layer.scalars[key] = v
            }
        }
        return layer
    }

    private static func build(root: YAMLValue, collector: DiagnosticCollector, source: String,
                              environment: LoaderEnvironment) throws(ConfigurationError) -> Inventory {
        var defaults = Layer()
        var groups: [(name: String, line: Int, layer: Layer, members: [(String, YAMLValue)])] = []
        var hostEntries: [(name: String, line: Int, column: Int, value: YAMLValue)] = []
        var ssh = SSHSettings(origins: [:])
        var sawHosts = false

        for (key, value) in collector.entries(root, allowed: topKeys) {
            switch key {
            case "ssh": ssh = readSSH(value, collector: collector)
            case "defaults": defaults = layer(from: value, allowed: defaultKeys, collector: collector)
            case "groups":
                guard let entries = value.entries else { collector.report(value, "expected a mapping of group names to settings, found \(value.kindName)"); continue }
                for e in entries {
                    let members = e.value.entries?.first(where: { $0.key == "hosts" }).map { collector.stringList($0.value) } ?? []
                    groups.append((e.key, e.keyLine, layer(from: e.value, allowed: groupKeys, collector: collector), members))
                }
            case "hosts":
                sawHosts = true
                if let entries = value.entries {
                    hostEntries = entries.map { ($0.key, $0.keyLine, $0.keyColumn, $0.value) }
                } else if let items = value.items {
                    // Also accept a list of mappings with a `name:` key.
                    for item in items {
                        guard let name = item.entries?.first(where: { $0.key == "name" }) else {
                            collector.report(item, "each host in a list needs a 'name:'; or write hosts as a mapping from name to settings")
                            continue
                        }
                        let hostName = collector.string(name.value) ?? "?"
                        hostEntries.append((hostName, name.keyLine, name.keyColumn, YAMLValue(node: item.node, path: "hosts.\(hostName)")))
                    }
                } else if !value.isNull {
                    collector.report(value, "expected a mapping from host name to settings, found \(value.kindName)")
                }
            default: break
            }
        }
        if !sawHosts { collector.report(line: 1, key: "hosts", "the inventory has no 'hosts:' section; add at least one host") }

        // Duplicate names when hosts are written as a list (mapping duplicates are caught by the parser).
        var seen: [String: Int] = [:]
        for h in hostEntries {
            if let first = seen[h.name] {
                collector.report(line: h.line, column: h.column, key: "hosts.\(h.name)", "duplicate host name '\(h.name)' (first defined on line \(first))")
            } else { seen[h.name] = h.line }
        }

        // Group membership: from the group's `hosts:` and from each host's `groups:`.
        let groupNames = groups.map(\.name)
        var membership: [String: [String]] = [:]
        for g in groups {
            for (member, value) in g.members {
                if seen[member] == nil {
                    collector.report(value, "group '\(g.name)' lists unknown host '\(member)'\(DidYouMean.hint(for: member, among: hostEntries.map(\.name)))")
                }
                membership[member, default: []].append(g.name)
            }
        }

        var hosts: [Host] = []
        for entry in hostEntries where seen[entry.name] == entry.line {
            var hostLayer = layer(from: entry.value, allowed: hostKeys + ["name"], collector: collector)
            if entry.value.isNull { hostLayer = Layer() }
            var groupsOfHost = membership[entry.name] ?? []
            for (g, value) in hostLayer.groupNames {
                if !groupNames.contains(g) {
                    collector.report(value, "unknown group '\(g)'\(DidYouMean.hint(for: g, among: groupNames))")
                } else if !groupsOfHost.contains(g) { groupsOfHost.append(g) }
            }
            // Order: defaults, then groups in file order, then the host.
            let orderedGroups = groups.filter { groupsOfHost.contains($0.name) }.map(\.layer)
            let layers = [defaults] + orderedGroups + [hostLayer]
            if let host = resolveHost(name: entry.name, line: entry.line, layers: layers, collector: collector, environment: environment) {
                hosts.append(host)
            }
        }

        if !collector.diagnostics.isEmpty {
            throw ConfigurationError(kind: "inventory", diagnostics: collector.diagnostics.sorted { ($0.line, $0.column) < ($1.line, $1.column) })
        }
        return Inventory(hosts: hosts, ssh: ssh, source: source)
    }

    private static func readSSH(_ value: YAMLValue, collector: DiagnosticCollector) -> SSHSettings {
        var s = SSHSettings(origins: [:])
        for (key, v) in collector.entries(value, allowed: sshKeys) {
            s.origins?[key] = "\(collector.file):\(v.line)"
            switch key {
            case "ssh_config": if let t = collector.string(v) { s.sshConfig = t }
            case "known_hosts": if let t = collector.string(v) { s.knownHosts = t }
            case "host_key_checking":
                guard let t = collector.string(v) else { continue }
                if let mode = SSHSettings.HostKeyChecking(rawValue: t.lowercased()) {
                    s.hostKeyChecking = mode
                } else if ["no", "off", "false"].contains(t.lowercased()) {
                    collector.report(v, "host key checking cannot be turned off; use 'accept-new' to record keys of new hosts, or pin 'host_key' per host")
                } else {
                    collector.report(v, "expected 'strict' or 'accept-new', found '\(t)'\(DidYouMean.hint(for: t, among: ["strict", "accept-new"]))")
                }
            case "connect_timeout": if let d = collector.positiveDouble(v) { s.connectTimeout = d }
            case "keepalive": if let n = collector.int(v, minimum: 0) { s.keepaliveInterval = n }
            default: break
            }
        }
        return s
    }

    private static func resolveHost(name: String, line: Int, layers: [Layer], collector: DiagnosticCollector,
                                    environment: LoaderEnvironment) -> Host? {
        let before = collector.reportCount
        func last(_ key: String) -> YAMLValue? { layers.reversed().lazy.compactMap { $0.scalars[key] }.first }
        func all(_ key: String) -> [(String, YAMLValue)] { layers.flatMap { $0.lists[key] ?? [] } }
        let hostPath = "hosts.\(name)"

        var connection = Host.Connection.ssh
        if let v = last("connection"), let t = collector.string(v) {
            if let c = Host.Connection(rawValue: t.lowercased()) { connection = c } else {
                collector.report(v, "expected 'ssh' or 'local', found '\(t)'\(DidYouMean.hint(for: t, among: ["ssh", "local"]))")
            }
        }

        var arch: Arch?
        if let v = last("arch"), let t = collector.string(v) {
            arch = Arch(parsing: t)
            if arch == nil {
                collector.report(v, "'\(t)' is not a supported architecture; expected one of \(Arch.acceptedNames.joined(separator: ", "))")
            }
        } else if last("arch") == nil {
            if connection == .local { arch = environment.localArch } else {
                collector.report(line: line, key: "\(hostPath).arch", "missing 'arch' (amd64 or arm64) for host '\(name)'")
            }
        }

        func capabilities(_ key: String) -> Set<Capability> {
            var out = Set<Capability>()
            for (raw, v) in all(key) {
                if raw.lowercased() == "auto" {
                    if connection == .local { out.formUnion(environment.localCapabilities()) } else {
                        collector.report(v, "'auto' is only allowed for 'connection: local' hosts; list the flags, or run 'wheelfarm hosts probe' to see them")
                    }
                    continue
                }
                if let caps = Capability.normalise(raw, arch: arch) { out.formUnion(caps) } else {
                    collector.report(v, "unknown capability '\(raw)'\(DidYouMean.hint(for: raw, among: Capability.acceptedNames)); use /proc/cpuinfo flag names (avx512f, avx512_vnni, avx512_bf16, amx_bf16, amx_tile) or the aliases avx512, vnni, bf16, amx")
                }
            }
            return out
        }
        let caps = capabilities("capabilities")
        let reserved = capabilities("reserved")
        if let v = layers.last?.lists["reserved"]?.first?.1 ?? layers.lazy.compactMap({ $0.lists["reserved"]?.first?.1 }).first {
            let extra = reserved.subtracting(caps)
            if !extra.isEmpty {
                collector.report(v, "reserved flags \(extra.sorted().map(\.name).joined(separator: ", ")) are not among the host's capabilities")
            }
        }

        var port = 22
        if let v = last("port"), let n = collector.int(v, minimum: 1, maximum: 65535) { port = n }
        var slots = 1
        if let v = last("slots"), let n = collector.int(v, minimum: 1) { slots = n }
        var maxJobs: Int?
        if let v = last("max_jobs") { maxJobs = collector.int(v, minimum: 1) }
        var speed = 1.0
        if let v = last("speed"), let d = collector.positiveDouble(v) { speed = d }
        var drain = false
        if let v = last("drain"), let b = collector.bool(v) { drain = b }

        let user = last("user").flatMap(collector.string)
        let address = last("address").flatMap(collector.string)
        let passphraseEnv = last("passphrase_env").flatMap(collector.string)
        if let v = last("passphrase_env"), let env = v.scalar, env.contains(where: { !($0.isLetter || $0.isNumber || $0 == "_") }) {
            collector.report(v, "'\(env)' is not an environment variable name; give the NAME of a variable holding the passphrase, never the passphrase itself")
        }
        var identityFile: String?
        if let v = last("identity_file"), let path = collector.string(v) {
            let expanded = environment.expandTilde(path)
            if connection == .ssh, !environment.isReadable(expanded) {
                collector.report(v, "identity file '\(path)' cannot be read; check the path and its permissions")
            }
            identityFile = expanded
        }
        let hostKey = last("host_key").flatMap(collector.string)
        if let v = last("host_key"), let key = hostKey {
            let parts = key.split(separator: " ")
            if parts.count < 2 || !["ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa"].contains(String(parts[0])) {
                collector.report(v, "expected a public key line such as 'ssh-ed25519 AAAAC3Nza…' (as in known_hosts, without the host name)")
            }
        }
        let workDir = last("work_dir").flatMap(collector.string) ?? Host.defaultWorkDir
        let proxyJump = last("proxy_jump").flatMap(collector.string)
        if let v = last("proxy_jump"), let spec = proxyJump, spec.isEmpty || spec.contains(where: { $0 == " " || $0 == "\t" }) {
            collector.report(v, "expected OpenSSH's ProxyJump form '[user@]host[:port][,…]' without spaces, or 'none', found '\(spec)'")
        }
        // Where each SSH value was written: keys left out may come from ssh_config.
        var sshOrigins: [String: String] = [:]
        for key in ["address", "port", "user", "identity_file", "proxy_jump"] {
            if let v = last(key) { sshOrigins[key] = "\(collector.file):\(v.line)" }
        }
        let labels = Set(all("labels").map(\.0))

        guard collector.reportCount == before, let arch else { return nil }
        return Host(name: name, address: address, port: port, user: user, identityFile: identityFile,
                    passphraseEnv: passphraseEnv, connection: connection, arch: arch, capabilities: caps,
                    reserved: reserved, slots: slots, maxJobs: maxJobs, speed: speed, labels: labels, drain: drain,
                    hostKey: hostKey, workDir: workDir, proxyJump: proxyJump, sshOrigins: sshOrigins)
    }
}

/// What the loader needs from the machine it runs on; tests substitute their own.
public struct LoaderEnvironment: Sendable {
    /// The coordinator's own architecture (for `connection: local` hosts without `arch`).
    public var localArch: Arch
    /// The coordinator's CPU flags (for `capabilities: [auto]` on local hosts).
    public var localCapabilities: @Sendable () -> Set<Capability>
    /// Whether a file can be read.
    public var isReadable: @Sendable (String) -> Bool
    /// The home directory for `~` expansion.
    public var home: String

    public init(localArch: Arch, localCapabilities: @escaping @Sendable () -> Set<Capability>,
                isReadable: @escaping @Sendable (String) -> Bool, home: String) {
        self.localArch = localArch; self.localCapabilities = localCapabilities; self.isReadable = isReadable; self.home = home
    }

    /// Expands a leading `~/`.
    public func expandTilde(_ path: String) -> String {
        if path == "~" { return home }
        if path.hasPrefix("~/") { return home + path.dropFirst(1) }
        return path
    }

    /// The real machine.
    public static let live = LoaderEnvironment(
        localArch: {
            #if arch(arm64)
            return .arm64
            #else
            return .amd64
            #endif
        }(),
        localCapabilities: { CPUInfo.flags(ofFile: "/proc/cpuinfo") },
        isReadable: { FileManager.default.isReadableFile(atPath: $0) },
        home: ProcessInfo.processInfo.environment["HOME"] ?? NSHomeDirectory())
}

/// Reads CPU flags from `/proc/cpuinfo` text.
public enum CPUInfo {
    /// The known capabilities listed on the `flags` (x86) or `Features` (arm64) lines.
    public static func flags(inText text: String) -> Set<Capability> {
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2 else { continue }
            let key = parts[0].trimmingWhitespace()
            guard key == "flags" || key == "Features" else { continue }
            return Set(parts[1].split(separator: " ").map(String.init).filter { Capability.known.contains($0) }.map(Capability.init))
        }
        return []
    }

    /// The flags of a cpuinfo file; empty when it cannot be read.
    public static func flags(ofFile path: String) -> Set<Capability> {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        return flags(inText: String(decoding: data, as: UTF8.self))
    }
}
