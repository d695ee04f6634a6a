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

/// ssh_config, bastions and known_hosts markers against real sshd servers; where it matters,
/// OpenSSH's `ssh` is run against the same servers with the same files and must agree.
@Suite("ssh_config, ProxyJump and host-key markers on real sshd")
struct SSHConfigFarmTests {
    /// Runs OpenSSH's client with only `config` (and no agent).
    private func openSSH(_ config: String, _ host: String, _ command: String = "true") throws -> ProcessResult {
        var env = ProcessInfo.processInfo.environment
        env["SSH_AUTH_SOCK"] = nil
        return try TestProcess.run("/usr/bin/ssh", ["-F", config, "-o", "BatchMode=yes", "-o", "ConnectTimeout=20", host, command],
                                   environment: env)
    }

    /// Client options reading only `config` as the user's ssh_config, with no agent and no global known_hosts.
    private func options(_ config: String, home: URL) -> SSHClientOptions {
        SSHClientOptions(environment: ["HOME": home.path], agentSocket: .some(nil), defaultUser: "root",
                         userConfigPath: config, systemConfigPath: nil, globalKnownHostsFiles: [])
    }

    /// A host the inventory names only (everything else from ssh_config).
    private func aliasHost(_ name: String) -> Host { Host(name: name, arch: .amd64, sshOrigins: [:]) }

    private func transport(_ name: String, config: String, home: URL) -> SSHTransport {
        SSHTransport(host: aliasHost(name), settings: SSHSettings(origins: [:]), options: options(config, home: home), logger: testLogger)
    }

    private func write(_ text: String, to path: String) throws {
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o600)
    }

    @Test("a two-hop ProxyJump reaches a host that only the second bastion can reach; OpenSSH agrees")
    func twoHopProxyJump() async throws {
        try await SSHTestFarm.withFarm([SimulatedHost(name: "bastion-a")]) { farm in
            let namespace = try TestNetworkNamespace.create()
            defer { namespace.delete() }
            // The target listens inside the namespace only; bastion-b is served inside it too,
            // reached from outside through inetd.
            let target = try ExtraSSHD.start("target", farm: farm, options: .init(namespace: namespace))
            defer { target.stop() }
            let bastionB = try ExtraSSHD.start("bastion-b", farm: farm, options: .init(namespace: namespace, viaInetd: true))
            defer { bastionB.stop() }
            #expect(!LoopbackPort.accepts(host: target.address, port: target.port), "the target must not be reachable directly")

            let a = farm.files("bastion-a")
            let knownHosts = farm.directory.appendingPathComponent("kh").path
            try write(["[\(a.address)]:\(a.port) \(a.hostKey)", "\(bastionB.knownHostsName) \(bastionB.hostKeys[0])",
                       "\(target.knownHostsName) \(target.hostKeys[0])"].joined(separator: "\n") + "\n", to: knownHosts)
            let config = farm.directory.appendingPathComponent("ssh_config").path
            try write("""
                Host target
                  HostName \(target.address)
                  Port \(target.port)
                  ProxyJump bastion-a,bastion-b
                Host bastion-a
                  HostName \(a.address)
                  Port \(a.port)
                Host bastion-b
                  HostName \(bastionB.address)
                  Port \(bastionB.port)
                Host *
                  User root
                  IdentityFile \(farm.clientKeyPath)
                  UserKnownHostsFile \(knownHosts)
                  StrictHostKeyChecking yes
                """, to: config)

            let ssh = try openSSH(config, "target", "echo $HOME")
            #expect(ssh.status == 0 && ssh.stdout == target.directory.path + "\n", "OpenSSH: \(ssh.stderr)")

            let t = transport("target", config: config, home: farm.directory)
            let r = try await t.run("echo $HOME")
            #expect(r.stdoutText == target.directory.path + "\n", "\(r.stderrText)")
            let info = await t.lastConnection
            #expect(info?.bastions.map(\.name) == ["bastion-a", "bastion-b"])
            #expect(info?.bastions.allSatisfy { $0.hostKeyStatus == .known } == true)

            // Files both ways through both tunnels, with digests checked.
            let scratch = farm.directory.appendingPathComponent("scratch")
            try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
            let local = scratch.appendingPathComponent("up.bin").path
            try randomFile(local, megabytes: 6)
            try await t.upload(.file(local), to: target.directory.appendingPathComponent("up.bin").path, mode: 0o644)
            let back = scratch.appendingPathComponent("down.bin").path
            let (digest, size) = try StreamingDigest.file(at: local)
            let result = try await t.download(target.directory.appendingPathComponent("up.bin").path, to: back,
                                              expected: ExpectedFile(digest: digest, size: size))
            #expect(result.digest == digest && size == 6 << 20)
            // Several sessions at once, each through its own chain.
            try await withThrowingTaskGroup(of: String.self) { group in
                for i in 0..<3 { group.addTask { try await t.run("sleep 0.3; echo \(i)").stdoutText } }
                var seen: Set<String> = []
                for try await line in group { seen.insert(line) }
                #expect(seen == ["0\n", "1\n", "2\n"])
            }
            await t.close()
        }
    }

    @Test("a key on a @revoked line is refused although a plain line lists it; OpenSSH refuses it too")
    func revokedKey() async throws {
        try await SSHTestFarm.withFarm([SimulatedHost(name: "builder")]) { farm in
            let f = farm.files("builder")
            let knownHosts = farm.directory.appendingPathComponent("kh").path
            try write("[\(f.address)]:\(f.port) \(f.hostKey)\n@revoked [\(f.address)]:\(f.port) \(f.hostKey)\n", to: knownHosts)
            let config = farm.directory.appendingPathComponent("ssh_config").path
            try write("Host builder\n  HostName \(f.address)\n  Port \(f.port)\n  User root\n  IdentityFile \(farm.clientKeyPath)\n  UserKnownHostsFile \(knownHosts)\n  StrictHostKeyChecking accept-new\n", to: config)
            let ssh = try openSSH(config, "builder")
            #expect(ssh.status != 0 && ssh.stderr.contains("REVOKED HOST KEY DETECTED"), "\(ssh.stderr)")
            let t = transport("builder", config: config, home: farm.directory)
            let error = await transportError { try await t.connect() }
            #expect(error?.kind == .hostKey && error?.isPermanent == true)
            #expect(error?.message.contains("revoked host key") == true && error?.message.contains("'\(knownHosts)' line 2") == true,
                    "\(String(describing: error))")
        }
    }

    @Test("a host trusted only through @cert-authority: OpenSSH verifies its certificate; libssh2 1.10 cannot, which the error says")
    func certificateAuthority() async throws {
        try await SSHTestFarm.withFarm([SimulatedHost(name: "unused")]) { farm in
            for type in ["ed25519", "ecdsa"] {
                let ca = try CertificateAuthority.create(in: farm.directory, type: type)
                let server = try ExtraSSHD.start("certified-\(type)", farm: farm, options: .init(hostKeyTypes: [type], certificateAuthority: ca))
                defer { server.stop() }
                let knownHosts = farm.directory.appendingPathComponent("kh-\(type)").path
                try write("@cert-authority \(server.knownHostsName) \(ca.publicKey)\n", to: knownHosts)
                let config = farm.directory.appendingPathComponent("ssh_config-\(type)").path
                try write("Host certified\n  HostName \(server.address)\n  Port \(server.port)\n  User root\n  IdentityFile \(farm.clientKeyPath)\n  UserKnownHostsFile \(knownHosts)\n  StrictHostKeyChecking accept-new\n", to: config)
                let ssh = try openSSH(config, "certified")
                #expect(ssh.status == 0, "OpenSSH should accept the \(type) host certificate: \(ssh.stderr)")
                let t = transport("certified", config: config, home: farm.directory)
                let error = await transportError { try await t.connect() }
                #expect(error?.kind == .hostKey && error?.isPermanent == true)
                #expect(error?.message.contains("host certificates are not supported by libssh2 1.10") == true, "\(String(describing: error))")
                #expect(error?.message.contains("'\(knownHosts)' line 1") == true)
                // Nothing was recorded, although accept-new is set.
                #expect(try String(contentsOfFile: knownHosts, encoding: .utf8).split(separator: "\n").count == 1)
            }
        }
    }

    @Test("a host known by another key type: an impostor offering a new type is refused under accept-new, the genuine host is accepted")
    func otherKeyTypes() async throws {
        try await SSHTestFarm.withFarm([SimulatedHost(name: "unused")]) { farm in
            // The genuine host has ed25519 and ECDSA keys; known_hosts has only its ECDSA key.
            let genuine = try ExtraSSHD.start("genuine", farm: farm, options: .init(hostKeyTypes: ["ed25519", "ecdsa"]))
            defer { genuine.stop() }
            let knownHosts = farm.directory.appendingPathComponent("kh").path
            try write("\(genuine.knownHostsName) \(genuine.hostKeys[1])\n", to: knownHosts)
            let config = farm.directory.appendingPathComponent("ssh_config").path
            func writeConfig(_ server: ExtraSSHD, _ mode: String) throws {
                try write("Host h\n  HostName \(server.address)\n  Port \(server.port)\n  User root\n  IdentityFile \(farm.clientKeyPath)\n  UserKnownHostsFile \(knownHosts)\n  StrictHostKeyChecking \(mode)\n", to: config)
            }
            try writeConfig(genuine, "yes")
            let t = transport("h", config: config, home: farm.directory)
            try await t.connect()
            #expect(await t.lastConnection?.hostKeyStatus == .known)
            await t.close()

            // An impostor at an address known_hosts knows by ECDSA only, offering only ed25519.
            let impostor = try ExtraSSHD.start("impostor", farm: farm, options: .init(hostKeyTypes: ["ed25519"]))
            defer { impostor.stop() }
            try write("\(impostor.knownHostsName) \(genuine.hostKeys[1])\n", to: knownHosts)
            try writeConfig(impostor, "accept-new")
            let ssh = try openSSH(config, "h")
            #expect(ssh.status != 0 && ssh.stderr.contains("REMOTE HOST IDENTIFICATION HAS CHANGED"), "\(ssh.stderr)")
            let error = await transportError { try await transport("h", config: config, home: farm.directory).connect() }
            #expect(error?.kind == .hostKey && error?.isPermanent == true)
            #expect(error?.message.contains("host key mismatch") == true && error?.message.contains("only by ecdsa-sha2-nistp256") == true,
                    "\(String(describing: error))")
            #expect(try String(contentsOfFile: knownHosts, encoding: .utf8).split(separator: "\n").count == 1, "nothing may be recorded")
        }
    }

    @Test("hashed entries, several keys per host, and /etc/ssh/ssh_known_hosts read after the user's file")
    func globalAndHashed() async throws {
        try await SSHTestFarm.withFarm([SimulatedHost(name: "builder")]) { farm in
            let f = farm.files("builder")
            let other = try farm.generateKey("other-host-key")
            let userFile = farm.directory.appendingPathComponent("user_kh").path
            let globalFile = farm.directory.appendingPathComponent("global_kh").path
            // The user's file lists another key for the host; the global file, hashed, has the real
            // one: OpenSSH accepts a key found in any of the files, so does wheelfarm.
            let otherKey = try String(contentsOfFile: other + ".pub", encoding: .utf8).split(separator: " ").prefix(2).joined(separator: " ")
            #expect(otherKey.hasPrefix("ssh-ed25519"))
            try write("[\(f.address)]:\(f.port) \(otherKey)\n", to: userFile)
            try farm.writeKnownHosts(hashed: true, to: globalFile)
            let config = farm.directory.appendingPathComponent("ssh_config").path
            try write("Host builder\n  HostName \(f.address)\n  Port \(f.port)\n  User root\n  IdentityFile \(farm.clientKeyPath)\n  UserKnownHostsFile \(userFile)\n  GlobalKnownHostsFile \(globalFile)\n", to: config)
            let t = transport("builder", config: config, home: farm.directory)
            try await t.connect()
            #expect(await t.lastConnection?.hostKeyStatus == .known)
            await t.close()
        }
    }

    @Test("IdentitiesOnly: agent keys that belong to no identity file are not offered")
    func identitiesOnly() async throws {
        try await SSHTestFarm.withFarm([SimulatedHost(name: "builder")]) { farm in
            let f = farm.files("builder")
            let stranger = try farm.generateKey("stranger_ed25519")
            let agent = try farm.startAgent(keys: [farm.clientKeyPath])
            let config = farm.directory.appendingPathComponent("ssh_config").path
            func configure(_ only: String) throws {
                try write("Host builder\n  HostName \(f.address)\n  Port \(f.port)\n  User root\n  IdentityFile \(stranger)\n  IdentitiesOnly \(only)\n  UserKnownHostsFile \(farm.knownHostsPath)\n", to: config)
            }
            var opts = options(config, home: farm.directory)
            opts.agentSocket = agent.socketPath
            try configure("no")
            let withAgent = SSHTransport(host: aliasHost("builder"), settings: SSHSettings(origins: [:]), options: opts, logger: testLogger)
            try await withAgent.connect()
            #expect(await withAgent.lastConnection?.authenticatedBy.hasPrefix("ssh-agent key") == true)
            await withAgent.close()

            try configure("yes")
            let only = SSHTransport(host: aliasHost("builder"), settings: SSHSettings(origins: [:]), options: opts, logger: testLogger)
            let error = await transportError { try await only.connect() }
            #expect(error?.kind == .authentication)
            #expect(error?.message.contains("skipped, IdentitiesOnly is set and no identity file holds it") == true, "\(String(describing: error))")
            #expect(error?.message.contains("identity file '\(stranger)': refused by the server") == true, "\(String(describing: error))")
        }
    }

    @Test("identity files: the default one is found after the agent; one others can read is skipped as OpenSSH skips it")
    func defaultIdentityAndPermissions() async throws {
        try await SSHTestFarm.withFarm([SimulatedHost(name: "builder")]) { farm in
            let f = farm.files("builder")
            let home = farm.directory.appendingPathComponent("home")
            try FileManager.default.createDirectory(at: home.appendingPathComponent(".ssh"), withIntermediateDirectories: true)
            let key = home.appendingPathComponent(".ssh/id_ed25519").path
            try FileManager.default.copyItem(atPath: farm.clientKeyPath, toPath: key)
            chmod(key, 0o600)
            let config = home.appendingPathComponent(".ssh/config").path
            try write("Host builder\n  HostName \(f.address)\n  Port \(f.port)\n  User root\n  UserKnownHostsFile \(farm.knownHostsPath)\n", to: config)
            let t = transport("builder", config: config, home: home)
            try await t.connect()
            #expect(await t.lastConnection?.authenticatedBy == "identity file '\(key)'")
            await t.close()

            chmod(key, 0o644)
            let error = await transportError { try await transport("builder", config: config, home: home).connect() }
            #expect(error?.kind == .authentication && error?.isPermanent == true)
            #expect(error?.message.contains("permissions 0644 are too open") == true, "\(String(describing: error))")
            // OpenSSH refuses the same key.
            let ssh = try TestProcess.run("/usr/bin/ssh", ["-F", "none", "-i", key, "-p", String(f.port), "-o", "BatchMode=yes",
                                                            "-o", "UserKnownHostsFile=\(farm.knownHostsPath)", "-o", "IdentitiesOnly=yes",
                                                            "root@\(f.address)", "true"])
            #expect(ssh.status != 0 && ssh.stderr.contains("UNPROTECTED PRIVATE KEY FILE"), "\(ssh.stderr)")
        }
    }
}
