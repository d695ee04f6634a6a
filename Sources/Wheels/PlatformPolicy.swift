#if canImport(FarmCore)
import FarmCore  // the fuzz target compiles this file without the module (Fuzz/run.sh)
#endif

/// What a wheel of one platform tag may need: the versioned symbols it may use, per version
/// namespace, the system libraries it may link against, and symbols it must not import from them.
///
/// The numbers are auditwheel's (its `manylinux-policy.json` and `musllinux-policy.json`,
/// version 6.8): a test compares this table with the installed auditwheel's files for every
/// policy and machine listed here, so a newer auditwheel that changes a number fails that test.
public struct PlatformPolicy: Sendable, Hashable {
    /// The C library version the policy stands for (`glibc 2.28`).
    public var libc: LibcVersion
    /// The machine (`x86_64`, `aarch64`).
    public var machine: String
    /// Version namespace (`GLIBC`, `GLIBCXX`, `CXXABI`, `GCC`, `LIBATOMIC`, `ZLIB`) → the versions
    /// allowed (`2.28`, `TM_1`…). Namespaces not listed are not limited (auditwheel's rule).
    public var symbolVersions: [String: Set<String>]
    /// Libraries a wheel may link against without carrying them (`libc.so.6`, `libstdc++.so.6`…).
    public var libraries: Set<String>
    /// Library → symbols that must not be imported from it (they are missing from some systems
    /// the tag promises).
    public var forbiddenSymbols: [String: Set<String>]

    /// The policy's name (`manylinux_2_28`, `musllinux_1_2`).
    public var name: String { "\(libc.family.tagFamily)_\(libc.major)_\(libc.minor)" }

    /// The platform tag of the policy (`manylinux_2_28_x86_64`).
    public var tag: LinuxPlatformTag { .tag(for: libc, machine: machine) }

    /// The newest numbered version the policy allows in `namespace` (`3.4.24` for GLIBCXX under
    /// manylinux_2_28), or `nil` when the namespace is not limited or allows nothing.
    public func newest(_ namespace: String) -> String? {
        symbolVersions[namespace]?.compactMap(DottedVersion.init).max()?.description
    }

    /// Whether `namespace`'s `version` is allowed (true for namespaces the policy does not limit).
    public func allows(namespace: String, version: String) -> Bool {
        guard let allowed = symbolVersions[namespace] else { return true }
        return allowed.contains(version)
    }
}

/// The policy table: every manylinux and musllinux policy auditwheel knows for the machines
/// wheelfarm builds for (x86_64, aarch64), and the lookup from a platform tag to its policy.
///
/// Written as the versions each policy *adds* over the one before (every policy allows all
/// its predecessors allow, which the comparison test also checks), so the table reads like the
/// history of glibc, libstdc++ and libgcc releases rather than as 17 long lists.
public enum PlatformPolicies {
    /// The glibc versions auditwheel has a manylinux policy for, per machine.
    static let glibcPolicies: [String: [Int]] = [
        "x86_64": [5, 12, 17, 24, 26, 27, 28, 31, 34, 35, 36, 37, 38, 39, 40, 41],
        "aarch64": [17, 24, 26, 27, 28, 31, 34, 35, 36, 37, 38, 39, 40, 41],
    ]

    /// The musl versions auditwheel has a musllinux policy for (every machine).
    static let muslPolicies: [Int] = [1, 2]

    /// Per machine and namespace: glibc minor version of the policy → versions it adds.
    static let additions: [String: [String: [Int: String]]] = [
        "x86_64": [
            "GLIBC": [
                5: "2.2.5 2.2.6 2.3 2.3.2 2.3.3 2.3.4 2.4 2.5", 12: "2.6 2.7 2.8 2.9 2.10 2.11 2.12",
                17: "2.13 2.14 2.15 2.16 2.17", 24: "2.18 2.22 2.23 2.24", 26: "2.25 2.26", 27: "2.27", 28: "2.28",
                31: "2.29 2.30 2.31", 34: "2.32 2.33 2.34", 35: "2.35", 36: "2.36 ABI_DT_RELR", 38: "2.38", 39: "2.39",
                40: "2.40", 41: "2.41",
            ],
            "GLIBCXX": [
                5: "3.4 3.4.1 3.4.2 3.4.3 3.4.4 3.4.5 3.4.6 3.4.7 3.4.8", 12: "3.4.9 3.4.10 3.4.11 3.4.12 3.4.13",
                17: "3.4.14 3.4.15 3.4.16 3.4.17 3.4.18 3.4.19", 24: "3.4.20 3.4.21 3.4.22", 27: "3.4.23 3.4.24",
                31: "3.4.25 3.4.26 3.4.27 3.4.28", 34: "3.4.29", 35: "3.4.30", 39: "3.4.31 3.4.32 3.4.33",
            ],
            "CXXABI": [
                5: "1.3 1.3.1", 12: "1.3.2 1.3.3", 17: "1.3.4 1.3.5 1.3.6 1.3.7 TM_1", 24: "1.3.8 1.3.9 1.3.10 FLOAT128",
                27: "1.3.11", 31: "1.3.12", 34: "1.3.13", 39: "1.3.14 1.3.15",
            ],
            "GCC": [
                5: "3.0 3.3 3.3.1 3.4 3.4.2 3.4.4 4.0.0 4.2.0", 12: "4.3.0", 17: "4.7.0 4.8.0", 27: "7.0.0", 35: "12.0.0",
                39: "13.0.0 14.0.0",
            ],
            "LIBATOMIC": [5: "", 24: "1.0 1.1 1.2"],
            "ZLIB": [
                5: "", 12: "1.2.0 1.2.0.2 1.2.0.8 1.2.2 1.2.2.3 1.2.2.4", 17: "1.2.3.3 1.2.3.4 1.2.3.5 1.2.5.1 1.2.5.2",
                27: "1.2.7.1 1.2.9", 37: "1.2.12",
            ],
        ],
        "aarch64": [
            "GLIBC": [
                17: "2.0 2.17 2.18", 24: "2.22 2.23 2.24", 26: "2.25 2.26", 27: "2.27", 28: "2.28", 31: "2.29 2.30 2.31",
                34: "2.32 2.33 2.34", 35: "2.35", 36: "2.36 ABI_DT_RELR", 38: "2.38", 39: "2.39", 40: "2.40", 41: "2.41",
            ],
            "GLIBCXX": [
                17: "3.4 3.4.1 3.4.2 3.4.3 3.4.4 3.4.5 3.4.6 3.4.7 3.4.8 3.4.9 3.4.10 3.4.11 3.4.12 3.4.13 3.4.14 3.4.15 3.4.16 3.4.17 3.4.18 3.4.19",
                24: "3.4.20 3.4.21 3.4.22", 26: "3.4.23 3.4.24", 31: "3.4.25 3.4.26 3.4.27 3.4.28", 34: "3.4.29", 35: "3.4.30",
                39: "3.4.31 3.4.32 3.4.33",
            ],
            "CXXABI": [
                17: "1.3 1.3.1 1.3.2 1.3.3 1.3.4 1.3.5 1.3.6 1.3.7 TM_1", 24: "1.3.8 1.3.9 1.3.10", 26: "1.3.11", 31: "1.3.12",
                34: "1.3.13", 39: "1.3.14 1.3.15",
            ],
            "GCC": [17: "3.0 3.3 3.3.1 3.4 3.4.2 3.4.4 4.0.0 4.2.0 4.3.0 4.5.0 4.7.0", 26: "7.0.0", 34: "11.0", 39: "13.0.0 14.0 14.0.0"],
            "LIBATOMIC": [17: "1.0", 24: "1.1 1.2"],
            "ZLIB": [17: "1.2.0 1.2.0.2 1.2.0.8 1.2.2 1.2.2.3 1.2.2.4 1.2.3.3 1.2.3.4 1.2.3.5 1.2.5.1 1.2.5.2", 27: "1.2.7.1 1.2.9", 37: "1.2.12"],
        ],
    ]

    /// Libraries every manylinux policy allows; glibc 2.12 adds libexpat, 2.24 adds libmvec.
    static let manylinuxLibraries: Set<String> = [
        "libatomic.so.1", "libgcc_s.so.1", "libstdc++.so.6", "libm.so.6", "libanl.so.1", "libdl.so.2", "librt.so.1", "libc.so.6",
        "libnsl.so.1", "libutil.so.1", "libpthread.so.0", "libX11.so.6", "libXext.so.6", "libXrender.so.1", "libICE.so.6",
        "libSM.so.6", "libGL.so.1", "libgobject-2.0.so.0", "libgthread-2.0.so.0", "libglib-2.0.so.0", "libresolv.so.2", "libz.so.1",
    ]

    /// zlib's internal symbols (exported by some builds, missing from others) that a wheel must
    /// not import from the system's libz; later policies drop names no supported system exports.
    static let zlibInternals: Set<String> = [
        "_dist_code", "_length_code", "_tr_align", "_tr_flush_block", "_tr_init", "_tr_stored_block", "_tr_tally", "adler32_default",
        "bi_windup", "crc32_acle", "crc32_combine_gen", "crc32_combine_gen64", "crc32_combine_op", "crc32_le_vgfm_16", "crc32_neon",
        "crc32_vpmsum", "crc32_z_default", "crc_fold_512to32", "crc_fold_copy", "crc_fold_init", "deflate_copyright", "deflate_medium",
        "fill_window", "flush_pending", "gzflags", "inflate_copyright", "inflate_fast", "inflate_table", "longest_match", "slide_hash_sse",
        "sse2_slide_hash", "static_ltree", "uncompress2", "x86_check_features", "x86_cpu_has_pclmul", "x86_cpu_has_sse2",
        "x86_cpu_has_sse42", "z_errmsg", "z_vstring", "zcalloc", "zcfree",
    ]
    /// Dropped from the zlib list from glibc 2.34, 2.36 and 2.37 on.
    static let zlibDropped: [Int: Set<String>] = [
        34: ["uncompress2"],
        36: ["bi_windup", "crc_fold_512to32", "crc_fold_copy", "crc_fold_init", "deflate_medium", "fill_window", "flush_pending",
             "longest_match", "slide_hash_sse", "static_ltree", "x86_check_features", "x86_cpu_has_pclmul", "x86_cpu_has_sse2",
             "x86_cpu_has_sse42"],
        37: ["crc32_combine_gen", "crc32_combine_gen64", "crc32_combine_op"],
    ]
    /// Up to manylinux_2_17, glibc symbols that old systems lack (added without a new version node).
    static let oldGlibcForbidden: [String: Set<String>] = [
        "libc.so.6": ["__cxa_thread_atexit_impl", "__issignaling", "__issignalingf", "__issignalingl", "pthread_getattr_default_np",
                      "pthread_setattr_default_np"],
        "libm.so.6": ["__issignaling", "__issignalingf", "__issignalingl"],
        "libpthread.so.0": ["pthread_getattr_default_np", "pthread_setattr_default_np"],
    ]
    /// musllinux's zlib list (the same for 1.1 and 1.2).
    static let muslZlibInternals: Set<String> = [
        "_dist_code", "_length_code", "_tr_align", "_tr_flush_block", "_tr_init", "_tr_stored_block", "_tr_tally", "bi_windup",
        "crc32_vpmsum", "crc_fold_512to32", "crc_fold_copy", "crc_fold_init", "deflate_copyright", "deflate_medium", "fill_window",
        "flush_pending", "gzflags", "inflate_copyright", "inflate_fast", "inflate_table", "longest_match", "slide_hash_sse",
        "static_ltree", "uncompress2", "x86_check_features", "x86_cpu_has_pclmul", "x86_cpu_has_sse2", "x86_cpu_has_sse42",
        "z_errmsg", "zcalloc", "zcfree",
    ]

    /// The machines the table covers.
    public static var machines: [String] { glibcPolicies.keys.sorted() }

    /// The musl C library's file name on a machine (`libc.musl-x86_64.so.1`).
    static func muslLibc(machine: String) -> String { "libc.musl-\(machine == "armv7l" ? "armv7" : machine == "i686" ? "x86" : machine).so.1" }

    /// Every policy of the table for `machine`, most compatible first (manylinux, then musllinux).
    public static func all(machine: String) -> [PlatformPolicy] {
        (glibcPolicies[machine] ?? []).map { exact(LibcVersion(.glibc, 2, $0), machine: machine)! }
            + (glibcPolicies[machine] == nil ? [] : muslPolicies.map { exact(LibcVersion(.musl, 1, $0), machine: machine)! })
    }

    /// The policy auditwheel has for exactly this version and machine, if any.
    public static func exact(_ libc: LibcVersion, machine: String) -> PlatformPolicy? {
        switch libc.family {
        case .glibc:
            guard libc.major == 2, let minors = glibcPolicies[machine], minors.contains(libc.minor),
                  let table = additions[machine] else { return nil }
            var versions: [String: Set<String>] = [:]
            for (namespace, steps) in table {
                var set = Set<String>()
                for (minor, added) in steps where minor <= libc.minor { set.formUnion(added.split(separator: " ").map(String.init)) }
                versions[namespace] = set
            }
            var libraries = manylinuxLibraries
            if libc.minor >= 12 { libraries.insert("libexpat.so.1") }
            if libc.minor >= 24 { libraries.insert("libmvec.so.1") }
            var forbidden: [String: Set<String>] = libc.minor <= 17 ? oldGlibcForbidden : [:]
            var zlib = zlibInternals
            for (minor, dropped) in zlibDropped where minor <= libc.minor { zlib.subtract(dropped) }
            forbidden["libz.so.1"] = zlib
            return PlatformPolicy(libc: libc, machine: machine, symbolVersions: versions, libraries: libraries, forbiddenSymbols: forbidden)
        case .musl:
            guard libc.major == 1, muslPolicies.contains(libc.minor), glibcPolicies[machine] != nil else { return nil }
            return PlatformPolicy(libc: libc, machine: machine, symbolVersions: [:], libraries: [muslLibc(machine: machine), "libz.so.1"],
                                  forbiddenSymbols: ["libz.so.1": muslZlibInternals])
        }
    }

    /// The policy a tag is audited against: auditwheel's policy for exactly that version, else
    /// (a PEP 600 tag auditwheel has no policy for, such as `manylinux_2_29`) the newest policy
    /// before it with its own glibc versions added up to the tag's; `nil` when the machine is not
    /// in the table or the tag is older than every policy.
    public static func policy(for libc: LibcVersion, machine: String) -> PlatformPolicy? {
        if let exact = exact(libc, machine: machine) { return exact }
        switch libc.family {
        case .glibc:
            guard libc.major == 2, let below = glibcPolicies[machine]?.last(where: { $0 < libc.minor }),
                  var policy = exact(LibcVersion(.glibc, 2, below), machine: machine) else { return nil }
            let next = glibcPolicies[machine]?.first(where: { $0 > libc.minor })
            if let next, let newer = exact(LibcVersion(.glibc, 2, next), machine: machine) {
                // Only the GLIBC versions up to the tag's own count; other namespaces stay the older policy's.
                let extra = (newer.symbolVersions["GLIBC"] ?? []).filter { v in
                    DottedVersion(v).map { $0 <= DottedVersion("2.\(libc.minor)")! } ?? false
                }
                policy.symbolVersions["GLIBC", default: []].formUnion(extra)
            } else {
                // Newer than the newest policy: every numbered GLIBC version up to the tag's.
                policy.symbolVersions["GLIBC", default: []].formUnion((below + 1...libc.minor).map { "2.\($0)" })
            }
            policy.libc = libc
            return policy
        case .musl:
            guard libc.major == 1, let below = muslPolicies.last(where: { $0 < libc.minor }) else { return nil }
            var policy = exact(LibcVersion(.musl, 1, below), machine: machine)
            policy?.libc = libc
            return policy
        }
    }

    /// The policy of a platform tag; `nil` for `linux_*` and for tags the table cannot judge.
    public static func policy(for tag: LinuxPlatformTag) -> PlatformPolicy? {
        tag.libc.flatMap { policy(for: $0, machine: tag.machine) }
    }
}

/// A dotted numeric version (`2.2.5`, `3.4.30`) compared numerically; symbol versions such as
/// `TM_1` or `PRIVATE` have none.
struct DottedVersion: Comparable, Hashable, CustomStringConvertible {
    let parts: [Int]
    init?(_ text: String) {
        let pieces = text.split(separator: ".", omittingEmptySubsequences: false)
        guard !pieces.isEmpty, pieces.count <= 8 else { return nil }
        var out: [Int] = []
        for p in pieces {
            guard !p.isEmpty, p.count <= 9, p.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int(p) else { return nil }
            out.append(n)
        }
        parts = out
    }
    static func < (l: Self, r: Self) -> Bool {
        for i in 0..<max(l.parts.count, r.parts.count) {
            let a = i < l.parts.count ? l.parts[i] : 0, b = i < r.parts.count ? r.parts[i] : 0
            if a != b { return a < b }
        }
        return false
    }
    var description: String { parts.map(String.init).joined(separator: ".") }
}
