import FarmCore
import Inventory
import Recipes
import Scheduling
import Testing

@Suite("Plan analysis")
struct PlanAnalysisTests {
    func variant(requires: [String], forbids: [String] = []) -> Variant {
        Variant(package: "p", shortName: "p", arches: [.amd64: .init(requires: Set(requires.map(Capability.init)), forbids: Set(forbids.map(Capability.init)))])
    }
    func job(_ v: Variant, arch: Arch = .amd64) -> BuildJob {
        BuildJob(recipe: "r", variant: v, arch: arch, python: PythonVersion(major: 3, minor: 12), version: PEP440Version("1.0")!)
    }
    func host(_ name: String, _ flags: [String], arch: Arch = .amd64, drain: Bool = false, reserved: [String] = []) -> Host {
        Host(name: name, arch: arch, capabilities: Set(flags.map(Capability.init)), reserved: Set(reserved.map(Capability.init)), drain: drain)
    }

    @Test func eligibilityRules() {
        let v = variant(requires: ["avx512f"], forbids: ["avx512_vnni"])
        #expect(Eligibility.isEligible(host: host("a", ["avx512f"]), job: job(v)))
        #expect(Eligibility.reasons(host: host("b", ["avx512f", "avx512_vnni"]), job: job(v)) == [.forbidden([Capability("avx512_vnni")])])
        #expect(Eligibility.reasons(host: host("c", []), job: job(v)) == [.missing([Capability("avx512f")])])
        #expect(Eligibility.reasons(host: host("d", ["avx512f"], arch: .arm64), job: job(v)) == [.wrongArch(host: .arm64, job: .amd64)])
        #expect(Eligibility.reasons(host: host("e", ["avx512f"], drain: true), job: job(v)) == [.draining])
        // Reserved hosts take only jobs that need a reserved flag.
        let amxHost = host("f", ["avx512f", "amx_bf16"], reserved: ["amx_bf16"])
        #expect(Eligibility.reasons(host: amxHost, job: job(v)) == [.reserved([Capability("amx_bf16")])])
        #expect(Eligibility.isEligible(host: amxHost, job: job(variant(requires: ["amx_bf16"]))))
    }

    @Test func unplaceableJobsNameTheMissingFlagAndTheClosestHost() {
        let hosts = [host("cooper", ["avx512f", "avx512_bf16"]), host("sapphire-2", ["avx512f", "avx512_bf16", "amx_bf16"]), host("old", ["avx2"])]
        let amx = job(variant(requires: ["avx512f", "amx_bf16", "amx_tile"]))
        let a = PlanAnalysis(jobs: [amx], hosts: hosts)
        #expect(a.unplaceable.count == 1)
        #expect(a.entries[0].unplaceableReason == "no amd64 host has amx_tile; closest: sapphire-2 lacks amx_tile")

        let arm = PlanAnalysis(jobs: [job(variant(requires: []), arch: .arm64)], hosts: hosts)
        #expect(arm.entries[0].unplaceableReason == "no arm64 host in the inventory")

        let leak = PlanAnalysis(jobs: [job(variant(requires: ["avx512f"], forbids: ["avx512_bf16"]))], hosts: Array(hosts.prefix(2)))
        #expect(leak.entries[0].unplaceableReason?.hasPrefix("no amd64 host meets all of the variant's requirements; closest: cooper has avx512_bf16") == true)

        let drained = PlanAnalysis(jobs: [job(variant(requires: ["avx2"]))], hosts: [host("old", ["avx2"], drain: true)])
        #expect(drained.entries[0].unplaceableReason == "every amd64 host able to build it is draining (old)")
    }
}
