import struct Inventory.Host
import FarmCore
import FarmTestSupport
import Foundation
import Inventory
import Testing
@testable import Remote
#if canImport(Glibc)
import Glibc
#endif

/// How an inventory host's effective SSH settings are put together: inventory, then ssh_config,
/// then defaults, each with its origin; and the problems that stop a run before it starts.
@Suite("SSH target resolution")
struct SSHTargetResolverTests {
    /// A HOME of the test's own with `~/.ssh/config` holding `config`.
    struct Home {
        let url: URL
        var sshConfig: String { url.appendingPathComponent(".ssh/config").path }
        init(config: String) throws {
            url = try TestEnvironment.makeTemporaryDirectory("wheelfarm-home")
            try FileManager.default.createDirectory(at: url.appendingPathComponent(".ssh"), withIntermediateDirectories: true)
            try config.replacingOccurrences(of: "HOME", with: url.path).write(toFile: sshConfig, atomically: true, encoding: .utf8)
            chmod(sshConfig, 0o600)
        }
        var options: SSHClientOptions {
            SSHClientOptions(environment: ["HOME": url.path], agentSocket: .some(nil), defaultUser: "local",
                             systemConfigPath: nil, globalKnownHostsFiles: ["/nonexistent/ssh_known_hosts"])
        }
        func key(_ name: String, mode: mode_t = 0o600) throws -> String {
            let path = url.appendingPathComponent(".ssh/\(name)").path
            try "-----BEGIN OPENSSH PRIVATE KEY-----\n-----END OPENSSH PRIVATE KEY-----\n".write(toFile: path, atomically: true, encoding: .utf8)
            chmod(path, mode)
            return path
        }
        func remove() { try? FileManager.default.removeItem(at: url) }
    }

    private func inventory(_ yaml: String) throws -> Inventory {
        try InventoryLoader.parse(yaml, file: "farm.yaml", environment: LoaderEnvironment(
            localArch: .amd64, localCapabilities: { [] }, isReadable: { _ in true }, home: "/nonexistent"))
    }

    @Test("an alias-only inventory host takes HostName, Port, User and IdentityFile from ssh_config, with their lines")
    func aliasOnly() throws {
        let home = try Home(config: """
            Host farmbox
              HostName 127.0.0.5
              Port 2222
              User builder
              IdentityFile ~/.ssh/farm_key
            """)
        defer { home.remove() }
        _ = try home.key("farm_key")
        let inv = try inventory("hosts:\n  farmbox:\n    arch: amd64\n")
        let t = try SSHTargetResolver.resolve(host: inv.hosts[0], settings: inv.ssh, options: home.options)
        #expect(t.hostname == "127.0.0.5" && t.port == 2222 && t.user == "builder")
        #expect(t.identities.map(\.path) == [home.url.path + "/.ssh/farm_key"])
        #expect(t.origins["hostname"] == .sshConfig(file: "~/.ssh/config", line: 2))
        #expect(t.origins["port"] == .sshConfig(file: "~/.ssh/config", line: 3))
        #expect(t.origins["user"] == .sshConfig(file: "~/.ssh/config", line: 4))
        #expect(t.identities[0].origin == .sshConfig(file: "~/.ssh/config", line: 5))
        #expect(t.userKnownHosts == [home.url.path + "/.ssh/known_hosts", home.url.path + "/.ssh/known_hosts2"])
        #expect(t.hostKeyChecking == .strict && t.keepaliveInterval == 30 && t.connectTimeout == 10)
    }

    @Test("inventory values win over ssh_config, ssh_config over the defaults")
    func precedence() throws {
        let home = try Home(config: """
            Host farmbox
              HostName from-config
              Port 2222
              User config-user
              IdentityFile ~/.ssh/config_key
              StrictHostKeyChecking accept-new
              ConnectTimeout 3
              ServerAliveInterval 0
            """)
        defer { home.remove() }
        let inventoryKey = try home.key("inventory_key")
        _ = try home.key("config_key")
        let inv = try inventory("""
            ssh:
              host_key_checking: strict
            hosts:
              farmbox:
                arch: amd64
                user: inventory-user
                identity_file: \(inventoryKey)
            """)
        let t = try SSHTargetResolver.resolve(host: inv.hosts[0], settings: inv.ssh, options: home.options)
        #expect(t.hostname == "from-config" && t.port == 2222)
        #expect(t.user == "inventory-user" && t.origins["user"] == .inventory(file: "farm.yaml", line: 6, key: "hosts.farmbox.user"))
        // The inventory's identity first (like ssh -i), then ssh_config's.
        #expect(t.identities.map(\.path) == [inventoryKey, home.url.path + "/.ssh/config_key"])
        #expect(t.hostKeyChecking == .strict && t.origins["stricthostkeychecking"] == .inventory(file: "farm.yaml", line: 2, key: "ssh.host_key_checking"))
        #expect(t.connectTimeout == 3 && t.keepaliveInterval == 0)
    }

    @Test("nothing named: the agent, then ~/.ssh/id_ed25519 and ~/.ssh/id_ecdsa; StrictHostKeyChecking no is accept-new")
    func defaults() throws {
        let home = try Home(config: "Host *\n  StrictHostKeyChecking no\n")
        defer { home.remove() }
        let t = try SSHTargetResolver.resolve(host: Host(name: "plain", arch: .amd64, sshOrigins: [:]), settings: SSHSettings(origins: [:]),
                                              options: home.options)
        #expect(t.identities.map(\.written) == ["~/.ssh/id_ed25519", "~/.ssh/id_ecdsa"] && t.identities.allSatisfy(\.isDefault))
        #expect(t.user == "local" && t.hostname == "plain" && t.port == 22)
        #expect(t.hostKeyChecking == .acceptNew)
        #expect(t.notes.contains { $0.contains("taken as accept-new") })
    }

    @Test("a ProxyJump cycle is an error naming the file and line that closes it")
    func proxyJumpCycle() throws {
        let home = try Home(config: """
            Host target
              ProxyJump hop1
            Host hop1
              ProxyJump hop2
            Host hop2
              ProxyJump target
            """)
        defer { home.remove() }
        do {
            _ = try SSHTargetResolver.resolve(host: Host(name: "target", arch: .amd64, sshOrigins: [:]), settings: SSHSettings(origins: [:]),
                                              options: home.options)
            Issue.record("a cycle was accepted")
        } catch {
            let text = error.description
            #expect(text.contains("~/.ssh/config:6"), "\(text)")
            #expect(text.contains("ProxyJump cycle: 'target' → 'hop1' → 'hop2' → 'target'"), "\(text)")
        }
    }

    @Test("bastions: hops in connection order; earlier hops of one ProxyJump override a hop's own")
    func bastionChain() throws {
        let home = try Home(config: """
            Host target
              ProxyJump alice@hop1:2201,hop2
            Host hop2
              ProxyJump ignored-because-of-the-list
              HostName 10.0.0.2
            Host hop1
              ProxyJump hop0
            """)
        defer { home.remove() }
        let t = try SSHTargetResolver.resolve(host: Host(name: "target", arch: .amd64, sshOrigins: [:]), settings: SSHSettings(origins: [:]),
                                              options: home.options)
        #expect(t.jumps.map(\.label) == ["hop0", "alice@hop1:2201", "hop2"])
        #expect(t.jumps[1].user == "alice" && t.jumps[1].port == 2201 && t.jumps[2].hostname == "10.0.0.2")
        #expect(t.jumps.allSatisfy { $0.jumps.isEmpty })
    }

    @Test("identity files others can read are refused as OpenSSH refuses them; ProxyCommand is refused")
    func refusals() throws {
        let home = try Home(config: """
            Host open
              IdentityFile ~/.ssh/open_key
            Host dir
              IdentityFile ~/.ssh
            Host proxied
              ProxyCommand nc %h %p
            """)
        defer { home.remove() }
        _ = try home.key("open_key", mode: 0o644)
        func problem(_ name: String) -> String {
            do {
                _ = try SSHTargetResolver.resolve(host: Host(name: name, arch: .amd64, sshOrigins: [:]), settings: SSHSettings(origins: [:]),
                                                  options: home.options)
                return ""
            } catch { return error.description }
        }
        let open = problem("open")
        #expect(open.contains("~/.ssh/config:2") && open.contains("permissions 0644") && open.contains("UNPROTECTED PRIVATE KEY FILE"), "\(open)")
        #expect(problem("dir").contains("not a regular file"))
        let proxied = problem("proxied")
        #expect(proxied.contains("~/.ssh/config:6") && proxied.contains("ProxyCommand is not supported"), "\(proxied)")
        // Validation of a whole inventory lists every problem at once.
        let inv = try inventory("hosts:\n  open: {arch: amd64}\n  proxied: {arch: amd64}\n  fine: {arch: amd64}\n")
        do {
            try SSHTargetResolver.validate(inv, options: home.options)
            Issue.record("validation passed")
        } catch {
            #expect(error.diagnostics.count == 2, "\(error)")
        }
    }

    @Test("an inventory written in code sets everything it carries; ssh_config fills only what is missing")
    func hostsBuiltInCode() throws {
        let home = try Home(config: "Host *\n  Port 2999\n  User config\n  IdentityFile ~/.ssh/extra\n")
        defer { home.remove() }
        let t = try SSHTargetResolver.resolve(host: Host(name: "h", address: "127.0.0.9", port: 22, user: "coded", arch: .amd64),
                                              settings: SSHSettings(), options: home.options)
        #expect(t.hostname == "127.0.0.9" && t.port == 22 && t.user == "coded")
        #expect(t.identities.map(\.written) == ["~/.ssh/extra"])
    }
}
