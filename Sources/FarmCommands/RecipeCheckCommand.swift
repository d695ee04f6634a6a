import Agents
import ArgumentParser
import FarmCore
import Foundation
import Inventory
import Logging
import Recipes
import Remote

/// `wheelfarm recipe`: commands about recipes themselves.
struct RecipeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recipe", abstract: "Check a recipe against a real upstream source.",
        subcommands: [RecipeCheckCommand.self])
}

/// `wheelfarm recipe check`: runs the recipe's build step up to the wheel's metadata.
struct RecipeCheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Run a recipe's build step up to the wheel's metadata against a source, and report every problem.",
        discussion: """
        For each selected variant of each version, the recipe's own build step runs on this machine \
        with the variant's environment: the source (an sdist, a folder or a git URL), its patches, the \
        build venv from the version's build requirements, then PEP 517 prepare_metadata_for_build_wheel \
        (no compile). The report gives the requirements found, the Python used, the environment, and \
        the wheel the build would produce (name, version, tags), or why the variant has no build for \
        the version; then every problem: a version with a local part (`+cpu`), a name that is not the \
        package's, a requires-python that differs from the recipe's or rules out the Python, a patch \
        that does not apply, a requirements file that is missing.

        Exit codes: 0 no problem, 1 problems found, 2 usage or recipe error.
        """)

    @Option(name: .long, help: ArgumentHelp("The recipe: a shipped recipe name or a path to a recipe file.", valueName: "name|file"))
    var recipe: String = "vllm-cpu"

    @Option(name: .long, help: ArgumentHelp("The source: an sdist (.tar.gz), a folder, or a git URL.", valueName: "sdist|dir|git"))
    var source: String

    @Option(name: [.customLong("versions"), .customLong("vllm-versions")], help: ArgumentHelp(
        "Upstream version(s) (default: the sdist's or folder's own version).", valueName: "versions"))
    var versions: String?

    @Option(name: .long, help: ArgumentHelp("Variant(s): short names, package names, a comma list or 'all' (default: all).", valueName: "name"))
    var variant: String = "all"

    @Option(name: .customLong("python-versions"), help: ArgumentHelp("Python version(s) to choose from (default: the recipe's).", valueName: "versions"))
    var pythons: String?

    @Option(name: .customLong("work-dir"), help: ArgumentHelp(
        "Where the step runs and keeps its caches (build venvs are reused between checks).",
        discussion: "Default: $TMPDIR/wheelfarm-recipe-check.", valueName: "dir"))
    var workDir: String?

    @Option(name: .customLong("skip-requirement"), help: ArgumentHelp(
        "A build requirement not to install (provide it with --python-path); repeatable.", valueName: "name"))
    var skipRequirements: [String] = []

    @Option(name: .customLong("python-path"), help: ArgumentHelp(
        "A folder put first on PYTHONPATH for the metadata step (e.g. stand-in modules).", valueName: "dir"))
    var pythonPath: String?

    @Flag(name: .long, help: "Print the report as JSON.")
    var json = false

    /// One variant's result.
    struct Result: Encodable {
        var package: String
        var version: String
        var built: Bool
        var reason: String?
        var python: String?
        var wheel: String?
        var wheelVersion: String?
        var tags: String?
        var requiresPython: String?
        var requirements: [String] = []
        var environment: [String: String] = [:]
        var patches: [String] = []
        var prerequisites: [String] = []
        var notes: [String] = []
        var problems: [String] = []
        var log: String?
    }

    func run() async throws {
        var recipeValue: Recipe
        do { recipeValue = try RecipeCatalog.load(recipe) } catch { printError("\(error)"); throw ExitCode(2) }
        let sourceURL = URL(fileURLWithPath: source)
        var isDir: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: source, isDirectory: &isDir)
        let kind: String
        var sourcePath = source
        if source.contains("://") || source.hasPrefix("git@") { kind = "git" }
        else if exists, isDir.boolValue { kind = FileManager.default.fileExists(atPath: "\(source)/.git") ? "git" : "dir"; sourcePath = sourceURL.standardizedFileURL.path }
        else if exists, source.hasSuffix(".tar.gz") || source.hasSuffix(".tgz") { kind = "sdist"; sourcePath = sourceURL.standardizedFileURL.path }
        else { printError("wheelfarm: source '\(source)' is not an sdist (.tar.gz), a folder or a git URL"); throw ExitCode(2) }
        let versionText = versions ?? Self.ownVersion(of: sourcePath, kind: kind)
        guard let versionText else {
            printError("wheelfarm: cannot tell the version of '\(source)': give --versions")
            throw ExitCode(2)
        }
        recipeValue.override(source: sourcePath)
        let plan: MatrixPlan
        do {
            plan = try JobMatrix.plan(recipe: recipeValue, selection: JobSelection(variant: variant, versions: versionText, pythons: pythons))
        } catch { printError("wheelfarm: \(error.description)"); throw ExitCode(2) }
        guard let agentsDir = AgentBundle.locate() else { printError("wheelfarm: cannot find the 'agents' folder"); throw ExitCode(2) }
        let bundle = try AgentBundle.load(from: agentsDir).including(recipe: recipeValue)
        let work = workDir ?? (NSTemporaryDirectory() + "wheelfarm-recipe-check")
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let localArch = Arch(parsing: Self.machine()) ?? .amd64
        let host = Host(name: "localhost", connection: .local, arch: localArch, workDir: work)
        // The local transport runs the step with this process's environment.
        if let pythonPath {
            let env = ProcessInfo.processInfo.environment
            setenv("PYTHONPATH", ([URL(fileURLWithPath: pythonPath).standardizedFileURL.path] + [env["PYTHONPATH"]].compactMap { $0 }).joined(separator: ":"), 1)
        }
        var logger = Logger(label: "wheelfarm.recipe-check")
        logger.logLevel = .warning
        let transport = Transports.make(for: host, ssh: SSHSettings(), logger: logger)
        let runner = BuildRunner(bundle: bundle, logger: logger)

        var results: [Result] = []
        for skipped in plan.notBuilt {
            results.append(Result(package: skipped.package, version: skipped.version.description, built: false, reason: skipped.reason,
                                  python: skipped.python?.description))
        }
        // One metadata run per variant and version (the arch matters only for the tags).
        var seen = Set<String>()
        for job in plan.jobs where seen.insert("\(job.variant.package) \(job.version)").inserted {
            let arch = job.variant.arches[localArch] != nil ? localArch : job.arch
            var j = job
            j.arch = arch
            var request = BuildRequest(job: j, recipe: recipeValue, host: host, source: sourcePath)
            request.jobID = "check-" + request.jobID
            request.settings.prerequisites = []   // no compile: the build host's prerequisites do not apply
            request.settings.sourceKind = kind
            request.settings.metadataOnly = true
            request.settings.skipRequirements = skipRequirements
            request.minimumFreeMB = 64
            request.requires = []; request.forbids = []; request.minimumGCC = nil
            var result = Result(package: job.variant.package, version: job.version.description, built: true, python: job.python.description)
            let resolved = recipeValue.resolved(for: job.version)
            result.prerequisites = job.variant.prerequisites.map { "\($0.description)\($0.debianPackage.map { " (\($0))" } ?? "")" }
            result.notes = job.variant.notes
            result.tags = Self.tags(recipe: recipeValue, python: job.python, arch: arch)
            do {
                let outcome = try await runner.run(request, on: transport, dist: URL(fileURLWithPath: work).appendingPathComponent("dist"))
                result.log = outcome.remoteLog
                if outcome.status != .succeeded {
                    result.problems.append("the build step stopped in phase '\(outcome.phase ?? "?")': \(outcome.message ?? outcome.status.rawValue)\(outcome.remoteLog.map { " (log \($0))" } ?? "")")
                } else {
                    let file = "\(work)/jobs/\(request.jobID)/metadata.json"
                    try Self.read(metadataFile: file, into: &result, job: job, recipe: resolved)
                }
            } catch {
                result.problems.append("the build step could not run: \(error)")
            }
            results.append(result)
        }
        await transport.close()
        results.sort { ($0.version, $0.package) < ($1.version, $1.package) }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(results), as: UTF8.self))
        } else {
            print(Self.render(recipe: recipeValue, source: source, results: results, notes: plan.notes))
        }
        let refused = plan.notBuilt.contains { $0.refused }
        if results.contains(where: { !$0.problems.isEmpty }) || refused { throw ExitCode(1) }
    }

    /// The tags the recipe's wheel carries: `cp38-abi3` (or `cpXY-abi3`) for a stable-ABI recipe,
    /// `cpXY-cpXY` otherwise; the manylinux platform tag of the arch.
    static func tags(recipe: Recipe, python: PythonVersion, arch: Arch) -> String {
        let platform = "manylinux_2_28_\(arch.kernelName)"
        if recipe.abi3 { return "\(recipe.abi3Tag ?? python.cpythonTag)-abi3-\(platform)" }
        return "\(python.cpythonTag)-\(python.cpythonTag)-\(platform)"
    }

    static func read(metadataFile: String, into result: inout Result, job: BuildJob, recipe: Recipe) throws {
        guard let data = FileManager.default.contents(atPath: metadataFile),
              let object = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let meta = object["metadata"] as? [String: Any] else {
            result.problems.append("the build step wrote no metadata ('\(metadataFile)')")
            return
        }
        let name = meta["name"] as? String ?? ""
        let version = meta["version"] as? String ?? ""
        result.requirements = meta["requires_dist"] as? [String] ?? []
        result.requiresPython = meta["requires_python"] as? String
        result.environment = object["env"] as? [String: String] ?? [:]
        result.patches = object["patches"] as? [String] ?? []
        result.wheelVersion = version
        let wheelName = name.replacingOccurrences(of: "-", with: "_").replacingOccurrences(of: ".", with: "_")
        result.wheel = "\(wheelName)-\(version)-\(result.tags ?? "")"
        if Variant.normalize(name) != job.variant.normalizedPackage {
            result.problems.append("the metadata names the distribution '\(name)', expected '\(job.variant.package)'")
        }
        if let v = PEP440Version(version) {
            if v.local != nil {
                result.problems.append("the metadata says version '\(version)': a local version ('+\(v.local!.joined(separator: "."))'), which package indexes refuse")
            } else if v != job.version {
                result.problems.append("the metadata says version '\(version)', expected '\(job.version)'")
            }
        } else {
            result.problems.append("the metadata's version '\(version)' is not PEP 440")
        }
        if let text = result.requiresPython, let found = VersionSpecifierSet(text) {
            if !found.admits(python: job.python) {
                result.problems.append("requires-python '\(text)' rules out Python \(job.python), which the build would use")
            }
            if let declared = recipe.requiresPython, Set(declared.clauses) != Set(found.clauses) {
                result.problems.append("the recipe says requires-python '\(declared)' for \(job.version), the source says '\(text)'")
            }
        }
    }

    static func render(recipe: Recipe, source: String, results: [Result], notes: [String]) -> String {
        var out = "recipe \(recipe.name) · source \(source)\n"
        for n in notes { out += "note: \(n)\n" }
        for r in results {
            out += "\n\(r.package) \(r.version)"
            guard r.built else { out += r.python.map { " (Python \($0))" } ?? ""; out += ": not built: \(r.reason ?? "")\n"; continue }
            out += "\n  wheel:         \(r.wheel.map { "\($0).whl" } ?? "— (no metadata)")\n"
            out += "  version:       \(r.wheelVersion ?? "?")\n"
            out += "  tags:          \(r.tags ?? "?")\n"
            out += "  python:        \(r.python ?? "?") (requires-python \(r.requiresPython ?? "not stated"))\n"
            out += "  requirements:  \(r.requirements.count) Requires-Dist\(r.requirements.isEmpty ? "" : ": " + r.requirements.prefix(6).joined(separator: ", ") + (r.requirements.count > 6 ? ", …" : ""))\n"
            let env = r.environment.filter { !["PATH", "TMPDIR", "PIP_CACHE_DIR", "UV_CACHE_DIR", "UV_PYTHON_INSTALL_DIR", "VIRTUAL_ENV", "PIP_DISABLE_PIP_VERSION_CHECK", "PYTHONDONTWRITEBYTECODE"].contains($0.key) }
            out += "  env:           \(env.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))\n"
            out += "  patches:       \(r.patches.isEmpty ? "none" : r.patches.joined(separator: ", "))\n"
            if !r.prerequisites.isEmpty { out += "  build host:    \(r.prerequisites.joined(separator: "; "))\n" }
            for n in r.notes { out += "  note:          \(n)\n" }
            if r.problems.isEmpty { out += "  ok\n" } else { for p in r.problems { out += "  PROBLEM: \(p)\n" } }
        }
        let problems = results.reduce(0) { $0 + $1.problems.count }
        out += "\n\(results.filter(\.built).count) variant build(s) checked, \(results.filter { !$0.built }.count) not built, \(problems) problem(s)"
        return out
    }

    /// The version an sdist's or folder's PKG-INFO (or the sdist's file name) states.
    static func ownVersion(of path: String, kind: String) -> String? {
        if kind == "sdist" {
            let base = URL(fileURLWithPath: path).lastPathComponent.replacingOccurrences(of: ".tar.gz", with: "").replacingOccurrences(of: ".tgz", with: "")
            if let dash = base.lastIndex(of: "-") { return String(base[base.index(after: dash)...]) }
            return nil
        }
        guard let text = try? String(contentsOfFile: "\(path)/PKG-INFO", encoding: .utf8) else { return nil }
        return text.split(separator: "\n").first { $0.hasPrefix("Version:") }.map { $0.dropFirst(8).trimmingCharacters(in: .whitespaces) }
    }

    static func machine() -> String {
        var u = utsname()
        uname(&u)
        return withUnsafeBytes(of: &u.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }
}
