import FarmCore

/// Something a build host needs beyond CPU flags, checked by the probe before anything is built.
///
/// Each names the Debian package that provides it, so a host problem says what to install.
public struct Prerequisite: Sendable, Hashable, Codable, CustomStringConvertible {
    /// What kind of thing is needed.
    public enum Kind: String, Sendable, Hashable, Codable, CaseIterable {
        /// A C/C++ header the compiler must find (`numa.h`).
        case header
        /// A command on PATH (`cargo`, `cmake`).
        case tool
        /// The C++ compiler (`$CXX`, else `g++`) at a minimum version.
        case cxx
    }

    public var kind: Kind
    /// The header or tool name; for ``Kind/cxx`` the compiler name shown in messages (`g++`).
    public var name: String
    /// The minimum version (``Kind/cxx`` only).
    public var minimum: PEP440Version?
    /// The Debian package that provides it (`libnuma-dev`).
    public var debianPackage: String?
    /// The arch it applies to (nil: every arch).
    public var arch: Arch?

    public init(kind: Kind, name: String, minimum: PEP440Version? = nil, debianPackage: String? = nil, arch: Arch? = nil) {
        self.kind = kind; self.name = name; self.minimum = minimum; self.debianPackage = debianPackage; self.arch = arch
    }

    public var description: String {
        switch kind {
        case .header: "header \(name)"
        case .tool: "tool \(name)"
        case .cxx: "C++ compiler ≥ \(minimum?.description ?? "any")"
        }
    }

    /// What to install, for messages (`install libnuma-dev`).
    public var remedy: String {
        debianPackage.map { "install the Debian package \($0)" } ?? "install it"
    }
}

/// Where a recipe's source comes from.
public struct RecipeSource: Sendable, Hashable, Codable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable, Codable {
        /// A git URL (`https://…`, `git@…`, `file://…`): mirrored once per host, tag checked out.
        case git
        /// A folder on the coordinator: a git repository travels as a git bundle (its tags
        /// select versions), any other folder as a tarball.
        case path
        /// The project's sdist from a package index (simple API), verified against the index's SHA-256.
        case index
    }
    public var kind: Kind
    /// The URL, path or index URL.
    public var location: String
    /// The git tag of a version (templated: `v{version}`).
    public var tag: String

    /// The tag the agent checks out when the recipe names none.
    public static let defaultTag = "v{version}"

    public init(kind: Kind, location: String, tag: String = RecipeSource.defaultTag) {
        self.kind = kind; self.location = location; self.tag = tag
    }

    /// Reads the short form: a URL is git, `pypi` is PyPI's simple index, anything else a path.
    public init(shorthand text: String) {
        if text == "pypi" { self.init(kind: .index, location: "https://pypi.org/simple") }
        else if text.contains("://") || text.hasPrefix("git@") { self.init(kind: .git, location: text) }
        else { self.init(kind: .path, location: text) }
    }

    public var description: String {
        switch kind {
        case .git: "git \(location) (tag \(tag))"
        case .path: "folder \(location)"
        case .index: "sdist from \(location)"
        }
    }
}

/// A test run on each built wheel before it is published (issue: the wheel's claims are run).
public struct RecipeTest: Sendable, Hashable, Codable {
    /// Requirements installed into the fresh venv next to the wheel.
    public var requires: [String]
    /// The shell command run in the venv (its `bin/` first on PATH); exit 0 passes.
    public var command: String
    /// The arches whose wheels are tested (nil: every arch).
    public var arches: Set<Arch>?
    public init(requires: [String] = [], command: String, arches: Set<Arch>? = nil) {
        self.requires = requires; self.command = command; self.arches = arches
    }
}

/// Settings that apply to a range of upstream versions (`when:` in a recipe or a variant).
public struct VersionedSettings: Sendable, Hashable, Codable {
    public var versions: VersionSpecifierSet
    public var env: [String: String] = [:]
    /// Removed from the environment (a variable the base sets that these versions must not get).
    public var unsetEnv: [String] = []
    public var patches: [String] = []
    public var buildRequirements: [String]?
    public var requiresPython: VersionSpecifierSet?
    public var prerequisites: [Prerequisite] = []
    public var isa: [Arch: Variant.ISAExpectation] = [:]
    public var arches: [Arch: Variant.HostRequirements] = [:]
    public var configSettings: [String: String] = [:]
    public var cmakeArgs: [String] = []
    public var note: String?

    public init(versions: VersionSpecifierSet) { self.versions = versions }

    func apply(to v: inout Variant) {
        v.env.merge(env) { $1 }
        for k in unsetEnv { v.env[k] = nil }
        v.patches += patches
        v.prerequisites += prerequisites
        v.isa.merge(isa) { $1 }
        v.arches.merge(arches) { $1 }
        v.configSettings.merge(configSettings) { $1 }
        v.cmakeArgs += cmakeArgs
        if let note { v.notes.append(note) }
    }

    func apply(to r: inout Recipe) {
        r.env.merge(env) { $1 }
        for k in unsetEnv { r.env[k] = nil }
        r.patches += patches
        if let buildRequirements { r.buildRequirements = buildRequirements }
        if let requiresPython { r.requiresPython = requiresPython }
        r.prerequisites += prerequisites
        r.configSettings.merge(configSettings) { $1 }
        r.cmakeArgs += cmakeArgs
        if let note { r.notes.append(note) }
    }
}

/// `{name}` placeholders in recipe values, expanded by the build step on the host.
public enum RecipeTemplate {
    /// The variables a recipe value may use.
    public static let variables = ["version", "package", "python", "arch", "max_jobs", "project"]

    /// The placeholder names in `text` (`{version}` → `version`); `{{` and `}}` are literal braces.
    public static func placeholders(in text: String) -> [String] {
        var out: [String] = []
        var i = text.startIndex
        while i < text.endIndex {
            let c = text[i]
            let next = text.index(after: i)
            if c == "{", next < text.endIndex, text[next] == "{" { i = text.index(after: next); continue }
            if c == "}", next < text.endIndex, text[next] == "}" { i = text.index(after: next); continue }
            if c == "{", let close = text[next...].firstIndex(of: "}") {
                out.append(String(text[next..<close]))
                i = text.index(after: close)
                continue
            }
            i = next
        }
        return out
    }

    /// The placeholders of `text` that are not template variables.
    public static func unknown(in text: String) -> [String] {
        placeholders(in: text).filter { !variables.contains($0) }
    }

    /// Expands the placeholders of `text` with `values` (unknown ones are kept as written).
    public static func expand(_ text: String, _ values: [String: String]) -> String {
        var out = ""
        var i = text.startIndex
        while i < text.endIndex {
            let c = text[i]
            let next = text.index(after: i)
            if c == "{", next < text.endIndex, text[next] == "{" { out.append("{"); i = text.index(after: next); continue }
            if c == "}", next < text.endIndex, text[next] == "}" { out.append("}"); i = text.index(after: next); continue }
            if c == "{", let close = text[next...].firstIndex(of: "}"), let value = values[String(text[next..<close])] {
                out += value
                i = text.index(after: close)
                continue
            }
            out.append(c)
            i = next
        }
        return out
    }
}
