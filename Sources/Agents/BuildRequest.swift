import FarmCore
import Inventory
import Recipes

/// One invocation of `build.sh`: everything the agent needs to build one job's wheel on one host.
public struct BuildRequest: Sendable, Hashable {
    /// Native build on the host, or inside a manylinux container on it.
    public enum Builder: String, Sendable, Hashable, Codable, CaseIterable {
        case native, docker
    }

    /// The job's id on the host (names `jobs/<id>/`): letters, digits, `.`, `_`, `-`.
    public var jobID: String
    /// The recipe's build step (`agents/recipes/<step>.sh`).
    public var buildStep: String
    /// The variant's distribution name.
    public var package: String
    public var version: String
    public var versionSuffix: String?
    public var python: PythonVersion
    public var maxJobs: Int?
    public var builder: Builder
    /// Where the source comes from on the host (a path or URL; see the recipe).
    public var source: String?
    /// The build environment: the recipe's common env with the variant's on top.
    public var environment: [String: String]
    public var compilerFlags: [String]
    /// Flags the host must have and must not have (checked by the agent before building).
    public var requires: Set<Capability>
    public var forbids: Set<Capability>
    public var minimumGCC: String?
    public var minimumFreeMB: Int?
    /// The host's build slots: the agent holds one of that many slot locks on the host while it
    /// builds, so coordinators sharing the host never run more builds at once (nil: no lock).
    public var hostSlots: Int?
    public var dryRun: Bool
    /// The platform compatibility the wheel must have (`manylinux_2_28`; `linux` keeps a
    /// host-specific tag when nothing portable is possible); the agent tags with auditwheel.
    public var platform: PlatformRequirement?
    /// Libraries a runtime dependency provides: `auditwheel repair --exclude`.
    public var excludedLibraries: [String] = []
    /// The recipe-model settings for this job's version (``BuildRecipeSettings``).
    public var settings = BuildRecipeSettings()

    public init(jobID: String, buildStep: String, package: String, version: String, versionSuffix: String? = nil,
                python: PythonVersion, maxJobs: Int? = nil, builder: Builder = .native, source: String? = nil,
                environment: [String: String] = [:], compilerFlags: [String] = [], requires: Set<Capability> = [],
                forbids: Set<Capability> = [], minimumGCC: String? = nil, minimumFreeMB: Int? = nil, dryRun: Bool = false) {
        self.jobID = jobID; self.buildStep = buildStep; self.package = package; self.version = version
        self.versionSuffix = versionSuffix; self.python = python; self.maxJobs = maxJobs; self.builder = builder
        self.source = source; self.environment = environment; self.compilerFlags = compilerFlags
        self.requires = requires; self.forbids = forbids; self.minimumGCC = minimumGCC
        self.minimumFreeMB = minimumFreeMB; self.dryRun = dryRun
    }

    /// The request for `job` of `recipe` on `host`: env, flags, host requirements and MAX_JOBS from them.
    public init(job: BuildJob, recipe: Recipe, host: Host, source: String?, attempt: Int = 1,
                builder: Builder = .native, dryRun: Bool = false) {
        let needs = job.hostRequirements
        self.init(jobID: Self.jobID(for: job, attempt: attempt), buildStep: recipe.buildStep,
                  package: job.variant.package, version: job.version.description, versionSuffix: job.suffix,
                  python: job.python, maxJobs: host.maxJobs, builder: builder, source: source,
                  environment: recipe.env.merging(job.variant.env) { $1 }, compilerFlags: job.variant.compilerFlags,
                  requires: needs.requires, forbids: needs.forbids, minimumGCC: job.variant.minimumGCC?.description,
                  dryRun: dryRun)
        platform = job.variant.platform
        excludedLibraries = recipe.providedLibraries.map(\.pattern)
        let resolved = recipe.resolved(for: job.version)
        environment = resolved.env.merging(job.variant.env) { $1 }
        settings = BuildRecipeSettings(recipe: resolved, variant: job.variant)
        if recipe.sourceSpec.kind == .index, self.source == recipe.source { settings.sourceKind = "index" }
    }

    /// A readable id, unique per job and attempt: `wfsample-cpu-avx512-1.2.3-cp311-amd64-a1`.
    public static func jobID(for job: BuildJob, attempt: Int = 1) -> String {
        let raw = "\(job.variant.normalizedPackage)-\(job.publishedVersion)-\(job.python.cpythonTag)-\(job.arch.rawValue)-a\(attempt)"
        return String(raw.map { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) ? $0 : "_" })
    }

    /// The command line that runs this request with the agent installed in `agentDirectory`:
    /// what ``BuildRunner`` sends, and what a dry run prints.
    public func commandLine(agentDirectory: String, workDir: String) -> String {
        shellCommand(["bash", "\(agentDirectory)/build.sh"] + arguments(workDir: workDir))
    }

    /// The arguments after `build.sh`, for a host whose work directory is `workDir`.
    public func arguments(workDir: String) -> [String] {
        var args = ["--work-dir", workDir, "--job-id", jobID, "--recipe", buildStep, "--package", package,
                    "--version", version, "--python", python.description, "--builder", builder.rawValue]
        if let versionSuffix { args += ["--version-suffix", versionSuffix] }
        if let maxJobs { args += ["--max-jobs", String(maxJobs)] }
        if let source { args += ["--source", source] }
        for (key, value) in environment.sorted(by: { $0.key < $1.key }) { args += ["--env", "\(key)=\(value)"] }
        for flag in compilerFlags { args += ["--cflag=\(flag)"] }
        for flag in requires.sorted() { args += ["--require", flag.name] }
        for flag in forbids.sorted() { args += ["--forbid", flag.name] }
        if let minimumGCC { args += ["--min-gcc", minimumGCC] }
        if let minimumFreeMB { args += ["--min-free-mb", String(minimumFreeMB)] }
        if let platform { args += ["--platform", platform.description] }
        for library in excludedLibraries { args += ["--exclude-lib", library] }
        if let hostSlots { args += ["--slots", String(hostSlots)] }
        args += settings.arguments
        if dryRun { args.append("--dry-run") }
        return args
    }
}
