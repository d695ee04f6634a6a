import struct Inventory.Host
import FarmCore
import FarmTestSupport
import Foundation
import Inventory
import Testing
@testable import Remote

/// SSH-specific behaviour against real sshd hosts: host keys, authentication, failures, reuse.
@Suite("SSH transport")
struct SSHTransportTests {
    private func transport(_ farm: SSHTestFarm, _ name: String = "builder", host: Host? = nil,
                           settings: SSHSettings? = nil, options: SSHClientOptions = isolatedOptions()) -> SSHTransport {
        SSHTransport(host: host ?? farm.inventoryHost(name), settings: settings ?? farm.sshSettings(),
                     options: options, logger: testLogger)
    }

    private func fingerprint(_ farm: SSHTestFarm, _ name: String) throws -> String {
        let key = farm.files(name).directory.appendingPathComponent("ssh_host_ed25519_key.pub").path
        let line = try TestProcess.run("ssh-keygen", ["-l", "-f", key]).stdout
        return String(line.split(separator: " ")[1])
    }

    @Test("an unknown host key is refused in strict mode, with its fingerprint and how to add it")
    func unknownHostKey() async throws {
        try await SSHTestFarm.withFarm([SimulatedHost(name: "builder")]) { farm in
            try farm.writeKnownHosts([])
            let t = transport(farm)
            let error = await transportError { try await t.connect() }
            #expect(error?.kind == .hostKey)
            #expect(error?.message.contains("unknown host key") == true)
            let fp = try fingerprint(farm, "builder")
            #expect(error?.message.contains(fp) == true)
            #expect(error?.message.contains("ssh-keyscan -p \(farm.files("builder").port)") == true)
            #expect(error?.message.contains("accept-new") == true)
        }
    }

    @Test("a changed host key is refused, also under accept-new")
    func changedHostKey() async throws {
        try await SSHTestFarm.withFarm([SimulatedHost(name: "builder")]) { farm in
            try farm.changeHostKey("builder")  // known_hosts still has the old key
            let fp = try fingerprint(farm, "builder")
            for mode in SSHSettings.HostKeyChecking.allCases {
                let t = transport(farm, settings: farm.sshSettings(hostKeyChecking: mode))
                let error = await transportError { try await t.connect() }
                #expect(error?.kind == .hostKey, "\(String(describing: error))")
                #expect(error?.message.contains("host key mismatch") == true)
                #expect(error?.message.contains(fp) == true)
                #expect(error?.message.contains("ssh-keygen -R") == true)
            }
        }
    }

    @Test("accept-new records an unknown key that OpenSSH then recognises")
    func acceptNew() async throws {
        try await SSHTestFarm.withFarm([SimulatedHost(name: "builder")]) { farm in
            let knownHosts = farm.directory.appendingPathComponent("fresh/known_hosts").path
            let first = transport(farm, settings: farm.sshSettings(hostKeyChecking: .acceptNew, knownHosts: knownHosts))
            try await first.connect()
            #expect(await first.lastConnection?.hostKeyStatus == .recorded)
            await first.close()
            let f = farm.files("builder")
            let found = try TestProcess.run("ssh-keygen", ["-F", "[\(f.address)]:\(f.port)", "-f", knownHosts])
            #expect(found.status == 0)
            #expect(found.stdout.contains(f.hostKey))
            let second = transport(farm, settings: farm.sshSettings(hostKeyChecking: .strict, knownHosts: knownHosts))
            try await second.connect()
            #expect(await second.lastConnection?.hostKeyStatus == .known)
            await second.close()
        }
    }

    @Test("hashed known_hosts entries are recognised")
    func hashedKnownHosts() async throws {
        try await SSHTestFarm.withFarm([SimulatedHost(name: "builder")]) { farm in
            try farm.writeKnownHosts(hashed: true)
            #expect(try String(contentsOfFile: farm.knownHostsPath, encoding: .utf8).hasPrefix("|1|"))
            let t = transport(farm)
            try await t.connect()
            #expect(await t.lastConnection?.hostKeyStatus == .known)
            await t.close()
        }
    }

    @Test("a key pinned in the inventory is trusted, and a different pinned key refuses")
    func pinnedHostKey() async throws {
        try await SSHTestFarm.withFarm([SimulatedHost(name: "builder"), SimulatedHost(name: "other")]) { farm in
            try farm.writeKnownHosts([])
            var host = farm.inventoryHost("builder")
            host.hostKey = farm.files("builder").hostKey
            let pinned = transport(farm, host: host)
            try await pinned.connect()
            #expect(await pinned.lastConnection?.hostKeyStatus == .pinned)
            await pinned.close()
            host.hostKey = farm.files("other").hostKey
            let error = await transportError { try await transport(farm, host: host).connect() }
            #expect(error?.kind == .hostKey)
            #expect(error?.message.contains("pins") == true)
        }
    }

    @Test("ssh-agent keys are tried first")
    func agentAuthentication() async throws {
        try await SSHTestFarm.withFarm([SimulatedHost(name: "builder")]) { farm in
            let agent = try farm.startAgent(keys: [farm.clientKeyPath])
            var host = farm.inventoryHost("builder")
            host.identityFile = nil
            let t = transport(farm, host: host, options: isolatedOptions(agentSocket: agent.socketPath))
            #expect(try await t.run("whoami").stdoutText == "\(farm.user)\n")
            #expect(await t.lastConnection?.authenticatedBy.contains("ssh-agent key 'wheelfarm-test-client' (ssh-ed25519)") == true)
            await t.close()
        }
    }

    @Test("an identity file with a passphrase from the named variable; the passphrase never shows")
    func passphraseKeyFile() async throws {
        try await SSHTestFarm.withFarm([SimulatedHost(name: "builder")]) { farm in
            let secret = "correct horse \(UUID().uuidString)"
            let key = try farm.generateKey("locked_ed25519", passphrase: secret)
            try farm.authorize(publicKey: key + ".pub")
            var host = farm.inventoryHost("builder", identityFile: key)
            host.passphraseEnv = "WHEELFARM_TEST_PASSPHRASE"
            let ok = transport(farm, host: host, options: isolatedOptions(environment: ["WHEELFARM_TEST_PASSPHRASE": secret]))
            #expect(try await ok.run("echo in").stdoutText == "in\n")
            #expect(await ok.lastConnection?.authenticatedBy == "identity file '\(key)'")
            await ok.close()

            let unset = await transportError { try await transport(farm, host: host).connect() }
            #expect(unset?.kind == .authentication)
            #expect(unset?.message.contains("'WHEELFARM_TEST_PASSPHRASE' is not set") == true)
            let wrong = await transportError {
                try await transport(farm, host: host, options: isolatedOptions(environment: ["WHEELFARM_TEST_PASSPHRASE": "nope-\(secret)"])).connect()
            }
            #expect(wrong?.kind == .authentication)
            #expect(wrong?.description.contains(secret) == false)
            #expect(unset?.description.contains(secret) == false)
        }
    }

    @Test("a key the host does not accept is refused, and the error lists what was tried")
    func wrongKey() async throws {
        try await SSHTestFarm.withFarm([SimulatedHost(name: "builder")]) { farm in
            let stranger = try farm.generateKey("stranger_ed25519")
            let agent = try farm.startAgent(keys: [stranger])
            let t = transport(farm, host: farm.inventoryHost("builder", identityFile: stranger),
                              options: isolatedOptions(agentSocket: agent.socketPath))
            let error = await transportError { try await t.connect() }
            #expect(error?.kind == .authentication)
            #expect(error?.message.contains("ssh-agent key 'stranger_ed25519' (ssh-ed25519): refused") == true)
            #expect(error?.message.contains("identity file '\(stranger)': refused by the server") == true)
            #expect(error?.message.contains("rsa") == false)
        }
    }

    @Test("an RSA key refused by the server gets the libssh2 1.10 explanation")
    func rsaKey() async throws {
        try await SSHTestFarm.withFarm([SimulatedHost(name: "builder")]) { farm in
            let rsa = try farm.generateKey("legacy_rsa", type: "rsa")
            try farm.authorize(publicKey: rsa + ".pub")
            let error = await transportError { try await transport(farm, host: farm.inventoryHost("builder", identityFile: rsa)).connect() }
            #expect(error?.kind == .authentication)
            #expect(error?.message.contains("libssh2 1.10") == true)
            #expect(error?.message.contains("ed25519") == true)
        }
    }

    @Test("a host that is down is unreachable")
    func unreachable() async throws {
        try await SSHTestFarm.withFarm([SimulatedHost(name: "builder")]) { farm in
            farm.kill("builder")
            let error = await transportError { try await transport(farm).connect() }
            #expect(error?.kind == .unreachable)
            #expect(error?.message.contains("\(farm.files("builder").address):\(farm.files("builder").port)") == true)
        }
    }

    @Test("a host killed mid-exec gives connection lost; after restart the transport reconnects")
    func hostKilledMidExec() async throws {
        try await SSHTestFarm.withFarm([SimulatedHost(name: "builder")]) { farm in
            let t = transport(farm)
            let (started, startedContinuation) = AsyncStream<Void>.makeStream()
            let build = Task {
                try await t.exec(ExecRequest("echo started; sleep 600")) { piece in
                    if case .stdout = piece { startedContinuation.yield() }
                }
            }
            for await _ in started { break }
            farm.kill("builder")
            var kind: TransportError.Kind?
            if case .failure(let error as TransportError) = await build.result { kind = error.kind }
            #expect(kind == .connectionLost)
            try farm.restart("builder")
            #expect(try await t.run("echo back").stdoutText == "back\n")
            #expect(await t.sessionsOpened == 2)
            await t.close()
        }
    }

    @Test("a host killed mid-download gives connection lost and leaves no partial file")
    func hostKilledMidDownload() async throws {
        try await SSHTestFarm.withFarm([SimulatedHost(name: "builder")]) { farm in
            let t = transport(farm)
            let remote = farm.directory.appendingPathComponent("big.whl").path
            // 8 GiB (sparse on the host): a minute of transfer, so the kill lands mid-download however slowly
            // this test is scheduled on a loaded machine.
            try await t.checkedRun(ExecRequest("truncate -s 8G \(remote)"))
            let local = farm.directory.appendingPathComponent("downloads")
            try FileManager.default.createDirectory(at: local, withIntermediateDirectories: true)
            let download = Task {
                try await t.download(remote, to: local.appendingPathComponent("big.whl").path, expected: .any)
            }
            // Wait until bytes are arriving in the partial file, then pull the plug.
            let deadline = Date().addingTimeInterval(60)
            while Date() < deadline {
                let partial = try FileManager.default.contentsOfDirectory(atPath: local.path).first { $0.contains("partial") }
                if let partial, let size = try? FileManager.default.attributesOfItem(
                    atPath: local.appendingPathComponent(partial).path)[.size] as? Int, size > 0 { break }
                try await Task.sleep(for: .milliseconds(10))
            }
            farm.kill("builder")
            var kind: TransportError.Kind?
            if case .failure(let error as TransportError) = await download.result { kind = error.kind }
            #expect(kind == .connectionLost)
            #expect(try FileManager.default.contentsOfDirectory(atPath: local.path).isEmpty)
            await t.close()
        }
    }

    @Test("output from the login shell's start-up files does not hide the process group")
    func noisyLoginShell() async throws {
        try await SSHTestFarm.withFarm([SimulatedHost(name: "builder")]) { farm in
            let home = farm.files("builder").directory.appendingPathComponent("home")
            try "echo from-bashrc\n".write(to: home.appendingPathComponent(".bashrc"), atomically: true, encoding: .utf8)
            let t = transport(farm)
            #expect(try await t.run("echo hi").stdoutText == "from-bashrc\nhi\n")
            let pidFile = farm.directory.appendingPathComponent("noisy.pid").path
            let error = await transportError {
                _ = try await t.run(ExecRequest("sleep 600 & echo $! > \(pidFile); wait", timeout: .seconds(1)))
            }
            #expect(error?.kind == .timeout)
            let pid = try String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(try await remoteProcessExists(t, pid: pid) == false)
            await t.close()
        }
    }

    @Test("100 sequential execs reuse one authenticated session")
    func sessionReuse() async throws {
        try await SSHTestFarm.withFarm([SimulatedHost(name: "builder")]) { farm in
            let t = transport(farm)
            var connections = Set<String>()
            for i in 0..<100 {
                let result = try await t.run("echo $SSH_CONNECTION; echo \(i) >&2")
                #expect(result.stderrText == "\(i)\n")
                connections.insert(result.stdoutText)
            }
            #expect(connections.count == 1)
            #expect(await t.sessionsOpened == 1)
            await t.close()
        }
    }

    @Test("concurrent operations on one host each get a session")
    func concurrentOperations() async throws {
        try await SSHTestFarm.withFarm([SimulatedHost(name: "builder")]) { farm in
            let t = transport(farm)
            let results = try await withThrowingTaskGroup(of: String.self) { group in
                for i in 0..<4 { group.addTask { try await t.run("sleep 0.5; echo \(i)").stdoutText } }
                return try await group.reduce(into: [String]()) { $0.append($1) }
            }
            #expect(Set(results) == ["0\n", "1\n", "2\n", "3\n"])
            await t.close()
        }
    }

    @Test("simulated hosts show their own CPU flags and machine name")
    func simulatedHosts() async throws {
        let hosts = [SimulatedHost(name: "icelake", cpuFlags: ["fpu", "avx2", "avx512f", "avx512_vnni"]),
                     SimulatedHost(name: "graviton", arch: .arm64, cpuFlags: ["fp", "asimd"], environment: ["FARM_ROLE": "arm"])]
        try await SSHTestFarm.withFarm(hosts) { farm in
            let x86 = transport(farm, "icelake")
            let flags = try await x86.run("grep -m1 '^flags' /proc/cpuinfo").stdoutText
            #expect(flags.contains("avx512_vnni"))
            #expect(!flags.contains("sse2"))
            #expect(try await x86.run("uname -m").stdoutText == "\(SSHTestFarm.machine)\n")
            let arm = transport(farm, "graviton")
            #expect(try await arm.run("uname -m").stdoutText == "aarch64\n")
            #expect(try await arm.run("grep -m1 Features /proc/cpuinfo").stdoutText.contains("asimd"))
            #expect(try await arm.run("echo $FARM_ROLE").stdoutText == "arm\n")
            let yaml = farm.inventoryYAML()
            #expect(yaml.contains("port: \(farm.files("graviton").port)"))
            #expect(yaml.contains("arch: arm64"))
            await x86.close()
            await arm.close()
        }
    }
}
