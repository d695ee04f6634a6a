// Scheduling benchmark: wheelfarm's placement policy against the lower bound, a naive
// first-come first-fit policy and one host building everything in sequence (the old pipeline),
// on the example farm and the vLLM recipe; and the time one placement pass takes for 10,000
// jobs on 1,000 hosts. Run through Benchmarks/scheduling.sh (release build).
import FarmCore
import Foundation
import Inventory
import Recipes
import Scheduling

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("scheduling-benchmark: \(message)\n".utf8))
    exit(2)
}

let root = CommandLine.arguments.count > 1 ? CommandLine.arguments[1] : FileManager.default.currentDirectoryPath
let farm: Inventory
let recipe: Recipe
let jobs: [BuildJob]
do {
    farm = try InventoryLoader.load(path: root + "/inventory/example-farm.yaml")
    recipe = try RecipeLoader.load(path: root + "/recipes/vllm-cpu.yaml")
    jobs = try JobMatrix.expand(recipe: recipe, selection: JobSelection(
        variant: "all", versions: "0.9.0,0.9.1,0.9.2,0.10.0,0.10.1,0.10.2,0.11.0,0.11.1,0.11.2,0.12.0,0.12.1,0.13.0", pythons: "3.10-3.13", platform: "auto"))
} catch { fail("\(error)") }

func hours(_ s: Double) -> String { String(format: "%6.2f h", s / 3600) }
func ratio(_ x: Double) -> String { String(format: "%.3f", x) }

print("== makespan: \(jobs.count) vLLM jobs (5 variants, 12 versions; abi3 wheels, so Python 3.10-3.13 is one build each) on inventory/example-farm.yaml (\(farm.hosts.count) hosts)")
print("   durations: the recipe's estimated_minutes / host speed\n")

func simulate(_ strategy: PlacementPolicy.Strategy, jitter: Double = 0, seed: UInt64 = 1, incidents: [Incident] = []) -> SimulationResult {
    Simulator.run(SimulationScenario(inventory: farm, jobs: jobs, jitter: jitter, incidents: incidents,
                                     configuration: SchedulerConfiguration(strategy: strategy), seed: seed))
}

let ours = simulate(.scarceFirst)
let naive = simulate(.firstFit)
let bound = ours.lowerBound.seconds
print("policy                          makespan   ÷ lower bound")
print("lower bound                     \(hours(bound))   1.000")
print("wheelfarm (scarce-first)        \(hours(ours.makespan))   \(ratio(ours.makespan / bound))")
print("naive first-come first-fit      \(hours(naive.makespan))   \(ratio(naive.makespan / bound))")
print("one host in sequence (old way)  \(hours(ours.sequentialSeconds))   \(ratio(ours.sequentialSeconds / bound))")
print("")
print("wheelfarm vs first-fit: \(ratio(naive.makespan / ours.makespan))× shorter; vs one host: \(ratio(ours.sequentialSeconds / ours.makespan))× shorter")
print("target (within 5 % of the bound): \(ours.makespan <= bound * 1.05 ? "met" : "NOT met")\n")

// Durations that differ from the estimates (±20 %), 50 seeds: the policy plans with estimates,
// the builds take what they take.
var oursJ: [Double] = [], naiveJ: [Double] = []
for seed: UInt64 in 1...50 {
    let a = simulate(.scarceFirst, jitter: 0.2, seed: seed), b = simulate(.firstFit, jitter: 0.2, seed: seed)
    oursJ.append(a.makespan / a.lowerBound.seconds); naiveJ.append(b.makespan / b.lowerBound.seconds)
}
func mean(_ x: [Double]) -> Double { x.reduce(0, +) / Double(x.count) }
print("with ±20 % duration jitter, 50 seeds (makespan ÷ estimate-based lower bound):")
print("  wheelfarm   mean \(ratio(mean(oursJ)))  worst \(ratio(oursJ.max()!))")
print("  first-fit   mean \(ratio(mean(naiveJ)))  worst \(ratio(naiveJ.max()!))\n")

let deaths: [Incident] = [.hostDies("cooper-1", at: 40 * 60, revivesAt: 100 * 60)]
let oursD = simulate(.scarceFirst, incidents: deaths), naiveD = simulate(.firstFit, incidents: deaths)
print("cooper-1 dies at minute 40, back at minute 100:")
print("  wheelfarm   \(hours(oursD.makespan))  (\(oursD.report.succeeded.count)/\(jobs.count) built)")
print("  first-fit   \(hours(naiveD.makespan))  (\(naiveD.report.succeeded.count)/\(jobs.count) built)\n")

// Placement speed: 10,000 jobs on 1,000 hosts.
print("== placement speed: 10,000 jobs on 1,000 hosts (one complete planning pass)")
var bigHosts = [farm.hosts[0]]
bigHosts.removeAll()
for i in 0..<1000 {
    var h = farm.hosts[i % farm.hosts.count]
    h.name = "\(h.name)-\(i)"
    h.speed = 0.6 + Double((i * 37) % 100) / 100
    h.slots = 1 + i % 3
    bigHosts.append(h)
}
var bigJobs: [BuildJob] = []
bigJobs.reserveCapacity(10_000)
var n = 0
outer: for major in 0..<100 {
    for minor in 0..<100 {
        let base = jobs[(major * 100 + minor) % jobs.count]
        var j = base
        j.version = PEP440Version("\(major).\(minor).0")!
        bigJobs.append(j)
        n += 1
        if n == 10_000 { break outer }
    }
}
let hostStates = bigHosts.map { PlacementPolicy.HostState(host: $0) }
let requests = bigJobs.map { PlacementPolicy.Request(job: $0) }
let clock = ContinuousClock()
var fullTimes: [Double] = [], dispatchTimes: [Double] = []
var placed = 0, dispatched = 0
for _ in 0..<7 {
    let t0 = clock.now
    let plan = PlacementPolicy().plan(queue: requests, hosts: hostStates, now: 0, durations: DurationModel(), complete: true)
    let t1 = clock.now
    let now = PlacementPolicy().plan(queue: requests, hosts: hostStates, now: 0, durations: DurationModel())
    let t2 = clock.now
    placed = plan.placements.count; dispatched = now.dispatch.count
    fullTimes.append(Double((t1 - t0).components.attoseconds) / 1e18 + Double((t1 - t0).components.seconds))
    dispatchTimes.append(Double((t2 - t1).components.attoseconds) / 1e18 + Double((t2 - t1).components.seconds))
}
func median(_ x: [Double]) -> Double { x.sorted()[x.count / 2] }
print(String(format: "complete plan (every job on a host timeline): %.1f ms median of 7 (%d jobs placed)", median(fullTimes) * 1000, placed))
print(String(format: "dispatch pass (stops when free slots are used): %.1f ms median of 7 (%d jobs started)", median(dispatchTimes) * 1000, dispatched))
print("target (well under a second): \(median(fullTimes) < 1 ? "met" : "NOT met")")
