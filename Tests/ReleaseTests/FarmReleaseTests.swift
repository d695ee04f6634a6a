import FarmTestSupport
import Foundation
import Testing

/// `wheelfarm release` across real sshd build hosts with different CPUs: every sample variant is
/// built on a host that can build it natively, pulled back, verified (ISA audit included) and
/// published once.
@Suite("release on an sshd farm (built binary)", .serialized)
struct FarmReleaseTests {
    @Test func everyVariantIsBuiltNativelyVerifiedAndPublishedOnce() async throws {
        try await SSHTestFarm.withFarm(SampleFarm.hosts) { farm in
            let inventory = farm.directory.appendingPathComponent("inventory.yaml")
            try farm.writeInventory(to: inventory)
            let dist = farm.directory.appendingPathComponent("dist")
            let args = ["release", "--recipe", "sample", "--variant", "all", "--inventory", inventory.path, "--dist-dir", dist.path]
            let r = try TestProcess.wheelfarm(args, environment: ProcessInfo.processInfo.environment.merging(["CI": "true"]) { $1 })
            #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")

            let report = try #require(try FileManager.default.contentsOfDirectory(atPath: dist.appendingPathComponent("reports").path)
                .first { $0.hasSuffix(".json") })
            let doc = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: dist.appendingPathComponent("reports/\(report)"))) as? [String: Any])
            let jobs = try #require(doc["jobs"] as? [[String: Any]])
            #expect(jobs.count == 6)
            let expectedHost = ["wfsample-cpu-avx512": "skylake", "wfsample-cpu-avx512vnni": "cascadelake",
                                "wfsample-cpu-avx512bf16": "cooperlake", "wfsample-cpu-amxbf16": "sapphire"]
            for job in jobs {
                let package = job["package"] as? String ?? "?"
                #expect(job["state"] as? String == "published", "\(job)")
                let attempts = job["attempts"] as? [[String: Any]] ?? []
                let host = attempts.last?["host"] as? String
                if let want = expectedHost[package] { #expect(host == want, "\(package) built on \(host ?? "-")") }
                if package == "wfsample-cpu" {
                    #expect(job["arch"] as? String == "arm64" ? host == "graviton" : host != "graviton")
                }
                let checks = job["checks"] as? [[String: Any]] ?? []
                #expect(checks.contains { $0["id"] as? String == "isa.excluded" && $0["outcome"] as? String == "pass" } || job["arch"] as? String == "arm64")
            }
            let packages = try FileManager.default.contentsOfDirectory(atPath: dist.appendingPathComponent("index/packages").path)
            #expect(Set(packages) == ["wfsample-cpu", "wfsample-cpu-avx512", "wfsample-cpu-avx512vnni", "wfsample-cpu-avx512bf16", "wfsample-cpu-amxbf16"])
            let files = try FileManager.default.contentsOfDirectory(atPath: dist.appendingPathComponent("index/packages/wfsample-cpu").path)
            #expect(files.contains { $0.hasSuffix("manylinux_2_28_aarch64.whl") } && files.contains { $0.hasSuffix("manylinux_2_28_x86_64.whl") })

            // Run again: nothing is built or uploaded a second time.
            let again = try TestProcess.wheelfarm(args)
            #expect(again.status == 0)
            #expect(again.stdout.contains("0 to build · 6 already built and verified"))
            #expect(!again.stdout.contains(": uploaded"))
        }
    }
}
