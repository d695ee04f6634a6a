import FarmCore
import FarmTestSupport
import Foundation
import Testing
@testable import Remote
#if canImport(Glibc)
import Glibc
#endif

/// The ssh_config evaluation against OpenSSH itself: for a corpus of configurations and host
/// names, the effective values wheelfarm computes equal what `ssh -G` prints.
@Suite("ssh_config against ssh -G")
struct SSHConfigTests {
    /// One case: configuration files (the first is passed to `ssh -F`), host names, and
    /// options given before the files (the inventory's, as `ssh -o`).
    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var files: [String: String]
        var hosts: [String]
        var presets: [(String, String)] = []
        var testDescription: String { name }
    }

    /// The keywords compared (as `ssh -G` names them).
    static let keywords = ["hostname", "user", "port", "identityfile", "identitiesonly", "userknownhostsfile",
                           "globalknownhostsfile", "stricthostkeychecking", "connecttimeout", "serveraliveinterval",
                           "proxyjump", "hostkeyalias", "hashknownhosts"]

    static let corpus: [Case] = [
        Case(name: "Host blocks: HostName, User, Port, several IdentityFiles; first value wins", files: ["config": """
            Host farmbox
              HostName 127.0.0.5
              User builder
              Port 2222
              IdentityFile ~/.ssh/farm_ed25519
              IdentityFile /opt/keys/second
            Host farm*
              User ignored
              Port 2200
              IdentityFile ~/.ssh/third
            Host *
              User everyone
              ConnectTimeout 9
            """], hosts: ["farmbox", "farmhouse", "other"]),
        Case(name: "patterns: *, ?, negation and several per line", files: ["config": """
            Host *.farm !bad.farm
              User farmer
            Host build-?? web
              Port 2022
            Host !*.farm *
              ServerAliveInterval 15
            """], hosts: ["a.farm", "bad.farm", "build-01", "build-100", "web", "x"]),
        Case(name: "Match host sees HostName, originalhost the name, user and all", files: ["config": """
            Host alias
              HostName real.example
            Match host real.example
              Port 2201
            Match originalhost alias user root
              User matched
            Match !host *.example
              StrictHostKeyChecking accept-new
            Match all
              IdentitiesOnly yes
            """], hosts: ["alias", "real.example", "plain"]),
        Case(name: "HostName %h and Match on the substituted name", files: ["config": """
            Host *-b
              HostName %h.internal
            Match host *.internal
              User internal
              UserKnownHostsFile ~/.ssh/known_%h_%p_%r %d/k %u-%n
            """], hosts: ["x-b", "x-c"]),
        Case(name: "Keyword=value, quoting, comments, case and tabs", files: ["config": """
            # a comment
            HOST quoted
            \tHostName=10.1.2.3   # trailing comment
              USER = "spaced user"
              IdentityFile "/tmp/with space/key"
              IdentityFile '/tmp/single'
              connecttimeout 1m30s
            """], hosts: ["quoted", "QUOTED"]),
        Case(name: "StrictHostKeyChecking spellings and times", files: ["config": """
            Host a
              StrictHostKeyChecking yes
              ServerAliveInterval 2m
            Host b
              StrictHostKeyChecking no
            Host c
              StrictHostKeyChecking off
              ConnectTimeout none
            Host d
              StrictHostKeyChecking ask
            """], hosts: ["a", "b", "c", "d"]),
        Case(name: "ProxyJump: several hops, users and ports, none, ProxyCommand first", files: ["config": """
            Host t1
              ProxyJump alice@hop1:2201,hop2,ssh://bob@hop3:2203
            Host t2
              ProxyJump none
            Host t3
              ProxyCommand none
            Host t*
              ProxyJump later
            """], hosts: ["t1", "t2", "t3", "t4"]),
        Case(name: "known_hosts files, none, HostKeyAlias, HashKnownHosts", files: ["config": """
            Host a
              UserKnownHostsFile none
              GlobalKnownHostsFile /etc/ssh/other_known_hosts
              HostKeyAlias shared-alias
            Host b
              UserKnownHostsFile /tmp/k1 /tmp/k2
              GlobalKnownHostsFile none
              HashKnownHosts yes
            """], hosts: ["a", "b", "c"]),
        Case(name: "IgnoreUnknown skips unknown keywords", files: ["config": """
            IgnoreUnknown UseKeychain,AddToAgentLater
            Host *
              UseKeychain yes
              User keychained
            """], hosts: ["any"]),
        Case(name: "Include: glob, sorted, inside a Host block, state restored", files: [
            "config": """
            Host inc
              Include DIR/conf.d/*.conf
              Port 2300
            Host *
              Include DIR/always
            """,
            "conf.d/b.conf": "User from-b\nHost inc\n  HostName b.example\n",
            "conf.d/a.conf": "User from-a\nIdentityFile /keys/a\n",
            "always": "ServerAliveInterval 7\nHost inc\n  ConnectTimeout 4\n",
        ], hosts: ["inc", "other"]),
        Case(name: "Match final: a second pass against the HostName", files: ["config": """
            Host short
              HostName short.example.org
            Match final host *.example.org
              User final-user
            Host *.example.org
              Port 2400
            """], hosts: ["short", "plain"]),
        Case(name: "inventory values as ssh -o: they win and Match host sees them", files: ["config": """
            Host farmbox
              HostName from-config
              User config-user
              Port 2222
            Match host 127.0.0.9
              IdentityFile ~/.ssh/matched
            """], hosts: ["farmbox"], presets: [("HostName", "127.0.0.9"), ("User", "inventory-user")]),
        Case(name: "environment variables in paths", files: ["config": """
            Host *
              UserKnownHostsFile ${WF_SSHCONFIG_TEST}/known_hosts
              IdentityFile ${WF_SSHCONFIG_TEST}/id
            """], hosts: ["any"]),
    ]

    private static var home: String {
        guard let entry = getpwuid(geteuid()), let dir = entry.pointee.pw_dir else { return "/root" }
        return String(cString: dir)
    }
    private static var localUser: String {
        guard let entry = getpwuid(geteuid()), let name = entry.pointee.pw_name else { return "root" }
        return String(cString: name)
    }

    /// Writes a case's files into `dir` (`DIR` in them becomes the directory) and returns the config path.
    static func write(_ c: Case, in dir: URL) throws -> String {
        for (name, text) in c.files {
            let url = dir.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try text.replacingOccurrences(of: "DIR", with: dir.path).write(to: url, atomically: true, encoding: .utf8)
        }
        return dir.appendingPathComponent("config").path
    }

    /// `ssh -G` output as keyword → values (in order).
    static func sshG(config: String, host: String, presets: [(String, String)], environment: [String: String]) throws -> [String: [String]] {
        var args = ["-G", "-F", config]
        for (k, v) in presets { args += ["-o", "\(k)=\(v)"] }
        let r = try TestProcess.run("/usr/bin/ssh", args + [host], environment: environment)
        guard r.status == 0 else { throw HarnessError("ssh -G failed for '\(host)': \(r.stderr)") }
        var out: [String: [String]] = [:]
        for line in r.stdout.split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 1)
            out[String(parts[0]), default: []].append(parts.count > 1 ? String(parts[1]) : "")
        }
        return out
    }

    /// wheelfarm's values, rendered as `ssh -G` prints them.
    static func ours(config: String, host: String, presets: [(String, String)], environment: [String: String]) throws -> [String: [String]] {
        let context = SSHConfigContext(localUser: localUser, home: home, environment: environment,
                                       thisHost: ProcessInfo.processInfo.hostName, uid: getuid())
        var values: [String: SSHConfigValue] = [:]
        for (k, v) in presets { values[k.lowercased()] = SSHConfigValue(arguments: [v], rest: v, origin: .inventory(file: "", line: 0, key: k)) }
        let file = SSHConfigFile(displayPath: config, path: config, isUserConfig: true, checkPermissions: false, required: true)
        let r = try SSHConfigEvaluator.evaluate(host: host, files: [file], context: context, presets: values)
        let user = r["user"]?.first ?? localUser
        let port = Int(r["port"]?.first ?? "22") ?? 22
        let tokens = Tokens(context: context, hostArgument: host, hostname: r.hostname, port: port, user: user,
                            hostKeyAlias: r["hostkeyalias"]?.first)
        func flag(_ k: String) -> String { ["yes", "true"].contains(r[k]?.first.lowercased() ?? "no") ? "yes" : "no" }
        var out: [String: [String]] = [
            "hostname": [r.hostname], "user": [user], "port": [String(port)], "identitiesonly": [flag("identitiesonly")],
            "hashknownhosts": [flag("hashknownhosts")],
        ]
        let ids = r.lists["identityfile"]?.map(\.first) ?? []
        out["identityfile"] = ids.isEmpty
            ? ["~/.ssh/id_rsa", "~/.ssh/id_ecdsa", "~/.ssh/id_ecdsa_sk", "~/.ssh/id_ed25519", "~/.ssh/id_ed25519_sk", "~/.ssh/id_xmss", "~/.ssh/id_dsa"]
            : ids
        if let v = r["userknownhostsfile"] {
            out["userknownhostsfile"] = v.arguments.first?.lowercased() == "none" ? ["none"] : [v.arguments.map(tokens.expandPath).joined(separator: " ")]
        } else {
            out["userknownhostsfile"] = ["\(home)/.ssh/known_hosts \(home)/.ssh/known_hosts2"]
        }
        out["globalknownhostsfile"] = [r["globalknownhostsfile"]?.arguments.joined(separator: " ") ?? "/etc/ssh/ssh_known_hosts /etc/ssh/ssh_known_hosts2"]
        let strict = ["yes": "true", "true": "true", "no": "false", "false": "false", "off": "false", "ask": "ask", "accept-new": "accept-new"]
        out["stricthostkeychecking"] = [r["stricthostkeychecking"].map { strict[$0.first.lowercased()] ?? "?" } ?? "ask"]
        func seconds(_ k: String, unset: String) -> String {
            guard let v = r[k], v.first.lowercased() != "none" else { return unset }
            return SSHConfigEvaluator.seconds(v.first).map(String.init) ?? "?"
        }
        out["connecttimeout"] = [seconds("connecttimeout", unset: "none")]
        out["serveraliveinterval"] = [seconds("serveraliveinterval", unset: "0")]
        if let v = r["proxyjump"] {
            // `ProxyJump none` is not printed by ssh -G.
            if v.rest.lowercased() != "none" {
                // ssh -G prints the hops before the last as written, the last one normalised.
                let hops = v.rest.split(separator: ",").map(String.init)
                let last = try ProxyJumpSpec.parse(hops.last!)
                out["proxyjump"] = [(hops.dropLast() + [last.description]).joined(separator: ",")]
            }
        }
        if let v = r["hostkeyalias"] { out["hostkeyalias"] = [v.first] }
        return out
    }

    @Test("effective values equal ssh -G", arguments: corpus)
    func matchesOpenSSH(_ c: Case) throws {
        let dir = try TestEnvironment.makeTemporaryDirectory("wheelfarm-sshconfig")
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = try Self.write(c, in: dir)
        var environment = ProcessInfo.processInfo.environment
        environment["WF_SSHCONFIG_TEST"] = dir.path
        for host in c.hosts {
            let expected = try Self.sshG(config: config, host: host, presets: c.presets, environment: environment)
            let actual = try Self.ours(config: config, host: host, presets: c.presets, environment: environment)
            for key in Self.keywords {
                #expect(actual[key] == expected[key], "\(c.name): host '\(host)', \(key): wheelfarm \(actual[key] ?? []) vs ssh -G \(expected[key] ?? [])")
            }
        }
    }

    // MARK: Bad input: refused by both, with file and line here

    @Test("bad input is refused as OpenSSH refuses it, naming file and line",
          arguments: [
            ("unknown keyword", "Host x\n  Hostnme typo\n", "line 2", "bad configuration option 'hostnme' (did you mean 'hostname'?)"),
            ("bad port", "Host x\n  Port 70000\n", "line 2", "bad port '70000'"),
            ("unclosed quote", "Host x\n  User \"open\n", "line 2", "invalid quotes"),
            ("bad ProxyJump", "Host x\n  ProxyJump a@\n", "line 2", "invalid ProxyJump"),
            ("Match without criteria", "Match\n", "line 1", "no argument after keyword"),
          ])
    func badInput(_ name: String, _ text: String, _ line: String, _ message: String) throws {
        let dir = try TestEnvironment.makeTemporaryDirectory("wheelfarm-sshconfig-bad")
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = dir.appendingPathComponent("config").path
        try text.write(toFile: config, atomically: true, encoding: .utf8)
        let ssh = try TestProcess.run("/usr/bin/ssh", ["-G", "-F", config, "x"])
        #expect(ssh.status != 0, "ssh -G accepted \(name): \(ssh.stdout)")
        do {
            _ = try Self.ours(config: config, host: "x", presets: [], environment: [:])
            Issue.record("\(name) was accepted")
        } catch let error as ConfigurationError {
            #expect(error.description.contains("\(config):\(line.dropFirst(5))"), "\(error)")
            #expect(error.description.contains(message), "\(error)")
        }
    }

    @Test("an Include loop is reported with the chain of files and lines; ssh refuses it too")
    func includeLoop() throws {
        let dir = try TestEnvironment.makeTemporaryDirectory("wheelfarm-sshconfig-loop")
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = try Self.write(Case(name: "loop", files: [
            "config": "Host *\n  User u\nInclude DIR/a\n",
            "a": "# a includes b\nInclude DIR/b\n",
            "b": "Include DIR/a\n",
        ], hosts: []), in: dir)
        let ssh = try TestProcess.run("/usr/bin/ssh", ["-G", "-F", config, "x"])
        #expect(ssh.status != 0 && ssh.stderr.contains("Too many recursive configuration includes"), "\(ssh.stderr)")
        do {
            _ = try Self.ours(config: config, host: "x", presets: [], environment: [:])
            Issue.record("an Include loop was accepted")
        } catch let error as ConfigurationError {
            let text = error.description
            #expect(text.contains("Include loop"), "\(text)")
            #expect(text.contains("\(dir.path)/b:1"), "\(text)")
            #expect(text.contains("'\(dir.path)/a' line 2 includes '\(dir.path)/b' line 1 includes '\(dir.path)/a' again"), "\(text)")
        }
    }

    @Test("a user configuration others can write is refused, as OpenSSH refuses it")
    func userConfigPermissions() throws {
        let dir = try TestEnvironment.makeTemporaryDirectory("wheelfarm-sshconfig-perm")
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = dir.appendingPathComponent("config").path
        try "Host x\n  User u\n".write(toFile: config, atomically: true, encoding: .utf8)
        chmod(config, 0o666)
        let context = SSHConfigContext(localUser: "root", home: dir.path, environment: [:], thisHost: "h", uid: 0)
        let file = SSHConfigFile(displayPath: "~/.ssh/config", path: config, isUserConfig: true, checkPermissions: true, required: false)
        #expect(throws: ConfigurationError.self) { try SSHConfigEvaluator.evaluate(host: "x", files: [file], context: context) }
        chmod(config, 0o644)
        let ok = try SSHConfigEvaluator.evaluate(host: "x", files: [file], context: context)
        #expect(ok["user"]?.first == "u")
    }

    @Test("Match exec is refused only when it would have to run")
    func matchExec() throws {
        let context = SSHConfigContext(localUser: "root", home: "/root", environment: [:], thisHost: "h", uid: 0)
        let dir = try TestEnvironment.makeTemporaryDirectory("wheelfarm-sshconfig-exec")
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = dir.appendingPathComponent("config").path
        try "Match host other exec \"true\"\n  User e\n".write(toFile: config, atomically: true, encoding: .utf8)
        let file = SSHConfigFile(displayPath: config, path: config, isUserConfig: true, checkPermissions: false, required: true)
        #expect(try SSHConfigEvaluator.evaluate(host: "mine", files: [file], context: context)["user"] == nil)
        #expect(throws: ConfigurationError.self) { try SSHConfigEvaluator.evaluate(host: "other", files: [file], context: context) }
    }
}
