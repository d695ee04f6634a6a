import FarmCore
import Inventory
import Recipes

/// One build the scheduler asks a runner to do.
public struct RunTicket: Sendable, Hashable {
    /// Unique within a scheduler run.
    public var id: Int
    /// The job.
    public var job: BuildJob
    /// The host, as the inventory defined it when the job was placed.
    public var host: Host
    /// 1-based attempt number over all attempts at the job.
    public var attempt: Int
    /// Expected seconds the build takes on this host.
    public var expectedSeconds: Double
}

/// Something the scheduling state machine was told.
enum SchedulerInput: Sendable {
    case runEnded(id: Int, outcome: JobOutcome)
    case healthChecked(host: String, healthy: Bool)
    case healthRefused(host: String, reason: String)
    case inventory(Inventory)
    case inventoryRejected(String)
    case facts([String: HostFacts])
    case tick
    case cancel
}

/// Something the scheduling state machine wants done.
enum SchedulerCommand: Sendable {
    case run(RunTicket)
    case checkHealth(Host)
}

/// The scheduler's decisions as a pure state machine: inputs (a build ended, a health check
/// answered, the inventory changed, time passed) go in with the current time, commands (start
/// this build, check that host) and progress updates come out.
///
/// Keeping every decision here, free of clocks, tasks and I/O, is what lets the same logic run
/// under the ``Scheduler`` actor with real builds and under ``Simulator`` with simulated time,
/// deterministically.
struct SchedulerCore: Sendable {
    enum Phase: Sendable, Equatable {
        case queued, running(Int), succeeded, failed(String), cancelled
        var isTerminal: Bool {
            switch self { case .succeeded, .failed, .cancelled: true; default: false }
        }
    }
    struct JobRecord: Sendable {
        var job: BuildJob
        var phase: Phase = .queued
        var attempts = 0
        var buildFailures = 0
        var hostFailures = 0
        var avoid: Set<String> = []
        /// Hosts the job failed on in a way that would recur there: never placed there again.
        var exclude: Set<String> = []
        var history: [ScheduleReport.Attempt] = []
    }
    struct RunRecord: Sendable {
        var ticket: RunTicket
        var job: Int
        var start: Double
        var expectedEnd: Double
    }
    enum Health: Sendable, Equatable {
        case healthy, quarantined(until: Double), checking, lost
        /// Taken out of the run for a reason retrying cannot fix.
        case refused(String)
    }
    struct HostRecord: Sendable {
        var host: Host
        var present = true
        var health = Health.healthy
        var failures = 0
        var running: Set<Int> = []
    }

    let configuration: SchedulerConfiguration
    let policy: PlacementPolicy
    private(set) var durations: DurationModel
    private(set) var facts: [String: HostFacts]
    private(set) var jobs: [JobRecord]
    private(set) var hostOrder: [String] = []
    private(set) var hosts: [String: HostRecord] = [:]
    private(set) var runs: [Int: RunRecord] = [:]
    private(set) var busySeconds: [String: Double] = [:]
    private(set) var observed: [DurationSample] = []
    private var nextRunID = 1
    private(set) var checksInFlight: Set<String> = []
    private(set) var cancelling = false
    private var recheckSatisfiable = true
    private var queuedCount: Int
    private(set) var now: Double = 0
    private(set) var lastEnd: Double = 0
    /// Updates produced since the last ``drainUpdates()``.
    private var outbox: [ProgressUpdate] = []
    private var finishedAnnounced = false

    init(jobs: [BuildJob], inventory: Inventory, configuration: SchedulerConfiguration,
         facts: [String: HostFacts], durations: DurationModel) {
        self.configuration = configuration
        self.policy = PlacementPolicy(strategy: configuration.strategy)
        self.durations = durations
        self.facts = facts
        self.jobs = jobs.map { JobRecord(job: $0) }
        self.queuedCount = jobs.count
        for host in inventory.hosts {
            hostOrder.append(host.name)
            hosts[host.name] = HostRecord(host: host)
        }
        // Hosts whose probe found a permanent refusal start out of the run.
        for (name, fact) in facts {
            guard let reason = fact.refusal else { continue }
            self.facts[name] = nil
            if hosts[name] != nil {
                hosts[name]?.health = .refused(reason)
                outbox.append(ProgressUpdate(time: 0, event: .hostRefused(name, reason: reason)))
            }
        }
    }

    // MARK: Inputs

    /// Starts the run at `time`.
    mutating func start(at time: Double) -> [SchedulerCommand] {
        now = time
        for j in jobs { emit(.jobQueued(j.job)) }
        return schedule()
    }

    /// Applies one input at `time`.
    mutating func handle(_ input: SchedulerInput, at time: Double) -> [SchedulerCommand] {
        now = max(now, time)
        switch input {
        case let .runEnded(id, outcome): runEnded(id, outcome)
        case let .healthChecked(name, healthy): healthChecked(name, healthy)
        case let .healthRefused(name, reason):
            checksInFlight.remove(name)
            refuse(name, reason: reason)
        case let .inventory(inventory): apply(inventory)
        case let .inventoryRejected(problem): emit(.inventoryRejected(problem))
        case let .facts(new):
            for (name, fact) in new {
                if let reason = fact.refusal { refuse(name, reason: reason) } else { facts[name] = fact }
            }
            recheckSatisfiable = true
        case .tick: break
        case .cancel: cancel()
        }
        return schedule()
    }

    mutating func drainUpdates() -> [ProgressUpdate] {
        defer { outbox.removeAll(keepingCapacity: true) }
        return outbox
    }

    /// True when every job has reached a final state and no build is running.
    var isFinished: Bool { queuedCount == 0 && runs.isEmpty }

    /// The next time something is due (a quarantine ending), if any.
    var nextWakeup: Double? {
        hosts.values.compactMap { r -> Double? in
            if case let .quarantined(until) = r.health, r.present { return until }
            return nil
        }.min()
    }

    func report() -> ScheduleReport {
        ScheduleReport(
            results: jobs.map { r in
                let (status, reason): (ScheduleReport.Status, String?) = switch r.phase {
                case .succeeded: (.succeeded, nil)
                case let .failed(why): (.failed, why)
                case .cancelled: (.cancelled, "the run was cancelled")
                case .queued, .running: (.cancelled, "the run ended before the job did")
                }
                return ScheduleReport.JobResult(job: r.job, status: status, reason: reason, attempts: r.history)
            },
            makespan: lastEnd, busySeconds: busySeconds, cancelled: cancelling, observedDurations: observed)
    }

    // MARK: Handlers

    private mutating func emit(_ event: ProgressEvent) {
        outbox.append(ProgressUpdate(time: now, event: event))
    }

    private mutating func finish(_ j: Int, _ phase: Phase) {
        if jobs[j].phase == .queued { queuedCount -= 1 }
        jobs[j].phase = phase
        switch phase {
        case let .failed(why): emit(.jobFailed(jobs[j].job, reason: why))
        case .cancelled: emit(.jobCancelled(jobs[j].job))
        default: break
        }
    }

    private mutating func requeue(_ j: Int) {
        jobs[j].phase = .queued
        queuedCount += 1
        emit(.jobQueued(jobs[j].job))
    }

    private mutating func runEnded(_ id: Int, _ outcome: JobOutcome) {
        guard let run = runs.removeValue(forKey: id) else { return }
        let name = run.ticket.host.name
        hosts[name]?.running.remove(id)
        busySeconds[name, default: 0] += now - run.start
        lastEnd = max(lastEnd, now)
        let j = run.job
        jobs[j].history.append(.init(host: name, number: run.ticket.attempt, start: run.start, end: now, outcome: outcome))
        let job = jobs[j].job
        if case .succeeded = outcome {
            jobs[j].phase = .succeeded
            let sample = DurationSample(job: job, host: run.ticket.host, seconds: now - run.start)
            durations.record(sample)
            observed.append(sample)
            hosts[name]?.failures = 0
            emit(.jobFinished(job, host: name, attempt: run.ticket.attempt, seconds: now - run.start))
            return
        }
        if cancelling { jobs[j].phase = .cancelled; emit(.jobCancelled(job)); return }
        switch outcome {
        case .succeeded: break
        case let .buildFailed(message):
            jobs[j].buildFailures += 1
            jobs[j].avoid.insert(name)
            if jobs[j].buildFailures >= configuration.maxBuildAttempts {
                jobs[j].phase = .failed("build failed \(jobs[j].buildFailures) time(s), last on '\(name)': \(message)")
                emit(.jobFailed(job, reason: "build failed \(jobs[j].buildFailures) time(s), last on '\(name)': \(message)"))
            } else {
                emit(.jobRequeued(job, host: name, attempt: run.ticket.attempt, reason: "build failed: \(message)"))
                requeue(j)
            }
        case let .buildFailedOnHost(message):
            jobs[j].buildFailures += 1
            jobs[j].avoid.insert(name)
            jobs[j].exclude.insert(name)
            let attempts = jobs[j].buildFailures
            if attempts >= configuration.maxBuildAttempts {
                let why = "build failed \(attempts) time(s), last on '\(name)': \(message)"
                jobs[j].phase = .failed(why)
                emit(.jobFailed(job, reason: why))
            } else if !hasOtherHost(for: jobs[j]) {
                let why = "build failed on '\(name)': \(message); not retried: it would fail the same way there, and no other host can build it"
                jobs[j].phase = .failed(why)
                emit(.jobFailed(job, reason: why))
            } else {
                emit(.jobRequeued(job, host: name, attempt: run.ticket.attempt, reason: "build failed: \(message) (retried on another host only)"))
                requeue(j)
            }
        case let .hostFailed(message):
            jobs[j].hostFailures += 1
            quarantine(name, reason: message)
            if jobs[j].hostFailures >= configuration.maxHostFailuresPerJob {
                let why = "lost its build host \(jobs[j].hostFailures) time(s), last '\(name)': \(message)"
                jobs[j].phase = .failed(why)
                emit(.jobFailed(job, reason: why))
            } else {
                emit(.jobRequeued(job, host: name, attempt: run.ticket.attempt, reason: "host failure: \(message)"))
                requeue(j)
            }
        case let .hostRefused(message):
            refuse(name, reason: message)
            emit(.jobRequeued(job, host: name, attempt: run.ticket.attempt, reason: "host refused: \(message)"))
            requeue(j)
        case .cancelled:
            jobs[j].phase = .cancelled
            emit(.jobCancelled(job))
        }
    }

    /// Whether a host the job has not been excluded from could ever build it (present, not given
    /// up or refused, eligible; busy, draining or quarantined hosts count, since they may take it later).
    private func hasOtherHost(for record: JobRecord) -> Bool {
        hostOrder.contains { name in
            guard let r = hosts[name], r.present, r.health != .lost, !record.exclude.contains(name) else { return false }
            if case .refused = r.health { return false }
            return Eligibility.reasons(host: r.host, job: record.job, facts: facts[name]).allSatisfy { $0 == .draining }
        }
    }

    /// Takes a host out of the run for good (until an inventory edit changes it).
    private mutating func refuse(_ name: String, reason: String) {
        guard let r = hosts[name] else { return }
        if case .refused = r.health { return }
        hosts[name]?.health = .refused(reason)
        checksInFlight.remove(name)
        recheckSatisfiable = true
        emit(.hostRefused(name, reason: reason))
    }

    private mutating func quarantine(_ name: String, reason: String) {
        guard var r = hosts[name] else { return }
        switch r.health {
        case .quarantined, .lost, .refused: return  // already out: one incident, one backoff step
        case .healthy, .checking: break
        }
        r.failures += 1
        if let limit = configuration.quarantine.giveUpAfter, r.failures >= limit {
            r.health = .lost
            hosts[name] = r
            recheckSatisfiable = true
            emit(.hostLost(name, reason: "\(r.failures) consecutive failures, last: \(reason)"))
        } else {
            let until = now + configuration.quarantine.backoff(failures: r.failures)
            r.health = .quarantined(until: until)
            hosts[name] = r
            emit(.hostQuarantined(name, until: until, failures: r.failures, reason: reason))
        }
    }

    private mutating func healthChecked(_ name: String, _ healthy: Bool) {
        checksInFlight.remove(name)
        guard let r = hosts[name], r.health == .checking else { return }
        if healthy {
            hosts[name]?.health = .healthy
            emit(.hostRecovered(name))
        } else {
            quarantine(name, reason: "health check failed")
        }
    }

    private mutating func apply(_ inventory: Inventory) {
        var seen = Set<String>()
        for host in inventory.hosts {
            seen.insert(host.name)
            if var r = hosts[host.name] {
                let wasPresent = r.present
                if !r.present { r.present = true; emit(.hostJoined(host.name)) }
                if r.host != host {
                    let old = r.host
                    r.host = host
                    if wasPresent {
                        if host.drain != old.drain { emit(host.drain ? .hostDraining(host.name) : .hostResumed(host.name)) }
                        var o = old, n = host
                        o.drain = false; n.drain = false
                        if o != n { emit(.hostChanged(host.name)) }
                    }
                    // An edit of a host given up (or refused) is taken as word that it was fixed.
                    if r.health == .lost { r.health = .healthy; r.failures = 0 }
                    if case .refused = r.health { r.health = .healthy; r.failures = 0 }
                }
                hosts[host.name] = r
            } else {
                hostOrder.append(host.name)
                hosts[host.name] = HostRecord(host: host)
                emit(.hostJoined(host.name))
                if host.drain { emit(.hostDraining(host.name)) }
            }
        }
        for name in hostOrder where !seen.contains(name) && hosts[name]?.present == true {
            hosts[name]?.present = false
            emit(.hostLeft(name))
        }
        // Inventory order for present hosts (it is the tie-break of placement), departed ones after.
        hostOrder = inventory.hosts.map(\.name) + hostOrder.filter { !seen.contains($0) }
        recheckSatisfiable = true
    }

    private mutating func cancel() {
        guard !cancelling else { return }
        cancelling = true
        for j in jobs.indices where jobs[j].phase == .queued { finish(j, .cancelled) }
    }

    // MARK: Placement

    /// Hosts that could ever take a job (present, not given up), ignoring drain, quarantine and slots.
    private func reasonsNoHost(for job: BuildJob, excluding exclude: Set<String> = [], ignoringDrain: Bool) -> (possible: Bool, why: String) {
        var parts: [String] = []
        for name in hostOrder {
            guard let r = hosts[name], r.present else { continue }
            if exclude.contains(name) { parts.append("'\(name)' already failed to build it in a way that would recur"); continue }
            var reasons = Eligibility.reasons(host: r.host, job: job, facts: facts[name])
            if ignoringDrain { reasons.removeAll { $0 == .draining } }
            if case let .refused(reason) = r.health, reasons.isEmpty || r.host.arch == job.arch {
                // The refusal is what the user must fix first: say it, with its reason, every time.
                reasons = reasons.isEmpty ? [.refused(reason)] : [.refused(reason)] + reasons
            } else if reasons.isEmpty {
                switch r.health {
                case .lost: reasons = [.unreachable]
                case .quarantined, .checking: if !ignoringDrain { reasons = [.quarantined] }
                case .healthy, .refused: break
                }
            }
            if reasons.isEmpty { return (true, "") }
            parts.append("'\(name)' " + reasons.map(\.description).joined(separator: "; "))
        }
        if parts.isEmpty { return (false, "the inventory has no hosts") }
        return (false, parts.joined(separator: "; "))
    }

    private mutating func failUnsatisfiable() {
        var verdicts: [EligibilityKey: (Bool, String)] = [:]
        for j in jobs.indices where jobs[j].phase == .queued {
            let key = EligibilityKey(jobs[j].job)
            let exclude = jobs[j].exclude
            let verdict = (exclude.isEmpty ? verdicts[key] : nil) ?? reasonsNoHost(for: jobs[j].job, excluding: exclude, ignoringDrain: true)
            if exclude.isEmpty { verdicts[key] = verdict }
            if !verdict.0 { finish(j, .failed("no host can build it: " + verdict.1)) }
        }
    }

    private mutating func schedule() -> [SchedulerCommand] {
        var commands: [SchedulerCommand] = []
        // Quarantines that ended: check the host before it gets work again.
        for name in hostOrder {
            guard let r = hosts[name], r.present, case let .quarantined(until) = r.health, until <= now + 1e-6 else { continue }
            hosts[name]?.health = .checking
            checksInFlight.insert(name)
            commands.append(.checkHealth(r.host))
        }
        if cancelling { announceIfFinished(); return commands }
        if recheckSatisfiable { recheckSatisfiable = false; failUnsatisfiable() }

        var queueIndex: [Int] = []
        var requests: [PlacementPolicy.Request] = []
        for j in jobs.indices where jobs[j].phase == .queued {
            queueIndex.append(j)
            requests.append(.init(job: jobs[j].job, avoid: jobs[j].avoid, exclude: jobs[j].exclude))
        }
        if !requests.isEmpty {
            var states: [PlacementPolicy.HostState] = []
            var names: [String] = []
            for name in hostOrder {
                guard let r = hosts[name], r.present else { continue }
                names.append(name)
                states.append(.init(host: r.host, facts: facts[name],
                                    busyUntil: r.running.compactMap { runs[$0]?.expectedEnd },
                                    accepting: r.health == .healthy && !r.host.drain))
            }
            let plan = policy.plan(queue: requests, hosts: states, now: now, durations: durations)
            for p in plan.dispatch {
                let j = queueIndex[p.request]
                let host = states[p.host].host
                jobs[j].attempts += 1
                let ticket = RunTicket(id: nextRunID, job: jobs[j].job, host: host, attempt: jobs[j].attempts,
                                       expectedSeconds: p.finish - p.start)
                nextRunID += 1
                runs[ticket.id] = RunRecord(ticket: ticket, job: j, start: now, expectedEnd: p.finish)
                hosts[names[p.host]]?.running.insert(ticket.id)
                jobs[j].phase = .running(ticket.id)
                queuedCount -= 1
                emit(.jobPlaced(ticket.job, host: host.name, attempt: ticket.attempt, expectedSeconds: ticket.expectedSeconds))
                commands.append(.run(ticket))
            }
        }
        // Nothing running, nothing to wait for: what is still queued can never start (its hosts
        // are all draining or given up). Fail it with the reasons rather than wait forever.
        if runs.isEmpty, checksInFlight.isEmpty, commands.isEmpty, nextWakeup == nil, queuedCount > 0 {
            for j in jobs.indices where jobs[j].phase == .queued {
                let verdict = reasonsNoHost(for: jobs[j].job, excluding: jobs[j].exclude, ignoringDrain: false)
                finish(j, .failed(verdict.possible ? "it could not be placed on any host"
                                                   : "no host in service can build it: " + verdict.why))
            }
        }
        announceIfFinished()
        return commands
    }

    private mutating func announceIfFinished() {
        guard isFinished, !finishedAnnounced else { return }
        finishedAnnounced = true
        var s = 0, f = 0, c = 0
        for j in jobs {
            switch j.phase {
            case .succeeded: s += 1
            case .failed: f += 1
            default: c += 1
            }
        }
        emit(.finished(succeeded: s, failed: f, cancelled: c))
    }
}
