import FarmCore
import Recipes

/// The parts of a build request that come from the recipe model (docs/RECIPES.md): the step
/// file, patches, build requirements, prerequisites, the stable-ABI tag, the source kind and tag,
/// and the generic step's config settings and CMake arguments. Values may hold `{version}`-style
/// placeholders, which the agent expands (it alone knows the host's `{max_jobs}`).
public struct BuildRecipeSettings: Sendable, Hashable {
    /// The step file relative to the bundle root, when it is not `recipes/<build_step>.sh`.
    public var stepFile: String?
    /// Patch files relative to the bundle root, applied in order with `git apply`.
    public var patches: [String] = []
    /// Files in the source (the first that exists is used) or requirement specifiers.
    public var buildRequirements: [String] = []
    /// `kind:name[:minimum]:debian-package` entries the agent checks before building.
    public var prerequisites: [String] = []
    /// The stable-ABI Python tag (`cp38`), or `auto` for the build Python's; nil: not abi3.
    public var abi3Tag: String?
    /// `index` for an sdist from a package index; nil: the agent infers git, archive or folder.
    public var sourceKind: String?
    /// The git tag of the version (`v{version}`).
    public var sourceTag: String?
    /// The upstream distribution name (`vllm`).
    public var project: String?
    public var configSettings: [String: String] = [:]
    public var cmakeArgs: [String] = []
    /// Stop after the wheel's metadata (`recipe check`): no compile.
    public var metadataOnly = false
    /// Requirement names not installed into the build venv (provided some other way).
    public var skipRequirements: [String] = []

    public init() {}

    /// The settings of `recipe` (resolved for the job's version) and its resolved `variant`.
    public init(recipe: Recipe, variant: Variant) {
        if let file = recipe.buildStepFile, file != "recipes/\(recipe.buildStep).sh" { stepFile = file }
        let folder = "\(Recipe.bundleFolder)/\(recipe.name)"
        patches = (recipe.patches + variant.patches).map { "\(folder)/\($0)" }
        buildRequirements = recipe.buildRequirements ?? []
        prerequisites = (recipe.prerequisites + variant.prerequisites).map(Self.encode)
        var seen = Set<String>()
        prerequisites = prerequisites.filter { seen.insert($0).inserted }
        if recipe.abi3 { abi3Tag = recipe.abi3Tag ?? "auto" }
        if recipe.sourceSpec.kind != .index, recipe.sourceSpec.tag != RecipeSource.defaultTag { sourceTag = recipe.sourceSpec.tag }
        project = recipe.project
        configSettings = recipe.configSettings.merging(variant.configSettings) { $1 }
        cmakeArgs = recipe.cmakeArgs + variant.cmakeArgs
    }

    static func encode(_ p: Prerequisite) -> String {
        let what = p.kind == .cxx ? (p.minimum?.description ?? "0") : p.name
        return "\(p.kind.rawValue):\(what):\(p.debianPackage ?? "")"
    }

    /// The `build.sh` arguments.
    public var arguments: [String] {
        var args: [String] = []
        if let stepFile { args += ["--step", stepFile] }
        for p in patches { args += ["--patch", p] }
        for r in buildRequirements { args += ["--build-requirement", r] }
        for p in prerequisites { args += ["--prerequisite", p] }
        if let abi3Tag { args += ["--abi3", abi3Tag] }
        if let sourceKind { args += ["--source-kind", sourceKind] }
        if let sourceTag { args += ["--source-tag", sourceTag] }
        if let project { args += ["--project", project] }
        for (k, v) in configSettings.sorted(by: { $0.key < $1.key }) { args += ["--config-setting", "\(k)=\(v)"] }
        for a in cmakeArgs { args += ["--cmake-arg=\(a)"] }
        for r in skipRequirements { args += ["--skip-requirement", r] }
        if metadataOnly { args.append("--metadata-only") }
        return args
    }
}
