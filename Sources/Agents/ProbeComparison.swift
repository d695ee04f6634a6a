import FarmCore
import Inventory
import Recipes

/// One difference between what the inventory says about a host and what the host says it is.
public struct ProbeFinding: Sendable, Hashable, CustomStringConvertible {
    /// How much a finding matters. `error` makes `wheelfarm hosts probe` exit 1.
    public enum Severity: String, Sendable, Hashable, Comparable, Codable {
        case info, warning, error
        public static func < (l: Severity, r: Severity) -> Bool {
            let order: [Severity] = [.info, .warning, .error]
            return order.firstIndex(of: l)! < order.firstIndex(of: r)!
        }
    }

    /// What was found.
    public enum Kind: Sendable, Hashable {
        /// The host's `uname -m` is not the inventory's arch (or not an arch wheelfarm knows).
        case archMismatch(declared: Arch, found: String)
        /// Flags the inventory declares that the host's CPU lacks: builds would crash or lack the speed-up.
        case missingCapabilities(Set<Capability>)
        /// Flags (that wheelfarm knows) the host has but the inventory does not declare.
        case undeclaredCapabilities(Set<Capability>)
        /// Undeclared flags that a variant the inventory lets this host build must not be built with:
        /// its build would leak them into the wheel.
        case leakingCapabilities(variant: String, flags: Set<Capability>)
        /// The compiler is older than a variant this host may build needs.
        case compilerTooOld(variant: String, found: String, needed: String)
        /// The C++ compiler is older than a variant this host may build needs (a `cxx` prerequisite).
        case cxxTooOld(variant: String, found: String, needed: String, install: String?)
        /// No C compiler for the host's arch.
        case noCompiler
        /// No Python interpreter that can build wheels (venv and headers).
        case noBuildPython
        /// A Python version a recipe builds by default has no interpreter on the host (and no uv).
        case missingPython(PythonVersion)
        /// The work directory cannot be written (or created).
        case workDirUnusable(path: String, exists: Bool)
        /// Less free space in the work directory than a build needs.
        case lowDisk(freeBytes: Int64, neededBytes: Int64)
        /// Docker is installed but no daemon answered.
        case dockerUnusable
        /// The host's C library is newer than (or other than) a recipe's platform requirement
        /// allows: its native builds cannot produce that tag.
        case platformUnreachable(recipe: String, required: PlatformRequirement, found: LibcVersion)
        /// The host's libstdc++ defines newer `GLIBCXX` versions than a recipe's platform policy
        /// allows: C++ code built here may need them (the audit of each wheel decides).
        case libstdcxxNewer(recipe: String, required: PlatformRequirement, found: String, allowed: String)
    }

    public let severity: Severity
    public let kind: Kind

    public init(_ severity: Severity, _ kind: Kind) { self.severity = severity; self.kind = kind }

    public var description: String {
        func list(_ flags: Set<Capability>) -> String { flags.sorted().map(\.name).joined(separator: ", ") }
        switch kind {
        case let .archMismatch(declared, found):
            return "declared arch '\(declared.rawValue)' but the host is '\(found)'; fix the inventory's arch"
        case let .missingCapabilities(flags):
            return "declared \(list(flags)) but the host's CPU lacks \(flags.count == 1 ? "it" : "them"); remove from the inventory"
        case let .undeclaredCapabilities(flags):
            return "has \(list(flags)), not declared in the inventory"
        case let .leakingCapabilities(variant, flags):
            return "has undeclared \(list(flags)), which '\(variant)' must not be built with (it would leak into the wheel); declare \(flags.count == 1 ? "it" : "them")"
        case let .compilerTooOld(variant, found, needed):
            return "GCC \(found) is too old for '\(variant)' (needs >= \(needed)); install a newer GCC"
        case let .cxxTooOld(variant, found, needed, install):
            return "the C++ compiler \(found) is too old for '\(variant)' (needs >= \(needed)); install \(install ?? "a newer g++")"
        case .noCompiler:
            return "no C compiler for the host's arch; install gcc"
        case .noBuildPython:
            return "no Python interpreter with venv and headers; install python3-venv and python3-dev, or uv"
        case let .missingPython(version):
            return "no Python \(version) interpreter (and no uv to fetch one)"
        case let .workDirUnusable(path, exists):
            return exists ? "work directory '\(path)' is not writable; fix its permissions" : "work directory '\(path)' does not exist yet (the first build creates it)"
        case let .lowDisk(free, needed):
            return "work directory has \(ByteCount.format(free)) free, builds need \(ByteCount.format(needed))"
        case .dockerUnusable:
            return "docker is installed but its daemon is not reachable (--builder=docker unavailable)"
        case let .platformUnreachable(recipe, required, found):
            let want = required.libc!
            if found.family != want.family {
                return "has \(found): native builds cannot produce the \(required) wheels recipe '\(recipe)' requires; use --builder docker"
            }
            return "has \(found), newer than the \(required) recipe '\(recipe)' requires (\(want.number)): native builds here cannot produce it; use --builder docker or a host with \(want.family.rawValue) ≤ \(want.number)"
        case let .libstdcxxNewer(recipe, required, found, allowed):
            return "libstdc++ defines GLIBCXX_\(found), newer than \(required) (recipe '\(recipe)') allows (\(allowed)): C++ code built here may need it; the audit of each wheel decides"
        }
    }
}

/// The inventory's view of a host compared with its probe report.
///
/// Rules: a declared capability the host lacks is an error; an undeclared (known) flag is shown, and
/// is an error when a variant the inventory lets the host build forbids it; a compiler too old for a
/// variant the host may build is an error for that variant; an arch mismatch is an error.
public struct ProbeComparison: Sendable, Hashable {
    public let host: Host
    public let report: ProbeReport
    public let findings: [ProbeFinding]

    /// Compares `host` with `report`, judging toolchain and leaks against the variants of `recipes`.
    ///
    /// - Parameters:
    ///   - minimumFreeBytes: free space below which a warning is given (default 20 GiB, what a
    ///     vLLM build needs).
    ///   - glibcxxCeiling: the newest `GLIBCXX` version a platform policy allows on an arch (the
    ///     caller passes the policy table's; Agents does not import Wheels); `nil` skips that note.
    public init(host: Host, report: ProbeReport, recipes: [Recipe] = [], minimumFreeBytes: Int64 = 20 << 30,
                glibcxxCeiling: ((LibcVersion, Arch) -> String?)? = nil) {
        self.host = host
        self.report = report
        var out: [ProbeFinding] = []

        if report.parsedArch != host.arch {
            out.append(.init(.error, .archMismatch(declared: host.arch, found: report.arch)))
        }
        let has = report.capabilities
        let missing = host.capabilities.subtracting(has)
        if !missing.isEmpty { out.append(.init(.error, .missingCapabilities(missing))) }
        let undeclared = Set(has.filter { Capability.known.contains($0.name) }).subtracting(host.capabilities)
        if !undeclared.isEmpty { out.append(.init(.info, .undeclaredCapabilities(undeclared))) }

        let gccVersion = report.gcc?.parsedVersion
        for recipe in recipes {
            for variant in recipe.variants {
                guard let needs = variant.arches[host.arch] else { continue }
                // Only variants the inventory lets this host build matter here.
                guard needs.requires.isSubset(of: host.capabilities),
                      needs.forbids.isDisjoint(with: host.capabilities) else { continue }
                let leaking = needs.forbids.intersection(has)
                if !leaking.isEmpty {
                    out.append(.init(.error, .leakingCapabilities(variant: variant.package, flags: leaking)))
                }
                if let needed = variant.minimumGCC, let gcc = report.gcc, let found = gccVersion, found < needed {
                    out.append(.init(.error, .compilerTooOld(variant: variant.package, found: gcc.version, needed: needed.description)))
                }
                // The C++ compiler the recipe's build needs (vLLM checks g++, not gcc).
                if let cxx = report.cxx, let found = cxx.parsedVersion {
                    for p in recipe.prerequisites + variant.prerequisites where p.kind == .cxx && (p.arch == nil || p.arch == host.arch) {
                        if let needed = p.minimum, found < needed {
                            out.append(.init(.error, .cxxTooOld(variant: variant.package, found: cxx.version, needed: needed.description,
                                                                install: p.debianPackage)))
                        }
                    }
                }
            }
        }
        if report.gcc == nil { out.append(.init(.error, .noCompiler)) }
        let pythons = report.buildPythons
        if pythons.isEmpty && report.uv == nil {
            out.append(.init(.error, .noBuildPython))
        } else if report.uv == nil {
            let wanted = Set(recipes.flatMap(\.defaultPythons))
            for version in wanted.sorted() where pythons[version] == nil {
                out.append(.init(.warning, .missingPython(version)))
            }
        }
        if !report.workDirWritable {
            // A missing work directory is created by the first build; an existing one must be writable.
            out.append(.init(report.workDirExists ? .error : .info,
                             .workDirUnusable(path: report.workDir, exists: report.workDirExists)))
        }
        if let free = report.workDirFreeBytes, free < minimumFreeBytes {
            out.append(.init(.warning, .lowDisk(freeBytes: free, neededBytes: minimumFreeBytes)))
        }
        if let docker = report.docker, docker.present, !docker.usable {
            out.append(.init(.info, .dockerUnusable))
        }
        for recipe in recipes {
            let requirements = Set(recipe.variants.filter { $0.arches[host.arch] != nil }.compactMap(\.platform))
            for required in requirements.sorted(by: { $0.description < $1.description }) {
                guard let want = required.libc, let found = report.libc else { continue }
                if found.family != want.family || found > want {
                    out.append(.init(.warning, .platformUnreachable(recipe: recipe.name, required: required, found: found)))
                } else if let glibcxx = report.libstdcxx?.glibcxx, let allowed = glibcxxCeiling?(want, host.arch), Self.isNewer(glibcxx, than: allowed) {
                    out.append(.init(.info, .libstdcxxNewer(recipe: recipe.name, required: required, found: glibcxx, allowed: allowed)))
                }
            }
        }
        findings = out
    }

    /// Whether dotted version `a` is newer than `b` (`3.4.30` > `3.4.24`), numerically.
    public static func isNewer(_ a: String, than b: String) -> Bool {
        let x = a.split(separator: ".").compactMap { Int($0) }, y = b.split(separator: ".").compactMap { Int($0) }
        for i in 0..<max(x.count, y.count) {
            let p = i < x.count ? x[i] : 0, q = i < y.count ? y[i] : 0
            if p != q { return p > q }
        }
        return false
    }

    /// True when any finding is an error.
    public var hasErrors: Bool { findings.contains { $0.severity == .error } }

    /// The worst severity found, or `nil` when the host matches its entry.
    public var worst: ProbeFinding.Severity? { findings.map(\.severity).max() }

    /// Known flags the host has and the inventory does not declare.
    public var undeclaredCapabilities: Set<Capability> {
        for f in findings { if case let .undeclaredCapabilities(flags) = f.kind { return flags } }
        return []
    }
}

/// Human-readable byte counts (`1.5 GiB`).
public enum ByteCount {
    /// Formats `bytes` with a binary unit.
    public static func format(_ bytes: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(bytes), unit = 0
        while value >= 1024, unit < units.count - 1 { value /= 1024; unit += 1 }
        let tenths = Int((value * 10).rounded())
        return unit == 0 ? "\(bytes) B" : "\(tenths / 10).\(tenths % 10) \(units[unit])"
    }
}
