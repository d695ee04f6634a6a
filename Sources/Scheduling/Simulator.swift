import FarmCore
import HeapModule
import Inventory
import Recipes

/// Something that happens to the farm during a simulated run.
public enum Incident: Sendable, Hashable, Codable {
    /// The host dies at `at` seconds (its builds lose their connection, it fails health checks),
    /// and comes back at `revivesAt` if given.
    case hostDies(String, at: Double, revivesAt: Double?)
    /// The host is added to the inventory at `at` seconds.
    case hostJoins(Host, at: Double)
    /// The host is set to `drain: true` at `at` seconds.
    case hostDrains(String, at: Double)
    /// The host is removed from the inventory at `at` seconds.
    case hostLeaves(String, at: Double)

    /// When it happens, in seconds since the start.
    public var time: Double {
        switch self {
        case let .hostDies(_, t, _), let .hostJoins(_, t), let .hostDrains(_, t), let .hostLeaves(_, t): t
        }
    }
}

/// A simulated release: an inventory, jobs, a duration model and incidents.
public struct SimulationScenario: Sendable {
    /// The hosts at the start.
    public var inventory: Inventory
    /// The jobs.
    public var jobs: [BuildJob]
    /// Expected durations: what the scheduler plans with (the recipe's estimates, or history).
    public var durations: DurationModel
    /// What builds really take, varied by `jitter`; `nil`: exactly what ``durations`` expects.
    /// A scenario whose plan and reality differ shows what learning durations is worth.
    public var actualDurations: DurationModel?
    /// Relative variation of simulated build durations (0.1: ±10 %), drawn from the seed.
    public var jitter: Double
    /// Probability that an attempt ends in a build failure, drawn from the seed.
    public var buildFailureRate: Double
    /// Things that happen during the run.
    public var incidents: [Incident]
    /// Probe facts by host name.
    public var facts: [String: HostFacts]
    /// Scheduler settings, including the placement strategy.
    public var configuration: SchedulerConfiguration
    /// The seed of every random draw: the same seed gives the same run.
    public var seed: UInt64

    /// Creates a scenario.
    public init(inventory: Inventory, jobs: [BuildJob], durations: DurationModel = DurationModel(),
                actualDurations: DurationModel? = nil, jitter: Double = 0,
                buildFailureRate: Double = 0, incidents: [Incident] = [], facts: [String: HostFacts] = [:],
                configuration: SchedulerConfiguration = SchedulerConfiguration(), seed: UInt64 = 1) {
        self.inventory = inventory; self.jobs = jobs; self.durations = durations; self.actualDurations = actualDurations
        self.jitter = jitter
        self.buildFailureRate = buildFailureRate; self.incidents = incidents; self.facts = facts
        self.configuration = configuration; self.seed = seed
    }
}

/// What a simulated run produced.
public struct SimulationResult: Sendable, Codable {
    /// Use of one host.
    public struct HostUsage: Sendable, Codable, Hashable {
        /// Host name.
        public var name: String
        /// Its build slots.
        public var slots: Int
        /// Its speed factor.
        public var speed: Double
        /// Seconds spent building, summed over slots.
        public var busySeconds: Double
        /// busy / (slots × makespan).
        public var utilisation: Double
    }

    /// The placement strategy used.
    public var strategy: PlacementPolicy.Strategy
    /// The seed used.
    public var seed: UInt64
    /// Seconds until the last job ended.
    public var makespan: Double
    /// The lower bound of the makespan.
    public var lowerBound: LowerBound
    /// Seconds one host of speed 1.0 would need building every job in sequence (the old pipeline).
    public var sequentialSeconds: Double
    /// Use of each host.
    public var hosts: [HostUsage]
    /// Every attempt, as timeline bars.
    public var segments: [Timeline.Segment]
    /// The scheduler's report.
    public var report: ScheduleReport
    /// The progress feed, as text lines.
    public var events: [String]

    /// makespan / lower bound.
    public var ratioToLowerBound: Double { lowerBound.seconds > 0 ? makespan / lowerBound.seconds : 1 }

    /// The timeline chart.
    public func timeline(width: Int = 72) -> String {
        Timeline.render(segments: segments, hosts: hosts.map { ($0.name, $0.slots) }, span: makespan, width: width)
    }
}

/// Runs the scheduler's decision logic against simulated time and simulated hosts.
///
/// The decisions come from the same state machine the ``Scheduler`` actor drives; here a
/// discrete-event loop drives it instead: builds "take" their duration from the model (varied
/// by the seeded jitter), dead hosts lose their builds' connections and fail health checks,
/// inventory edits arrive at their time. Events at the same time are handled in the order they
/// were scheduled, so a run is a pure function of its scenario.
public enum Simulator {
    /// How long a build on a dead host takes to report "unreachable".
    public static let connectTimeout = 10.0
    /// How long a health check takes.
    public static let healthCheckSeconds = 5.0

    private enum Kind { case runEnds(Int, JobOutcome), health(String), incident(Int), revive(String), tick }
    private struct Event: Comparable {
        var time: Double
        var seq: Int
        var kind: Kind
        static func == (l: Event, r: Event) -> Bool { l.time == r.time && l.seq == r.seq }
        static func < (l: Event, r: Event) -> Bool { (l.time, l.seq) < (r.time, r.seq) }
    }

    /// The random draws of one attempt: seeded by the scenario's seed and an FNV-1a hash of the
    /// job's id and the attempt number.
    static func draws(seed: UInt64, job: String, attempt: Int) -> SplitMix64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in job.utf8 { h = (h ^ UInt64(byte)) &* 0x100_0000_01b3 }
        h = (h ^ UInt64(attempt)) &* 0x100_0000_01b3
        return SplitMix64(seed: seed ^ h)
    }

    /// Runs the scenario to the end.
    public static func run(_ scenario: SimulationScenario) -> SimulationResult {
        var core = SchedulerCore(jobs: scenario.jobs, inventory: scenario.inventory,
                                 configuration: scenario.configuration, facts: scenario.facts,
                                 durations: scenario.durations)
        var inventory = scenario.inventory
        var queue = Heap<Event>()
        var seq = 0
        func push(_ time: Double, _ kind: Kind) { queue.insert(Event(time: time, seq: seq, kind: kind)); seq += 1 }
        for (i, incident) in scenario.incidents.enumerated() { push(incident.time, .incident(i)) }

        var dead = Set<String>()
        var runHost: [Int: (host: Host, start: Double, slot: Int, job: BuildJob)] = [:]
        var voided = Set<Int>()
        var slotsInUse: [String: Set<Int>] = [:]
        var segments: [Timeline.Segment] = []
        var events: [String] = []
        var armed = Set<Double>()
        var allHosts: [String: Host] = [:]
        var hostOrder: [String] = []
        func remember(_ h: Host) { if allHosts[h.name] == nil { hostOrder.append(h.name) }; allHosts[h.name] = h }
        scenario.inventory.hosts.forEach(remember)
        var now = 0.0

        func execute(_ commands: [SchedulerCommand]) {
            for u in core.drainUpdates() { events.append(u.description) }
            for command in commands {
                switch command {
                case let .run(t):
                    events.append(ProgressUpdate(time: now, event: .jobStarted(t.job, host: t.host.name, attempt: t.attempt)).description)
                    var used = slotsInUse[t.host.name, default: []]
                    let slot = (1...).first { !used.contains($0) }!
                    used.insert(slot); slotsInUse[t.host.name] = used
                    runHost[t.id] = (t.host, now, slot, t.job)
                    if dead.contains(t.host.name) {
                        push(now + connectTimeout, .runEnds(t.id, .hostFailed("unreachable (simulated)")))
                        continue
                    }
                    let mean = (scenario.actualDurations ?? scenario.durations).expectedSeconds(for: t.job, on: t.host)
                    // Each attempt's draws depend on the seed, the job and the attempt only, not on
                    // the order builds start in: two policies run on one seed see the same builds.
                    var rng = Self.draws(seed: scenario.seed, job: t.job.id, attempt: t.attempt)
                    let duration = mean * (1 + scenario.jitter * (2 * rng.nextUnit() - 1))
                    if scenario.buildFailureRate > 0, rng.nextUnit() < scenario.buildFailureRate {
                        push(now + duration * rng.nextUnit(), .runEnds(t.id, .buildFailed("simulated build failure")))
                    } else {
                        push(now + max(duration, 1), .runEnds(t.id, .succeeded))
                    }
                case let .checkHealth(host):
                    push(now + healthCheckSeconds, .health(host.name))
                }
            }
            if let wake = core.nextWakeup, !armed.contains(wake) {
                armed.insert(wake)
                push(max(wake, now), .tick)
            }
        }

        func ended(_ id: Int, _ outcome: JobOutcome) {
            guard let r = runHost.removeValue(forKey: id) else { return }
            slotsInUse[r.host.name]?.remove(r.slot)
            segments.append(Timeline.Segment(host: r.host.name, slot: r.slot, job: r.job.id, variant: r.job.variant.shortName,
                                             start: r.start, end: now, succeeded: outcome == .succeeded))
            execute(core.handle(.runEnded(id: id, outcome: outcome), at: now))
        }

        execute(core.start(at: 0))
        while !core.isFinished, let event = queue.popMin() {
            now = event.time
            switch event.kind {
            case let .runEnds(id, outcome):
                if voided.remove(id) != nil { continue }
                ended(id, outcome)
            case let .health(name):
                execute(core.handle(.healthChecked(host: name, healthy: !dead.contains(name)), at: now))
            case .tick:
                armed = armed.filter { $0 > now + 1e-6 }
                execute(core.handle(.tick, at: now))
            case let .revive(name):
                dead.remove(name)
            case let .incident(i):
                switch scenario.incidents[i] {
                case let .hostDies(name, _, revivesAt):
                    dead.insert(name)
                    if let revivesAt { push(revivesAt, .revive(name)) }
                    for (id, r) in runHost.sorted(by: { $0.key < $1.key }) where r.host.name == name {
                        voided.insert(id)
                        ended(id, .hostFailed("connection lost (simulated host death)"))
                    }
                case let .hostJoins(host, _):
                    inventory.hosts.removeAll { $0.name == host.name }
                    inventory.hosts.append(host)
                    remember(host)
                    execute(core.handle(.inventory(inventory), at: now))
                case let .hostDrains(name, _):
                    if let i = inventory.hosts.firstIndex(where: { $0.name == name }) { inventory.hosts[i].drain = true }
                    execute(core.handle(.inventory(inventory), at: now))
                case let .hostLeaves(name, _):
                    inventory.hosts.removeAll { $0.name == name }
                    execute(core.handle(.inventory(inventory), at: now))
                }
            }
        }

        let report = core.report()
        let makespan = report.makespan
        let joined = scenario.incidents.compactMap { if case let .hostJoins(h, _) = $0 { return h } else { return nil } }
        let lower = LowerBound.compute(jobs: scenario.jobs, hosts: scenario.inventory.hosts + joined.filter { j in !scenario.inventory.hosts.contains { $0.name == j.name } },
                                       facts: scenario.facts, durations: scenario.actualDurations ?? scenario.durations)
        let usage = hostOrder.map { name -> SimulationResult.HostUsage in
            let h = allHosts[name]!
            let busy = report.busySeconds[name] ?? 0
            return .init(name: name, slots: h.slots, speed: h.speed, busySeconds: busy,
                         utilisation: makespan > 0 ? busy / (Double(max(1, h.slots)) * makespan) : 0)
        }
        let sequential = scenario.jobs.reduce(0) { $0 + scenario.durations.baseSeconds(for: $1) }
        return SimulationResult(strategy: scenario.configuration.strategy, seed: scenario.seed, makespan: makespan,
                                lowerBound: lower, sequentialSeconds: sequential, hosts: usage,
                                segments: segments.sorted { ($0.start, $0.host, $0.slot) < ($1.start, $1.host, $1.slot) },
                                report: report, events: events)
    }
}

