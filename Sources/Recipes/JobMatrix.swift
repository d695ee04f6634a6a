import FarmCore

/// What a release asks for, in the words of the old pipeline's options.
public struct JobSelection: Sendable, Hashable {
    /// `--variant`: short names, package names or `all`; comma lists allowed; empty = recipe default.
    public var variant: String?
    /// `--vllm-versions` / `--versions`: one version or a comma list; nil = recipe default.
    public var versions: String?
    /// `--python-versions`: `3.12`, `3.10,3.11`, `3.10-3.13`; nil = recipe default.
    public var pythons: String?
    /// `--platform`: `auto`, `linux/amd64`, `linux/arm64`.
    public var platform: String
    /// `--version-suffix`: `.postN` or `.devN`.
    public var versionSuffix: String?

    public init(variant: String? = nil, versions: String? = nil, pythons: String? = nil,
                platform: String = "auto", versionSuffix: String? = nil) {
        self.variant = variant; self.versions = versions; self.pythons = pythons
        self.platform = platform; self.versionSuffix = versionSuffix
    }
}

/// Expands a selection into build jobs: variant × arch × Python version × upstream version.
public enum JobMatrix {
    /// The accepted forms of `--platform`.
    public static let platformHint = "'auto' (every arch a variant is built for), 'linux/amd64' or 'linux/arm64'"

    /// Every job the selection asks for, ordered by version, variant (recipe order), arch, Python.
    /// Variants not built for a version, and Pythons its `requires-python` rules out, give no job:
    /// ``plan(recipe:selection:)`` says why.
    public static func expand(recipe: Recipe, selection: JobSelection) throws(SelectionError) -> [BuildJob] {
        try plan(recipe: recipe, selection: selection).jobs
    }

    /// The jobs of the selection and what it asks for that will not be built, with the reason.
    public static func plan(recipe: Recipe, selection: JobSelection) throws(SelectionError) -> MatrixPlan {
        let selectedVariants = try variants(selection.variant, in: recipe)
        let explicitVariants = !(selection.variant ?? "").split(separator: ",").contains { $0.trimmingWhitespace().lowercased() == "all" }
            && !(selection.variant ?? "").trimmingWhitespace().isEmpty
        let versions = try versions(selection.versions, recipe: recipe)
        let selectedPythons = try selectedPythons(selection.pythons, recipe: recipe)
        let arches = try platform(selection.platform)
        var suffix: String?
        if let raw = selection.versionSuffix, !raw.isEmpty {
            guard let s = VersionSuffix(raw) else {
                throw SelectionError(option: "--version-suffix", value: raw, expected: VersionSuffix.formHint)
            }
            for v in versions where s.applied(to: v) == nil {
                throw SelectionError(option: "--version-suffix", value: raw, expected: "a suffix that \(v) does not already carry (\(v) has a \(s.kind.rawValue) segment)")
            }
            suffix = s.description
        }
        var out = MatrixPlan()
        for version in versions {
            if let reason = recipe.unsupportedReason(for: version) {
                for variant in selectedVariants { out.notBuilt.append(.init(package: variant.package, version: version, reason: reason, refused: true)) }
                continue
            }
            let resolved = recipe.resolved(for: version)
            for note in resolved.notes.map({ "\(version): \($0)" }) where !out.notes.contains(note) { out.notes.append(note) }
            var pythons = selectedPythons
            if let requires = resolved.requiresPython {
                let admitted = pythons.filter { requires.admits(python: $0) }
                for python in pythons where !admitted.contains(python) && !(recipe.abi3 && !admitted.isEmpty) {
                    for variant in selectedVariants where variant.isBuilt(for: version) {
                        out.notBuilt.append(.init(package: variant.package, version: version, python: python,
                                                  reason: "\(recipe.project) \(version) requires Python \(requires); Python \(python) is not admissible\(recipe.abi3 ? " (none of the selected Pythons \(pythons.map(\.description).joined(separator: ", ")) is, and an abi3 wheel is built with one of them)" : "")",
                                                  refused: true))
                    }
                }
                pythons = admitted
            }
            if recipe.abi3, let lowest = pythons.min() { pythons = [lowest] }
            for variant in selectedVariants {
                if let reason = variant.notBuiltReason(for: version) {
                    out.notBuilt.append(.init(package: variant.package, version: version, reason: reason, refused: explicitVariants))
                    continue
                }
                var v = resolved.variants.first { $0.package == variant.package } ?? variant.resolved(for: version)
                v.prerequisites = resolved.prerequisites + v.prerequisites
                for note in v.notes.map({ "\(version) \(v.package): \($0)" }) where !out.notes.contains(note) { out.notes.append(note) }
                v.notes = resolved.notes + v.notes
                for arch in v.arches.keys.sorted() where arches?.contains(arch) ?? true {
                    var forArch = v
                    forArch.prerequisites = v.prerequisites.filter { $0.arch == nil || $0.arch == arch }
                    for python in pythons {
                        out.jobs.append(BuildJob(recipe: recipe.name, variant: forArch, arch: arch, python: python, version: version, suffix: suffix))
                    }
                }
            }
        }
        return out
    }

    /// The Python versions to build for: the selection (or the recipe's default); for an
    /// ``Recipe/abi3`` recipe only the lowest of them, whose wheel serves the others too.
    public static func pythons(_ text: String?, recipe: Recipe) throws(SelectionError) -> [PythonVersion] {
        let selected = try selectedPythons(text, recipe: recipe)
        guard recipe.abi3, let lowest = selected.min() else { return selected }
        return [lowest]
    }

    /// For an ``Recipe/abi3`` recipe asked for several Pythons, a line saying that one build
    /// serves them all (nil otherwise).
    public static func abi3Note(recipe: Recipe, selection: JobSelection) -> String? {
        guard recipe.abi3, let selected = try? selectedPythons(selection.pythons, recipe: recipe),
              let lowest = selected.min(), Set(selected).count > 1 else { return nil }
        let others = Set(selected).subtracting([lowest]).sorted().map(\.description).joined(separator: ", ")
        return "\(recipe.name) wheels use the stable ABI (abi3): each is built once, with Python \(lowest), and serves Python \(others) too"
    }

    /// `--python-versions` (sorted, without duplicates), or the recipe's default.
    static func selectedPythons(_ text: String?, recipe: Recipe) throws(SelectionError) -> [PythonVersion] {
        try text.map { text throws(SelectionError) in try PythonVersion.parseSelection(text) } ?? recipe.defaultPythons
    }

    /// Resolves `--variant` (short names, package names, `all`, comma lists).
    public static func variants(_ text: String?, in recipe: Recipe) throws(SelectionError) -> [Variant] {
        let raw = (text?.trimmingWhitespace()).flatMap { $0.isEmpty ? nil : $0 } ?? recipe.defaultVariant
        let names = raw.split(separator: ",").map { $0.trimmingWhitespace() }
        if names.contains(where: { $0.lowercased() == "all" }) { return recipe.variants }
        var out: [Variant] = []
        for name in names {
            guard let v = recipe.variant(named: name) else {
                let allowed = recipe.variants.map { "\($0.shortName) (\($0.package))" }.joined(separator: ", ")
                let hint = DidYouMean.hint(for: name, among: recipe.variants.flatMap { [$0.shortName, $0.package] } + ["all"])
                throw SelectionError(option: "--variant", value: name, expected: "one of \(allowed), or 'all'; a comma list is accepted\(hint)")
            }
            if !out.contains(v) { out.append(v) }
        }
        return out
    }

    /// Parses `--vllm-versions`: one version or a comma list, each PEP 440.
    public static func versions(_ text: String?, recipe: Recipe) throws(SelectionError) -> [PEP440Version] {
        let option = recipe.versionOption.map { "--\($0)" } ?? "--versions"
        guard let text, !text.trimmingWhitespace().isEmpty else {
            if !recipe.defaultVersions.isEmpty { return recipe.defaultVersions }
            throw SelectionError(option: option, value: "", expected: "at least one upstream version, e.g. \(option)=0.11.0 or \(option)=0.10.0,0.11.0")
        }
        var out: [PEP440Version] = []
        for item in text.split(separator: ",", omittingEmptySubsequences: false).map({ $0.trimmingWhitespace() }) {
            guard let v = PEP440Version(item) else {
                throw SelectionError(option: option, value: item, expected: "\(PEP440Version.formHint); several as a comma list (0.10.0,0.11.0)")
            }
            if v.local != nil {
                throw SelectionError(option: option, value: item, expected: "a version without a local part ('+…'): package indexes refuse local versions")
            }
            if !out.contains(v) { out.append(v) }
        }
        return out
    }

    /// Parses `--platform`; nil means every arch (`auto`).
    public static func platform(_ text: String) throws(SelectionError) -> Set<Arch>? {
        let t = text.trimmingWhitespace().lowercased()
        if t.isEmpty || t == "auto" { return nil }
        var out = Set<Arch>()
        for item in t.split(separator: ",") {
            let name = item.hasPrefix("linux/") ? String(item.dropFirst(6)) : String(item)
            guard let arch = Arch(parsing: name) else {
                throw SelectionError(option: "--platform", value: String(item), expected: platformHint)
            }
            out.insert(arch)
        }
        return out
    }
}

/// What a selection expands to: the jobs, and what was asked for that will not be built.
public struct MatrixPlan: Sendable {
    /// A package (and possibly Python) of a version that gets no job, and why.
    public struct NotBuilt: Sendable, Hashable {
        public var package: String
        public var version: PEP440Version
        public var python: PythonVersion?
        public var reason: String
        /// True when the selection asked for it explicitly (a `plan` refusal, exit 1); false
        /// for variants `--variant all` names that simply have no build for the version.
        public var refused: Bool
        public init(package: String, version: PEP440Version, python: PythonVersion? = nil, reason: String, refused: Bool) {
            self.package = package; self.version = version; self.python = python; self.reason = reason; self.refused = refused
        }
    }
    public var jobs: [BuildJob] = []
    public var notBuilt: [NotBuilt] = []
    /// Notes of the versioned settings in force (`0.16.0: …`).
    public var notes: [String] = []
    public init() {}
}
