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
    /// The Python tag a stable-ABI wheel carries (`cp38`, as upstream vLLM tags its wheels);
    /// nil: the tag of the Python the wheel is built with.
    public var abi3Tag: String?
    /// The upstream distribution name (`vllm`): the sdist fetched from an index, the name the
    /// variants rename. Defaults to ``module``.
    public var project: String = ""
    /// Where the source comes from, parsed (``source`` is its location).
    public var sourceSpec: RecipeSource = RecipeSource(kind: .path, location: "")
    /// The upstream versions the recipe can build (every version when empty).
    public var versions: VersionSpecifierSet = .any
    /// The folder holding the recipe's own files (build steps, patches), when it has one:
    /// `recipes/NAME/` next to `recipes/NAME.yaml`, or the folder of `recipes/NAME/recipe.yaml`.
    public var directory: String?
    /// The build step's file: `<directory>/<build_step>.sh` when the recipe has one, else
    /// `agents/recipes/<build_step>.sh`; nil for the generic PEP 517 step.
    public var buildStepFile: String?
    /// Patches (relative to ``directory``) applied to the source with `git apply`, in order.
    public var patches: [String] = []
    /// Build requirements: files in the source (`requirements/cpu-build.txt`; the first that
    /// exists is used) or requirement specifiers (`cmake>=3.26`); nil: the source's own
    /// `pyproject.toml` `[build-system] requires`.
    public var buildRequirements: [String]?
    /// The `Requires-Python` of the upstream version (checked by `plan`, confirmed by `recipe check`).
    public var requiresPython: VersionSpecifierSet?
    /// What every build host needs beyond CPU flags.
    public var prerequisites: [Prerequisite] = []
    /// PEP 517 config settings for the generic step.
    public var configSettings: [String: String] = [:]
    /// CMake arguments for the generic step (`CMAKE_ARGS`).
    public var cmakeArgs: [String] = []
    /// Settings for ranges of upstream versions, applied in order by ``resolved(for:)``.
    public var when: [VersionedSettings] = []
    /// Notes of the settings in force for a version (after ``resolved(for:)``).
    public var notes: [String] = []
    /// The test each wheel must pass before it is published.
    public var test: RecipeTest?

    /// The name of the generic PEP 517 build step, which needs no step file.
    public static let genericBuildStep = "pep517"

    /// The recipe as it applies to upstream `version`: every recipe-level ``when`` block that
    /// admits it applied in order, and each variant resolved too.
    public func resolved(for version: PEP440Version) -> Recipe {
        var r = self
        r.when = []
        for block in when where block.versions.admits(version, prereleases: true) { block.apply(to: &r) }
        r.variants = variants.map { $0.resolved(for: version) }
        return r
    }

    /// Replaces the source with `text` (a git URL, a folder, `pypi`, or `index:URL`), keeping the tag template.
    public mutating func override(source text: String) {
        let tag = sourceSpec.tag
        sourceSpec = text.hasPrefix("index:") ? RecipeSource(kind: .index, location: String(text.dropFirst(6))) : RecipeSource(shorthand: text)
        sourceSpec.tag = tag
        source = sourceSpec.location
    }

    /// Why the recipe cannot build `version` at all (nil when it can).
    public func unsupportedReason(for version: PEP440Version) -> String? {
        versions.admits(version, prereleases: true) ? nil : "recipe \(name) builds versions \(versions) only"
    }

    public init(name: String, summary: String = "", source: String, buildStep: String, module: String,
                requiredFiles: [String] = [], versionFile: String? = nil, env: [String: String] = [:],
                variants: [Variant], defaultVariant: String, defaultPythons: [PythonVersion] = [PythonVersion(major: 3, minor: 13)],
                versionOption: String? = nil) {
        self.name = name; self.summary = summary; self.source = source; self.buildStep = buildStep
        self.module = module; self.requiredFiles = requiredFiles; self.versionFile = versionFile
        self.env = env; self.variants = variants; self.defaultVariant = defaultVariant
        self.defaultPythons = defaultPythons; self.versionOption = versionOption
        self.project = module
        self.sourceSpec = RecipeSource(shorthand: source)
        self.buildStepFile = buildStep == Self.genericBuildStep ? nil : "recipes/\(buildStep).sh"
    }

    /// The variant with that short name or package name (PEP 503-normalised comparison).
    public func variant(named name: String) -> Variant? {
        let n = Variant.normalize(name)
        return variants.first { Variant.normalize($0.shortName) == n || $0.normalizedPackage == n }
    }
}
