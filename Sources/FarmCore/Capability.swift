/// A CPU capability, named as Linux names it in the `flags` line of `/proc/cpuinfo`.
///
/// Capabilities are what a host declares in the inventory and what a variant requires or forbids.
/// Friendly aliases (`avx512`, `vnni`, `bf16`, `amx`) are accepted on input and normalised to the
/// kernel names; an alias may stand for several flags (`amx` is `amx_bf16` + `amx_tile`).
public struct Capability: Sendable, Hashable, Codable, Comparable, CustomStringConvertible {
    /// The `/proc/cpuinfo` flag name, e.g. `avx512_vnni`.
    public let name: String

    /// Creates a capability from a flag name that is already normalised.
    public init(_ name: String) { self.name = name }

    public var description: String { name }
    public static func < (lhs: Capability, rhs: Capability) -> Bool { lhs.name < rhs.name }

    public init(from decoder: Decoder) throws {
        name = try decoder.singleValueContainer().decode(String.self)
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(name)
    }
}

extension Capability {
    /// Flags wheelfarm knows and accepts in inventories and recipes.
    ///
    /// The list covers the flags that matter for choosing build hosts of CPU-variant wheels on
    /// x86-64 and arm64. A flag outside it is reported as unknown (with a suggestion), because a
    /// typo in a capability silently changes where builds run.
    public static let known: Set<String> = [
        // x86-64 baseline and AVX family
        "sse", "sse2", "ssse3", "sse4_1", "sse4_2", "popcnt", "aes", "pclmulqdq",
        "avx", "avx2", "fma", "f16c", "bmi1", "bmi2", "lzcnt", "movbe", "sha_ni", "vaes", "vpclmulqdq",
        "avx_vnni", "avx_vnni_int8", "avx_ifma", "avx_ne_convert",
        // AVX-512
        "avx512f", "avx512cd", "avx512dq", "avx512bw", "avx512vl", "avx512ifma", "avx512vbmi",
        "avx512_vbmi2", "avx512_vnni", "avx512_bitalg", "avx512_vpopcntdq", "avx512_bf16",
        "avx512_fp16", "avx512_vp2intersect", "gfni",
        // AMX
        "amx_tile", "amx_bf16", "amx_int8", "amx_fp16", "amx_complex",
        // arm64 (Features line of /proc/cpuinfo)
        "fp", "asimd", "asimdhp", "asimddp", "asimdfhm", "asimdrdm", "sve", "sve2", "bf16", "i8mm",
        "sme", "atomics", "crc32", "sha1", "sha2", "sha3", "sha512", "pmull", "dcpop",
    ]

    /// Friendly aliases and the flags each stands for.
    public static let aliases: [String: [String]] = [
        "avx512": ["avx512f", "avx512vl", "avx512bw", "avx512dq"],
        "vnni": ["avx512_vnni"],
        "avx512vnni": ["avx512_vnni"],
        "avx512bf16": ["avx512_bf16"],
        "bf16_x86": ["avx512_bf16"],
        "amx": ["amx_bf16", "amx_tile"],
        "amxbf16": ["amx_bf16", "amx_tile"],
        "neon": ["asimd"],
    ]

    /// Normalises one name from an inventory or recipe.
    ///
    /// Returns the flags it stands for, or `nil` when the name is neither a known flag nor an
    /// alias. `bf16` on its own is the arm64 flag name in `/proc/cpuinfo`, so on an amd64 host it
    /// means `avx512_bf16` (the meaning a release engineer intends); `arch` picks which.
    public static func normalise(_ raw: String, arch: Arch? = nil) -> [Capability]? {
        let name = raw.lowercased().replacingOccurrences(of: "-", with: "_")
        if name == "bf16" {
            return arch == .arm64 ? [Capability("bf16")] : [Capability("avx512_bf16")]
        }
        if let expanded = aliases[name] { return expanded.map(Capability.init) }
        if known.contains(name) { return [Capability(name)] }
        return nil
    }

    /// Every name ``normalise(_:arch:)`` accepts, for "did you mean" suggestions.
    public static var acceptedNames: [String] { Array(known) + Array(aliases.keys) + ["bf16"] }
}
