import FarmCore
import Inventory
import Recipes
import Scheduling
import Testing

@Suite("Simulator")
struct SimulatorTests {
    let common = Fixture.variant("common", minutes: 60)
    let amx = Fixture.variant("amx", requires: ["avx2", "amx_bf16"], minutes: 60)

    /// One rare host listed first, two ordinary ones; four rare and four ordinary hour-long jobs.
    var rareHostScenario: SimulationScenario {
        SimulationScenario(
            inventory: Inventory(hosts: [Fixture.host("sapphire", ["avx2", "amx_bf16"]), Fixture.host("a"), Fixture.host("b")]),
            jobs: Fixture.jobs(common, count: 4) + Fixture.jobs(amx, count: 4))
    }

    @Test func scarceFirstKeepsTheRareHostForItsJobsAndReachesTheBound() {
        let ours = Simulator.run(rareHostScenario)
        // Only sapphire can build the four AMX hours: four hours is the bound, and reachable.
        #expect(ours.lowerBound.seconds == 4 * 3600)
        #expect(ours.makespan == ours.lowerBound.seconds)
        #expect(ours.segments.filter { $0.host == "sapphire" }.allSatisfy { $0.variant == "amx" })

        var naive = rareHostScenario
        naive.configuration.strategy = .firstFit
        let baseline = Simulator.run(naive)
        #expect(baseline.makespan > ours.makespan, "first-fit lets ordinary jobs occupy the only AMX host")
        #expect(baseline.report.succeeded.count == 8)
    }

    @Test func theSameSeedGivesTheSameRunAndTheMakespanNeverBeatsTheBound() throws {
        var scenario = SimulationScenario(inventory: try Fixture.exampleFarm, jobs: try Fixture.vllmRelease(),
                                          jitter: 0.3, buildFailureRate: 0.1, seed: 42)
        let a = Simulator.run(scenario), b = Simulator.run(scenario)
        #expect(a.segments == b.segments)
        #expect(a.events == b.events)
        #expect(a.makespan == b.makespan)
        for seed: UInt64 in 1...5 {
            scenario.seed = seed
            let r = Simulator.run(scenario)
            // Jitter can make builds shorter than the estimate the bound uses (by at most 30 %).
            #expect(r.makespan >= r.lowerBound.seconds * 0.7)
            for job in r.report.results where job.status == .succeeded {
                #expect(job.attempts.filter { $0.outcome == .succeeded }.count == 1)
            }
        }
    }

    @Test func vllmReleaseOnTheExampleFarmIsWithinFivePercentOfTheBound() throws {
        let jobs = try Fixture.vllmRelease()
        #expect(jobs.count == 72)
        let r = Simulator.run(SimulationScenario(inventory: try Fixture.exampleFarm, jobs: jobs))
        #expect(r.report.succeeded.count == 72)
        #expect(r.makespan >= r.lowerBound.seconds)
        #expect(r.ratioToLowerBound <= 1.05, "makespan \(r.makespan) s, bound \(r.lowerBound.seconds) s")
        #expect(r.sequentialSeconds == jobs.reduce(0) { $0 + $1.variant.estimatedMinutes * 60 })
    }

    @Test func whenAHostDiesItsBuildsFinishElsewhereAndItIsRetriedLater() {
        var scenario = SimulationScenario(
            inventory: Inventory(hosts: [Fixture.host("a"), Fixture.host("b"), Fixture.host("c")]),
            jobs: Fixture.jobs(common, count: 6),
            incidents: [.hostDies("a", at: 40 * 60, revivesAt: 75 * 60)])
        scenario.configuration.quarantine = QuarantinePolicy(initialBackoff: 600)
        let r = Simulator.run(scenario)
        #expect(r.report.succeeded.count == 6)
        let onA = r.segments.filter { $0.host == "a" }
        #expect(onA.contains { !$0.succeeded && $0.end == 40 * 60 }, "the build running at minute 40 lost its host")
        #expect(!onA.contains { $0.start > 40 * 60 && $0.start < 75 * 60 && $0.succeeded }, "no build succeeded on the dead host")
        #expect(onA.contains { $0.start >= 75 * 60 && $0.succeeded }, "after reviving, the host passed its check and built again")
        #expect(r.events.contains { $0.contains("host a quarantined") })
        #expect(r.events.contains { $0.contains("host a recovered") })
        for job in r.report.results { #expect(job.attempts.filter { $0.outcome == .succeeded }.count == 1) }
    }

    @Test func aHostThatNeverComesBackIsGivenUpAndItsOnlyJobsFail() {
        var scenario = SimulationScenario(
            inventory: Inventory(hosts: [Fixture.host("sapphire", ["avx2", "amx_bf16"]), Fixture.host("a")]),
            jobs: Fixture.jobs(amx, count: 2) + Fixture.jobs(common, count: 2),
            incidents: [.hostDies("sapphire", at: 10 * 60, revivesAt: nil)])
        scenario.configuration.quarantine = QuarantinePolicy(initialBackoff: 60, maxBackoff: 600, giveUpAfter: 4)
        let r = Simulator.run(scenario)
        #expect(r.report.failed.map(\.job.variant.shortName) == ["amx", "amx"])
        #expect(r.report.failed.allSatisfy { $0.reason?.contains("unreachable") == true })
        #expect(r.report.succeeded.count == 2)
        #expect(r.events.contains { $0.contains("host sapphire given up") })
    }

    @Test func aHostJoiningMidRunShortensTheRun() {
        let base = SimulationScenario(inventory: Inventory(hosts: [Fixture.host("a")]), jobs: Fixture.jobs(common, count: 4))
        var joined = base
        joined.incidents = [.hostJoins(Fixture.host("b"), at: 30 * 60)]
        let without = Simulator.run(base), with = Simulator.run(joined)
        #expect(without.makespan == 4 * 3600)
        #expect(with.makespan < without.makespan)
        #expect(with.segments.contains { $0.host == "b" && $0.start == 30 * 60 }, "the new host got work the moment it joined")
    }

    @Test func theTimelineShowsEveryHostSlot() {
        let r = Simulator.run(rareHostScenario)
        let chart = r.timeline(width: 40)
        let rows = chart.split(separator: "\n").filter { $0.contains("|") }
        #expect(rows.count == 3)
        #expect(rows[0].hasPrefix("sapphire"))
        #expect(chart.contains("legend: A=amx B=common"))
        #expect(rows[0].contains("AAAA"), "the AMX jobs are drawn on the AMX host")
    }
}
