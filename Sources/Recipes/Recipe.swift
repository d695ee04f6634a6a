import FarmCore

/// A project whose CPU variants wheelfarm builds, described as data (`recipes/*.yaml`).
public struct Recipe: Sendable, Hashable, Codable {
    /// Recipe name (`vllm-cpu`, `sample`).
    public var name: String
    /// Human description.
    public var summary: String
    /// The upstream project and where its source comes from (a git URL or a local path).
    public var source: String
    /// The agent build step that builds one wheel (a script under `agents/recipes/`).
    public var buildStep: String
    /// The importable package every wheel must contain (`vllm`).
    public var module: String
    /// Files every wheel must contain, as glob patterns (`vllm/__init__.py`, `vllm/_C*.so`).
    public var requiredFiles: [String]
    /// A file inside the package that carries the version (`vllm/_version.py`), rewritten with it.
    public var versionFile: String?
    /// Environment common to every variant's build.
    public var env: [String: String]
    /// The variants, in the order they are listed.
    public var variants: [Variant]
    /// The variant built when `--variant` is not given (its short name).
    public var defaultVariant: String
    /// Python versions built when `--python-versions` is not given.
    public var defaultPythons: [PythonVersion]
    /// Upstream versions built when no version is given (empty: a version must be given).
    public var defaultVersions: [PEP440Version] = []
    /// The name of the upstream version option in the old script (`vllm-versions`), accepted as an alias.
    public var versionOption: String?
    /// Whether the wheels use CPython's stable ABI (`cp38-abi3`): one wheel then serves every
    /// Python from its tag on, so a release builds each variant, arch and version once, with the
    /// lowest selected Python, instead of once per Python.
    public var abi3: Bool = false
    /// The platform compatibility every wheel must have (`platform: manylinux_2_28`); a variant
    /// may state its own (``Variant/platform`` holds the one in force). `nil`: whatever the
    /// content allows, as long as the tag is true.
    public var platform: PlatformRequirement?
    /// Libraries the wheels link against that a runtime dependency installs (`provided_libraries`):
    /// the platform audit lets them pass and `auditwheel repair` does not vendor them.
    public var providedLibraries: [ProvidedLibrary] = []

    public init(name: String, summary: String = "", source: String, buildStep: String, module: String,
                requiredFiles: [String] = [], versionFile: String? = nil, env: [String: String] = [:],
                variants: [Variant], defaultVariant: String, defaultPythons: [PythonVersion] = [PythonVersion(major: 3, minor: 13)],
                versionOption: String? = nil) {
        self.name = name; self.summary = summary; self.source = source; self.buildStep = buildStep
        self.module = module; self.requiredFiles = requiredFiles; self.versionFile = versionFile
        self.env = env; self.variants = variants; self.defaultVariant = defaultVariant
        self.defaultPythons = defaultPythons; self.versionOption = versionOption
    }

    /// The variant with that short name or package name (PEP 503-normalised comparison).
    public func variant(named name: String) -> Variant? {
        let n = Variant.normalize(name)
        return variants.first { Variant.normalize($0.shortName) == n || $0.normalizedPackage == n }
    }
}
