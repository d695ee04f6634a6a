import FarmCore
import Inventory
import Recipes

/// Why a host cannot take a job. Each case names the fact that rules it out.
public enum Ineligibility: Sendable, Hashable, CustomStringConvertible {
    case wrongArch(host: Arch, job: Arch)
    case missing(Set<Capability>)
    case forbidden(Set<Capability>)
    case reserved(Set<Capability>)
    case draining

    public var description: String {
        switch self {
        case let .wrongArch(host, job): "is \(host.rawValue), job needs \(job.rawValue)"
        case let .missing(flags): "lacks \(flags.sorted().map(\.name).joined(separator: ", "))"
        case let .forbidden(flags): "has \(flags.sorted().map(\.name).joined(separator: ", ")), which the variant must not be built with (it would leak into the wheel)"
        case let .reserved(flags): "is reserved for jobs needing \(flags.sorted().map(\.name).joined(separator: ", "))"
        case .draining: "is draining"
        }
    }
}

/// The static part of eligibility: what the inventory alone says about a host and a job.
///
/// A host can build a job natively when its arch matches, it has every flag the variant requires
/// on that arch, it has none of the flags the variant forbids (vLLM's build enables an ISA
/// extension whenever the build host's `/proc/cpuinfo` has it, so such a host would leak it into
/// the wheel), it is not reserved for other work, and it is not draining.
public enum Eligibility {
    /// Every reason `host` cannot take `job`; empty when it can.
    public static func reasons(host: Host, job: BuildJob) -> [Ineligibility] {
        var out: [Ineligibility] = []
        if host.arch != job.arch { return [.wrongArch(host: host.arch, job: job.arch)] }
        let needs = job.hostRequirements
        let missing = needs.requires.subtracting(host.capabilities)
        if !missing.isEmpty { out.append(.missing(missing)) }
        let leaking = needs.forbids.intersection(host.capabilities)
        if !leaking.isEmpty { out.append(.forbidden(leaking)) }
        if !host.reserved.isEmpty, host.reserved.isDisjoint(with: needs.requires) { out.append(.reserved(host.reserved)) }
        if host.drain { out.append(.draining) }
        return out
    }

    /// True when `host` can take `job` as far as the inventory says.
    public static func isEligible(host: Host, job: BuildJob) -> Bool { reasons(host: host, job: job).isEmpty }

    /// The hosts of `inventory` able to build `job`, in inventory order.
    public static func eligibleHosts(for job: BuildJob, in hosts: [Host]) -> [Host] {
        hosts.filter { isEligible(host: $0, job: job) }
    }
}
