import struct Inventory.Host
import FarmTestSupport
import Foundation
import Testing

/// `wheelfarm hosts check` run as a user would, against a farm of real sshd hosts.
/// Needs the built binary: `swift build --product wheelfarm` first.
@Suite("hosts check (CLI)")
struct HostsCheckCLITests {
    @Test("every host ok: table and JSON, exit 0; one host down: exit 1 and the reason")
    func checkFarm() async throws {
        try await SSHTestFarm.withFarm([SimulatedHost(name: "alpha"), SimulatedHost(name: "beta"),
                                        SimulatedHost(name: "gamma")]) { farm in
            let inventory = farm.directory.appendingPathComponent("inventory.yaml")
            try farm.writeInventory(to: inventory)
            let env = ["PATH": "/usr/bin:/bin", "HOME": ProcessInfo.processInfo.environment["HOME"] ?? "/root"]

            let table = try TestProcess.wheelfarm(["hosts", "check", "--inventory", inventory.path], environment: env)
            #expect(table.status == 0, "\(table.stderr)\(table.stdout)")
            #expect(table.stdout.contains("3 of 3 hosts ok"))
            for name in ["alpha", "beta", "gamma"] {
                let f = farm.files(name)
                #expect(table.stdout.contains("\(f.address):\(f.port)"))
            }

            let json = try TestProcess.wheelfarm(["hosts", "check", "--inventory", inventory.path, "--json"], environment: env)
            #expect(json.status == 0)
            let document = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
            let hosts = document?["hosts"] as? [[String: Any]] ?? []
            #expect(hosts.count == 3)
            #expect(hosts.allSatisfy { $0["ok"] as? Bool == true && $0["host_key"] as? String == "known" })
            #expect(hosts.allSatisfy { ($0["round_trip_seconds"] as? Double ?? -1) >= 0 })

            farm.kill("beta")
            try farm.changeHostKey("gamma")
            let broken = try TestProcess.wheelfarm(["hosts", "check", "--inventory", inventory.path, "--json"], environment: env)
            #expect(broken.status == 1)
            let after = (try JSONSerialization.jsonObject(with: Data(broken.stdout.utf8)) as? [String: Any])?["hosts"] as? [[String: Any]] ?? []
            let byName = Dictionary(uniqueKeysWithValues: after.map { ($0["host"] as? String ?? "", $0) })
            #expect(byName["alpha"]?["ok"] as? Bool == true)
            #expect(byName["beta"]?["error_kind"] as? String == "unreachable")
            #expect(byName["beta"]?["reachable"] as? Bool == false)
            #expect(byName["gamma"]?["error_kind"] as? String == "hostKey")
            #expect(byName["gamma"]?["host_key"] as? String == "refused")

            let text = try TestProcess.wheelfarm(["hosts", "check", "--inventory", inventory.path], environment: env)
            #expect(text.status == 1)
            #expect(text.stdout.contains("1 of 3 hosts ok"))
            #expect(text.stdout.contains("host key mismatch"))
        }
    }
}
