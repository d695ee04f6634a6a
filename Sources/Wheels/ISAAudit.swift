internal import CZydis
import FarmCore
import Foundation

/// Instruction counts of x86-64 machine code by instruction-set extension.
///
/// Counts are keyed by capability names as `/proc/cpuinfo` spells them (``Capability``), so they
/// compare directly with a variant's ISA expectation. One instruction counts towards every
/// capability it needs: an AVX512-VNNI instruction on zmm registers counts for `avx512_vnni`
/// and `avx512f`; on ymm registers also for `avx512vl`. So `avx512f` counts every AVX-512
/// instruction, and excluding `avx512f` excludes all of AVX-512.
public struct ISACounts: Sendable, Hashable, Codable {
    /// Instructions decoded.
    public var instructions: Int = 0
    /// Bytes that did not start a valid instruction (padding or data inside code sections).
    public var undecodableBytes: Int = 0
    /// Bytes of executable sections decoded.
    public var codeBytes: Int = 0
    /// Instruction count per capability (only non-zero entries).
    public var byCapability: [String: Int] = [:]

    /// Creates empty counts.
    public init() {}

    /// The count for one capability (0 when absent).
    public func count(_ capability: Capability) -> Int { byCapability[capability.name] ?? 0 }

    /// Adds another object's counts.
    public mutating func add(_ other: ISACounts) {
        instructions += other.instructions
        undecodableBytes += other.undecodableBytes
        codeBytes += other.codeBytes
        for (k, v) in other.byCapability { byCapability[k, default: 0] += v }
    }

    /// A one-line summary of the extension counts that matter for CPU variants.
    public var summary: String {
        let keys = ["avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8"]
        return keys.map { "\($0)=\(byCapability[$0] ?? 0)" }.joined(separator: " ")
    }
}

/// Decodes the executable sections of x86-64 ELF objects with Zydis and counts instructions by
/// extension.
///
/// The sweep is linear over each `SHF_EXECINSTR` section, as `objdump -d` does: right for
/// compiler output, where sections hold only code and alignment padding; hand-written
/// assembly that embeds data in `.text` could misalign a few instructions after the data (they
/// resynchronise within a few bytes). Mnemonics in symbol names never count: symbols are not
/// decoded at all. Large sections are split into pieces decoded on several cores with results
/// identical to one sequential sweep (``ParallelSweep``); each thread reads its piece in 4 MiB
/// chunks, so memory stays bounded for any size.
public struct ISAAuditor: Sendable {
    /// Capability names per Zydis ISA set, built once from Zydis's own set names.
    static let capabilityTable: [[String]] = {
        let count = wf_zydis_isa_set_count()
        return (0..<count).map { raw in
            guard let cName = ZydisISASetGetString(ZydisISASet(rawValue: UInt32(raw))) else { return [] }
            return capabilities(ofISASet: String(cString: cName))
        }
    }()

    /// Maps a Zydis ISA-set name (`AVX512_VNNI_256`, `AMX_BF16`, `AVX2GATHER`) to the
    /// `/proc/cpuinfo` capabilities an instruction of that set needs.
    public static func capabilities(ofISASet set: String) -> [String] {
        if set.hasPrefix("AVX512") {
            var out = ["avx512f"]
            if set.hasSuffix("_128") || set.hasSuffix("_256") || set.hasSuffix("_128N") { out.append("avx512vl") }
            let families: [(String, String)] = [
                ("AVX512BW_", "avx512bw"), ("AVX512DQ_", "avx512dq"), ("AVX512CD_", "avx512cd"), ("AVX512ER_", "avx512er"),
                ("AVX512PF_", "avx512pf"), ("AVX512_4FMAPS_", "avx512_4fmaps"), ("AVX512_4VNNIW_", "avx512_4vnniw"),
                ("AVX512_BF16_", "avx512_bf16"), ("AVX512_BITALG_", "avx512_bitalg"), ("AVX512_FP16_", "avx512_fp16"),
                ("AVX512_GFNI_", "gfni"), ("AVX512_IFMA_", "avx512ifma"), ("AVX512_VAES_", "vaes"),
                ("AVX512_VBMI2_", "avx512_vbmi2"), ("AVX512_VBMI_", "avx512vbmi"), ("AVX512_VNNI_", "avx512_vnni"),
                ("AVX512_VP2INTERSECT_", "avx512_vp2intersect"), ("AVX512_VPCLMULQDQ_", "vpclmulqdq"),
                ("AVX512_VPOPCNTDQ_", "avx512_vpopcntdq"),
            ]
            for (prefix, name) in families where set.hasPrefix(prefix) { out.append(name); break }
            return out
        }
        switch set {
        case "AVX", "AVXAES": return ["avx"]
        case "AVX2", "AVX2GATHER": return ["avx2"]
        case "AVX_VNNI": return ["avx_vnni"]
        case "AVX_GFNI", "GFNI": return ["gfni"]
        case "FMA": return ["fma"]
        case "FMA4": return ["fma4"]
        case "F16C": return ["f16c"]
        case "AMX_TILE": return ["amx_tile"]
        case "AMX_BF16": return ["amx_bf16"]
        case "AMX_INT8": return ["amx_int8"]
        case "BMI1": return ["bmi1"]
        case "BMI2": return ["bmi2"]
        case "LZCNT": return ["lzcnt"]
        case "POPCNT": return ["popcnt"]
        case "MOVBE": return ["movbe"]
        case "AES": return ["aes"]
        case "PCLMULQDQ": return ["pclmulqdq"]
        case "VPCLMULQDQ": return ["vpclmulqdq"]
        case "VAES": return ["vaes"]
        case "SHA": return ["sha_ni"]
        case "SSE", "SSE_PREFETCH", "SSEMXCSR": return ["sse"]
        case "SSE2", "SSE2MMX": return ["sse2"]
        case "SSE3", "SSE3X87": return ["sse3"]
        case "SSSE3", "SSSE3MMX": return ["ssse3"]
        case "SSE4": return ["sse4_1"]
        case "SSE42": return ["sse4_2"]
        case "SSE4A": return ["sse4a"]
        case "XOP": return ["xop"]
        default: return []
        }
    }

    /// Whether per-mnemonic counts are collected too (for comparing with `objdump`).
    public var countMnemonics: Bool
    /// Most threads that decode one large code section at once (default: the core count).
    /// Results are identical for every value: see ``ParallelSweep``.
    public var parallelism: Int
    /// Tuning of the parallel sweep (piece sizes, the resynchronisation window); tests shrink it.
    var sweep = ParallelSweep.Tuning()
    /// Whether Zydis runs in its MINIMAL mode (the default; tests compare it with the full mode).
    var minimalDecoding = true

    /// Creates an auditor.
    public init(countMnemonics: Bool = false, parallelism: Int? = nil) {
        self.countMnemonics = countMnemonics
        self.parallelism = max(1, parallelism ?? ProcessInfo.processInfo.activeProcessorCount)
    }

    /// The result of auditing one object.
    public struct ObjectAudit: Sendable, Hashable, Codable {
        public var counts: ISACounts
        /// Lowercase Zydis mnemonic → count, when ``ISAAuditor/countMnemonics`` is set.
        public var mnemonics: [String: Int]?
    }

    /// Audits the x86-64 ELF file at `path`.
    public func audit(path: String) throws(WheelError) -> ObjectAudit {
        let file = try ReadOnlyFile(path: path)
        let elf = try ELFFile(file: file, name: path)
        return try audit(file: file, elf: elf)
    }

    func audit(file: ReadOnlyFile, elf: ELFFile) throws(WheelError) -> ObjectAudit {
        try audit(file: file, sections: elf.executableSections.map { ($0.offset, $0.size) })
    }

    /// Audits the given byte ranges of `file` (executable sections, sorted by offset).
    func audit(file: ReadOnlyFile, sections: [(offset: Int64, size: Int64)]) throws(WheelError) -> ObjectAudit {
        objectAudit(try sweep(file: file, sections: sections).tally)
    }

    /// The raw Zydis counts of the given byte ranges, and how the parallel sweep went (the tests
    /// compare the counts field by field).
    func sweep(file: ReadOnlyFile, sections: [(offset: Int64, size: Int64)]) throws(WheelError) -> (tally: SweepTally, stats: ParallelSweep.Stats) {
        var decoder = ZydisDecoder()
        guard wf_zydis_init64(&decoder, minimalDecoding ? 1 : 0) != 0 else {
            throw WheelError.invalidInput("the Zydis decoder could not be initialised")
        }
        var tally = SweepTally(countMnemonics: countMnemonics)
        var stats = ParallelSweep.Stats()
        var covered: Int64 = 0  // sections may overlap in hostile files: decode each byte once
        for section in sections {
            let start = max(section.offset, covered)
            let end = section.offset + section.size
            guard start < end else { continue }
            tally.codeBytes += end - start
            let sweep = ParallelSweep(file: file, decoder: decoder, start: start, end: end, countMnemonics: countMnemonics,
                                      parallelism: parallelism, tuning: self.sweep)
            let (part, partStats) = try sweep.runWithStats()
            tally.add(part)
            stats.pieces += partStats.pieces
            stats.fallbacks += partStats.fallbacks
            covered = end
        }
        return (tally, stats)
    }

    func objectAudit(_ tally: SweepTally) -> ObjectAudit {
        var counts = ISACounts()
        counts.instructions = Int(tally.instructions)
        counts.undecodableBytes = Int(tally.invalid)
        counts.codeBytes = Int(tally.codeBytes)
        let table = Self.capabilityTable
        for (set, n) in tally.sets.enumerated() where n > 0 {
            for name in table[set] { counts.byCapability[name, default: 0] += Int(n) }
        }
        var mnemonics: [String: Int]?
        if countMnemonics {
            var m: [String: Int] = [:]
            for (raw, n) in tally.mnemonics.enumerated() where n > 0 {
                if let s = ZydisMnemonicGetString(ZydisMnemonic(rawValue: UInt32(raw))) { m[String(cString: s)] = Int(n) }
            }
            mnemonics = m
        }
        return ObjectAudit(counts: counts, mnemonics: mnemonics)
    }
}
