import FarmCore
import Foundation

/// The parts of the recipe format that real projects need (docs/RECIPES.md): version ranges,
/// versioned settings (`when:`), patches, prerequisites, build requirements, per-object ISA
/// expectations, the generic build step's settings and the wheel test.
extension RecipeLoader {
    static let modelKeys = [
        "project", "versions", "patches", "build_requirements", "requires_python", "prerequisites",
        "config_settings", "cmake_args", "when", "test",
    ]
    static let variantModelKeys = ["versions", "versions_note", "when", "patches", "prerequisites", "config_settings", "cmake_args"]
    static let recipeWhenKeys = [
        "versions", "env", "unset_env", "patches", "build_requirements", "requires_python", "prerequisites",
        "config_settings", "cmake_args", "note",
    ]
    static let variantWhenKeys = [
        "versions", "env", "unset_env", "patches", "prerequisites", "isa", "arches", "config_settings", "cmake_args", "note",
    ]

    static func readSource(_ value: YAMLValue, _ c: DiagnosticCollector) -> RecipeSource? {
        if let text = value.scalar { return RecipeSource(shorthand: text) }
        var spec: RecipeSource?
        var tag: String?
        for (k, v) in c.entries(value, allowed: ["git", "path", "index", "tag"]) {
            guard let text = c.string(v) else { continue }
            switch k {
            case "git": spec = RecipeSource(kind: .git, location: text)
            case "path": spec = RecipeSource(kind: .path, location: text)
            case "index": spec = RecipeSource(kind: .index, location: text == "pypi" ? "https://pypi.org/simple" : text)
            default:
                tag = text
                for bad in RecipeTemplate.unknown(in: text) { c.report(v, "unknown template variable '{\(bad)}'; known: \(RecipeTemplate.variables.map { "{\($0)}" }.joined(separator: ", "))") }
            }
        }
        guard var s = spec else {
            c.report(value, "expected a git URL, a path, 'pypi', or a mapping with one of git, path, index")
            return nil
        }
        if let tag { s.tag = tag }
        return s
    }

    static func specifier(_ value: YAMLValue, _ c: DiagnosticCollector) -> VersionSpecifierSet? {
        guard let text = c.string(value) else { return nil }
        guard let s = VersionSpecifierSet(text) else {
            c.report(value, "'\(text)' is not a version range: expected \(VersionSpecifierSet.formHint)")
            return nil
        }
        return s
    }

    /// Reports `{placeholders}` that are not template variables.
    static func checkTemplates(_ values: [String: String], at node: YAMLValue, _ c: DiagnosticCollector) {
        for (key, value) in values.sorted(by: { $0.key < $1.key }) { checkTemplate(value, key: key, at: node, c) }
    }

    static func checkTemplate(_ value: String, key: String, at node: YAMLValue, _ c: DiagnosticCollector) {
        for bad in RecipeTemplate.unknown(in: value) {
            let hint = DidYouMean.hint(for: bad, among: RecipeTemplate.variables)
            let path = node.path.isEmpty ? key : "\(node.path).\(key)"
            c.report(line: node.line, column: node.column, key: path,
                     "unknown template variable '{\(bad)}'\(hint); known: \(RecipeTemplate.variables.map { "{\($0)}" }.joined(separator: ", ")) (write '{{' for a literal brace)")
        }
    }

    static func readPrerequisites(_ value: YAMLValue, _ c: DiagnosticCollector) -> [Prerequisite] {
        guard let items = value.items else { c.report(value, "expected a list such as [{header: numa.h, debian: libnuma-dev}], found \(value.kindName)"); return [] }
        var out: [Prerequisite] = []
        for item in items {
            var kind: Prerequisite.Kind?
            var name = "", minimum: PEP440Version?, debian: String?, arch: Arch?
            for (k, v) in c.entries(item, allowed: ["header", "tool", "cxx", "debian", "arch"]) {
                guard let text = c.string(v) else { continue }
                switch k {
                case "header": kind = .header; name = text
                case "tool": kind = .tool; name = text
                case "cxx":
                    kind = .cxx; name = "g++"
                    minimum = PEP440Version(text)
                    if minimum == nil { c.report(v, "expected a compiler version such as 12.3, found '\(text)'") }
                case "arch":
                    arch = Arch(parsing: text)
                    if arch == nil { c.report(v, "'\(text)' is not a supported architecture; expected one of \(Arch.acceptedNames.joined(separator: ", "))") }
                default: debian = text
                }
            }
            guard let kind else { c.report(item, "a prerequisite needs one of header, tool or cxx"); continue }
            out.append(Prerequisite(kind: kind, name: name, minimum: minimum, debianPackage: debian, arch: arch))
        }
        return out
    }

    static func readWhen(_ value: YAMLValue, allowed: [String], _ c: DiagnosticCollector) -> [VersionedSettings] {
        guard let items = value.items else { c.report(value, "expected a list of {versions: …, …} blocks, found \(value.kindName)"); return [] }
        var out: [VersionedSettings] = []
        for item in items {
            var fields: [String: YAMLValue] = [:]
            for (k, v) in c.entries(item, allowed: allowed) { fields[k] = v }
            guard let range = fields["versions"] else { c.report(item, "a 'when' block needs 'versions' (e.g. versions: \">=0.12\")"); continue }
            guard let versions = specifier(range, c) else { continue }
            var block = VersionedSettings(versions: versions)
            if let e = fields["env"] { block.env = c.stringMap(e); checkTemplates(block.env, at: e, c) }
            if let u = fields["unset_env"] { block.unsetEnv = c.stringList(u).map(\.0) }
            if let p = fields["patches"] { block.patches = c.stringList(p).map(\.0) }
            if let b = fields["build_requirements"] { block.buildRequirements = c.stringList(b).map(\.0) }
            if let r = fields["requires_python"] { block.requiresPython = specifier(r, c) }
            if let p = fields["prerequisites"] { block.prerequisites = readPrerequisites(p, c) }
            if let i = fields["isa"] { block.isa = readISA(i, c) }
            if let a = fields["arches"] { block.arches = readArches(a, c) }
            if let s = fields["config_settings"] { block.configSettings = c.stringMap(s); checkTemplates(block.configSettings, at: s, c) }
            if let m = fields["cmake_args"] { block.cmakeArgs = c.stringList(m).map(\.0); for a in block.cmakeArgs { checkTemplate(a, key: "cmake_args", at: m, c) } }
            if let n = fields["note"] { block.note = c.string(n) }
            out.append(block)
        }
        return out
    }

    static func readArches(_ value: YAMLValue, _ c: DiagnosticCollector) -> [Arch: Variant.HostRequirements] {
        var arches: [Arch: Variant.HostRequirements] = [:]
        perArch(value, c) { arch, v in
            var req = Variant.HostRequirements()
            for (k, vv) in c.entries(v, allowed: requirementKeys) {
                if k == "requires" { req.requires = capabilities(vv, arch: arch, c) } else { req.forbids = capabilities(vv, arch: arch, c) }
            }
            let both = req.requires.intersection(req.forbids)
            if !both.isEmpty { c.report(v, "flags both required and forbidden: \(both.sorted().map(\.name).joined(separator: ", "))") }
            arches[arch] = req
        }
        return arches
    }

    static func readVariantModel(_ fields: [String: YAMLValue], into v: inout Variant, _ c: DiagnosticCollector) {
        if let r = fields["versions"], let s = specifier(r, c) { v.versions = s }
        if let n = fields["versions_note"] { v.versionsNote = c.string(n) }
        if let w = fields["when"] { v.when = readWhen(w, allowed: variantWhenKeys, c) }
        if let p = fields["patches"] { v.patches = c.stringList(p).map(\.0) }
        if let p = fields["prerequisites"] { v.prerequisites = readPrerequisites(p, c) }
        if let s = fields["config_settings"] { v.configSettings = c.stringMap(s); checkTemplates(v.configSettings, at: s, c) }
        if let m = fields["cmake_args"] { v.cmakeArgs = c.stringList(m).map(\.0); for a in v.cmakeArgs { checkTemplate(a, key: "cmake_args", at: m, c) } }
    }

    /// Reads the model keys and resolves the recipe's directory, build step and patch files
    /// against `file` (the recipe's path), reporting what does not exist.
    static func readModel(_ fields: [String: YAMLValue], into r: inout Recipe, file: String, _ c: DiagnosticCollector) {
        if let p = fields["project"], let t = c.string(p) { r.project = t }
        if let v = fields["versions"], let s = specifier(v, c) { r.versions = s }
        if let p = fields["patches"] { r.patches = c.stringList(p).map(\.0) }
        if let b = fields["build_requirements"] { r.buildRequirements = c.stringList(b).map(\.0) }
        if let p = fields["requires_python"] { r.requiresPython = specifier(p, c) }
        if let p = fields["prerequisites"] { r.prerequisites = readPrerequisites(p, c) }
        if let s = fields["config_settings"] { r.configSettings = c.stringMap(s); checkTemplates(r.configSettings, at: s, c) }
        if let m = fields["cmake_args"] { r.cmakeArgs = c.stringList(m).map(\.0); for a in r.cmakeArgs { checkTemplate(a, key: "cmake_args", at: m, c) } }
        if let w = fields["when"] { r.when = readWhen(w, allowed: recipeWhenKeys, c) }
        if let t = fields["test"] {
            var requires: [String] = [], command: String?, arches: Set<Arch>?
            for (k, v) in c.entries(t, allowed: ["requires", "command", "arches"]) {
                switch k {
                case "requires": requires = c.stringList(v).map(\.0)
                case "arches":
                    arches = Set(c.stringList(v).compactMap { text, node in
                        Arch(parsing: text) ?? { c.report(node, "'\(text)' is not a supported architecture; expected one of \(Arch.acceptedNames.joined(separator: ", "))"); return nil }()
                    })
                default: command = c.string(v)
                }
            }
            if let command {
                r.test = RecipeTest(requires: requires, command: command, arches: arches)
                checkTemplate(command, key: "command", at: t, c)
            } else { c.report(t, "a test needs 'command' (run in a fresh venv holding the wheel)") }
        }
        if let e = fields["env"] { checkTemplates(r.env, at: e, c) }

        // The recipe's directory, its build step and its patches.
        let url = URL(fileURLWithPath: file)
        let parent = url.deletingLastPathComponent()
        var isDir: ObjCBool = false
        if url.lastPathComponent == "recipe.yaml" || url.lastPathComponent == "recipe.yml" {
            r.directory = parent.path
        } else {
            let sibling = parent.appendingPathComponent(url.deletingPathExtension().lastPathComponent)
            if FileManager.default.fileExists(atPath: sibling.path, isDirectory: &isDir), isDir.boolValue { r.directory = sibling.path }
        }
        let stepNode = fields["build_step"]
        if r.buildStep == Recipe.genericBuildStep {
            r.buildStepFile = nil
        } else if !r.buildStep.isEmpty, let stepNode {
            if let dir = r.directory, FileManager.default.fileExists(atPath: "\(dir)/\(r.buildStep).sh") {
                r.buildStepFile = "\(Recipe.bundleFolder)/\(r.name)/\(r.buildStep).sh"
            } else if let agents = agentsDirectory(), FileManager.default.fileExists(atPath: agents.appendingPathComponent("recipes/\(r.buildStep).sh").path) {
                r.buildStepFile = "recipes/\(r.buildStep).sh"
            } else if agentsDirectory() != nil {
                let next = r.directory.map { "\($0)/\(r.buildStep).sh" } ?? "\(parent.path)/\(url.deletingPathExtension().lastPathComponent)/\(r.buildStep).sh"
                c.report(stepNode, "build step '\(r.buildStep)' does not exist: no '\(next)' next to the recipe and no agents/recipes/\(r.buildStep).sh; use build_step: \(Recipe.genericBuildStep) for a PEP 517 project, or write the step next to the recipe")
            }
        }
        var patchNodes: [(String, YAMLValue)] = fields["patches"].map { c.stringList($0) } ?? []
        for w in (fields["when"]?.items ?? []) { if let p = w.entries?.first(where: { $0.key == "patches" })?.value { patchNodes += c.stringList(p) } }
        for item in fields["variants"]?.items ?? [] {
            for e in item.entries ?? [] where e.key == "patches" { patchNodes += c.stringList(e.value) }
            for e in item.entries ?? [] where e.key == "when" {
                for w in e.value.items ?? [] { if let p = w.entries?.first(where: { $0.key == "patches" })?.value { patchNodes += c.stringList(p) } }
            }
        }
        for (patch, node) in patchNodes {
            guard let dir = r.directory else {
                c.report(node, "patch '\(patch)' needs a recipe directory: put it in '\(parent.path)/\(url.deletingPathExtension().lastPathComponent)/'")
                continue
            }
            if patch.hasPrefix("/") || patch.split(separator: "/").contains("..") {
                c.report(node, "patch '\(patch)' must be a path inside the recipe directory '\(dir)'")
            } else if !FileManager.default.fileExists(atPath: "\(dir)/\(patch)") {
                c.report(node, "patch '\(patch)' does not exist in the recipe directory '\(dir)'")
            }
        }
    }

    /// The `agents/` folder, found as the coordinator finds it (nil when it cannot be found).
    static func agentsDirectory() -> URL? {
        let env = ProcessInfo.processInfo.environment
        var candidates: [URL] = []
        if let dir = env["WHEELFARM_AGENTS_DIR"], !dir.isEmpty { candidates.append(URL(fileURLWithPath: dir)) }
        candidates += ResourceLocator.candidates("agents")
        var source = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { source.deleteLastPathComponent() }
        candidates.append(source.appendingPathComponent("agents"))
        return candidates.first { FileManager.default.fileExists(atPath: $0.appendingPathComponent("build.sh").path) }
    }
}

extension Recipe {
    /// The folder of the agent bundle that holds recipe directories (`recipe/<name>/…`).
    public static let bundleFolder = "recipe"
}
