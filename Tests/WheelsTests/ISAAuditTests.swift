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
        // Audited as arm64 (its own encoding classes), never decoded as x86.
        #expect(report.sharedObjects.first?.isa.map { $0.byCapability.keys.allSatisfy(AArch64Classifier.counted.contains) } ?? true)
    }
}


@Suite("The parallel sweep decodes exactly what one sequential sweep decodes")
struct ParallelSweepTests {
    typealias Ranges = [(offset: Int64, size: Int64)]

    /// Piece layouts that put piece starts everywhere: tiny pieces and windows, odd and prime
    /// sizes, more threads than cores, and the production defaults.
    static let tunings: [(threads: Int, tuning: ParallelSweep.Tuning)] = [
        (2, .init(minimumPieceBytes: 7, piecesPerThread: 200, windowBytes: 1, bufferBytes: 64)),
        (3, .init(minimumPieceBytes: 64, piecesPerThread: 40, windowBytes: 16, bufferBytes: 97)),
        (5, .init(minimumPieceBytes: 1_009, piecesPerThread: 20, windowBytes: 64, bufferBytes: 4_099)),
        (2, .init(minimumPieceBytes: 4_093, piecesPerThread: 8, windowBytes: 4_096, bufferBytes: 65_536)),
        (4, .init()),
    ]

    static func auditor(threads: Int, tuning: ParallelSweep.Tuning = .init(), minimal: Bool = true) -> ISAAuditor {
        var a = ISAAuditor(countMnemonics: true, parallelism: threads)
        a.sweep = tuning
        a.minimalDecoding = minimal
        return a
    }

    /// The sequential sweep (one thread, one piece) is the reference every layout must equal:
    /// instruction count, undecodable bytes, every ISA-set and every mnemonic count.
    /// Returns the number of pieces and of resynchronisation fallbacks seen.
    @discardableResult
    static func expectSameAsSequential(_ path: String, _ ranges: Ranges? = nil, _ label: String) throws -> (pieces: Int, fallbacks: Int) {
        let file = try ReadOnlyFile(path: path)
        let sections = try ranges ?? ELFFile(file: file, name: path).executableSections.map { ($0.offset, $0.size) }
        let (reference, one) = try auditor(threads: 1).sweep(file: file, sections: sections)
        #expect(one.pieces == sections.count && one.fallbacks == 0)
        var pieces = 0, fallbacks = 0
        for (threads, tuning) in tunings {
            let (tally, stats) = try auditor(threads: threads, tuning: tuning).sweep(file: file, sections: sections)
            #expect(tally.instructions == reference.instructions, "\(label) \(tuning): instructions")
            #expect(tally.invalid == reference.invalid, "\(label) \(tuning): undecodable bytes")
            #expect(tally.sets == reference.sets, "\(label) \(tuning): ISA-set counts")
            #expect(tally.mnemonics == reference.mnemonics, "\(label) \(tuning): mnemonic counts")
            #expect(tally == reference, "\(label) \(tuning)")
            pieces += stats.pieces; fallbacks += stats.fallbacks
        }
        return (pieces, fallbacks)
    }

    func temp() throws -> URL { try TestEnvironment.makeTemporaryDirectory("wheelfarm-sweep") }

    func write(_ bytes: [UInt8], _ name: String, in dir: URL) -> String {
        let path = dir.appendingPathComponent(name).path
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        return path
    }

    @Test("gcc-compiled objects: split anywhere, the counts equal the sequential sweep's")
    func compiledObjects() async throws {
        let f = try await SharedFixtures.shared.built()
        let dir = try temp()
        defer { try? FileManager.default.removeItem(at: dir) }
        // A larger object than the fixtures: many functions mixing scalar, AVX2 and AVX-512 code.
        var source = "#include <immintrin.h>\n#include <string.h>\n"
        for i in 0..<300 {
            source += """
                __m512 k\(i)(__m512 a, __m512 b, const float *p, int n) {
                    for (int j = 0; j < n; j++) a = _mm512_fmadd_ps(a, b, _mm512_loadu_ps(p + 16 * j + \(i)));
                    return _mm512_add_ps(a, _mm512_set1_ps(\(i).5f));
                }
                int s\(i)(const char *s, int x) { return (int)strlen(s) * \(i) + (x >> \(i % 7)) + __builtin_popcount(x); }
                __m256i v\(i)(__m256i a, __m256i b) { return _mm256_madd_epi16(_mm256_add_epi32(a, b), _mm256_set1_epi16(\(i))); }

                """
        }
        let big = try WheelFixtures.compileSharedObject(source, flags: ["-mavx2", "-mfma", "-mavx512f", "-mpopcnt"], name: "big", in: dir)
        let (pieces, _) = try Self.expectSameAsSequential(big.path, nil, "big")
        #expect(pieces > 100)
        for (level, url) in f.objects.sorted(by: { $0.key < $1.key }) { try Self.expectSameAsSequential(url.path, nil, level) }
        // And through the public result: capability and mnemonic dictionaries are equal too.
        let parallel = try Self.auditor(threads: 3, tuning: Self.tunings[1].tuning).audit(path: big.path)
        let sequential = try Self.auditor(threads: 1).audit(path: big.path)
        #expect(parallel == sequential)
        #expect(sequential.counts.count(Capability("avx512f")) > 0 && sequential.counts.undecodableBytes == 0)
    }

    @Test("random bytes of many sizes, one or several (overlapping) ranges")
    func randomBytes() throws {
        let dir = try temp()
        defer { try? FileManager.default.removeItem(at: dir) }
        var rng = SplitMix64(seed: 20_251_129)
        for size in [1, 14, 15, 16, 31, 100, 1_000, 4_096, 65_537, (1 << 20) + 3] {
            let bytes = (0..<size).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let path = write(bytes, "random-\(size).bin", in: dir)
            try Self.expectSameAsSequential(path, [(0, Int64(size))], "random \(size)")
            if size > 100 {
                let s = Int64(size)
                try Self.expectSameAsSequential(path, [(0, s / 3), (s / 4, s / 2), (s / 2 + 5, s - s / 2 - 5)], "random \(size) ranges")
            }
        }
    }

    @Test("bytes that never resynchronise fall back to the sequential sweep")
    func noResynchronisation() throws {
        let dir = try temp()
        defer { try? FileManager.default.removeItem(at: dir) }
        // 0x05 is `add eax, imm32` (5 bytes): a run of it decodes as 5-byte instructions at
        // whatever phase a sweep starts, so sweeps starting at different phases never meet.
        let run = [UInt8](repeating: 0x05, count: 200_003)
        let (_, fallbacks) = try Self.expectSameAsSequential(write(run, "run.bin", in: dir), [(0, Int64(run.count))], "0x05 run")
        #expect(fallbacks > 0)
        // Runs between random bytes: some pieces sync, some fall back, in one range.
        var rng = SplitMix64(seed: 7)
        var mixed: [UInt8] = []
        for i in 0..<40 {
            mixed += (0..<(1_000 + i * 37)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            mixed += [UInt8](repeating: 0x05, count: 3_000 + i * 11)
        }
        let (_, mixedFallbacks) = try Self.expectSameAsSequential(write(mixed, "mixed.bin", in: dir), [(0, Int64(mixed.count))], "mixed")
        #expect(mixedFallbacks > 0)
    }

    @Test("piece boundaries in the middle of long instructions")
    func longInstructions() throws {
        let dir = try temp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let asm = """
                .intel_syntax noprefix
                .text
            f:
                .rept 3000
                vpdpbusd zmm1{k1}{z}, zmm2, zmmword ptr [rax+rbx*4+0x12345678]
                movabs rax, 0x1122334455667788
                lock add dword ptr fs:[rax+rbx*4+0x12345678], 0x12345678
                vfmadd231ps zmm0{k1}, zmm1, dword ptr [rip+0x1000]{1to16}
                .byte 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x2e, 0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00
                tdpbf16ps tmm0, tmm1, tmm2
                .endr
                ret
            """
        let src = dir.appendingPathComponent("long.s")
        try asm.write(to: src, atomically: true, encoding: .utf8)
        let object = dir.appendingPathComponent("long.o")
        try WheelFixtures.check("gcc -c long.s", "gcc", ["-c", src.path, "-o", object.path])
        let (pieces, _) = try Self.expectSameAsSequential(object.path, nil, "long instructions")
        #expect(pieces > 100)
        let audit = try ISAAuditor(countMnemonics: true).audit(path: object.path)
        #expect(audit.mnemonics?["vpdpbusd"] == 3000 && audit.mnemonics?["tdpbf16ps"] == 3000 && audit.counts.undecodableBytes == 0)
    }

    @Test("Zydis's MINIMAL mode gives the same ISA sets and mnemonics as its full mode")
    func minimalMode() async throws {
        let f = try await SharedFixtures.shared.built()
        let dir = try temp()
        defer { try? FileManager.default.removeItem(at: dir) }
        var rng = SplitMix64(seed: 99)
        let random = write((0..<(1 << 20)).map { _ in UInt8.random(in: 0...255, using: &rng) }, "random.bin", in: dir)
        var inputs: [(String, Ranges?)] = [(random, [(0, 1 << 20)])]
        for (_, url) in f.objects.sorted(by: { $0.key < $1.key }) { inputs.append((url.path, nil)) }
        for (path, ranges) in inputs {
            let file = try ReadOnlyFile(path: path)
            let sections = try ranges ?? ELFFile(file: file, name: path).executableSections.map { ($0.offset, $0.size) }
            let minimal = try Self.auditor(threads: 1, minimal: true).sweep(file: file, sections: sections).tally
            let full = try Self.auditor(threads: 1, minimal: false).sweep(file: file, sections: sections).tally
            #expect(minimal == full, "\(path)")
            #expect(minimal.instructions > 0)
        }
    }
}
