import FarmCore
import FarmTestSupport
import Inventory
import Recipes
import Scheduling
import Testing

@Suite("Scheduler with a fake runner and a virtual clock")
struct SchedulerTests {
    let common = Fixture.variant("common", minutes: 30)

    func isQuarantine(_ host: String) -> (ProgressEvent) -> Bool {
        { if case let .hostQuarantined(h, _, _, _) = $0 { h == host } else { false } }
    }

    @Test func aJobWhoseHostDiesMidBuildCompletesElsewhereExactlyOnce() async throws {
        try await withDeadlockGuard {
            let jobs = Fixture.jobs(common, count: 2)
            let runner = GateRunner()
            let clock = VirtualClock()
            let scheduler = Scheduler(jobs: jobs, inventory: Inventory(hosts: [Fixture.host("h1"), Fixture.host("h2")]),
                                      runner: runner, clock: clock)
            var events = EventReader(scheduler.progress)
            let run = Task { await scheduler.run() }
            var calls = runner.calls.makeAsyncIterator()
            let first = try #require(await calls.next()), second = try #require(await calls.next())
            #expect(Set([first.host, second.host]) == ["h1", "h2"])

            // The connection to the first host drops in the middle of its build.
            runner.resolve(first, .hostFailed("connection lost"))
            _ = try await events.next("quarantine", where: isQuarantine(first.host))
            _ = try await events.next("requeue", where: { if case let .jobRequeued(j, _, _, _) = $0 { j == first.job } else { false } })
            runner.resolve(second, .succeeded)
            let retry = try #require(await calls.next())
            #expect(retry.job == first.job)
            #expect(retry.host == second.host, "the quarantined host gets no work")
            #expect(retry.attempt == 2)
            runner.resolve(retry, .succeeded)

            let report = await run.value
            #expect(report.succeeded.count == 2)
            let result = try #require(report.results.first { $0.job == first.job })
            #expect(result.builtOn == second.host)
            #expect(result.attempts.map(\.outcome) == [.hostFailed("connection lost"), .succeeded])
            for job in jobs { #expect(runner.successes(of: job).count == 1, "\(job) built exactly once") }
            #expect(runner.allCalls.count == 3)
            #expect(report.observedDurations.map(\.host).sorted() == [second.host, second.host], "history for the next run")
        }
    }

    @Test func aFailedHostIsQuarantinedWithExponentialBackoffAndReturnsWhenHealthy() async throws {
        try await withDeadlockGuard {
            let quarantine = QuarantinePolicy(initialBackoff: 60, multiplier: 2, maxBackoff: 3600)
            let runner = GateRunner()
            runner.setHealthy("h1", false)
            let clock = VirtualClock()
            let job = Fixture.job(common)
            let scheduler = Scheduler(jobs: [job], inventory: Inventory(hosts: [Fixture.host("h1")]), runner: runner, clock: clock,
                                      configuration: SchedulerConfiguration(quarantine: quarantine))
            var events = EventReader(scheduler.progress)
            let run = Task { await scheduler.run() }
            var calls = runner.calls.makeAsyncIterator()
            let first = try #require(await calls.next())
            runner.resolve(first, .hostFailed("unreachable"))

            let q1 = try await events.next("first quarantine", where: isQuarantine("h1"))
            guard case let .hostQuarantined(_, until1, failures1, _) = q1.event else { return }
            #expect(failures1 == 1)
            #expect(until1 == quarantine.backoff(failures: 1))

            // The backoff ends; the health check fails; the next backoff is twice as long.
            clock.advance(to: .init(offset: .seconds(until1)))
            let q2 = try await events.next("second quarantine", where: isQuarantine("h1"))
            guard case let .hostQuarantined(_, until2, failures2, _) = q2.event else { return }
            #expect(failures2 == 2)
            #expect(until2 - until1 == quarantine.backoff(failures: 2))
            #expect(quarantine.backoff(failures: 2) == 2 * quarantine.backoff(failures: 1))
            #expect(runner.healthChecks == ["h1"])

            // Now the host answers: it recovers and gets the job back.
            runner.setHealthy("h1", true)
            clock.advance(to: .init(offset: .seconds(until2)))
            _ = try await events.next("recovery", where: { $0 == .hostRecovered("h1") })
            let retry = try #require(await calls.next())
            #expect(retry.host == "h1" && retry.attempt == 2)
            runner.resolve(retry, .succeeded)
            let report = await run.value
            #expect(report.results[0].status == .succeeded)
            #expect(runner.healthChecks == ["h1", "h1"])
        }
    }

    @Test func buildFailuresAreRetriedOnAnotherHostUpToTheLimit() async throws {
        try await withDeadlockGuard {
            let runner = GateRunner(auto: { _ in .buildFailed("compiler error") })
            let job = Fixture.job(common)
            let scheduler = Scheduler(jobs: [job], inventory: Inventory(hosts: [Fixture.host("h1"), Fixture.host("h2")]),
                                      runner: runner, clock: VirtualClock())
            let report = await scheduler.run()
            let calls = runner.allCalls
            #expect(calls.count == SchedulerConfiguration().maxBuildAttempts)
            #expect(Set(calls.map(\.host)).count == 2, "the retry went to the other host")
            #expect(report.results[0].status == .failed)
            #expect(report.results[0].reason?.contains("build failed 2 time(s)") == true)
            #expect(report.results[0].reason?.contains("compiler error") == true)
        }
    }

    @Test func withOneHostTheRetryUsesItAgainAndTheLimitIsConfigurable() async throws {
        try await withDeadlockGuard {
            let runner = GateRunner(auto: { call in call.attempt < 3 ? .buildFailed("flaky test") : .succeeded })
            let scheduler = Scheduler(jobs: [Fixture.job(common)], inventory: Inventory(hosts: [Fixture.host("h1")]),
                                      runner: runner, clock: VirtualClock(),
                                      configuration: SchedulerConfiguration(maxBuildAttempts: 3))
            let report = await scheduler.run()
            #expect(runner.allCalls.map(\.host) == ["h1", "h1", "h1"])
            #expect(report.results[0].status == .succeeded)
        }
    }

    @Test func aJobThatLosesEveryHostItTouchesFailsAfterTheHostFailureLimit() async throws {
        try await withDeadlockGuard {
            let runner = GateRunner(auto: { _ in .hostFailed("connection lost") })
            let hosts = (1...6).map { Fixture.host("h\($0)") }
            let config = SchedulerConfiguration(maxHostFailuresPerJob: 4)
            let scheduler = Scheduler(jobs: [Fixture.job(common)], inventory: Inventory(hosts: hosts), runner: runner,
                                      clock: VirtualClock(), configuration: config)
            let report = await scheduler.run()
            #expect(runner.allCalls.count == 4)
            #expect(Set(runner.allCalls.map(\.host)).count == 4, "each attempt went to a host not yet quarantined")
            #expect(report.results[0].status == .failed)
            #expect(report.results[0].reason?.contains("lost its build host 4 time(s)") == true)
        }
    }

    @Test func probeFactsSteerJobsToHostsWithTheirPythonAndCompiler() async throws {
        try await withDeadlockGuard {
            let needsGCC = Fixture.variant("bf16", requires: ["avx2"], gcc: "12.3")
            let runner = GateRunner(auto: { _ in .succeeded })
            let facts = [
                "old": HostFacts(pythons: [PythonVersion("3.12")!], gccVersion: PEP440Version("12.2")),
                "new": HostFacts(pythons: [PythonVersion("3.11")!], canProvisionPython: true, gccVersion: PEP440Version("13.1")),
            ]
            let scheduler = Scheduler(jobs: Fixture.jobs(needsGCC, count: 3),
                                      inventory: Inventory(hosts: [Fixture.host("old", slots: 3), Fixture.host("new")]),
                                      runner: runner, clock: VirtualClock(), facts: facts)
            let report = await scheduler.run()
            #expect(report.results.allSatisfy { $0.builtOn == "new" }, "GCC 12.2 is too old for the variant")
        }
    }

    @Test func jobsNoHostCanTakeFailAtOnceWithTheReasonAndTheOthersGoOn() async throws {
        try await withDeadlockGuard {
            let amx = Fixture.variant("amx", requires: ["avx2", "amx_bf16", "amx_tile"])
            let runner = GateRunner()
            let jobs = [Fixture.job(amx), Fixture.job(common)]
            let scheduler = Scheduler(jobs: jobs, inventory: Inventory(hosts: [Fixture.host("old", ["avx2"])]),
                                      runner: runner, clock: VirtualClock())
            var events = EventReader(scheduler.progress)
            let run = Task { await scheduler.run() }
            // The AMX job fails before anything has finished.
            let failed = try await events.next("failure", where: { if case .jobFailed = $0 { true } else { false } })
            guard case let .jobFailed(job, reason) = failed.event else { return }
            #expect(job == jobs[0])
            #expect(reason.contains("'old' lacks amx_bf16, amx_tile"))
            var calls = runner.calls.makeAsyncIterator()
            let call = try #require(await calls.next())
            #expect(call.job == jobs[1])
            runner.resolve(call, .succeeded)
            let report = await run.value
            #expect(report.results.map(\.status) == [.failed, .succeeded])
        }
    }

    @Test func cancellationStopsRunningBuildsAndLeavesAConsistentReport() async throws {
        try await withDeadlockGuard {
            let runner = GateRunner()
            let jobs = Fixture.jobs(common, count: 3)
            let scheduler = Scheduler(jobs: jobs, inventory: Inventory(hosts: [Fixture.host("h1", slots: 2)]),
                                      runner: runner, clock: VirtualClock())
            let run = Task { await scheduler.run() }
            var calls = runner.calls.makeAsyncIterator()
            let a = try #require(await calls.next()), b = try #require(await calls.next())
            runner.resolve(a, .succeeded)
            // Wait until the third job has been started, then cancel (Ctrl-C).
            let c = try #require(await calls.next())
            run.cancel()
            let report = await run.value
            #expect(report.cancelled)
            #expect(runner.outcome(of: b) == .cancelled && runner.outcome(of: c) == .cancelled,
                    "the running builds were told to stop")
            let byJob = Dictionary(uniqueKeysWithValues: report.results.map { ($0.job, $0.status) })
            #expect(byJob[a.job] == .succeeded)
            #expect(byJob[b.job] == .cancelled && byJob[c.job] == .cancelled)
            #expect(report.results.count == 3)
            #expect(scheduler.progress.history.last?.event == .finished(succeeded: 1, failed: 0, cancelled: 2))
        }
    }

    @Test func cancellingBeforeAJobStartedCancelsItWithoutAnAttempt() async throws {
        try await withDeadlockGuard {
            let runner = GateRunner()
            let jobs = Fixture.jobs(common, count: 2)
            let scheduler = Scheduler(jobs: jobs, inventory: Inventory(hosts: [Fixture.host("h1")]), runner: runner, clock: VirtualClock())
            let run = Task { await scheduler.run() }
            var calls = runner.calls.makeAsyncIterator()
            _ = try #require(await calls.next())
            run.cancel()
            let report = await run.value
            #expect(report.results.allSatisfy { $0.status == .cancelled })
            #expect(report.results.map(\.attempts.count).sorted() == [0, 1])
        }
    }

    @Test func aHostThatIsDrainedGetsNoNewWorkButFinishesItsBuild() async throws {
        try await withDeadlockGuard {
            let runner = GateRunner()
            let jobs = Fixture.jobs(common, count: 3)
            let h1 = Fixture.host("h1"), h2 = Fixture.host("h2")
            let scheduler = Scheduler(jobs: jobs, inventory: Inventory(hosts: [h1, h2]), runner: runner, clock: VirtualClock())
            var events = EventReader(scheduler.progress)
            let run = Task { await scheduler.run() }
            var calls = runner.calls.makeAsyncIterator()
            let a = try #require(await calls.next()), b = try #require(await calls.next())
            var drained = a.host == "h1" ? h1 : h2
            drained.drain = true
            scheduler.updateInventory(Inventory(hosts: a.host == "h1" ? [drained, h2] : [h1, drained]))
            _ = try await events.next("drain", where: { $0 == .hostDraining(a.host) })
            runner.resolve(a, .succeeded)
            _ = try await events.next("a finished", where: { if case let .jobFinished(j, _, _, _) = $0 { j == a.job } else { false } })
            runner.resolve(b, .succeeded)
            let c = try #require(await calls.next())
            #expect(c.host == b.host, "the third job waited for the host that is not draining")
            runner.resolve(c, .succeeded)
            let report = await run.value
            #expect(report.succeeded.count == 3)
            #expect(report.results.first { $0.job == a.job }?.builtOn == a.host, "the draining host's build finished")
        }
    }

    @Test func progressFeedServesSeveralSubscribersAndConcurrentPublishers() async throws {
        let feed = ProgressFeed()
        let one = feed.subscribe(), two = feed.subscribe()
        await withTaskGroup(of: Void.self) { group in
            for t in 0..<8 {
                group.addTask {
                    for i in 0..<100 { feed.publish(ProgressUpdate(time: Double(t * 1000 + i), event: .hostJoined("h\(t)"))) }
                }
            }
        }
        feed.finish()
        var a: [ProgressUpdate] = [], b: [ProgressUpdate] = []
        for await u in one { a.append(u) }
        for await u in two { b.append(u) }
        #expect(a.count == 800)
        #expect(a == b, "every subscriber sees the same updates in the same order")
        #expect(feed.history == a)
        // Each publisher's updates keep their order.
        for t in 0..<8 {
            let times = a.filter { $0.event == .hostJoined("h\(t)") }.map(\.time)
            #expect(times == times.sorted())
        }
        // A late subscriber with replay catches up; after finish its stream ends.
        var late: [ProgressUpdate] = []
        for await u in feed.subscribe(replay: true) { late.append(u) }
        #expect(late == a)
    }
}
