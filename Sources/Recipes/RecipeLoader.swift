import FarmCore
import Foundation

/// Loads recipe files (`recipes/*.yaml`, format in `docs/RECIPES.md`) with file/line/key diagnostics.
public enum RecipeLoader {
    static let recipeKeys = [
        "name", "summary", "source", "build_step", "module", "required_files", "version_file", "version_option",
        "default_variant", "default_pythons", "default_versions", "env", "variants", "abi3", "platform", "provided_libraries",
    ] + RecipeLoader.modelKeys
    static let variantKeys = ["package", "short", "estimated_minutes", "env", "min_gcc", "compiler_flags", "arches", "isa", "platform"]
        + RecipeLoader.variantModelKeys
    static let requirementKeys = ["requires", "forbids"]
    static let isaKeys = ["expect", "exclude", "mode", "requested", "objects"]

    /// Loads the recipe at `path`.
    public static func load(path: String) throws(ConfigurationError) -> Recipe {
        let collector = DiagnosticCollector(file: path)
        guard let root = YAMLDocument.load(path: path, into: collector) else {
            throw ConfigurationError(kind: "recipe", diagnostics: collector.diagnostics)
        }
        return try build(root, collector)
    }

    /// Parses recipe text; `file` names it in messages.
    public static func parse(_ text: String, file: String) throws(ConfigurationError) -> Recipe {
        let collector = DiagnosticCollector(file: file)
        guard let root = YAMLDocument.parse(text, into: collector) else {
            throw ConfigurationError(kind: "recipe", diagnostics: collector.diagnostics)
        }
        return try build(root, collector)
    }

    private static func build(_ root: YAMLValue, _ c: DiagnosticCollector) throws(ConfigurationError) -> Recipe {
        var fields: [String: YAMLValue] = [:]
        for (k, v) in c.entries(root, allowed: recipeKeys) { fields[k] = v }
        func required(_ key: String) -> String? {
            guard let v = fields[key] else { c.report(line: root.line, key: key, "missing '\(key)'"); return nil }
            return c.string(v)
        }
        let name = required("name") ?? ""
        let sourceSpec = fields["source"].flatMap { readSource($0, c) }
        if fields["source"] == nil { c.report(line: root.line, key: "source", "missing 'source'") }
        let source = sourceSpec?.location ?? ""
        let buildStep = required("build_step") ?? ""
        let module = required("module") ?? ""
        let defaultVariant = required("default_variant") ?? ""

        var variants: [Variant] = []
        if let v = fields["variants"] {
            if let items = v.items {
                for item in items { if let variant = readVariant(item, c) { variants.append(variant) } }
            } else { c.report(v, "expected a list of variants, found \(v.kindName)") }
        } else { c.report(line: root.line, key: "variants", "missing 'variants'") }
        if fields["variants"] != nil, variants.isEmpty, c.diagnostics.isEmpty {
            c.report(fields["variants"]!, "a recipe needs at least one variant")
        }
        // Unique names.
        var seen: Set<String> = []
        for v in variants {
            for n in [v.package, v.shortName].map(Variant.normalize) where !seen.insert(n).inserted && v.package != v.shortName {
                c.report(fields["variants"]!, "variant name '\(n)' is used twice")
            }
        }
        if !defaultVariant.isEmpty, !variants.isEmpty,
           !variants.contains(where: { Variant.normalize($0.shortName) == Variant.normalize(defaultVariant) || $0.normalizedPackage == Variant.normalize(defaultVariant) }) {
            c.report(fields["default_variant"]!, "default variant '\(defaultVariant)' is not one of the variants (\(variants.map(\.shortName).joined(separator: ", ")))")
        }

        var pythons = [PythonVersion(major: 3, minor: 13)]
        if let v = fields["default_pythons"] {
            pythons = c.stringList(v).compactMap { text, node in
                PythonVersion(text) ?? { c.report(node, "'\(text)' is not a Python version such as 3.12"); return nil }()
            }
        }
        var versions: [PEP440Version] = []
        if let v = fields["default_versions"] {
            versions = c.stringList(v).compactMap { text, node in
                PEP440Version(text) ?? { c.report(node, "'\(text)' is not \(PEP440Version.formHint)"); return nil }()
            }
        }
        let requiredFiles = fields["required_files"].map { c.stringList($0).map(\.0) } ?? []
        var recipe = Recipe(
            name: name, summary: fields["summary"].flatMap(c.string) ?? "", source: source, buildStep: buildStep,
            module: module, requiredFiles: requiredFiles, versionFile: fields["version_file"].flatMap(c.string),
            env: fields["env"].map(c.stringMap) ?? [:], variants: variants, defaultVariant: defaultVariant,
            defaultPythons: pythons, versionOption: fields["version_option"].flatMap(c.string))
        recipe.defaultVersions = versions
        if let a = fields["abi3"] {
            if let text = a.scalar, text.hasPrefix("cp") {
                if PythonVersion(text) == nil { c.report(a, "expected true, false or a Python tag such as cp38, found '\(text)'") }
                recipe.abi3 = true; recipe.abi3Tag = text
            } else { recipe.abi3 = c.bool(a) ?? false }
        }
        if let sourceSpec { recipe.sourceSpec = sourceSpec }
        readModel(fields, into: &recipe, file: c.file, c)
        recipe.platform = fields["platform"].flatMap { platform($0, c) }
        for i in recipe.variants.indices where recipe.variants[i].platform == nil { recipe.variants[i].platform = recipe.platform }
        if let v = fields["provided_libraries"] { recipe.providedLibraries = providedLibraries(v, c) }
        if !c.diagnostics.isEmpty { throw ConfigurationError(kind: "recipe", diagnostics: c.diagnostics) }
        return recipe
    }

    /// `platform: manylinux_2_28` (or a legacy alias, `musllinux_1_2`, `linux`).
    private static func platform(_ value: YAMLValue, _ c: DiagnosticCollector) -> PlatformRequirement? {
        guard let text = c.string(value) else { return nil }
        guard let requirement = PlatformRequirement(text) else {
            c.report(value, "'\(text)' is not a platform requirement: expected \(PlatformRequirement.formHint)")
            return nil
        }
        return requirement
    }

    /// `provided_libraries: {torch: [libtorch.so, libc10.so]}`: provider distribution → library names or patterns.
    private static func providedLibraries(_ value: YAMLValue, _ c: DiagnosticCollector) -> [ProvidedLibrary] {
        guard let entries = value.entries else {
            c.report(value, "expected a mapping from the distribution that installs the libraries to their names (torch: [libtorch.so]), found \(value.kindName)")
            return []
        }
        var out: [ProvidedLibrary] = []
        for e in entries {
            let provider = e.key
            if provider.isEmpty || !provider.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }) {
                c.report(line: e.keyLine, column: e.keyColumn, key: e.value.path, "'\(provider)' is not a distribution name")
                continue
            }
            for (name, node) in c.stringList(e.value) {
                if name.isEmpty || name.contains("/") {
                    c.report(node, "'\(name)' is not a library file name (such as libtorch.so)")
                } else {
                    out.append(ProvidedLibrary(pattern: name, provider: provider))
                }
            }
        }
        return out
    }

    static func readISA(_ value: YAMLValue, _ c: DiagnosticCollector) -> [Arch: Variant.ISAExpectation] {
        var isa: [Arch: Variant.ISAExpectation] = [:]
        perArch(value, c) { arch, v in
            var exp = Variant.ISAExpectation()
            for (k, vv) in c.entries(v, allowed: isaKeys) {
                switch k {
                case "expect": exp.expect = capabilities(vv, arch: arch, c)
                case "exclude": exp.exclude = capabilities(vv, arch: arch, c)
                case "requested": exp.requested = capabilities(vv, arch: arch, c)
                case "objects": exp.objects = readObjects(vv, arch: arch, c)
                default:
                    if let t = c.string(vv) {
                        if let m = Variant.AuditMode(rawValue: t) { exp.mode = m } else {
                            c.report(vv, "expected one of required, warn, off; found '\(t)'")
                        }
                    }
                }
            }
            let both = exp.expect.intersection(exp.exclude)
            if !both.isEmpty { c.report(v, "extensions both expected and excluded: \(both.sorted().map(\.name).joined(separator: ", "))") }
            isa[arch] = exp
        }
        return isa
    }

    static func readObjects(_ value: YAMLValue, arch: Arch, _ c: DiagnosticCollector) -> [Variant.ObjectExpectation] {
        guard let entries = value.entries else {
            c.report(value, "expected a mapping from a glob over the wheel's paths (\"vllm/_C_AVX2*.so\") to {expect, exclude, requested}, found \(value.kindName)")
            return []
        }
        var out: [Variant.ObjectExpectation] = []
        for e in entries {
            var o = Variant.ObjectExpectation(glob: e.key)
            for (k, vv) in c.entries(e.value, allowed: ["expect", "exclude", "requested", "required"]) {
                switch k {
                case "expect": o.expect = capabilities(vv, arch: arch, c)
                case "exclude": o.exclude = capabilities(vv, arch: arch, c)
                case "requested": o.requested = capabilities(vv, arch: arch, c)
                default: o.required = c.bool(vv) ?? true
                }
            }
            out.append(o)
        }
        return out
    }

    static func capabilities(_ value: YAMLValue, arch: Arch, _ c: DiagnosticCollector) -> Set<Capability> {
        var out = Set<Capability>()
        for (raw, node) in c.stringList(value) {
            if let caps = Capability.normalise(raw, arch: arch) { out.formUnion(caps) } else {
                c.report(node, "unknown capability '\(raw)'\(DidYouMean.hint(for: raw, among: Capability.acceptedNames))")
            }
        }
        return out
    }

    static func perArch(_ value: YAMLValue, _ c: DiagnosticCollector, _ body: (Arch, YAMLValue) -> Void) {
        guard let entries = value.entries else { c.report(value, "expected a mapping from arch (amd64, arm64) to settings, found \(value.kindName)"); return }
        for e in entries {
            guard let arch = Arch(parsing: e.key) else {
                c.report(line: e.keyLine, column: e.keyColumn, key: e.value.path, "'\(e.key)' is not a supported architecture; expected one of \(Arch.acceptedNames.joined(separator: ", "))")
                continue
            }
            body(arch, e.value)
        }
    }

    private static func readVariant(_ value: YAMLValue, _ c: DiagnosticCollector) -> Variant? {
        let before = c.reportCount
        var fields: [String: YAMLValue] = [:]
        for (k, v) in c.entries(value, allowed: variantKeys) { fields[k] = v }
        guard let package = fields["package"].flatMap(c.string) else {
            if fields["package"] == nil { c.report(value, "a variant needs 'package' (the distribution name)") }
            return nil
        }
        let short = fields["short"].flatMap(c.string) ?? package
        var arches: [Arch: Variant.HostRequirements] = [:]
        if let a = fields["arches"] {
            perArch(a, c) { arch, v in
                var req = Variant.HostRequirements()
                for (k, vv) in c.entries(v, allowed: requirementKeys) {
                    if k == "requires" { req.requires = capabilities(vv, arch: arch, c) } else { req.forbids = capabilities(vv, arch: arch, c) }
                }
                let both = req.requires.intersection(req.forbids)
                if !both.isEmpty { c.report(v, "flags both required and forbidden: \(both.sorted().map(\.name).joined(separator: ", "))") }
                arches[arch] = req
            }
        } else { c.report(value, "variant '\(package)' needs 'arches' (e.g. amd64: {requires: [avx2]})") }
        let isa = fields["isa"].map { readISA($0, c) } ?? [:]
        var minGCC: PEP440Version?
        if let g = fields["min_gcc"], let t = c.string(g) {
            minGCC = PEP440Version(t)
            if minGCC == nil { c.report(g, "expected a GCC version such as 12.3, found '\(t)'") }
        }
        var minutes = 30.0
        if let m = fields["estimated_minutes"], let d = c.positiveDouble(m) { minutes = d }
        let requirement = fields["platform"].flatMap { platform($0, c) }
        let env = fields["env"].map(c.stringMap) ?? [:]
        if let e = fields["env"] { checkTemplates(env, at: e, c) }
        var variant = Variant(package: package, shortName: short, arches: arches, env: env,
                              compilerFlags: fields["compiler_flags"].map { c.stringList($0).map(\.0) } ?? [],
                              minimumGCC: minGCC, isa: isa, estimatedMinutes: minutes)
        variant.platform = requirement
        readVariantModel(fields, into: &variant, c)
        guard c.reportCount == before else { return nil }
        return variant
    }
}

/// Finds recipes by name (`vllm-cpu`, `sample`) in the shipped `recipes/` folder, or by path.
public enum RecipeCatalog {
    /// Loads a recipe given a file path or the name of a shipped recipe.
    public static func load(_ nameOrPath: String) throws -> Recipe {
        if nameOrPath.hasSuffix(".yaml") || nameOrPath.hasSuffix(".yml") || nameOrPath.contains("/") {
            guard FileManager.default.fileExists(atPath: nameOrPath) else {
                throw FarmError(code: "recipe.not-found", message: "recipe file '\(nameOrPath)' does not exist")
            }
            return try RecipeLoader.load(path: nameOrPath)
        }
        guard let dir = ResourceLocator.directory("recipes") else {
            throw FarmError(code: "recipe.no-folder", message: "cannot find the 'recipes' folder; run from the wheelfarm checkout or set WHEELFARM_HOME")
        }
        var file = dir.appendingPathComponent("\(nameOrPath).yaml")
        if !FileManager.default.fileExists(atPath: file.path) { file = dir.appendingPathComponent("\(nameOrPath)/recipe.yaml") }
        guard FileManager.default.fileExists(atPath: file.path) else {
            let names = available(in: dir)
            throw FarmError(code: "recipe.unknown", message: "unknown recipe '\(nameOrPath)'\(DidYouMean.hint(for: nameOrPath, among: names)); available: \(names.joined(separator: ", ")), or give a path to a recipe file")
        }
        return try RecipeLoader.load(path: relativeIfPossible(file.path))
    }

    /// Names of the recipes in a folder.
    public static func available(in dir: URL) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        let files = names.filter { $0.hasSuffix(".yaml") }.map { String($0.dropLast(5)) }
        let folders = names.filter { FileManager.default.fileExists(atPath: dir.appendingPathComponent("\($0)/recipe.yaml").path) }
        return Array(Set(files + folders)).sorted()
    }

    private static func relativeIfPossible(_ path: String) -> String {
        let cwd = FileManager.default.currentDirectoryPath + "/"
        return path.hasPrefix(cwd) ? String(path.dropFirst(cwd.count)) : path
    }
}
