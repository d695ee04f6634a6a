import FarmCore
import Inventory
import Recipes

/// Where each job of a release could run, and why the others cannot run anywhere.
///
/// This is the static view `wheelfarm plan` prints: it uses the inventory only (no probes, no
/// load), so it answers "can this farm build this release at all?" before anything starts.
public struct PlanAnalysis: Sendable {
    /// One job with the hosts able to build it.
    public struct Entry: Sendable {
        public let job: BuildJob
        /// Hosts that can build the job natively, in inventory order.
        public let eligible: [Host]
        /// Every other host of the inventory with the reasons it cannot take the job.
        public let rejected: [(host: Host, reasons: [Ineligibility])]
        /// Why no host can take the job; nil when some host can.
        public let unplaceableReason: String?
    }

    public let entries: [Entry]

    /// Analyses `jobs` against `hosts` and, when given, what probes found on them (cached
    /// reports: prerequisites and toolchains).
    public init(jobs: [BuildJob], hosts: [Host], facts: [String: HostFacts] = [:]) {
        entries = jobs.map { job in
            var eligible: [Host] = []
            var rejected: [(Host, [Ineligibility])] = []
            for host in hosts {
                let reasons = Eligibility.reasons(host: host, job: job, facts: facts[host.name])
                if reasons.isEmpty { eligible.append(host) } else { rejected.append((host, reasons)) }
            }
            let reason = eligible.isEmpty ? Self.explain(job: job, hosts: hosts, rejected: rejected) : nil
            return Entry(job: job, eligible: eligible, rejected: rejected, unplaceableReason: reason)
        }
    }

    /// Entries no host can take.
    public var unplaceable: [Entry] { entries.filter { $0.unplaceableReason != nil } }

    /// A one-line explanation naming the missing flags and the closest host.
    static func explain(job: BuildJob, hosts: [Host], rejected: [(Host, [Ineligibility])]) -> String {
        let arch = job.arch.rawValue
        let sameArch = rejected.filter { $0.0.arch == job.arch }
        guard !sameArch.isEmpty else {
            return hosts.isEmpty ? "the inventory has no hosts" : "no \(arch) host in the inventory"
        }
        let requires = job.hostRequirements.requires
        let available = sameArch.reduce(into: Set<Capability>()) { $0.formUnion($1.0.capabilities) }
        let nowhere = requires.subtracting(available)
        var head: String
        if !nowhere.isEmpty {
            head = "no \(arch) host has \(nowhere.sorted().map(\.name).joined(separator: ", "))"
        } else if sameArch.allSatisfy({ $0.1.allSatisfy { if case .draining = $0 { true } else { false } } }) {
            head = "every \(arch) host able to build it is draining (\(sameArch.map(\.0.name).joined(separator: ", ")))"
            return head
        } else {
            head = "no \(arch) host meets all of the variant's requirements"
        }
        func weight(_ reasons: [Ineligibility]) -> Int {
            reasons.reduce(0) { sum, r in
                switch r {
                case let .missing(f), let .forbidden(f): sum + f.count
                default: sum + 1
                }
            }
        }
        if let closest = sameArch.min(by: { (weight($0.1), $0.0.name) < (weight($1.1), $1.0.name) }) {
            head += "; closest: \(closest.0.name) " + closest.1.map(\.description).joined(separator: "; ")
        }
        return head
    }
}
