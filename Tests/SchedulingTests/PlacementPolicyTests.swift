import FarmCore
import Inventory
import Recipes
import Scheduling
import Testing

@Suite("Placement policy")
struct PlacementPolicyTests {
    let common = Fixture.variant("common", requires: ["avx2"], minutes: 30)
    let amx = Fixture.variant("amx", requires: ["avx2", "amx_bf16"], minutes: 60)

    func states(_ hosts: [Host], busy: [String: [Double]] = [:]) -> [PlacementPolicy.HostState] {
        hosts.map { .init(host: $0, busyUntil: busy[$0.name] ?? []) }
    }

    @Test func scarceJobsArePlacedFirstAndTakeTheRareHost() {
        // The common jobs come first in the queue, the AMX host first in the inventory.
        let hosts = [Fixture.host("sapphire", ["avx2", "amx_bf16"]), Fixture.host("a"), Fixture.host("b")]
        let queue = (Fixture.jobs(common, count: 3) + [Fixture.job(amx)]).map { PlacementPolicy.Request(job: $0) }
        let plan = PlacementPolicy().plan(queue: queue, hosts: states(hosts), now: 0, durations: DurationModel(), complete: true)
        #expect(plan.placements.first?.request == 3, "the job only one host can build is decided first")
        let amxPlacement = plan.placements.first { $0.request == 3 }
        #expect(amxPlacement?.host == 0 && amxPlacement?.start == 0)
        // Two common jobs start now on the ordinary hosts; the third waits for one of them
        // (finishing at 60 min) rather than delaying the AMX job (which would end at 90 min).
        let now = plan.dispatch.filter { $0.request != 3 }.map(\.host).sorted()
        #expect(now == [1, 2])
        #expect(plan.placements.allSatisfy { $0.request == 3 || $0.host != 0 })

        // First-fit, in queue order, gives the rare host to the first common job.
        let naive = PlacementPolicy(strategy: .firstFit).plan(queue: queue, hosts: states(hosts), now: 0, durations: DurationModel())
        #expect(naive.dispatch.first { $0.request == 0 }?.host == 0)
        #expect(!naive.dispatch.contains { $0.request == 3 })
    }

    @Test func amongEquallyScarceJobsTheLongestGoesFirst() {
        let short = Fixture.variant("short", minutes: 10)
        let long = Fixture.variant("long", minutes: 90)
        let queue = [Fixture.job(short), Fixture.job(long)].map { PlacementPolicy.Request(job: $0) }
        let plan = PlacementPolicy().plan(queue: queue, hosts: states([Fixture.host("a")]), now: 0, durations: DurationModel(), complete: true)
        #expect(plan.placements.map(\.request) == [1, 0])
        #expect(plan.dispatch.map(\.request) == [1])
    }

    @Test func eachJobGoesWhereItFinishesEarliest() {
        // A fast host busy for 10 more minutes beats a slow one that is free now.
        let hosts = [Fixture.host("slow", speed: 0.5), Fixture.host("fast", speed: 2)]
        let plan = PlacementPolicy().plan(queue: [.init(job: Fixture.job(common))], hosts: states(hosts, busy: ["fast": [600]]),
                                          now: 0, durations: DurationModel(), complete: true)
        let p = plan.placements.first
        #expect(p?.host == 1)
        #expect(p?.start == 600)
        let expected: Double = 600 + 30.0 * 60 / 2
        #expect(p?.finish == expected)
        #expect(plan.dispatch.isEmpty, "nothing starts now: waiting for the fast host finishes earlier")
    }

    @Test func learnedDurationsReplaceTheEstimate() {
        let hosts = [Fixture.host("a"), Fixture.host("b")]
        // Host "a" turned out to take 3 hours for this variant; "b" has no history, and other
        // hosts' history (normalised by speed) says 40 minutes.
        let model = DurationModel(history: [
            DurationSample(package: common.package, arch: .amd64, host: "a", hostSpeed: 1, seconds: 3 * 3600),
            DurationSample(package: common.package, arch: .amd64, host: "x", hostSpeed: 2, seconds: 1200),
            DurationSample(package: common.package, arch: .amd64, host: "x", hostSpeed: 2, seconds: 1200),
        ])
        #expect(model.expectedSeconds(for: Fixture.job(common), on: hosts[1]) == 2400)
        let plan = PlacementPolicy().plan(queue: [.init(job: Fixture.job(common))], hosts: states(hosts), now: 0, durations: model)
        #expect(plan.dispatch.map(\.host) == [1])
    }

    @Test func retriesAvoidTheHostWhereTheBuildFailedWhileAnotherIsInService() {
        let hosts = [Fixture.host("a"), Fixture.host("b")]
        let retry = PlacementPolicy.Request(job: Fixture.job(common), avoid: ["a"])
        let plan = PlacementPolicy().plan(queue: [retry], hosts: states(hosts, busy: ["b": [3600]]), now: 0, durations: DurationModel())
        #expect(plan.dispatch.isEmpty, "waits for b rather than going back to a")
        var onlyA = states(hosts)
        onlyA[1].accepting = false
        let fallback = PlacementPolicy().plan(queue: [retry], hosts: onlyA, now: 0, durations: DurationModel())
        #expect(fallback.dispatch.map(\.host) == [0], "with no other host in service, a is used again")
    }

    @Test func jobsNoAcceptingHostCanTakeAreReportedUnplaceable() {
        let plan = PlacementPolicy().plan(queue: [.init(job: Fixture.job(amx)), .init(job: Fixture.job(common))],
                                          hosts: states([Fixture.host("a")]), now: 0, durations: DurationModel())
        #expect(plan.unplaceable == [0])
        #expect(plan.dispatch.map(\.request) == [1])
    }
}
