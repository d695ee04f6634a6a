import FarmCore
import Recipes

/// How one library an ELF object needs is found at run time.
public enum LibraryResolution: Sendable, Hashable, Codable {
    /// In the system allowlist of the wheel's platform policy (`libc.so.6`).
    case system
    /// Carried by the wheel and found through the object's `$ORIGIN` search path (auditwheel's
    /// `<pkg>.libs/`): the member's installed path.
    case vendored(String)
    /// Installed by a runtime dependency the recipe declares (`torch`).
    case provided(String)
    /// None of these: the import fails on a system without it.
    case missing
}

/// One library some ELF object of the wheel needs, and how it is found.
public struct LibraryReport: Sendable, Hashable, Codable {
    /// The `DT_NEEDED` name (`libgomp.so.1`).
    public var name: String
    /// The objects (member names) that need it.
    public var neededBy: [String]
    /// `system`, `vendored`, `provided` or `missing` (against the most compatible policy that
    /// allows it, for `system`).
    public var resolution: String
    /// The vendored member or the providing distribution, when that is the resolution.
    public var detail: String?
}

/// What the platform audit found for a whole wheel (the `platform` object of `--json`).
public struct PlatformReport: Sendable, Hashable, Codable {
    /// The wheel's Linux platform tags that were audited.
    public var tags: [String]
    /// `glibc` or `musl`, from the C library the objects link against.
    public var libc: String?
    /// Namespace → highest version needed by any object (`GLIBC` → `2.34`).
    public var highest: [String: String]
    /// Every library needed, and how it is found.
    public var libraries: [LibraryReport]
    /// The most compatible tag the content allows as it is (`manylinux_2_17_x86_64`, or
    /// `linux_x86_64` when a library is missing).
    public var mostCompatibleTag: String?
    /// The most compatible tag the symbol versions alone allow (what vendoring or declaring the
    /// missing libraries could reach).
    public var symbolsAllow: String?
}

/// The platform audit: checks a wheel's ELF objects against the policy of each of its platform
/// tags (symbol-version ceilings, library allowlist, forbidden symbols), resolves vendored
/// libraries inside the wheel, lets declared provided libraries pass, and finds the most
/// compatible tag the content allows.
struct PlatformAudit {
    /// One ELF object with what it needs.
    struct Object {
        /// The member name in the wheel.
        var member: String
        var dependencies: ELFDependencies
    }

    var objects: [Object]
    /// Every file member of the wheel (vendored libraries are resolved among them).
    var members: Set<String>
    /// The wheel's platform tags, as the filename spells them.
    var platformTags: [String]
    /// The machine the objects are for (`x86_64`), from the tags or the objects.
    var machine: String?
    var expectation: WheelExpectation
    /// Normalised names of the wheel's `Requires-Dist` distributions (nil when METADATA is unusable).
    var requiredDistributions: Set<String>?

    /// Where an installed member would sit in site-packages (`<dist>.data/platlib/x` → `x`).
    static func installedPath(_ member: String) -> String? {
        let parts = member.split(separator: "/", maxSplits: 2, omittingEmptySubsequences: false)
        if parts.count == 3, parts[0].hasSuffix(".data") {
            return parts[1] == "platlib" || parts[1] == "purelib" ? String(parts[2]) : nil
        }
        return member
    }

    /// Joins a directory and a relative path, resolving `.` and `..`; `nil` when it leaves the root.
    static func join(_ directory: [Substring], _ relative: String) -> String? {
        var out = directory
        for part in relative.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            if part == ".." {
                guard !out.isEmpty else { return nil }
                out.removeLast()
            } else {
                out.append(part)
            }
        }
        return out.joined(separator: "/")
    }

    /// The installed path of the member that `library` resolves to from `object`, through the
    /// object's `$ORIGIN`-relative search path; nil when it is not inside the wheel.
    func vendored(_ library: String, from object: Object, installed: Set<String>) -> String? {
        guard !library.contains("/"), let path = Self.installedPath(object.member) else { return nil }
        let directory = path.split(separator: "/").dropLast()
        for entry in object.dependencies.searchPath {
            var rest: Substring
            if entry.hasPrefix("$ORIGIN") { rest = entry.dropFirst(7) } else if entry.hasPrefix("${ORIGIN}") { rest = entry.dropFirst(9) } else { continue }
            guard rest.isEmpty || rest.first == "/" else { continue }
            rest = rest.drop(while: { $0 == "/" })
            if let dir = Self.join(Array(directory), String(rest)), let file = Self.join(dir.split(separator: "/").map { $0 }, library),
               installed.contains(file) {
                return file
            }
        }
        return nil
    }

    /// The resolution of every needed library, before any policy (`system` means "not vendored,
    /// not provided": whether the system may provide it is the policy's decision).
    func resolutions() -> [(object: Object, library: String, resolution: LibraryResolution)] {
        let installed = Set(members.compactMap(Self.installedPath))
        var out: [(Object, String, LibraryResolution)] = []
        for object in objects {
            for library in object.dependencies.needed where !ELFDependencies.isDynamicLoader(library) {
                if let file = vendored(library, from: object, installed: installed) {
                    out.append((object, library, .vendored(file)))
                } else if let provided = expectation.providedLibraries.first(where: { $0.matches(library) }) {
                    out.append((object, library, .provided(provided.provider)))
                } else {
                    out.append((object, library, .system))
                }
            }
        }
        return out
    }

    /// What keeps the content from one policy.
    struct Violations {
        /// (object, need) pairs above the policy's versions.
        var symbols: [(member: String, need: ELFDependencies.VersionNeed)] = []
        /// (object, library) pairs the policy does not allow and nothing else provides.
        var libraries: [(member: String, library: String)] = []
        /// (object, library, symbol) imports the policy forbids.
        var forbidden: [(member: String, library: String, symbol: String)] = []
        var isEmpty: Bool { symbols.isEmpty && libraries.isEmpty && forbidden.isEmpty }
    }

    func violations(of policy: PlatformPolicy, _ resolved: [(object: Object, library: String, resolution: LibraryResolution)]) -> Violations {
        var v = Violations()
        for object in objects {
            for need in object.dependencies.versionNeeds where !ELFDependencies.isDynamicLoader(need.library) {
                let (ns, version) = need.namespaceAndVersion
                if !policy.allows(namespace: ns, version: version) { v.symbols.append((object.member, need)) }
            }
            for (library, names) in policy.forbiddenSymbols where object.dependencies.needed.contains(library) {
                for symbol in object.dependencies.forbiddenCandidates where names.contains(symbol) {
                    v.forbidden.append((object.member, library, symbol))
                }
            }
        }
        for r in resolved {
            if case .system = r.resolution, !policy.libraries.contains(r.library) { v.libraries.append((r.object.member, r.library)) }
        }
        return v
    }

    /// The C library the content links against: musl when an object needs musl's libc.
    var contentLibc: LibcFamily {
        objects.contains { $0.dependencies.needed.contains { $0.hasPrefix("libc.musl-") } } ? .musl : .glibc
    }

    /// Runs the audit, recording `platform.symbols`, `platform.libraries` and
    /// `platform.requirement`; returns the report.
    func run(_ recorder: inout CheckRecorder) -> PlatformReport? {
        let linuxTags = platformTags.compactMap(LinuxPlatformTag.init)
        let ids: [WheelCheckID] = [.platformSymbols, .platformLibraries, .platformRequirement]
        if platformTags == ["any"] || (linuxTags.isEmpty && objects.isEmpty) {
            for id in ids { recorder.skip(id, objects.isEmpty ? "no ELF objects (a pure wheel)" : "the platform tag names no Linux platform") }
            return nil
        }
        guard !linuxTags.isEmpty else {
            for id in ids { recorder.skip(id, "platform tag '\(platformTags.joined(separator: "."))' is not a Linux tag: only Linux tags are audited") }
            return nil
        }
        guard let machine = machine ?? linuxTags.first?.machine else { return nil }
        let resolved = resolutions()
        let family = contentLibc
        let candidates = PlatformPolicies.all(machine: machine).filter { $0.libc.family == family }
        let best = candidates.first { violations(of: $0, resolved).isEmpty }
        let bySymbols = candidates.first { p in let v = violations(of: p, resolved); return v.symbols.isEmpty && v.forbidden.isEmpty }
        let bestTag = best.map { Self.spell($0.tag) } ?? "linux_\(machine)"
        var highest: [String: (DottedVersion?, String)] = [:]
        for object in objects {
            for (ns, v) in object.dependencies.highestByNamespace {
                let d = DottedVersion(v)
                if let current = highest[ns] {
                    if let d, current.0.map({ d > $0 }) ?? true { highest[ns] = (d, v) }
                } else {
                    highest[ns] = (d, v)
                }
            }
        }
        let report = PlatformReport(
            tags: linuxTags.map(\.text), libc: objects.isEmpty ? nil : family.rawValue, highest: highest.mapValues(\.1),
            libraries: libraryReports(resolved, best: best ?? candidates.last),
            mostCompatibleTag: best?.tag.canonical ?? "linux_\(machine)", symbolsAllow: bySymbols?.tag.canonical ?? "linux_\(machine)")
        let atBest = atBestSentence(best: best, bySymbols: bySymbols, machine: machine, resolved: resolved)

        // One verdict per claimed tag; linux_* claims nothing.
        var symbolFailures: [String] = [], libraryFailures: [String] = []
        var claimed: [String] = []
        for tag in linuxTags {
            guard tag.libc != nil else { continue }
            guard tag.machine == machine else {
                symbolFailures.append("tag '\(tag.text)' is for \(tag.machine) but the code is for \(machine)")
                continue
            }
            guard let policy = PlatformPolicies.policy(for: tag) else {
                if PlatformPolicies.machines.contains(tag.machine) {
                    symbolFailures.append("'\(tag.text)' names \(tag.libc!), older than every policy wheelfarm knows for \(tag.machine) (the oldest is \(candidates.first.map { Self.spell($0.tag) } ?? "none"))")
                } else {
                    recorder.skip(.platformSymbols, "no policy for \(tag.machine) in wheelfarm's table (x86_64, aarch64)")
                }
                continue
            }
            claimed.append(tag.text)
            let v = violations(of: policy, resolved)
            if !v.symbols.isEmpty || !v.forbidden.isEmpty {
                symbolFailures.append(symbolMessage(tag: tag, policy: policy, v) + " — \(atBest)")
            }
            if !v.libraries.isEmpty { libraryFailures.append(libraryMessage(tag: tag, v) + "; as it is, the most compatible tag the content allows is \(bestTag)") }
        }

        let compat = "; the most compatible tag the content allows is \(bestTag)"
        if !symbolFailures.isEmpty {
            recorder.fail(.platformSymbols, symbolFailures.joined(separator: "; "))
        } else if claimed.isEmpty {
            recorder.pass(.platformSymbols, "'\(linuxTags.map(\.text).joined(separator: "."))' promises no portability; the content allows \(bestTag)")
        } else {
            let needs = highest.keys.sorted().filter { ["GLIBC", "GLIBCXX", "CXXABI", "GCC"].contains($0) }.map { "\($0)_\(highest[$0]!.1)" }
            recorder.pass(.platformSymbols, "\(claimed.joined(separator: ".")): symbol versions within the policy (highest \(needs.isEmpty ? "none" : needs.joined(separator: ", ")))\(compat)")
        }

        // Libraries: failures above; provided libraries whose provider the wheel does not require.
        var providerProblems: [String] = []
        if let required = requiredDistributions {
            for (provider, libs) in Dictionary(grouping: resolved.compactMap { r -> (String, String)? in
                if case let .provided(p) = r.resolution { return (p, r.library) }
                return nil
            }, by: \.0) where !required.contains(Variant.normalize(provider)) {
                let names = Set(libs.map(\.1)).sorted()
                providerProblems.append("\(names.joined(separator: ", ")) \(names.count == 1 ? "is" : "are") declared as provided by '\(provider)', but the wheel does not require '\(provider)' (no Requires-Dist): add the dependency, or vendor the librar\(names.count == 1 ? "y" : "ies")")
            }
        }
        let outside = objects.flatMap { o in o.dependencies.searchPath.filter { !$0.hasPrefix("$ORIGIN") && !$0.hasPrefix("${ORIGIN}") }.map { (o.member, $0) } }
        if !libraryFailures.isEmpty || !providerProblems.isEmpty {
            recorder.fail(.platformLibraries, (libraryFailures + providerProblems).joined(separator: "; "))
        } else {
            // A search path of the build host (pyenv's lib directory, say) is harmless where it does
            // not exist, and auditwheel leaves it too: noted, not a warning.
            let note = outside.first.map { "; note: '\($0.0)' also searches '\($0.1)', a path of the build host\(outside.count > 1 ? " (and \(outside.count - 1) more)" : "")" } ?? ""
            recorder.pass(.platformLibraries, librarySummary(resolved) + note)
        }

        // The recipe's requirement.
        switch expectation.platform {
        case nil:
            recorder.skip(.platformRequirement, "the recipe states no platform requirement")
        case .linux?:
            recorder.pass(.platformRequirement, "the recipe accepts host-specific linux_* wheels (local index only)")
        case let .portable(libc)?:
            let requirement = PlatformRequirement.portable(libc)
            if requirement.isMet(by: linuxTags) {
                recorder.pass(.platformRequirement, "'\(linuxTags.map(\.text).joined(separator: "."))' meets the required \(requirement)")
            } else {
                let most = linuxTags.compactMap(\.libc).filter { $0.family == libc.family }.min()
                let why = most.map { "it installs only where \($0.family.rawValue) is \($0.number) or newer" } ?? "it is not a \(libc.family.tagFamily) tag"
                recorder.fail(.platformRequirement, "the recipe requires \(requirement) (\(libc) systems) but the wheel is tagged '\(linuxTags.map(\.text).joined(separator: "."))': \(why); \(atBest); build on a host whose \(libc.family.rawValue) is \(libc.number) or older, or with --builder docker")
            }
        }
        return report
    }

    /// `manylinux_2_17_x86_64 (manylinux2014_x86_64)`.
    static func spell(_ tag: LinuxPlatformTag) -> String {
        tag.legacyAlias.map { "\(tag.canonical) (\($0))" } ?? tag.canonical
    }

    /// "needs glibc 2.34: manylinux_2_34_x86_64 at best", with what missing libraries cost.
    func atBestSentence(best: PlatformPolicy?, bySymbols: PlatformPolicy?, machine: String, resolved: [(object: Object, library: String, resolution: LibraryResolution)]) -> String {
        guard let bySymbols else {
            return "its symbol versions fit no \(contentLibc.tagFamily) policy wheelfarm knows for \(machine): linux_\(machine) at best"
        }
        let sentence = "needs \(bySymbols.libc): \(Self.spell(bySymbols.tag)) at best"
        if best == nil {
            let missing = Set(resolved.filter { if case .system = $0.resolution { !bySymbols.libraries.contains($0.library) } else { false } }.map(\.library)).sorted()
            return sentence + (missing.isEmpty ? "" : " once \(missing.joined(separator: ", ")) \(missing.count == 1 ? "is" : "are") vendored or declared; as it is, linux_\(machine)")
        }
        return sentence
    }

    func symbolMessage(tag: LinuxPlatformTag, policy: PlatformPolicy, _ v: Violations) -> String {
        var parts: [String] = []
        let byMember = Dictionary(grouping: v.symbols, by: \.member)
        for member in byMember.keys.sorted() {
            let needs = byMember[member]!.map(\.need).sorted { a, b in
                (DottedVersion(a.namespaceAndVersion.version) ?? DottedVersion("0")!) > (DottedVersion(b.namespaceAndVersion.version) ?? DottedVersion("0")!)
            }
            let listed = needs.prefix(4).map { n in
                "\(n.version)\(n.symbols.isEmpty ? "" : " (\(n.symbols.joined(separator: ", "))\(n.symbolCount > n.symbols.count ? ", …" : ""))") from \(n.library)"
            }.joined(separator: ", ")
            parts.append("'\(member)' needs \(listed)\(needs.count > 4 ? " and \(needs.count - 4) more" : "")")
        }
        for f in v.forbidden.prefix(3) {
            parts.append("'\(f.member)' imports \(f.symbol) from \(f.library), which \(policy.name) forbids (some \(policy.libc.family.rawValue) systems the tag promises lack it)")
        }
        let namespaces = Set(v.symbols.map { $0.need.namespaceAndVersion.namespace }).sorted()
        let limits = namespaces.compactMap { ns -> String? in
            guard let allowed = policy.symbolVersions[ns] else { return nil }
            let top = allowed.compactMap(DottedVersion.init).max()
            return "\(ns) up to \(top?.description ?? "nothing")"
        }
        return "\(tag.text) allows \(limits.isEmpty ? "less" : limits.joined(separator: ", ")) but " + parts.joined(separator: "; ")
    }

    func libraryMessage(tag: LinuxPlatformTag, _ v: Violations) -> String {
        let byLibrary = Dictionary(grouping: v.libraries, by: \.library)
        let names = byLibrary.keys.sorted()
        let listed = names.map { lib in "\(lib) (needed by \(Set(byLibrary[lib]!.map { "'\($0.member)'" }).sorted().joined(separator: ", ")))" }
        return "\(listed.joined(separator: ", ")): neither allowed by \(tag.text), nor vendored in the wheel, nor declared as provided by a dependency; vendor \(names.count == 1 ? "it" : "them") with auditwheel repair, declare \(names.count == 1 ? "it" : "them") as provided by a dependency (the recipe's provided_libraries), or link \(names.count == 1 ? "it" : "them") statically"
    }

    func libraryReports(_ resolved: [(object: Object, library: String, resolution: LibraryResolution)], best: PlatformPolicy?) -> [LibraryReport] {
        var order: [String] = []
        var byName: [String: LibraryReport] = [:]
        for r in resolved {
            let (kind, detail): (String, String?) = switch r.resolution {
            case .system: (best?.libraries.contains(r.library) ?? false) ? ("system", nil) : ("missing", nil)
            case let .vendored(path): ("vendored", path)
            case let .provided(by): ("provided", by)
            case .missing: ("missing", nil)
            }
            if var existing = byName[r.library] {
                if !existing.neededBy.contains(r.object.member) { existing.neededBy.append(r.object.member) }
                byName[r.library] = existing
            } else {
                order.append(r.library)
                byName[r.library] = LibraryReport(name: r.library, neededBy: [r.object.member], resolution: kind, detail: detail)
            }
        }
        return order.map { byName[$0]! }
    }

    /// "libc.so.6 and 2 more from the system; libgomp-….so.1 vendored (wfx.libs/…); libtorch.so provided by torch (declared by the recipe)".
    func librarySummary(_ resolved: [(object: Object, library: String, resolution: LibraryResolution)]) -> String {
        var system = Set<String>(), vendored: [String: String] = [:], provided: [String: Set<String>] = [:]
        for r in resolved {
            switch r.resolution {
            case .system: system.insert(r.library)
            case let .vendored(path): vendored[r.library] = path
            case let .provided(by): provided[by, default: []].insert(r.library)
            case .missing: break
            }
        }
        var parts: [String] = []
        if !system.isEmpty { parts.append("\(system.sorted().joined(separator: ", ")) from the system") }
        if !vendored.isEmpty { parts.append(vendored.keys.sorted().map { "\($0) vendored (\(vendored[$0]!))" }.joined(separator: ", ")) }
        for by in provided.keys.sorted() { parts.append("\(provided[by]!.sorted().joined(separator: ", ")) provided by \(by) (declared by the recipe)") }
        return parts.isEmpty ? "no shared libraries needed" : parts.joined(separator: "; ")
    }
}
