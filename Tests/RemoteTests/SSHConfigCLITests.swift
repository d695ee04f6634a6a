import FarmTestSupport
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Bad SSH configurations stop the commands before anything starts, with file and line.
@Suite("bad ssh_config stops the commands (CLI)")
struct SSHConfigCLITests {
    /// A HOME whose `~/.ssh/config` (mode 0600) has `config`, and an inventory naming `hosts` only.
    private func setUp(_ config: String, hosts: [String], extra: [String: String] = [:]) throws -> (home: URL, inventory: URL) {
        let home = try TestEnvironment.makeTemporaryDirectory("wheelfarm-badconfig")
        let ssh = home.appendingPathComponent(".ssh")
        try FileManager.default.createDirectory(at: ssh, withIntermediateDirectories: true)
        for (name, text) in extra { try text.replacingOccurrences(of: "SSHDIR", with: ssh.path).write(to: ssh.appendingPathComponent(name), atomically: true, encoding: .utf8) }
        try config.replacingOccurrences(of: "SSHDIR", with: ssh.path).write(to: ssh.appendingPathComponent("config"), atomically: true, encoding: .utf8)
        chmod(ssh.appendingPathComponent("config").path, 0o600)
        let inventory = home.appendingPathComponent("inventory.yaml")
        try ("hosts:\n" + hosts.map { "  \($0):\n    arch: amd64\n" }.joined()).write(to: inventory, atomically: true, encoding: .utf8)
        return (home, inventory)
    }

    private func run(_ args: [String], home: URL) throws -> ProcessResult {
        try TestProcess.wheelfarm(args, environment: ["PATH": "/usr/bin:/bin", "HOME": home.path])
    }

    @Test("a ProxyJump cycle, an Include loop and an identity file others can read: exit 2, file and line, nothing started",
          arguments: [
            ("Host a\n  ProxyJump b\nHost b\n  ProxyJump a\n", [String: String](), "~/.ssh/config:4", "ProxyJump cycle: 'a' → 'b' → 'a'"),
            ("Include SSHDIR/more\n", ["more": "Include SSHDIR/config\n"], "~/.ssh/more:1", "Include loop"),
            ("Host a\n  IdentityFile SSHDIR/open_key\n", ["open_key": "not really a key\n"], "~/.ssh/config:2", "UNPROTECTED PRIVATE KEY FILE"),
          ])
    func refused(_ config: String, _ extra: [String: String], _ location: String, _ message: String) throws {
        let (home, inventory) = try setUp(config, hosts: ["a"], extra: extra)
        defer { try? FileManager.default.removeItem(at: home) }
        if extra["open_key"] != nil { chmod(home.appendingPathComponent(".ssh/open_key").path, 0o644) }
        let dist = home.appendingPathComponent("dist")
        for args in [["hosts", "check", "--inventory", inventory.path],
                     ["release", "--recipe", "sample", "--inventory", inventory.path, "--dist-dir", dist.path, "--skip-github"]] {
            let r = try run(args, home: home)
            #expect(r.status == 2, "\(args[0]): \(r.stdout)\n\(r.stderr)")
            #expect(r.stderr.contains(location) && r.stderr.contains(message), "\(args[0]): \(r.stderr)")
            #expect(r.stderr.contains("nothing was started"), "\(r.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: dist.path), "the release started something")
    }
}
