import FarmCore
import FarmTestSupport
import Foundation
import Recipes
import Testing
@testable import Wheels

/// The arm64 audit's encoding classes, checked against binutils' aarch64 objdump on objects the
/// aarch64 cross compiler builds here.
@Suite("arm64 ISA audit")
struct AArch64AuditTests {
    static let source = """
        #include <arm_neon.h>
        #include <arm_sve.h>
        int32x4_t dot(int32x4_t a, int8x16_t b, int8x16_t c) { return vdotq_s32(a, b, c); }
        uint32x4_t udot(uint32x4_t a, uint8x16_t b, uint8x16_t c) { return vdotq_u32(a, b, c); }
        int32x4_t dot_lane(int32x4_t a, int8x16_t b, int8x16_t c) { return vdotq_laneq_s32(a, b, c, 1); }
        int32x4_t usdot(int32x4_t a, uint8x16_t b, int8x16_t c) { return vusdotq_s32(a, b, c); }
        int32x4_t usdot_lane(int32x4_t a, uint8x16_t b, int8x16_t c) { return vusdotq_laneq_s32(a, b, c, 2); }
        int32x4_t sudot_lane(int32x4_t a, int8x16_t b, uint8x16_t c) { return vsudotq_laneq_s32(a, b, c, 3); }
        int32x4_t smmla(int32x4_t a, int8x16_t b, int8x16_t c) { return vmmlaq_s32(a, b, c); }
        uint32x4_t ummla(uint32x4_t a, uint8x16_t b, uint8x16_t c) { return vmmlaq_u32(a, b, c); }
        int32x4_t usmmla(int32x4_t a, uint8x16_t b, int8x16_t c) { return vusmmlaq_s32(a, b, c); }
        float32x4_t bfdot(float32x4_t a, bfloat16x8_t b, bfloat16x8_t c) { return vbfdotq_f32(a, b, c); }
        float32x4_t bfdot_lane(float32x4_t a, bfloat16x8_t b, bfloat16x8_t c) { return vbfdotq_laneq_f32(a, b, c, 1); }
        float32x4_t bfmmla(float32x4_t a, bfloat16x8_t b, bfloat16x8_t c) { return vbfmmlaq_f32(a, b, c); }
        float32x4_t bfmlalb(float32x4_t a, bfloat16x8_t b, bfloat16x8_t c) { return vbfmlalbq_f32(a, b, c); }
        float32x4_t bfmlalt_lane(float32x4_t a, bfloat16x8_t b, bfloat16x8_t c) { return vbfmlaltq_laneq_f32(a, b, c, 5); }
        bfloat16x4_t bfcvtn(float32x4_t a) { return vcvt_bf16_f32(a); }
        bfloat16x8_t bfcvtn2(bfloat16x8_t i, float32x4_t a) { return vcvtq_high_bf16_f32(i, a); }
        bfloat16_t bfcvt(float32_t a) { return vcvth_bf16_f32(a); }
        svfloat32_t sve_add(svbool_t p, svfloat32_t a, svfloat32_t b) { return svadd_f32_z(p, a, b); }
        void sve_loop(float *x, const float *y, long n) {
            for (long i = 0; i < n; i += svcntw()) { svbool_t p = svwhilelt_b32(i, n); svst1(p, x + i, svmla_n_f32_x(p, svld1(p, x + i), svld1(p, y + i), 2.0f)); }
        }
        svint32_t sve_dot(svint32_t a, svint8_t b, svint8_t c) { return svdot_s32(a, b, c); }
        float plain(float *x, long n) { float s = 0; for (long i = 0; i < n; i++) s += x[i] * 3.0f; return s; }
        """

    static let sveScalar: Set<String> = ["addvl", "addpl", "rdvl", "cntb", "cnth", "cntw", "cntd", "incb", "inch", "incw", "incd",
                                         "decb", "dech", "decw", "decd", "setffr"]
    static let classes: [String: Set<String>] = [
        "asimddp": ["sdot", "udot"],
        "i8mm": ["usdot", "sudot", "smmla", "ummla", "usmmla"],
        "bf16": ["bfdot", "bfmmla", "bfmlalb", "bfmlalt", "bfcvtn", "bfcvtn2", "bfcvt"],
    ]

    /// objdump's view: SVE when an operand is a z or p register (or a vector-length instruction),
    /// else the Advanced SIMD/FP class of the mnemonic.
    static func objdumpCounts(_ path: String) throws -> [String: Int] {
        let listing = try WheelFixtures.check("objdump", "aarch64-linux-gnu-objdump", ["-d", "--no-show-raw-insn", path]).stdout
        var out: [String: Int] = [:]
        let sveOperand = try Regex(#"(^|[\s,{\[])[zp]([0-9]|[12][0-9]|3[01])(\.[bhsdq]|/[zm]|[\s,}\]]|$)"#)
        for line in listing.split(separator: "\n") {
            let cols = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard cols.count >= 2, cols[0].hasSuffix(":"), cols[0].trimmingCharacters(in: .whitespaces).dropLast().allSatisfy(\.isHexDigit) else { continue }
            let mnemonic = cols[1].trimmingCharacters(in: .whitespaces)
            let operands = cols.count > 2 ? String(cols[2]) : ""
            if (try sveOperand.firstMatch(in: operands)) != nil || sveScalar.contains(mnemonic) || mnemonic.hasPrefix("ptrue") || mnemonic.hasPrefix("while") {
                out["sve", default: 0] += 1
                continue
            }
            for (cap, names) in classes where names.contains(mnemonic) { out[cap, default: 0] += 1 }
        }
        return out
    }

    @Test("SVE, BF16, dot-product and i8mm counts equal objdump's")
    func countsMatchObjdump() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("wf-a64-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let rich = try WheelFixtures.compileSharedObject(Self.source, flags: ["-march=armv8.6-a+sve+bf16+i8mm+dotprod"], name: "rich", in: dir,
                                                         compiler: "aarch64-linux-gnu-gcc")
        let plain = try WheelFixtures.compileSharedObject("float f(float *x, long n) { float s = 0; for (long i = 0; i < n; i++) s += x[i]; return s; }",
                                                          flags: ["-march=armv8-a"], name: "plain", in: dir, compiler: "aarch64-linux-gnu-gcc")
        let file = try ReadOnlyFile(path: rich.path)
        let counts = try AArch64Auditor().audit(file: file, elf: try ELFFile(file: file, name: "rich.so"))
        let want = try Self.objdumpCounts(rich.path)
        for cap in AArch64Classifier.counted {
            #expect(counts.count(Capability(cap)) == want[cap, default: 0], "\(cap): audit \(counts.byCapability), objdump \(want)")
        }
        #expect(AArch64Classifier.counted.allSatisfy { want[$0, default: 0] > 0 }, "the fixture uses every class: \(want)")
        let p = try ReadOnlyFile(path: plain.path)
        let none = try AArch64Auditor().audit(file: p, elf: try ELFFile(file: p, name: "plain.so"))
        #expect(none.byCapability.isEmpty, "\(none.byCapability)")
        #expect(none.instructions > 0)

        // The verifier applies expect/exclude to arm64 objects as to x86 ones.
        let report = WheelVerifier().verifyObject(path: rich.path, expectation: WheelExpectation(arch: .arm64, isa: .init(expect: [Capability("asimddp")], exclude: [Capability("bf16")])))
        #expect(report.check(.isaExpected)?.outcome == .pass)
        #expect(report.check(.isaExcluded)?.outcome == .fail)
        #expect(report.check(.isaExcluded)?.message.contains("bf16") == true)
    }
}

/// Per-object expectations (a fat wheel's `_C_AVX2` must be AVX2-only, `_C` may use AVX-512) and
/// the "requested but not emitted" level, on objects gcc compiles here.
@Suite("ISA expectations per object")
struct ObjectExpectationTests {
    func objects() throws -> (avx2: ISACounts, avx512: ISACounts) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("wf-obj-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let a = try WheelFixtures.compileSharedObject("#include <immintrin.h>\n__m256i f(__m256i a, __m256i b) { return _mm256_add_epi32(a, b); }",
                                                      flags: ["-mavx2"], name: "a", in: dir)
        let b = try WheelFixtures.compileSharedObject("#include <immintrin.h>\n__m512i f(__m512i a, __m512i b) { return _mm512_add_epi32(a, b); }",
                                                      flags: ["-mavx512f"], name: "b", in: dir)
        return (try ISAAuditor().audit(path: a.path).counts, try ISAAuditor().audit(path: b.path).counts)
    }

    func run(_ isa: Variant.ISAExpectation, _ objects: [SharedObjectReport]) -> [WheelCheckID: CheckResult] {
        var recorder = CheckRecorder()
        ISAExpectationChecks.run(&recorder, expectation: WheelExpectation(arch: .amd64, isa: isa), wheelArch: .amd64, objects: objects, total: nil)
        return Dictionary(uniqueKeysWithValues: recorder.results(skippingOthers: "-").map { ($0.id, $0) })
    }

    @Test func eachObjectIsHeldToItsOwnEntry() throws {
        let (avx2, avx512) = try objects()
        let fat = Variant.ISAExpectation(objects: [
            .init(glob: "vllm/_C_AVX2*.so", expect: [Capability("avx2")], exclude: [Capability("avx512f")]),
            .init(glob: "vllm/_C.*.so", expect: [Capability("avx512f")], requested: [Capability("amx_tile")]),
        ])
        let good = [SharedObjectReport(path: "vllm/_C_AVX2.abi3.so", machine: "x86-64", isa: avx2),
                    SharedObjectReport(path: "vllm/_C.abi3.so", machine: "x86-64", isa: avx512)]
        let r = run(fat, good)
        // Summed, the wheel has AVX-512 (which _C_AVX2 excludes): per object it passes.
        #expect(r[.isaExcluded]?.outcome == .pass)
        #expect(r[.isaExpected]?.outcome == .warn, "amx_tile was requested but not emitted")
        #expect(r[.isaExpected]?.message.contains("'vllm/_C.abi3.so': amx_tile requested from the compiler but not emitted") == true, "\(r[.isaExpected]!)")

        // AVX-512 in the AVX2 fallback fails, naming the object.
        let bad = [SharedObjectReport(path: "vllm/_C_AVX2.abi3.so", machine: "x86-64", isa: avx512),
                   SharedObjectReport(path: "vllm/_C.abi3.so", machine: "x86-64", isa: avx512)]
        let rb = run(fat, bad)
        #expect(rb[.isaExcluded]?.outcome == .fail)
        #expect(rb[.isaExcluded]?.message.hasPrefix("'vllm/_C_AVX2.abi3.so': found excluded avx512f") == true)
        #expect(rb[.isaExpected]?.outcome == .fail, "the AVX2 object has no avx2 instructions")

        // A wheel without the object an entry names fails.
        let missing = run(fat, [good[1]])
        #expect(missing[.isaExpected]?.message.contains("no audited object matches 'vllm/_C_AVX2*.so'") == true)

        // The same expectations summed over the wheel, as before per-object entries: excluded.
        let summed = run(.init(expect: [Capability("avx2")], exclude: [Capability("avx512f")]), good)
        #expect(summed[.isaExcluded]?.outcome == .fail)
    }
}
