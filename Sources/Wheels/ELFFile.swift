#if canImport(FarmCore)
import FarmCore  // the fuzz target compiles this file without the module (Fuzz/run.sh)
#endif

/// The parts of an ELF file the audit needs: class, machine, type, executable sections and the
/// section header table (for the dynamic dependencies: see ``ELFDependencies``).
///
/// Parsed by hand (about sixty lines, every offset bounds-checked against the file size): the
/// alternatives are binutils' libbfd, which is not meant as a stable library, or shelling out to
/// `readelf`, which is slower and no safer on hostile input.
public struct ELFFile: Sendable, Hashable {
    /// An executable section (`SHF_EXECINSTR`).
    public struct Section: Sendable, Hashable {
        public var name: String
        public var offset: Int64
        public var size: Int64
    }

    /// `e_machine` (62 x86-64, 183 AArch64, 3 i386).
    public var machine: UInt16
    /// `e_type` (2 executable, 3 shared object).
    public var type: UInt16
    /// Whether the file is 64-bit.
    public var is64Bit: Bool
    /// Executable sections with file contents, in file order.
    public var executableSections: [Section]
    /// Every entry of the section header table, in table order (the dependency reader uses them).
    var sectionHeaders: [SectionHeader] = []

    /// One raw entry of the section header table.
    struct SectionHeader: Sendable, Hashable {
        var index: Int
        var nameOffset: UInt32
        var type: UInt32
        var flags: UInt64
        var offset: Int64
        var size: Int64
        var link: UInt32
        var info: UInt32
        var entrySize: Int64
    }

    /// The arch the machine field names, if wheelfarm knows it.
    public var arch: Arch? {
        switch machine {
        case 62: .amd64
        case 183: .arm64
        default: nil
        }
    }

    /// A readable machine name.
    public var machineName: String {
        switch machine {
        case 3: "i386"
        case 40: "arm"
        case 62: "x86-64"
        case 183: "aarch64"
        case 20: "ppc"
        case 21: "ppc64"
        case 22: "s390"
        case 243: "riscv"
        default: "machine \(machine)"
        }
    }

    /// Whether the first bytes are the ELF magic.
    public static func hasMagic(_ bytes: UnsafeRawBufferPointer) -> Bool {
        bytes.count >= 4 && bytes[0] == 0x7f && bytes[1] == 0x45 && bytes[2] == 0x4c && bytes[3] == 0x46
    }

    /// Parses the header and section table of `file`; throws ``WheelError/malformed(check:message:)``
    /// with check `elf.machine` when they are truncated or inconsistent.
    init(file: ReadOnlyFile, name: String) throws(WheelError) {
        func bad(_ m: String) -> WheelError { .malformed(check: "elf.machine", message: "'\(name)': \(m)") }
        guard let ident = try file.bytes(at: 0, count: 64), ident[0] == 0x7f, ident[1] == 0x45, ident[2] == 0x4c, ident[3] == 0x46 else {
            throw bad("not an ELF file or header truncated")
        }
        guard ident[5] == 1 else { throw bad("big-endian ELF is not supported") }
        is64Bit = ident[4] == 2
        guard ident[4] == 1 || ident[4] == 2 else { throw bad("unknown ELF class \(ident[4])") }
        type = ident.le16(16)
        machine = ident.le16(18)
        let shoff = is64Bit ? Int64(bitPattern: ident.le64(0x28)) : Int64(ident.le32(0x20))
        let shentsize = Int(ident.le16(is64Bit ? 0x3A : 0x2E))
        var shnum = Int(ident.le16(is64Bit ? 0x3C : 0x30))
        var shstrndx = Int(ident.le16(is64Bit ? 0x3E : 0x32))
        executableSections = []
        guard shoff != 0 else { return }  // no section table: nothing to decode
        let minimum = is64Bit ? 64 : 40
        guard shentsize >= minimum, shoff > 0, shoff < file.size else { throw bad("section header table at \(shoff) with entries of \(shentsize) bytes is invalid") }
        if shnum == 0 || shstrndx == 0xFFFF {
            // Extended numbering: the real values live in section 0.
            guard let first = try file.bytes(at: shoff, count: shentsize) else { throw bad("section header table truncated") }
            if shnum == 0 { shnum = Int(is64Bit ? first.le64(0x20) : UInt64(first.le32(0x14))) }
            if shstrndx == 0xFFFF { shstrndx = Int(first.le32(is64Bit ? 0x28 : 0x18)) }
        }
        guard shnum <= 1 << 20, shoff + Int64(shnum) * Int64(shentsize) <= file.size else {
            throw bad("section header table (\(shnum) entries at \(shoff)) runs past the end of the file")
        }
        guard let table = try file.bytes(at: shoff, count: shnum * shentsize) else { throw bad("section header table truncated") }
        let wide = is64Bit
        func header(_ i: Int) -> SectionHeader {
            let p = i * shentsize
            if wide {
                return SectionHeader(index: i, nameOffset: table.le32(p), type: table.le32(p + 4), flags: table.le64(p + 8),
                                     offset: Int64(bitPattern: table.le64(p + 0x18)), size: Int64(bitPattern: table.le64(p + 0x20)),
                                     link: table.le32(p + 0x28), info: table.le32(p + 0x2C), entrySize: Int64(bitPattern: table.le64(p + 0x38)))
            }
            return SectionHeader(index: i, nameOffset: table.le32(p), type: table.le32(p + 4), flags: UInt64(table.le32(p + 8)),
                                 offset: Int64(table.le32(p + 0x10)), size: Int64(table.le32(p + 0x14)),
                                 link: table.le32(p + 0x18), info: table.le32(p + 0x1C), entrySize: Int64(table.le32(p + 0x24)))
        }
        sectionHeaders = (0..<shnum).map(header)
        var names: [UInt8] = []
        if shstrndx < shnum {
            let s = header(shstrndx)
            if s.offset >= 0, s.size >= 0, s.size <= 16 << 20, s.offset + s.size <= file.size {
                names = try file.bytes(at: s.offset, count: Int(s.size)) ?? []
            }
        }
        for h in sectionHeaders {
            let i = h.index
            guard h.flags & 0x4 != 0, h.type != 8, h.size > 0 else { continue }  // SHF_EXECINSTR, not NOBITS
            guard h.offset >= 0, h.size >= 0, h.offset <= file.size, h.size <= file.size - h.offset else {
                throw bad("executable section \(i) (\(h.size) bytes at \(h.offset)) runs past the end of the file")
            }
            var sectionName = "section \(i)"
            if Int(h.nameOffset) < names.count {
                let start = Int(h.nameOffset)
                let end = names[start...].firstIndex(of: 0) ?? names.count
                sectionName = String(decoding: names[start..<end], as: UTF8.self)
            }
            executableSections.append(Section(name: sectionName, offset: h.offset, size: h.size))
        }
        executableSections.sort { $0.offset < $1.offset }
    }

    /// Parses the ELF file at `path`.
    public init(path: String) throws(WheelError) {
        try self.init(file: try ReadOnlyFile(path: path), name: path)
    }
}
