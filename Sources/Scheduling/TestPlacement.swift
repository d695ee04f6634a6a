import FarmCore
import Inventory
import Recipes

/// Where a built wheel's test runs: the **weakest eligible** host, so the test proves the wheel
/// works on the least capable machine it claims to support.
///
/// Eligible: the wheel's arch, and none of the flags the variant excludes from its code (its ISA
/// `exclude` list and its build `forbids`): the baseline vLLM wheel is tested on a host without
/// AVX-512 when the inventory has one. Among those the weakest is the one with the fewest CPU
/// flags, then the oldest glibc (when probes said), then inventory order. When no host lacks the
/// excluded flags, the weakest host of the arch is used and the placement says the test ran on a
/// stronger host than the wheel claims.
public struct TestPlacement: Sendable, Hashable {
    /// The host the test runs on (nil: no host of the arch at all).
    public var host: String?
    /// Set when the host has flags the wheel must run without (the test proves less).
    public var stronger: Set<Capability> = []
    /// Why no host could be chosen, or why the chosen one is stronger than the wheel claims.
    public var note: String?

    public init(host: String?, stronger: Set<Capability> = [], note: String? = nil) {
        self.host = host; self.stronger = stronger; self.note = note
    }

    /// Chooses the test host for `job` among `hosts` (draining hosts excluded).
    public static func weakest(for job: BuildJob, hosts: [Host], glibc: [String: PEP440Version] = [:]) -> TestPlacement {
        let excluded = (job.variant.isa[job.arch]?.exclude ?? []).union(job.hostRequirements.forbids)
        // The wheel-level `expect` list is what the wheel needs to run at all (per-object entries
        // describe code a fat wheel dispatches to at run time).
        let needed = job.variant.isa[job.arch]?.expect ?? []
        let sameArch = hosts.filter { $0.arch == job.arch && !$0.drain }
        let candidates = sameArch.filter { needed.isSubset(of: $0.capabilities) }
        guard !candidates.isEmpty else {
            if sameArch.isEmpty { return TestPlacement(host: nil, note: "no \(job.arch.rawValue) host in the inventory to test \(job.id) on") }
            return TestPlacement(host: nil, note: "no \(job.arch.rawValue) host has \(needed.subtracting(sameArch.reduce(into: Set<Capability>()) { $0.formIntersection($1.capabilities) }).sorted().map(\.name).joined(separator: ", ")), which the wheel needs to run: it cannot be tested on this farm (--skip-tests publishes it untested)")
        }
        // Fewest flags, then the oldest glibc (unknown counts as newest), then inventory order.
        func rank(_ h: Host) -> [Int] {
            [h.capabilities.count] + (glibc[h.name]?.release ?? [Int.max]) + [Int.max, hosts.firstIndex { $0.name == h.name } ?? 0]
        }
        func weaker(_ a: Host, _ b: Host) -> Bool { rank(a).lexicographicallyPrecedes(rank(b)) }
        let lacking = candidates.filter { $0.capabilities.isDisjoint(with: excluded) }
        if let best = lacking.min(by: weaker) {
            return TestPlacement(host: best.name)
        }
        let best = candidates.min { a, b in
            let (ea, eb) = (a.capabilities.intersection(excluded).count, b.capabilities.intersection(excluded).count)
            return ea != eb ? ea < eb : weaker(a, b)
        }!
        let has = best.capabilities.intersection(excluded)
        return TestPlacement(host: best.name, stronger: has,
                             note: "no \(job.arch.rawValue) host lacks \(excluded.sorted().map(\.name).joined(separator: ", ")): the test runs on \(best.name), which has \(has.sorted().map(\.name).joined(separator: ", ")), a stronger host than the wheel claims to support")
    }
}
