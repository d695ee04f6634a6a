// Scheduling benchmark: wheelfarm's placement policy against the lower bound, a naive
// first-come first-fit policy and one host building everything in sequence (the old pipeline),
// on the example farm and the vLLM recipe; and the time one placement pass takes for 10,000
// jobs on 1,000 hosts. Run through Benchmarks/scheduling.sh (release build).
import FarmCore
import Foundation
import struct Inventory.Host
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

// Farms where placement matters: random farms built from the example farm's host kinds (an
// AVX2-only kind, AVX-512, VNNI, BF16, one scarce AMX host, sometimes arm64), with random
// speeds, slots and inventory order, and builds whose real durations differ from the recipe's
// estimates by a per-variant factor (0.5-2) and a per-host factor the speed does not capture
// (disk, memory; 0.6-1.8). Each farm is run three ways on the same seed: first-fit; wheelfarm
// planning with the recipe's estimates; wheelfarm planning with the durations of one earlier
// release on that farm (what a release now reads from its journal). All are measured against the
// lower bound of the real durations. Two matrices: one new version (6 builds placed at once, so
// nothing is learned during the run: the weekly case) and 12 versions (72 builds, where the
// scheduler also learns from the run's own first builds).
let farmCount = Int(ProcessInfo.processInfo.environment["WHEELFARM_BENCH_FARMS"] ?? "") ?? 200
var rng = SplitMix64(seed: 2026)
@MainActor func uniform(_ lo: Double, _ hi: Double) -> Double { lo + (hi - lo) * rng.nextUnit() }
@MainActor func count(_ lo: Int, _ hi: Int) -> Int { lo + Int(rng.nextUnit() * Double(hi - lo + 1)) % (hi - lo + 1) }
let kinds = ["haswell-1", "skylake-1", "cascade-1", "cooper-1", "sapphire-1", "graviton-1"].map { name in farm.hosts.first { $0.name == name }! }

@MainActor func randomFarms(title: String, matrix: [BuildJob], earlierMatrix: [BuildJob]) {
    print("== \(farmCount) random farms where placement matters, \(title), ±10 % jitter")
    var ratios: [String: [Double]] = ["first-fit": [], "estimates": [], "learned": []]
    var gainEstimates: [Double] = [], gainLearned: [Double] = [], learnedOverEstimates: [Double] = []
    var errorEstimates: [Double] = [], errorLearned: [Double] = []     // |expected − real| ÷ real, per build
    for f in 0..<farmCount {
        var hosts: [Host] = []
        for (k, kind) in kinds.enumerated() {
            let n = [count(0, 3), count(1, 2), count(1, 2), count(1, 2), 1, count(0, 1)][k]
            for i in 0..<n {
                var h = kind
                h.name = "\(kind.name.split(separator: "-")[0])-\(i + 1)"
                h.speed = uniform(0.5, 2.0)
                h.slots = kind.name.hasPrefix("sapphire") ? count(1, 2) : count(1, 3)
                hosts.append(h)
            }
        }
        // Inventory order is the tie-break of both policies and all first-fit knows: shuffle it.
        for i in stride(from: hosts.count - 1, to: 0, by: -1) { hosts.swapAt(i, count(0, i)) }
        let randomFarm = Inventory(hosts: hosts)
        let placeable = { (js: [BuildJob]) in js.filter { job in hosts.contains { Eligibility.isEligible(host: $0, job: job) } } }
        // The truth: every (variant, host) pair's real duration.
        var variantFactor: [String: Double] = [:], hostFactor: [String: Double] = [:]
        for v in recipe.variants { variantFactor[v.package] = uniform(0.5, 2.0) }
        for h in hosts { hostFactor[h.name] = uniform(0.6, 1.8) }
        var truth: [DurationSample] = []
        for v in recipe.variants { for arch in v.arches.keys { for h in hosts where h.arch == arch {
            let seconds = v.estimatedMinutes * 60 * variantFactor[v.package]! * hostFactor[h.name]! / h.speed
            truth.append(DurationSample(package: v.package, arch: arch, host: h.name, hostSpeed: h.speed, seconds: seconds))
        } } }
        let actual = DurationModel(history: truth)
        func run(_ js: [BuildJob], _ strategy: PlacementPolicy.Strategy, plan: DurationModel, seed: UInt64) -> SimulationResult {
            Simulator.run(SimulationScenario(inventory: randomFarm, jobs: placeable(js), durations: plan, actualDurations: actual, jitter: 0.1,
                                             configuration: SchedulerConfiguration(strategy: strategy), seed: seed))
        }
        let seed = UInt64(1000 + f)
        let earlier = run(earlierMatrix, .scarceFirst, plan: DurationModel(), seed: seed + 10_000)   // the release the journal remembers
        let naive = run(matrix, .firstFit, plan: DurationModel(), seed: seed)
        let estimated = run(matrix, .scarceFirst, plan: DurationModel(), seed: seed)
        let learned = run(matrix, .scarceFirst, plan: DurationModel(history: earlier.report.observedDurations), seed: seed)
        ratios["first-fit"]!.append(naive.ratioToLowerBound)
        ratios["estimates"]!.append(estimated.ratioToLowerBound)
        ratios["learned"]!.append(learned.ratioToLowerBound)
        gainEstimates.append(naive.makespan / estimated.makespan)
        gainLearned.append(naive.makespan / learned.makespan)
        learnedOverEstimates.append(estimated.makespan / learned.makespan)
        // How well each model foresaw the builds of this release (what plan and simulate show).
        let history = DurationModel(history: earlier.report.observedDurations)
        let byID = Dictionary(matrix.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        for seg in learned.segments where seg.succeeded {
            guard let job = byID[seg.job], let host = hosts.first(where: { $0.name == seg.host }) else { continue }
            let real = seg.end - seg.start
            errorEstimates.append(abs(DurationModel().expectedSeconds(for: job, on: host) - real) / real)
            errorLearned.append(abs(history.expectedSeconds(for: job, on: host) - real) / real)
        }
    }
    func median(_ x: [Double]) -> Double { x.sorted()[x.count / 2] }
    print("makespan ÷ lower bound (real durations)        mean    worst")
    for (label, key) in [("first-fit", "first-fit"), ("wheelfarm, recipe estimates", "estimates"), ("wheelfarm, learned durations", "learned")] {
        let x = ratios[key]!
        print("  \(label.padding(toLength: 42, withPad: " ", startingAt: 0)) \(ratio(mean(x)))   \(ratio(x.max()!))")
    }
    print("gain over first-fit (its makespan ÷ ours)      mean    worst   farms shorter / longer")
    for (label, x) in [("with the recipe's estimates", gainEstimates), ("with learned durations", gainLearned), ("learned vs estimates", learnedOverEstimates)] {
        print("  \(label.padding(toLength: 42, withPad: " ", startingAt: 0)) \(ratio(mean(x)))   \(ratio(x.min()!))   \(x.filter { $0 > 1.0005 }.count) / \(x.filter { $0 < 0.9995 }.count)")
    }
    print("expected build time off by (|expected − real| ÷ real, per build)   mean    median  worst")
    for (label, x) in [("recipe estimates", errorEstimates), ("learned from the earlier release", errorLearned)] {
        print("  \(label.padding(toLength: 62, withPad: " ", startingAt: 0)) \(String(format: "%4.0f %%", mean(x) * 100))  \(String(format: "%4.0f %%", median(x) * 100))  \(String(format: "%4.0f %%", x.max()! * 100))")
    }
    print("")
}
let byVersion = Dictionary(grouping: jobs, by: \.version)
let versionsSorted = byVersion.keys.sorted()
randomFarms(title: "one new version (\(byVersion[versionsSorted.last!]!.count) builds; the previous version's release is the history)",
            matrix: byVersion[versionsSorted.last!]!, earlierMatrix: byVersion[versionsSorted[versionsSorted.count - 2]]!)
randomFarms(title: "the 72-build matrix (the same matrix released before is the history)", matrix: jobs, earlierMatrix: jobs)

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
