import FarmTestSupport
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `wheelfarm release` with the setup a release engineer already has: hosts described only in
/// `~/.ssh/config`, the index only in `~/.pypirc`; and a host whose key changes mid-release.
/// Every run has a HOME of its own (never the real `~/.ssh`).
@Suite("release with ssh_config and ~/.pypirc (sshd farm, built binary)", .serialized)
struct SSHConfigReleaseTests {
    /// A HOME with `.ssh/config` describing the farm's hosts by name (HostName, Port, User,
    /// IdentityFile, UserKnownHostsFile, StrictHostKeyChecking) and the farm's key and known_hosts.
    static func home(for farm: SSHTestFarm, in scratch: URL) throws -> URL {
        let home = scratch.appendingPathComponent("home")
        let ssh = home.appendingPathComponent(".ssh")
        try FileManager.default.createDirectory(at: ssh, withIntermediateDirectories: true)
        let key = ssh.appendingPathComponent("farm_ed25519").path
        try? FileManager.default.removeItem(atPath: key)
        try FileManager.default.copyItem(atPath: farm.clientKeyPath, toPath: key)
        chmod(key, 0o600)
        try farm.writeKnownHosts(to: ssh.appendingPathComponent("known_hosts").path)
        var config: [String] = []
        for f in farm.hosts {
            config += ["Host \(f.host.name)", "  HostName \(f.address)", "  Port \(f.port)"]
        }
        config += ["Host *", "  User \(farm.user)", "  IdentityFile ~/.ssh/farm_ed25519", "  UserKnownHostsFile ~/.ssh/known_hosts",
                   "  StrictHostKeyChecking yes", "  ServerAliveInterval 5", "  ConnectTimeout 20"]
        try (config.joined(separator: "\n") + "\n").write(to: ssh.appendingPathComponent("config"), atomically: true, encoding: .utf8)
        chmod(ssh.appendingPathComponent("config").path, 0o600)
        return home
    }

    /// An inventory that names the hosts and what they can build, and nothing about SSH.
    static func inventory(for farm: SSHTestFarm, at url: URL) throws {
        var lines = ["hosts:"]
        for f in farm.hosts {
            lines += ["  \(f.host.name):", "    arch: \(f.host.arch.rawValue)",
                      "    capabilities: [\((f.host.cpuFlags ?? []).joined(separator: ", "))]",
                      "    work_dir: \(farm.directory.appendingPathComponent("work/\(f.host.name)").path)"]
        }
        try (lines.joined(separator: "\n") + "\n").write(to: url, atomically: true, encoding: .utf8)
    }

    /// The environment: that HOME, no agent, no credential variables.
    static func environment(home: URL) -> [String: String] {
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("TWINE_") && !$0.key.hasPrefix("PYPI_") && !$0.key.hasPrefix("GH_") }
        env["HOME"] = home.path
        env["SSH_AUTH_SOCK"] = nil
        env["GITHUB_TOKEN"] = nil
        env["CI"] = "true"
        return env
    }

    @Test func aReleaseConfiguredOnlyThroughSSHConfigAndPypircUploadsToTheNamedRepository() async throws {
        let scratch = try TestEnvironment.makeTemporaryDirectory("wheelfarm-sshconfig-release")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let server = try PyPIServerHarness()
        defer { server.stop() }
        try await SSHTestFarm.withFarm([SimulatedHost(name: "plain", cpuFlags: SampleFarm.base)]) { farm in
            let home = try Self.home(for: farm, in: scratch)
            let pypirc = home.appendingPathComponent(".pypirc")
            try """
                [distutils]
                index-servers =
                    pypi
                    local

                [pypi]
                username = __token__

                [local]
                repository = \(server.url)
                username = \(server.username)
                password = \(server.password)
                """.write(to: pypirc, atomically: true, encoding: .utf8)
            let inventory = scratch.appendingPathComponent("inventory.yaml")
            try Self.inventory(for: farm, at: inventory)
            let dist = scratch.appendingPathComponent("dist")
            let args = ["release", "--recipe", "sample", "--variant", "noavx512", "--platform", "linux/amd64", "--versions", "1.0.0",
                        "--python-versions", "3.11", "--inventory", inventory.path, "--dist-dir", dist.path,
                        "--repository", "local", "--skip-github"]
            let env = Self.environment(home: home)

            // The dry run names the destination and where each value comes from, never the password.
            let dry = try await TestProcess.wheelfarmInBackground(args + ["--dry-run"], environment: env)
            #expect(dry.status == 0, "\(dry.stdout)\n\(dry.stderr)")
            #expect(dry.stdout.contains("publish to: \(server.url) (--repository 'local': section [local] of '\(pypirc.path)' line 10)"), "\(dry.stdout)")
            #expect(dry.stdout.contains("credentials for wfsample-cpu: username '\(server.username)' from section [local] of '\(pypirc.path)' line 12"), "\(dry.stdout)")
            #expect(!dry.stdout.contains(server.password) && !dry.stderr.contains(server.password))

            let r = try await TestProcess.wheelfarmInBackground(args, environment: env)
            #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
            // One wheel, tagged with what its content allows (auditwheel on the host).
            let stored = try server.storedFiles()
            #expect(stored.count == 1 && stored[0].hasPrefix("wfsample_cpu-1.0.0-cp311-cp311-manylinux") && stored[0].hasSuffix("_x86_64.whl"),
                    "\(stored) \(r.stdout)")
            #expect(!r.stdout.contains(server.password) && !r.stderr.contains(server.password))
            // hosts check says where each value came from.
            let check = try TestProcess.wheelfarm(["hosts", "check", "--json", "--inventory", inventory.path], environment: env)
            #expect(check.status == 0, "\(check.stdout)\n\(check.stderr)")
            let doc = try JSONSerialization.jsonObject(with: Data(check.stdout.utf8)) as? [String: Any]
            let host = (doc?["hosts"] as? [[String: Any]])?.first
            let settings = (host?["ssh"] as? [String: Any])?["settings"] as? [String: [String: Any]]
            #expect(settings?["hostname"]?["source"] as? String == "ssh_config")
            #expect(settings?["hostname"]?["file"] as? String == "~/.ssh/config" && settings?["hostname"]?["line"] as? Int == 2)
            #expect(settings?["port"]?["line"] as? Int == 3 && settings?["user"]?["line"] as? Int == 5)
            #expect(settings?["identityfile"]?["value"] as? [String] == [home.path + "/.ssh/farm_ed25519"])
            #expect(settings?["serveraliveinterval"]?["value"] as? [String] == ["5"])
            #expect(settings?["connecttimeout"]?["source"] as? String == "ssh_config")
        }
    }

    @Test func aHostWhoseKeyChangesDuringAReleaseIsTakenOutAtOnceWithTheReason() async throws {
        try await ReleaseFaultTests.withPlainFarm(["plain"]) { farm, _, dist, scratch in
            let home = try Self.home(for: farm, in: scratch)
            let inventory = scratch.appendingPathComponent("inventory-by-name.yaml")
            try Self.inventory(for: farm, at: inventory)
            let tools = ReleaseFaultTests.tools(scratch, "plain")
            try HostTools.hold(tools)
            let release = try BackgroundRelease(ReleaseFaultTests.arguments(inventory: inventory, dist: dist, versions: "1.0.0,1.1.0"),
                                                in: scratch, environment: Self.environment(home: home))
            try await release.waitFor(": compile")
            try farm.changeHostKey("plain")   // reinstalled: a new key, the build's connection gone
            HostTools.release(tools)
            let status = await release.exitStatus()
            let out = release.output
            #expect(status == 1, "\(out)")
            #expect(out.contains("host plain taken out of the run: the connection was lost, and reconnecting found: host key mismatch"), "\(out)")
            // Never retried as an outage, and every later line about the host repeats why.
            #expect(!out.contains("quarantined"), "\(out)")
            let failed = lines(out, containing: "failed wfsample")
            #expect(failed.count == 2, "\(out)")
            #expect(failed.allSatisfy { $0.contains("'plain' was taken out of the run") && $0.contains("host key mismatch") }, "\(out)")
            let job = try #require(try ReleaseReportFile(dist: dist).jobs.first { !$0.attempts.isEmpty })
            #expect(job.attempts.last?.outcome == "host-refused", "\(job.attempts)")
        }
    }

    @Test func aMismatchFoundAtPreFlightTakesTheHostOutBeforeAnythingIsPlaced() async throws {
        try await ReleaseFaultTests.withPlainFarm(["plain"]) { farm, _, dist, scratch in
            let home = try Self.home(for: farm, in: scratch)
            let inventory = scratch.appendingPathComponent("inventory-by-name.yaml")
            try Self.inventory(for: farm, at: inventory)
            try farm.changeHostKey("plain")   // known_hosts in HOME still has the old key
            let release = try BackgroundRelease(ReleaseFaultTests.arguments(inventory: inventory, dist: dist),
                                                in: scratch, environment: Self.environment(home: home))
            let status = await release.exitStatus()
            let out = release.output
            #expect(status == 1, "\(out)")
            #expect(out.contains("host plain: taken out of this run: host 'plain': host key mismatch"), "\(out)")
            #expect(lines(out, containing: "started ").isEmpty && !out.contains("quarantined"), "\(out)")
            #expect(lines(out, containing: "failed wfsample").allSatisfy { $0.contains("'plain' was taken out of the run: host key mismatch") }, "\(out)")
        }
    }
}
