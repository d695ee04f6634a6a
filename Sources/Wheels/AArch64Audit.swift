import FarmCore

/// Counts the arm64 instructions that matter for CPU-variant wheels: SVE, BF16, dot product and
/// the int8 matrix multiply (i8mm), keyed by the `/proc/cpuinfo` Features names (`sve`, `bf16`,
/// `asimddp`, `i8mm`) so counts compare directly with a variant's expectation.
///
/// Written by hand: Debian's decoder libraries for arm64 (Capstone 4) predate SVE, and binutils'
/// libopcodes is not meant to be linked. A64 instructions are fixed-width 32-bit words, so an
/// exact classification of the few encoding classes needed is a mask-and-compare over each word
/// of the executable sections; the tests check every class against binutils' aarch64 objdump on
/// objects compiled with the aarch64 cross compiler.
///
/// Classes (Arm ARM, A64 encoding index):
/// - `sve`: the whole SVE encoding space, bits 28:25 = 0010 (SVE and SVE2 data processing,
///   loads and stores, including their BF16, int8-matrix and dot-product forms).
/// - `asimddp`: Advanced SIMD SDOT/UDOT (vector and by element).
/// - `i8mm`: Advanced SIMD SMMLA/UMMLA/USMMLA, USDOT (vector, by element) and SUDOT (by element).
/// - `bf16`: Advanced SIMD BFDOT (vector, by element), BFMMLA, BFMLALB/T (vector, by element),
///   BFCVTN/BFCVTN2, and the scalar BFCVT.
public enum AArch64Classifier {
    /// The capabilities instruction word `w` needs (empty for all other instructions).
    public static func capabilities(of w: UInt32) -> [String] {
        if (w >> 25) & 0xF == 0b0010 { return ["sve"] }
        // Advanced SIMD three same (extra): 0 Q U 01110 size 0 Rm 1 opcode 1 Rn Rd
        if w & 0x9F20_8400 == 0x0E00_8400 {
            let q = (w >> 30) & 1, u = (w >> 29) & 1, size = (w >> 22) & 3, opcode = (w >> 11) & 0xF
            switch (u, size, opcode) {
            case (_, 0b10, 0b0010): return ["asimddp"]                    // SDOT, UDOT (vector)
            case (0, 0b10, 0b0011): return ["i8mm"]                       // USDOT (vector)
            case (_, 0b10, 0b0100) where q == 1: return ["i8mm"]          // SMMLA, UMMLA
            case (0, 0b10, 0b0101) where q == 1: return ["i8mm"]          // USMMLA
            case (1, 0b01, 0b1101) where q == 1: return ["bf16"]          // BFMMLA
            case (1, 0b01, 0b1111): return ["bf16"]                       // BFDOT (vector)
            case (1, 0b11, 0b1111): return ["bf16"]                       // BFMLALB, BFMLALT (vector)
            default: return []
            }
        }
        // Advanced SIMD vector x indexed element: 0 Q U 01111 size L M Rm opcode H 0 Rn Rd
        if w & 0x9F00_0400 == 0x0F00_0000 {
            let u = (w >> 29) & 1, size = (w >> 22) & 3, opcode = (w >> 12) & 0xF
            switch (u, size, opcode) {
            case (_, 0b10, 0b1110): return ["asimddp"]                    // SDOT, UDOT (by element)
            case (0, 0b00, 0b1111), (0, 0b10, 0b1111): return ["i8mm"]    // SUDOT, USDOT (by element)
            case (0, 0b01, 0b1111), (0, 0b11, 0b1111): return ["bf16"]    // BFDOT, BFMLALB/T (by element)
            default: return []
            }
        }
        if w & 0xBFFF_FC00 == 0x0EA1_6800 { return ["bf16"] }            // BFCVTN, BFCVTN2
        if w & 0xFFFF_FC00 == 0x1E63_4000 { return ["bf16"] }            // BFCVT (single to BF16)
        return []
    }

    /// The capability names this classifier counts.
    public static let counted = ["sve", "bf16", "asimddp", "i8mm"]
}

/// Audits the executable sections of an arm64 ELF object with ``AArch64Classifier``.
struct AArch64Auditor {
    /// Reads the executable sections in 4 MiB chunks and counts instructions by capability.
    func audit(file: ReadOnlyFile, elf: ELFFile) throws(WheelError) -> ISACounts {
        var counts = ISACounts()
        var tally = [String: Int]()
        let chunk = 4 << 20
        for section in elf.executableSections {
            counts.codeBytes += Int(section.size)
            var offset = section.offset
            let end = section.offset + section.size
            while offset + 4 <= end {
                let n = Int(min(Int64(chunk), (end - offset) / 4 * 4))
                guard let bytes = try file.bytes(at: offset, count: n), bytes.count == n else {
                    throw WheelError.malformed(check: "elf.machine", message: "an executable section ends beyond the end of the file")
                }
                bytes.withUnsafeBytes { raw in
                    var i = 0
                    while i + 4 <= n {
                        let w = UInt32(raw[i]) | UInt32(raw[i + 1]) << 8 | UInt32(raw[i + 2]) << 16 | UInt32(raw[i + 3]) << 24
                        for name in AArch64Classifier.capabilities(of: w) { tally[name, default: 0] += 1 }
                        i += 4
                    }
                }
                counts.instructions += n / 4
                offset += Int64(n)
            }
        }
        counts.byCapability = tally
        return counts
    }
}
