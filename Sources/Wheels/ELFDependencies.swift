/// What an ELF object needs from the system at load time: the libraries it names (`DT_NEEDED`),
/// where it looks for them (`DT_RPATH`/`DT_RUNPATH`), and the symbol versions it needs from
/// them (`.gnu.version_r`), with the undefined symbols that need each version (`.gnu.version`
/// and `.dynsym`).
///
/// Read by hand from the section header table of an ``ELFFile``, with every offset, size, link
/// and string checked against the file and its sections: these tables come from build hosts
/// and must never crash or hang the coordinator. The alternatives are `readelf` (a process per
/// object, slower, and no better on hostile input) or libelf, which is not installed on every
/// coordinator and offers nothing here that thirty lines of bounds checks do not.
public struct ELFDependencies: Sendable, Hashable, Codable {
    /// One symbol version the object needs from one library.
    public struct VersionNeed: Sendable, Hashable, Codable {
        /// The library the version is needed from (`libc.so.6`).
        public var library: String
        /// The version name (`GLIBC_2.34`).
        public var version: String
        /// How many undefined symbols need this version.
        public var symbolCount: Int
        /// The first few of them, in symbol table order (`pthread_once`).
        public var symbols: [String]

        /// The namespace (`GLIBC`) and the version in it (`2.34`): the name split at its first `_`.
        public var namespaceAndVersion: (namespace: String, version: String) {
            guard let us = version.firstIndex(of: "_") else { return (version, "") }
            return (String(version[..<us]), String(version[version.index(after: us)...]))
        }
    }

    /// `DT_SONAME`, when present.
    public var soname: String?
    /// `DT_NEEDED` entries, in order.
    public var needed: [String]
    /// `DT_RPATH` entries (colon-separated list split).
    public var rpath: [String]
    /// `DT_RUNPATH` entries.
    public var runpath: [String]
    /// Every version need, in `.gnu.version_r` order.
    public var versionNeeds: [VersionNeed]
    /// Undefined symbols whose names are on some policy's forbidden list (see
    /// ``PlatformPolicy/forbiddenSymbols``); a policy decides whether they matter.
    public var forbiddenCandidates: [String]

    /// Creates an empty set of dependencies (a static object).
    public init(soname: String? = nil, needed: [String] = [], rpath: [String] = [], runpath: [String] = [],
                versionNeeds: [VersionNeed] = [], forbiddenCandidates: [String] = []) {
        self.soname = soname; self.needed = needed; self.rpath = rpath; self.runpath = runpath
        self.versionNeeds = versionNeeds; self.forbiddenCandidates = forbiddenCandidates
    }

    /// Whether a library is the dynamic loader, which auditwheel (and so wheelfarm) never
    /// judges: `ld-linux*.so.*`, `ld64.so.1/2`.
    public static func isDynamicLoader(_ library: String) -> Bool {
        library.hasPrefix("ld-linux") || library == "ld64.so.1" || library == "ld64.so.2"
    }

    /// The highest version needed per namespace (`GLIBC` → `2.34`), numeric versions compared as
    /// numbers; the dynamic loader's needs do not count.
    public var highestByNamespace: [String: String] {
        var out: [String: DottedVersion] = [:]
        var named: [String: String] = [:]
        for need in versionNeeds where !Self.isDynamicLoader(need.library) {
            let (ns, v) = need.namespaceAndVersion
            if let d = DottedVersion(v) {
                if out[ns].map({ d > $0 }) ?? true { out[ns] = d; named[ns] = v }
            } else if named[ns] == nil {
                named[ns] = v
            }
        }
        return named
    }

    /// The search path in force for `DT_NEEDED`: `DT_RUNPATH` when present, else `DT_RPATH`.
    public var searchPath: [String] { runpath.isEmpty ? rpath : runpath }
}

extension ELFFile {
    static let sectionDynamic: UInt32 = 6
    static let sectionNoBits: UInt32 = 8
    static let sectionDynsym: UInt32 = 11
    static let sectionVerneed: UInt32 = 0x6fff_fffe
    static let sectionVersym: UInt32 = 0x6fff_ffff

    /// Bounds for tables read into memory (vLLM's 100 MB `_C.abi3.so` has a few MB of them).
    static let maxTableBytes: Int64 = 256 << 20

    /// Reads the dynamic dependencies of this ELF file; throws
    /// ``WheelError/malformed(check:message:)`` with check `elf.dynamic` when a table is out of
    /// the file, overlaps another, or a string or link in it leads nowhere.
    func dependencies(file: ReadOnlyFile, name: String) throws(WheelError) -> ELFDependencies {
        func bad(_ m: String) -> WheelError { .malformed(check: "elf.dynamic", message: "'\(name)': \(m)") }
        guard !sectionHeaders.isEmpty else {
            if type == 3 || type == 2 {
                // A shared object or executable always has its tables; a file stripped of the
                // section header table hides what it needs, so it cannot pass.
                throw bad("no section header table: the libraries and symbol versions it needs cannot be read")
            }
            return ELFDependencies()
        }
        let headers = sectionHeaders
        let wide = is64Bit

        // Sections with contents may not overlap or run past the file.
        let placed = headers.filter { $0.type != Self.sectionNoBits && $0.type != 0 && $0.size > 0 }
        for h in placed where h.offset < 0 || h.size < 0 || h.offset > file.size || h.size > file.size - h.offset {
            throw bad("section \(h.index) (\(h.size) bytes at offset \(h.offset)) runs past the end of the file (\(file.size) bytes)")
        }
        let loaded = placed.filter { $0.flags & 0x2 != 0 }.sorted { ($0.offset, $0.index) < ($1.offset, $1.index) }  // SHF_ALLOC
        for (a, b) in zip(loaded, loaded.dropFirst()) where b.offset < a.offset + a.size {
            throw bad("sections \(a.index) and \(b.index) overlap (bytes \(b.offset)–\(min(a.offset + a.size, b.offset + b.size) - 1))")
        }

        func contents(_ h: SectionHeader, _ what: String) throws(WheelError) -> [UInt8] {
            guard h.type != Self.sectionNoBits else { return [] }
            guard h.size <= Self.maxTableBytes else { throw bad("\(what) (section \(h.index)) is \(h.size) bytes, more than the \(Self.maxTableBytes >> 20) MiB allowed") }
            guard let bytes = try file.bytes(at: h.offset, count: Int(h.size)) else {
                throw bad("\(what) (section \(h.index), \(h.size) bytes at offset \(h.offset)) runs past the end of the file (\(file.size) bytes)")
            }
            return bytes
        }
        func linked(_ h: SectionHeader, _ what: String) throws(WheelError) -> SectionHeader {
            guard Int(h.link) < headers.count, h.link != 0 else {
                throw bad("\(what) (section \(h.index)) links to section \(h.link), which does not exist")
            }
            return headers[Int(h.link)]
        }
        func string(_ table: [UInt8], _ offset: UInt64, _ what: String) throws(WheelError) -> String {
            guard offset < UInt64(table.count) else {
                throw bad("\(what): string offset \(offset) is outside its string table (\(table.count) bytes)")
            }
            let start = Int(offset)
            guard let end = table[start...].firstIndex(of: 0) else {
                throw bad("\(what): the string at offset \(offset) of its string table (\(table.count) bytes) has no terminating NUL")
            }
            return String(decoding: table[start..<end], as: UTF8.self)
        }

        var deps = ELFDependencies()
        // .dynamic: NEEDED, SONAME, RPATH, RUNPATH.
        let dynamics = headers.filter { $0.type == Self.sectionDynamic }
        guard dynamics.count <= 1 else { throw bad("\(dynamics.count) dynamic sections: expected at most one") }
        if let dynamic = dynamics.first {
            let strtabHeader = try linked(dynamic, "the dynamic section")
            let strtab = try contents(strtabHeader, "the dynamic string table")
            let table = try contents(dynamic, "the dynamic section")
            let entry = wide ? 16 : 8
            var i = 0
            while i + entry <= table.count {
                let tag = wide ? Int64(bitPattern: table.le64(i)) : Int64(Int32(bitPattern: table.le32(i)))
                let value = wide ? table.le64(i + 8) : UInt64(table.le32(i + 4))
                i += entry
                switch tag {
                case 0: i = table.count  // DT_NULL
                case 1: deps.needed.append(try string(strtab, value, "NEEDED entry \(deps.needed.count + 1)"))
                case 14: deps.soname = try string(strtab, value, "SONAME")
                case 15: deps.rpath += try string(strtab, value, "RPATH").split(separator: ":").map(String.init)
                case 29: deps.runpath += try string(strtab, value, "RUNPATH").split(separator: ":").map(String.init)
                default: break
                }
            }
        }

        // .gnu.version_r: library → versions, keyed by the version index symbols refer to.
        var versionByIndex: [UInt16: Int] = [:]  // vna_other → position in deps.versionNeeds
        let verneeds = headers.filter { $0.type == Self.sectionVerneed }
        guard verneeds.count <= 1 else { throw bad("\(verneeds.count) version-needs sections: expected at most one") }
        if let verneed = verneeds.first {
            let strtab = try contents(try linked(verneed, "the version-needs section"), "the version-needs string table")
            let table = try contents(verneed, "the version-needs section (.gnu.version_r)")
            var at = 0
            var entries = 0
            let maxEntries = table.count / 16
            while true {
                guard at >= 0, at + 16 <= table.count else {
                    throw bad("version-needs entry \(entries + 1) at offset \(at) is outside its section (\(table.count) bytes)")
                }
                entries += 1
                guard entries <= maxEntries else { throw bad("version-needs entries loop or overrun their section") }
                let count = Int(table.le16(at + 2))
                let library = try string(strtab, UInt64(table.le32(at + 4)), "version-needs entry \(entries)")
                var aux = at + Int(table.le32(at + 8))
                for k in 0..<count {
                    guard aux >= at, aux + 16 <= table.count else {
                        throw bad("version \(k + 1) needed from '\(library)' at offset \(aux) is outside the version-needs section (\(table.count) bytes)")
                    }
                    let index = table.le16(aux + 6) & 0x7fff
                    let version = try string(strtab, UInt64(table.le32(aux + 8)), "version \(k + 1) needed from '\(library)'")
                    versionByIndex[index] = deps.versionNeeds.count
                    deps.versionNeeds.append(.init(library: library, version: version, symbolCount: 0, symbols: []))
                    let next = Int(table.le32(aux + 12))
                    if next == 0 { break }
                    aux += next
                }
                let next = Int(table.le32(at + 12))
                if next == 0 { break }
                at += next
            }
        }

        // .gnu.version + .dynsym: which undefined symbols need which version; forbidden names.
        let versyms = headers.filter { $0.type == Self.sectionVersym }
        let dynsyms = headers.filter { $0.type == Self.sectionDynsym }
        guard versyms.count <= 1, dynsyms.count <= 1 else { throw bad("more than one dynamic symbol table or version table") }
        if let dynsym = dynsyms.first {
            let symbolSize = wide ? 24 : 16
            let strtab = try contents(try linked(dynsym, "the dynamic symbol table"), "the dynamic symbol string table")
            let symbols = try contents(dynsym, "the dynamic symbol table")
            let count = symbols.count / symbolSize
            var versions: [UInt8] = []
            if let versym = versyms.first {
                versions = try contents(versym, "the symbol version table (.gnu.version)")
                guard versions.count >= count * 2 else {
                    throw bad("the symbol version table has \(versions.count / 2) entries for \(count) dynamic symbols")
                }
            }
            let forbidden = ForbiddenNames.shared
            for s in 1..<max(1, count) {
                let p = s * symbolSize
                let shndx = wide ? symbols.le16(p + 6) : symbols.le16(p + 14)
                guard shndx == 0 else { continue }  // defined here: not a need
                let nameOffset = UInt64(symbols.le32(p))
                guard nameOffset < UInt64(strtab.count) else {
                    throw bad("dynamic symbol \(s): name offset \(nameOffset) is outside its string table (\(strtab.count) bytes)")
                }
                let start = Int(nameOffset)
                if !versions.isEmpty {
                    let index = versions.le16(s * 2) & 0x7fff
                    if index >= 2, let at = versionByIndex[index] {
                        deps.versionNeeds[at].symbolCount += 1
                        if deps.versionNeeds[at].symbols.count < 3 {
                            deps.versionNeeds[at].symbols.append(try string(strtab, nameOffset, "dynamic symbol \(s)"))
                        }
                    }
                }
                if forbidden.mayContain(strtab, at: start), let n = try? string(strtab, nameOffset, "dynamic symbol \(s)"),
                   forbidden.names.contains(n) {
                    deps.forbiddenCandidates.append(n)
                }
            }
        }
        return deps
    }
}

/// Every name on some policy's forbidden list, with a cheap first-byte and length filter so the
/// symbol loop creates a string only for likely matches.
struct ForbiddenNames: Sendable {
    static let shared = ForbiddenNames()
    let names: Set<String>
    private let firstBytes: Set<UInt8>
    private let lengths: Set<Int>

    init() {
        var all = PlatformPolicies.zlibInternals.union(PlatformPolicies.muslZlibInternals)
        for (_, names) in PlatformPolicies.oldGlibcForbidden { all.formUnion(names) }
        names = all
        firstBytes = Set(all.compactMap(\.utf8.first))
        lengths = Set(all.map(\.utf8.count))
    }

    func mayContain(_ table: [UInt8], at start: Int) -> Bool {
        guard start < table.count, firstBytes.contains(table[start]) else { return false }
        var end = start
        let limit = min(table.count, start + 64)
        while end < limit, table[end] != 0 { end += 1 }
        return end < limit && lengths.contains(end - start)
    }
}
