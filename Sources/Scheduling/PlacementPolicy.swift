import FarmCore
import Inventory
import Recipes

/// Decides which queued job goes to which host: a pure function of the queue, the hosts' state and
/// the duration estimates.
///
/// ## The policy (``Strategy/scarceFirst``) and why
///
/// A release's length is its makespan: the time the last wheel is done. Choosing hosts is a case
/// of scheduling on unrelated machines with eligibility constraints, for which no fast exact
/// method exists; list scheduling with good priorities comes close in practice, and is what
/// wheelfarm does:
///
/// 1. **Scarce jobs first.** Jobs are taken in order of how few hosts could build them, then how
///    long they are expected to take (on their fastest eligible host). A job only one host can
///    build decides the makespan if it is put behind work any host could have done; a job every
///    host can build fits into whatever gaps remain. Among equally scarce jobs, longest first is
///    the classic LPT rule: long jobs placed early leave short ones to even out the finish.
/// 2. **Earliest expected finish.** Each job is placed on the eligible host where it is expected to
///    finish earliest, counting the time until one of the host's slots frees up and the job's
///    expected duration there (recipe estimate scaled by the host's speed, replaced by observed
///    durations once there are some, see ``DurationModel``). A fast host that frees up soon can
///    beat a slow host that is free now.
/// 3. **Rare hosts stay free for the jobs only they can do.** Because scarce jobs are placed first,
///    they claim the rare hosts' slots in the plan before any widely eligible job is considered;
///    a widely eligible job lands on a rare host only where that host would still finish it
///    earliest. Ties are broken towards the host in least demand (the host fewer queued jobs
///    depend on), and then towards the inventory order.
/// 4. **Plan everything, start what starts now.** The whole queue is planned against the hosts'
///    timelines (running builds end at their expected time), but only placements that start now,
///    on a free slot, are dispatched. The plan is recomputed at every event (a build ends, a host
///    joins or fails), so estimates that were wrong cost little. A job whose best host is busy
///    waits for it rather than taking a slower or rarer host now, when waiting finishes earlier.
///
/// A retry after a build failure prefers hosts the job has not failed on (the failure may be the
/// host's: full disk, broken toolchain); it returns to such a host only when no other eligible
/// host is in service.
///
/// ``Strategy/firstFit`` is the naive baseline the benchmark compares against: jobs in queue
/// order, each on the first eligible host (inventory order) with a free slot.
public struct PlacementPolicy: Sendable {
    /// How jobs are matched to hosts.
    public enum Strategy: String, Sendable, Hashable, Codable, CaseIterable {
        /// Scarce jobs first, each where it finishes earliest (wheelfarm's policy).
        case scarceFirst = "scarce-first"
        /// Queue order, first eligible host with a free slot (the naive baseline).
        case firstFit = "first-fit"
    }

    /// A host as the policy sees it at one moment.
    public struct HostState: Sendable {
        /// The host's current inventory definition.
        public var host: Host
        /// Probe facts, if the host was probed.
        public var facts: HostFacts?
        /// Expected end times (seconds since the start) of the builds running on it.
        public var busyUntil: [Double]
        /// False when the host takes no new work (draining, quarantined, being checked).
        public var accepting: Bool

        /// Creates a host state.
        public init(host: Host, facts: HostFacts? = nil, busyUntil: [Double] = [], accepting: Bool = true) {
            self.host = host; self.facts = facts; self.busyUntil = busyUntil; self.accepting = accepting
        }
    }

    /// A job waiting to be placed.
    public struct Request: Sendable {
        /// The job.
        public var job: BuildJob
        /// Hosts to avoid if any other eligible host is in service (where its build failed).
        public var avoid: Set<String>
        /// Hosts never to use for it (where its build failed in a way that would recur).
        public var exclude: Set<String>

        /// Creates a request.
        public init(job: BuildJob, avoid: Set<String> = [], exclude: Set<String> = []) {
            self.job = job; self.avoid = avoid; self.exclude = exclude
        }
    }

    /// Where and when the policy expects one job to run.
    public struct Placement: Sendable, Hashable {
        /// Index of the request in the queue given to ``plan(queue:hosts:now:durations:complete:)``.
        public var request: Int
        /// Index of the host in the host list given.
        public var host: Int
        /// Expected start (seconds since the start of the run); equal to `now` when it starts now.
        public var start: Double
        /// Expected finish.
        public var finish: Double
    }

    /// The result of planning.
    public struct Plan: Sendable {
        /// Placements in the order they were decided; those with `start == now` are to start now.
        public var placements: [Placement]
        /// Requests no accepting host is eligible for at the moment.
        public var unplaceable: [Int]
        /// The moment the plan was made.
        public var now: Double

        /// The placements that start now, on a free slot.
        public var dispatch: [Placement] { placements.filter { $0.start == now } }
    }

    /// The strategy in use.
    public var strategy: Strategy

    /// Creates a policy.
    public init(strategy: Strategy = .scarceFirst) { self.strategy = strategy }

    /// Plans the queue against the hosts.
    ///
    /// With `complete` false (what the scheduler uses) planning stops once every free slot has
    /// been given out, since later placements would not start now anyway; with `complete` true
    /// every request gets a place on some host's timeline.
    public func plan(queue: [Request], hosts: [HostState], now: Double, durations: DurationModel,
                     complete: Bool = false) -> Plan {
        var ctx = Context(queue: queue, hosts: hosts, now: now, durations: durations)
        switch strategy {
        case .scarceFirst: return ctx.scarceFirst(complete: complete)
        case .firstFit: return ctx.firstFit()
        }
    }
}

extension PlacementPolicy {
    /// Working state of one planning pass. Eligibility and estimates are computed once per
    /// (eligibility key × host) and (variant × host) rather than per job, which is what lets a
    /// pass over 10,000 jobs and 1,000 hosts finish in milliseconds.
    struct Context {
        let queue: [Request]
        let hosts: [HostState]
        let now: Double
        /// Per request: its eligibility class.
        var classOf: [Int] = []
        /// Per class: the accepting hosts able to build it, in inventory order.
        var classHosts: [[Int]] = []
        /// Per request: its duration class.
        var durationOf: [Int] = []
        /// Per duration class: expected seconds on each host (NaN where not computed).
        var estimates: [[Double]] = []
        /// Per host: expected free times of its slots, ascending.
        var timelines: [[Double]]
        var freeNow: Int = 0

        init(queue: [Request], hosts: [HostState], now: Double, durations: DurationModel) {
            self.queue = queue; self.hosts = hosts; self.now = now
            timelines = hosts.map { state in
                guard state.accepting else { return [] }
                let free = max(0, state.host.slots - state.busyUntil.count)
                // A build past its expected end is assumed to end very soon, but not now: its
                // slot is not free until it really ends.
                return Array(repeating: now, count: free) + state.busyUntil.map { max($0, now + 1) }.sorted()
            }
            freeNow = timelines.reduce(0) { $0 + $1.prefix { $0 == now }.count }

            // Jobs of one variant and arch share flags; only Python and GCC (probe facts) differ.
            // So: the flag checks once per (variant, arch) and host, the fact checks per class.
            struct JobKey: Hashable { var package: String; var arch: Arch; var python: PythonVersion }
            var jobClass: [JobKey: Int] = [:]
            var keyIndex: [EligibilityKey: Int] = [:]
            var flagsOK: [DurationModel.Key: [Bool]] = [:]
            var durationIndex: [DurationModel.Key: Int] = [:]
            struct Pair: Hashable { var c: Int; var d: Int }
            var filled = Set<Pair>()
            classOf.reserveCapacity(queue.count); durationOf.reserveCapacity(queue.count)
            for request in queue {
                let job = request.job
                let dkey = DurationModel.Key(package: job.variant.package, arch: job.arch)
                let jkey = JobKey(package: dkey.package, arch: dkey.arch, python: job.python)
                let c: Int
                if let known = jobClass[jkey] { c = known } else {
                    let key = EligibilityKey(job)
                    if let existing = keyIndex[key] { c = existing } else {
                        c = classHosts.count
                        keyIndex[key] = c
                        let flags = flagsOK[dkey] ?? hosts.map { Eligibility.isEligible(host: $0.host, job: job, facts: nil) }
                        flagsOK[dkey] = flags
                        classHosts.append(hosts.indices.filter { h in
                            flags[h] && !timelines[h].isEmpty
                                && (hosts[h].facts == nil || Eligibility.isEligible(host: hosts[h].host, job: job, facts: hosts[h].facts))
                        })
                    }
                    jobClass[jkey] = c
                }
                classOf.append(c)
                let d: Int
                if let existing = durationIndex[dkey] { d = existing } else {
                    d = estimates.count
                    durationIndex[dkey] = d
                    estimates.append(Array(repeating: .nan, count: hosts.count))
                }
                durationOf.append(d)
                guard filled.insert(Pair(c: c, d: d)).inserted else { continue }
                for h in classHosts[c] where estimates[d][h].isNaN {
                    estimates[d][h] = durations.expectedSeconds(for: job, on: hosts[h].host)
                }
            }
        }

        /// Candidate hosts for a request: its class's hosts, minus the ones to avoid when others exist.
        func candidates(_ r: Int) -> [Int] {
            let exclude = queue[r].exclude
            let all = exclude.isEmpty ? classHosts[classOf[r]] : classHosts[classOf[r]].filter { !exclude.contains(hosts[$0].host.name) }
            let avoid = queue[r].avoid
            guard !avoid.isEmpty else { return all }
            let preferred = all.filter { !avoid.contains(hosts[$0].host.name) }
            return preferred.isEmpty ? all : preferred
        }

        mutating func take(host h: Int, request r: Int) -> Placement {
            let start = timelines[h][0]
            let finish = start + estimates[durationOf[r]][h]
            if start == now { freeNow -= 1 }
            // Keep the slot list sorted: the taken slot's new free time moves right.
            var i = 0
            timelines[h][0] = finish
            while i + 1 < timelines[h].count, timelines[h][i] > timelines[h][i + 1] {
                timelines[h].swapAt(i, i + 1); i += 1
            }
            return Placement(request: r, host: h, start: start, finish: finish)
        }

        mutating func scarceFirst(complete: Bool) -> Plan {
            // Demand on each host: how many queued jobs depend on it, each job counting 1/|eligible|.
            var demand = Array(repeating: 0.0, count: hosts.count)
            var classCount = Array(repeating: 0, count: classHosts.count)
            for c in classOf { classCount[c] += 1 }
            for (c, hs) in classHosts.enumerated() where !hs.isEmpty {
                let share = Double(classCount[c]) / Double(hs.count)
                for h in hs { demand[h] += share }
            }
            // Priority: fewest eligible hosts, then longest expected duration on the fastest of them.
            var shortest = Array(repeating: 0.0, count: queue.count)
            var unplaceable: [Int] = []
            var order: [Int] = []
            order.reserveCapacity(queue.count)
            for r in queue.indices {
                let hs = classHosts[classOf[r]]
                if hs.isEmpty { unplaceable.append(r); continue }
                let est = estimates[durationOf[r]]
                shortest[r] = hs.reduce(Double.infinity) { min($0, est[$1]) }
                order.append(r)
            }
            let classSize = classHosts.map(\.count)
            order.sort { a, b in
                let ca = classSize[classOf[a]], cb = classSize[classOf[b]]
                if ca != cb { return ca < cb }
                if shortest[a] != shortest[b] { return shortest[a] > shortest[b] }
                return a < b
            }
            var placements: [Placement] = []
            placements.reserveCapacity(complete ? order.count : min(order.count, freeNow))
            for r in order {
                if !complete, freeNow == 0 { break }
                let est = estimates[durationOf[r]]
                var best = -1
                var bestFinish = Double.infinity
                for h in candidates(r) {
                    let finish = timelines[h][0] + est[h]
                    if finish < bestFinish - 1e-9
                        || (abs(finish - bestFinish) <= 1e-9 && best >= 0 && demand[h] < demand[best]) {
                        best = h; bestFinish = finish
                    }
                }
                guard best >= 0 else { unplaceable.append(r); continue }
                placements.append(take(host: best, request: r))
            }
            return Plan(placements: placements, unplaceable: unplaceable, now: now)
        }

        mutating func firstFit() -> Plan {
            var placements: [Placement] = []
            var unplaceable: [Int] = []
            for r in queue.indices {
                let hs = candidates(r)
                if hs.isEmpty { unplaceable.append(r); continue }
                if freeNow == 0 { continue }
                if let h = hs.first(where: { timelines[$0][0] == now }) {
                    placements.append(take(host: h, request: r))
                }
            }
            return Plan(placements: placements, unplaceable: unplaceable, now: now)
        }
    }
}
