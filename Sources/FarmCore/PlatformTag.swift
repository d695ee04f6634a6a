/// The C library a Linux platform tag promises compatibility with.
public enum LibcFamily: String, Sendable, Hashable, Codable, CaseIterable {
    /// GNU libc: `manylinux` tags (PEP 600, and the legacy `manylinux1/2010/2014`).
    case glibc
    /// musl: `musllinux` tags (PEP 656).
    case musl

    /// The platform tag family for this C library (`manylinux`, `musllinux`).
    public var tagFamily: String { self == .glibc ? "manylinux" : "musllinux" }
}

/// A version of a C library (`glibc 2.28`, `musl 1.2`); ordered within one family.
public struct LibcVersion: Sendable, Hashable, Codable, Comparable, CustomStringConvertible {
    public var family: LibcFamily
    public var major: Int
    public var minor: Int

    /// Creates a version.
    public init(_ family: LibcFamily, _ major: Int, _ minor: Int) {
        self.family = family; self.major = major; self.minor = minor
    }

    /// Parses `2.36` or `2.36.1` (the first two numbers count) for `family`.
    public init?(_ family: LibcFamily, parsing text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count >= 2, let major = Int(parts[0]), let minor = Int(parts[1]), major >= 0, minor >= 0 else { return nil }
        self.init(family, major, minor)
    }

    /// `glibc 2.28`.
    public var description: String { "\(family.rawValue) \(major).\(minor)" }

    /// `2.28`.
    public var number: String { "\(major).\(minor)" }

    /// Orders by family first (glibc before musl), then by version.
    public static func < (l: Self, r: Self) -> Bool {
        (l.family == .glibc ? 0 : 1, l.major, l.minor) < (r.family == .glibc ? 0 : 1, r.major, r.minor)
    }
}

/// A Linux platform tag of a wheel: `manylinux_2_28_x86_64` (PEP 600), the legacy
/// `manylinux1_x86_64`, `manylinux2010_x86_64`, `manylinux2014_aarch64` (aliases of glibc 2.5,
/// 2.12 and 2.17), `musllinux_1_2_x86_64` (PEP 656) or the host-specific `linux_x86_64`.
public struct LinuxPlatformTag: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The C library and version the tag promises, or `nil` for `linux_*` (no promise).
    public var libc: LibcVersion?
    /// The machine suffix as the tag spells it (`x86_64`, `aarch64`, `i686`, `ppc64le`…).
    public var machine: String
    /// The tag as written (a legacy alias stays spelt as an alias).
    public var text: String

    /// The legacy aliases of PEP 600 tags: name → glibc version.
    public static let legacyAliases: [(name: String, major: Int, minor: Int)] = [("manylinux1", 2, 5), ("manylinux2010", 2, 12), ("manylinux2014", 2, 17)]

    /// Parses a platform tag; `nil` for tags that are not Linux tags (`any`, `macosx_…`,
    /// `win_amd64`) or do not have the shape.
    public init?(_ tag: String) {
        text = tag
        if tag.hasPrefix("linux_") {
            machine = String(tag.dropFirst(6))
            libc = nil
            guard Self.isMachine(machine) else { return nil }
            return
        }
        for alias in Self.legacyAliases where tag.hasPrefix(alias.name + "_") {
            machine = String(tag.dropFirst(alias.name.count + 1))
            libc = LibcVersion(.glibc, alias.major, alias.minor)
            guard Self.isMachine(machine) else { return nil }
            return
        }
        for family in LibcFamily.allCases where tag.hasPrefix(family.tagFamily + "_") {
            let rest = tag.dropFirst(family.tagFamily.count + 1).split(separator: "_", maxSplits: 2, omittingEmptySubsequences: false)
            guard rest.count == 3, let major = Int(rest[0]), let minor = Int(rest[1]), String(major) == rest[0], String(minor) == rest[1] else { return nil }
            machine = String(rest[2])
            libc = LibcVersion(family, major, minor)
            guard Self.isMachine(machine) else { return nil }
            return
        }
        return nil
    }

    private static func isMachine(_ s: String) -> Bool {
        !s.isEmpty && s.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "_") }
    }

    /// The arch wheelfarm knows for the machine suffix (`x86_64` → amd64), if any.
    public var arch: Arch? { Arch(parsing: machine) }

    /// The PEP 600/656 spelling (`manylinux_2_17_x86_64` for `manylinux2014_x86_64`).
    public var canonical: String {
        guard let libc else { return "linux_\(machine)" }
        return "\(libc.family.tagFamily)_\(libc.major)_\(libc.minor)_\(machine)"
    }

    /// The legacy alias of this tag's glibc version on this machine, when one exists
    /// (`manylinux2014_x86_64` for glibc 2.17); manylinux1 and manylinux2010 exist for x86 only.
    public var legacyAlias: String? {
        guard let libc, libc.family == .glibc else { return nil }
        guard let alias = Self.legacyAliases.first(where: { $0.major == libc.major && $0.minor == libc.minor }) else { return nil }
        if alias.name != "manylinux2014", machine != "x86_64", machine != "i686" { return nil }
        return "\(alias.name)_\(machine)"
    }

    /// The tag for a C library version on a machine (`manylinux_2_34_x86_64`).
    public static func tag(for libc: LibcVersion, machine: String) -> LinuxPlatformTag {
        LinuxPlatformTag("\(libc.family.tagFamily)_\(libc.major)_\(libc.minor)_\(machine)")!
    }

    /// `linux_<machine>`.
    public static func linux(machine: String) -> LinuxPlatformTag { LinuxPlatformTag("linux_\(machine)")! }

    public var description: String { text }
}

/// The compatibility a recipe requires of its wheels' platform tags (the recipe's `platform:`).
///
/// `manylinux_2_28` means the wheel must install on every glibc 2.28 system: its most compatible
/// manylinux tag names glibc 2.28 or older. `linux` means host-specific `linux_*` wheels are
/// accepted; only a local index takes them (PyPI refuses them), so a release to an upload index
/// refuses such a recipe before building.
public enum PlatformRequirement: Sendable, Hashable, Codable, CustomStringConvertible {
    /// At least as compatible as this C library version.
    case portable(LibcVersion)
    /// Host-specific wheels (`linux_*`) accepted, for the local index only.
    case linux

    /// Parses `manylinux_2_28`, `manylinux2014` (and the other legacy aliases), `musllinux_1_2`
    /// or `linux`; `nil` otherwise.
    public init?(_ text: String) {
        if text == "linux" { self = .linux; return }
        // Reuse the tag parser with a placeholder machine.
        guard let tag = LinuxPlatformTag(text + "_x86_64"), tag.machine == "x86_64", let libc = tag.libc else { return nil }
        self = .portable(libc)
    }

    /// The accepted forms, for error messages.
    public static let formHint = "manylinux_X_Y (e.g. manylinux_2_28), manylinux1, manylinux2010, manylinux2014, musllinux_X_Y (e.g. musllinux_1_2) or linux"

    /// `manylinux_2_28`, `musllinux_1_2`, `linux`.
    public var description: String {
        switch self {
        case let .portable(libc): "\(libc.family.tagFamily)_\(libc.major)_\(libc.minor)"
        case .linux: "linux"
        }
    }

    /// The C library version required, when portable.
    public var libc: LibcVersion? { if case let .portable(l) = self { l } else { nil } }

    /// Whether a wheel with these platform tags installs on every system the requirement names:
    /// one of its tags of the same C library family names that version or an older one.
    /// `linux` is met by any Linux tag.
    public func isMet(by tags: [LinuxPlatformTag]) -> Bool {
        switch self {
        case .linux: return !tags.isEmpty
        case let .portable(required):
            return tags.contains { tag in
                guard let have = tag.libc, have.family == required.family else { return false }
                return have <= required
            }
        }
    }
}
