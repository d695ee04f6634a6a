import FarmCore
import FarmTestSupport
import Inventory
import Recipes
import Scheduling
import Testing

/// Permanent host failures (a changed host key, refused keys): the host is taken out of the run
/// at once, never quarantined, and the reason is repeated wherever the host is mentioned.
@Suite("Scheduler: hosts that refuse the coordinator")
struct HostRefusalTests {
    let common = Fixture.variant("common", minutes: 30)

    @Test func aRefusingHostIsTakenOutAtOnceAndItsJobGoesElsewhere() async throws {
        try await withDeadlockGuard {
            let jobs = Fixture.jobs(common, count: 2)
            let runner = GateRunner()
            let scheduler = Scheduler(jobs: jobs, inventory: Inventory(hosts: [Fixture.host("h1"), Fixture.host("h2")]),
                                      runner: runner, clock: VirtualClock())
            var events = EventReader(scheduler.progress)
            let run = Task { await scheduler.run() }
            var calls = runner.calls.makeAsyncIterator()
            let first = try #require(await calls.next()), second = try #require(await calls.next())
            let refused = first.host
            runner.resolve(first, .hostRefused("host key mismatch: 'h' now offers another key"))
            let out = try await events.next("refusal", where: { if case .hostRefused(refused, _) = $0 { true } else { false } })
            #expect(out.event.description == "host \(refused) taken out of the run: host key mismatch: 'h' now offers another key")
            runner.resolve(second, .succeeded)
            let retry = try #require(await calls.next())
            #expect(retry.job == first.job && retry.host == second.host)
            runner.resolve(retry, .succeeded)
            let report = await run.value
            #expect(report.succeeded.count == 2)
            #expect(!events.seen.contains { if case .hostQuarantined = $0.event { true } else { false } })
            #expect(runner.healthChecks.isEmpty, "a refused host is not health-checked")
        }
    }

    @Test func whenNoHostIsLeftTheJobsFailWithTheReason() async throws {
        try await withDeadlockGuard {
            let jobs = Fixture.jobs(common, count: 2)
            let runner = GateRunner()
            let scheduler = Scheduler(jobs: jobs, inventory: Inventory(hosts: [Fixture.host("h1")]), runner: runner, clock: VirtualClock())
            let run = Task { await scheduler.run() }
            var calls = runner.calls.makeAsyncIterator()
            let first = try #require(await calls.next())
            runner.resolve(first, .hostRefused("authentication as 'builder' was refused"))
            let report = await run.value
            #expect(report.succeeded.isEmpty && report.results.count == 2)
            for result in report.results {
                #expect(result.reason?.contains("'h1' was taken out of the run: authentication as 'builder' was refused") == true,
                        "\(String(describing: result.reason))")
            }
            #expect(runner.allCalls.count == 1, "nothing more is sent to the refused host")
        }
    }

    @Test func aRefusalFoundByTheProbeStartsTheHostOutOfTheRun() async throws {
        try await withDeadlockGuard {
            let job = Fixture.job(common)
            let runner = GateRunner(auto: { _ in .succeeded })
            let scheduler = Scheduler(jobs: [job], inventory: Inventory(hosts: [Fixture.host("h1"), Fixture.host("h2")]),
                                      runner: runner, clock: VirtualClock(), facts: ["h1": HostFacts(refusal: "revoked host key")])
            let report = await scheduler.run()
            #expect(report.succeeded.count == 1)
            #expect(runner.allCalls.map(\.host) == ["h2"])
        }
    }
}
