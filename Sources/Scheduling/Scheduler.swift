import Inventory
import Recipes

/// Runs a set of build jobs on the inventory's hosts through a ``JobRunner``, placing them with
/// ``PlacementPolicy``, handling failures, and following inventory edits while it runs.
///
/// The decisions are made by a pure state machine (see ``Simulator``, which runs the same one
/// on simulated time); this actor is its shell: it starts builds and health checks as child
/// tasks, feeds their results back, and sleeps on the injected clock until the next quarantine
/// ends. It does no I/O of its own.
///
/// Failure handling:
/// - **Host failure** (unreachable, connection lost): the job goes back to the queue and is placed
///   on another eligible host; the host is quarantined with exponential backoff
///   (``QuarantinePolicy``), then health-checked and returned to service.
/// - **Build failure**: the job is retried, preferably on another host, until
///   ``SchedulerConfiguration/maxBuildAttempts`` attempts have failed.
/// - **No host can ever take a job** (no host in the inventory is eligible, or all that are have
///   been given up): the job fails at once with every host's reason; the others go on. A job
///   whose only hosts are draining waits while anything else is still running, then fails.
/// - **Cancellation** of the task calling ``run(inventoryChanges:)``: nothing new starts, queued
///   jobs are marked cancelled, running builds are cancelled (the runner must stop them) and
///   their real outcome is recorded, so the report is consistent: every job is exactly one of
///   succeeded, failed or cancelled.
///
/// Typical use by the release pipeline:
/// ```swift
/// let scheduler = Scheduler(jobs: jobs, inventory: inventory, runner: sshRunner, clock: ContinuousClock(),
///                           facts: probedFacts, durations: DurationModel(history: journal.durations))
/// let display = Task { for await update in scheduler.progress.subscribe() { render(update) } }
/// let watcher = InventoryWatcher(path: inventoryPath)
/// let report = await scheduler.run(inventoryChanges: watcher.changes(clock: ContinuousClock()))
/// journal.durations += report.observedDurations
/// ```
public actor Scheduler<C: Clock> where C.Duration == Swift.Duration {
    /// Progress of the run; finished when ``run(inventoryChanges:)`` returns.
    public nonisolated let progress: ProgressFeed
    private let runner: any JobRunner
    private let clock: C
    private var core: SchedulerCore
    private let mailbox = Mailbox<SchedulerInput>()
    private var started = false

    /// Creates a scheduler for `jobs` on `inventory`'s hosts.
    ///
    /// - Parameters:
    ///   - facts: probe facts by host name (hosts without facts are not ruled out on Python or GCC).
    ///   - durations: expected durations, with history from earlier runs if the caller has it.
    public init(jobs: [BuildJob], inventory: Inventory, runner: any JobRunner, clock: C,
                configuration: SchedulerConfiguration = SchedulerConfiguration(),
                facts: [String: HostFacts] = [:], durations: DurationModel = DurationModel(),
                progress: ProgressFeed = ProgressFeed()) {
        self.runner = runner
        self.clock = clock
        self.progress = progress
        self.core = SchedulerCore(jobs: jobs, inventory: inventory, configuration: configuration,
                                  facts: facts, durations: durations)
    }

    /// Replaces the inventory: new hosts get work, removed and draining hosts get none (their
    /// running builds finish), changed hosts are placed on with their new definition.
    public nonisolated func updateInventory(_ inventory: Inventory) { mailbox.post(.inventory(inventory)) }

    /// Reports an inventory edit that did not validate: it is ignored with a warning on the
    /// progress feed, and the last good inventory stays in force.
    public nonisolated func rejectInventory(problem: String) { mailbox.post(.inventoryRejected(problem)) }

    /// Applies one change reported by an ``InventoryWatcher``.
    public nonisolated func apply(_ change: InventoryChange) {
        switch change {
        case let .updated(inventory): updateInventory(inventory)
        case let .rejected(problem): rejectInventory(problem: problem)
        }
    }

    /// Adds or replaces probe facts of hosts (for example after probing a host that joined).
    public nonisolated func updateFacts(_ facts: [String: HostFacts]) { mailbox.post(.facts(facts)) }

    /// Runs every job to a final state and reports what happened.
    ///
    /// - Parameter inventoryChanges: inventory edits to follow while running, typically
    ///   ``InventoryWatcher/changes(clock:)``.
    public func run(inventoryChanges: AsyncStream<InventoryChange>? = nil) async -> ScheduleReport {
        precondition(!started, "a Scheduler runs once")
        started = true
        let origin = clock.now
        let clock = self.clock, mailbox = self.mailbox, runner = self.runner, progress = self.progress
        func elapsed() -> Double { origin.duration(to: clock.now).seconds }

        await withTaskCancellationHandler {
            await withTaskGroup(of: Void.self) { group in
                if let inventoryChanges {
                    group.addTask {
                        for await change in inventoryChanges {
                            switch change {
                            case let .updated(inventory): mailbox.post(.inventory(inventory))
                            case let .rejected(problem): mailbox.post(.inventoryRejected(problem))
                            }
                        }
                    }
                }
                var armed: Set<Double> = []
                func execute(_ commands: [SchedulerCommand]) {
                    let now = elapsed()
                    for u in core.drainUpdates() { progress.publish(u) }
                    for command in commands {
                        switch command {
                        case let .run(ticket):
                            progress.publish(ProgressUpdate(time: now, event: .jobStarted(ticket.job, host: ticket.host.name, attempt: ticket.attempt)))
                            group.addTask {
                                let outcome: JobOutcome
                                do { outcome = try await runner.run(job: ticket.job, on: ticket.host, attempt: ticket.attempt) }
                                catch { outcome = JobOutcome(classifying: error) }
                                mailbox.post(.runEnded(id: ticket.id, outcome: outcome))
                            }
                        case let .checkHealth(host):
                            group.addTask {
                                switch await runner.healthCheck(of: host) {
                                case .healthy: mailbox.post(.healthChecked(host: host.name, healthy: true))
                                case .unhealthy: mailbox.post(.healthChecked(host: host.name, healthy: false))
                                case let .refused(reason): mailbox.post(.healthRefused(host: host.name, reason: reason))
                                }
                            }
                        }
                    }
                    if let wake = core.nextWakeup, !armed.contains(wake) {
                        armed.insert(wake)
                        group.addTask {
                            do {
                                try await clock.sleep(until: origin.advanced(by: .seconds(wake)), tolerance: nil)
                                mailbox.post(.tick)
                            } catch {}
                        }
                    }
                }

                execute(core.start(at: elapsed()))
                while !core.isFinished {
                    let input = await mailbox.next()
                    let now = elapsed()
                    if case .tick = input { armed = armed.filter { $0 > now + 1e-6 } }
                    execute(core.handle(input, at: now))
                }
                group.cancelAll()
            }
        } onCancel: {
            mailbox.post(.cancel)
        }
        progress.finish()
        return core.report()
    }
}
