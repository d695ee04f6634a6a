import FarmCore
import Inventory
import Recipes

/// Why a host cannot take a job. Each case names the fact that rules it out.
public enum Ineligibility: Sendable, Hashable, CustomStringConvertible {
    /// The host's arch differs from the job's.
    case wrongArch(host: Arch, job: Arch)
    /// The host lacks flags the variant requires.
    case missing(Set<Capability>)
    /// The host has flags the variant must not be built with.
    case forbidden(Set<Capability>)
    /// The host is reserved for jobs needing one of these flags, and the job needs none.
    case reserved(Set<Capability>)
    /// The inventory says `drain: true`.
    case draining
    /// The host's probe found no such Python and the host cannot provision one.
    case pythonUnavailable(PythonVersion, available: [PythonVersion])
    /// The host's GCC is older than the variant needs, or the probe found none.
    case toolchainTooOld(required: PEP440Version, found: PEP440Version?)
    /// The host's builds cannot produce the platform tag the recipe requires: a native build
    /// links against the host's C library, which is newer than the tag allows (or another one);
    /// with `container`, no container image builds that tag.
    case platformUnreachable(required: PlatformRequirement, hostLibc: LibcVersion?, container: Bool)
    /// The host lacks a build prerequisite of the recipe (a header, a tool, a new enough C++ compiler).
    case prerequisiteMissing(String)
    /// The host failed recently and is waiting for its next health check.
    case quarantined
    /// The host failed its health checks so often that the scheduler gave up on it.
    case unreachable
    /// The host refused the coordinator for good (host key, authentication) and was taken out of the run.
    case refused(String)
    /// Every build slot of the host is busy.
    case noFreeSlot
    /// The host is no longer in the inventory.
    case removed

    /// A lowercase, human-readable description.

    public var description: String {
        switch self {
        case let .wrongArch(host, job): "is \(host.rawValue), job needs \(job.rawValue)"
        case let .missing(flags): "lacks \(flags.sorted().map(\.name).joined(separator: ", "))"
        case let .forbidden(flags): "has \(flags.sorted().map(\.name).joined(separator: ", ")), which the variant must not be built with (it would leak into the wheel)"
        case let .reserved(flags): "is reserved for jobs needing \(flags.sorted().map(\.name).joined(separator: ", "))"
        case .draining: "is draining"
        case let .pythonUnavailable(python, available):
            "has no Python \(python) and cannot provision one (has \(available.isEmpty ? "none" : available.map(\.description).joined(separator: ", ")))"
        case let .toolchainTooOld(required, found):
            "has \(found.map { "GCC \($0)" } ?? "no GCC"), the variant needs GCC ≥ \(required)"
        case let .platformUnreachable(required, hostLibc, container):
            Self.platformDescription(required: required, hostLibc: hostLibc, container: container)
        case let .prerequisiteMissing(what): what
        case .quarantined: "is quarantined after a failure"
        case .unreachable: "is unreachable (gave up after repeated failed health checks)"
        case let .refused(reason): "was taken out of the run: \(reason)"
        case .noFreeSlot: "has no free build slot"
        case .removed: "was removed from the inventory"
        }
    }

    static func platformDescription(required: PlatformRequirement, hostLibc: LibcVersion?, container: Bool) -> String {
        guard let want = required.libc else { return "cannot build \(required) wheels" }
        if container {
            return "no container image builds \(required) wheels (the oldest are manylinux2014 and musllinux_1_2)"
        }
        guard let hostLibc else { return "has an unknown C library, the recipe needs \(required) wheels" }
        if hostLibc.family != want.family {
            return "has \(hostLibc), the recipe needs \(required) wheels (\(want.family.rawValue)): build with --builder docker"
        }
        return "has \(hostLibc), newer than \(required) allows (\(want.number)): a native build links against it; build with --builder docker or on a host with \(want.family.rawValue) ≤ \(want.number)"
    }

    /// True for reasons that can go away during a run without an inventory edit.
    public var isTransient: Bool {
        switch self {
        case .quarantined, .noFreeSlot: true
        default: false
        }
    }
}

/// Whether a host may build a job.
///
/// A host can build a job natively when its arch matches, it has every flag the variant requires
/// on that arch, it has none of the flags the variant forbids (vLLM's build enables an ISA
/// extension whenever the build host's `/proc/cpuinfo` has it, so such a host would leak it into
/// the wheel), it is not reserved for other work, and it is not draining. When the host was
/// probed (``HostFacts``), it must also have the job's Python or be able to provision it, and a
/// GCC at least as new as the variant's minimum (BF16/VNNI/AMX code is silently dropped by older
/// compilers), and a C library no newer than the recipe's platform tag allows (a native build
/// links against it; `--builder docker` uses the image's instead). Quarantine and free slots are
/// run-time state the scheduler adds on top.
public enum Eligibility {
    /// Every reason `host` cannot take `job`, from the inventory alone; empty when it can.
    public static func reasons(host: Host, job: BuildJob) -> [Ineligibility] {
        reasons(host: host, job: job, facts: nil)
    }

    /// Every reason `host` cannot take `job`, from the inventory and, when given, the host's probe facts.
    ///
    /// Facts that are `nil` (host not probed) rule nothing out: the build step checks again.
    public static func reasons(host: Host, job: BuildJob, facts: HostFacts?) -> [Ineligibility] {
        var out: [Ineligibility] = []
        if host.arch != job.arch { return [.wrongArch(host: host.arch, job: job.arch)] }
        let needs = job.hostRequirements
        let missing = needs.requires.subtracting(host.capabilities)
        if !missing.isEmpty { out.append(.missing(missing)) }
        let leaking = needs.forbids.intersection(host.capabilities)
        if !leaking.isEmpty { out.append(.forbidden(leaking)) }
        if !host.reserved.isEmpty, host.reserved.isDisjoint(with: needs.requires) { out.append(.reserved(host.reserved)) }
        if host.drain { out.append(.draining) }
        if let facts {
            if !facts.canProvisionPython, !facts.pythons.contains(job.python) {
                out.append(.pythonUnavailable(job.python, available: facts.pythons.sorted()))
            }
            if let minimum = job.variant.minimumGCC, facts.gccVersion.map({ $0 < minimum }) ?? true {
                out.append(.toolchainTooOld(required: minimum, found: facts.gccVersion))
            }
            if let problem = facts.platformProblem(job.variant.platform) { out.append(problem) }
            out += prerequisiteProblems(job.variant.prerequisites, facts: facts)
        }
        return out
    }

    /// The prerequisites the probe found missing, each naming the Debian package to install.
    /// Prerequisites the probe was not asked about rule nothing out (the build step checks again).
    public static func prerequisiteProblems(_ prerequisites: [Prerequisite], facts: HostFacts) -> [Ineligibility] {
        prerequisites.compactMap { p in
            let install = p.debianPackage.map { " (install the Debian package \($0))" } ?? ""
            switch p.kind {
            case .header: return facts.headersMissing.contains(p.name) ? .prerequisiteMissing("lacks the header \(p.name)\(install)") : nil
            case .tool: return facts.toolsMissing.contains(p.name) ? .prerequisiteMissing("lacks the tool \(p.name)\(install)") : nil
            case .cxx:
                guard let minimum = p.minimum, let found = facts.cxxVersion, found < minimum else { return nil }
                return .prerequisiteMissing("has C++ compiler \(found), the build needs ≥ \(minimum)\(install)")
            }
        }
    }

    /// True when `host` can take `job` as far as the inventory says.
    public static func isEligible(host: Host, job: BuildJob) -> Bool { reasons(host: host, job: job).isEmpty }

    /// True when `host` can take `job` as far as the inventory and the host's probe facts say.
    public static func isEligible(host: Host, job: BuildJob, facts: HostFacts?) -> Bool {
        reasons(host: host, job: job, facts: facts).isEmpty
    }

    /// The hosts of `inventory` able to build `job`, in inventory order.
    public static func eligibleHosts(for job: BuildJob, in hosts: [Host]) -> [Host] {
        hosts.filter { isEligible(host: $0, job: job) }
    }

    /// The hosts able to build `job`, given probe facts by host name, in inventory order.
    public static func eligibleHosts(for job: BuildJob, in hosts: [Host], facts: [String: HostFacts]) -> [Host] {
        hosts.filter { isEligible(host: $0, job: job, facts: facts[$0.name]) }
    }
}

/// What a job asks of a host, reduced to the fields eligibility looks at.
///
/// Jobs with equal keys are eligible on the same hosts, so the scheduler computes eligibility once
/// per key rather than once per job (a release has dozens of jobs but only a handful of keys).
struct EligibilityKey: Hashable, Sendable {
    var arch: Arch
    var requires: Set<Capability>
    var forbids: Set<Capability>
    var python: PythonVersion
    var minimumGCC: PEP440Version?
    var platform: PlatformRequirement?
    var prerequisites: [Prerequisite]

    init(_ job: BuildJob) {
        let needs = job.hostRequirements
        arch = job.arch; requires = needs.requires; forbids = needs.forbids
        python = job.python; minimumGCC = job.variant.minimumGCC; platform = job.variant.platform
        prerequisites = job.variant.prerequisites
    }
}
