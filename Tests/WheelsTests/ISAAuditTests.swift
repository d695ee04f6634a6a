import FarmCore
import FarmTestSupport
import Foundation
import Testing
@testable import Wheels

@Suite("ISA audit of gcc-compiled shared objects")
struct ISAAuditTests {
    /// Capabilities each fixture object must show, and ones it must not.
    static let expected: [String: (has: [String], hasNot: [String])] = [
        "avx2": (["avx2", "fma"], ["avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16"]),
        "avx512f": (["avx512f", "avx2"], ["avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16"]),
        "avx512_vnni": (["avx512f", "avx512_vnni"], ["avx512_bf16", "amx_tile", "amx_bf16"]),
        "avx512_bf16": (["avx512f", "avx512_vnni", "avx512_bf16"], ["amx_tile", "amx_bf16"]),
        "amx_bf16": (["avx512f", "avx512_bf16", "amx_tile", "amx_bf16"], ["avx512_vnni", "amx_int8"]),
    ]

    @Test("each object is classified by the extensions its intrinsics compile to",
          arguments: ["avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16"])
    func classification(_ level: String) async throws {
        let f = try await SharedFixtures.shared.built()
        let audit = try ISAAuditor().audit(path: f.objects[level]!.path)
        let want = try #require(Self.expected[level])
        for c in want.has { #expect(audit.counts.count(Capability(c)) > 0, "\(level): expected \(c) in \(audit.counts.byCapability)") }
        for c in want.hasNot { #expect(audit.counts.count(Capability(c)) == 0, "\(level): unexpected \(c) in \(audit.counts.byCapability)") }
        #expect(audit.counts.undecodableBytes == 0)
    }

    @Test("a mnemonic that appears only in a symbol name does not count")
    func symbolNamesDoNotCount() async throws {
        let f = try await SharedFixtures.shared.built()
        let path = f.objects["avx2"]!.path
        let symbols = try WheelFixtures.check("nm", "nm", ["-D", path]).stdout
        #expect(symbols.contains("vpdpbusd") && symbols.contains("tdpbf16ps"))
        let audit = try ISAAuditor(countMnemonics: true).audit(path: path)
        #expect(audit.mnemonics?["vpdpbusd"] == nil)
        #expect(audit.mnemonics?["tdpbf16ps"] == nil)
        #expect(audit.counts.count(Capability("avx512_vnni")) == 0)
    }

    @Test("mnemonic counts equal objdump's instruction column",
          arguments: ["avx512_vnni", "avx512_bf16", "amx_bf16", "avx2"])
    func matchesObjdump(_ level: String) async throws {
        let f = try await SharedFixtures.shared.built()
        let path = f.objects[level]!.path
        let audit = try ISAAuditor(countMnemonics: true).audit(path: path)
        let listing = try WheelFixtures.check("objdump", "objdump", ["-d", "--no-show-raw-insn", "-M", "intel", path]).stdout
        var objdump: [String: Int] = [:]
        for line in listing.split(separator: "\n") {
            // "    1100:\tmnemonic operands": the instruction column is after the first tab.
            let columns = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard columns.count >= 2, columns[0].hasSuffix(":"), columns[0].first == " " else { continue }
            let mnemonic = columns[1].split(separator: " ").first.map(String.init) ?? ""
            if !mnemonic.isEmpty { objdump[mnemonic, default: 0] += 1 }
        }
        for m in ["vpdpbusd", "vdpbf16ps", "tdpbf16ps", "ldtilecfg", "tileloadd", "tilestored", "vpaddd", "vfmadd132ps", "vaddps"] {
            #expect(audit.mnemonics?[m] ?? 0 == objdump[m] ?? 0, "\(level) \(m): zydis \(audit.mnemonics?[m] ?? 0), objdump \(objdump[m] ?? 0)")
        }
        #expect(audit.counts.instructions == objdump.values.reduce(0, +))
    }

    @Test("Zydis ISA-set names map to /proc/cpuinfo capability names")
    func mapping() {
        #expect(ISAAuditor.capabilities(ofISASet: "AVX512_VNNI_512") == ["avx512f", "avx512_vnni"])
        #expect(ISAAuditor.capabilities(ofISASet: "AVX512_BF16_256") == ["avx512f", "avx512vl", "avx512_bf16"])
        #expect(ISAAuditor.capabilities(ofISASet: "AVX512F_512") == ["avx512f"])
        #expect(ISAAuditor.capabilities(ofISASet: "AMX_TILE") == ["amx_tile"])
        #expect(ISAAuditor.capabilities(ofISASet: "AVX2GATHER") == ["avx2"])
        #expect(ISAAuditor.capabilities(ofISASet: "I86").isEmpty)
        // Every mapped name is one wheelfarm knows (or an old Xeon Phi/AMD extension).
        let extra: Set<String> = ["avx512er", "avx512pf", "avx512_4fmaps", "avx512_4vnniw", "fma4", "sse3", "sse4a", "xop"]
        for names in ISAAuditor.capabilityTable { for n in names { #expect(Capability.known.contains(n) || extra.contains(n), "\(n)") } }
    }

    @Test("an ELF object for another machine is reported, not decoded as x86")
    func armObject() async throws {
        let f = try await SharedFixtures.shared.built()
        let report = WheelVerifier().verifyObject(path: f.arm64Object.path, expectation: .init(arch: .amd64))
        #expect(report.check(.elfMachine)?.outcome == .fail)
        #expect(report.sharedObjects.first?.machine == "aarch64")
        #expect(report.sharedObjects.first?.isa == nil)
    }
}
