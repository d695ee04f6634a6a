import FarmCore
import Inventory
import Recipes

/// A lower bound on the makespan of a set of jobs on a set of hosts: no schedule can finish sooner.
///
/// Two facts bound it, both computed per capability class (the set of hosts a job may run on):
/// - **Work over capacity.** For any set of hosts S, the jobs that may only run inside S need at
///   least (their total work) / (S's capacity) time, where a job's work is its shortest duration
///   on an eligible host times that host's speed (its duration at speed 1.0), and S's capacity is
///   the sum of slots × speed. S ranges over every union of classes, which catches a bottleneck
///   formed by several scarce classes together as well as the farm as a whole.
/// - **The longest single job** on its fastest eligible host.
///
/// It is the bound of a relaxation (jobs split freely across slots), so it is not always
/// reachable: whole jobs do not always divide evenly over slots.
public struct LowerBound: Sendable, Codable, Hashable {
    /// One capability class's own figures.
    public struct ClassBound: Sendable, Codable, Hashable {
        /// The hosts the class's jobs may run on.
        public var hosts: [String]
        /// How many jobs have exactly this set of eligible hosts.
        public var jobs: Int
        /// Their work divided by the capacity of their hosts, in seconds.
        public var workOverCapacity: Double
        /// The longest of them on its fastest eligible host, in seconds.
        public var longestJob: Double
    }

    /// The bound, in seconds.
    public var seconds: Double
    /// The figures of each capability class.
    public var classes: [ClassBound]
    /// Jobs no host can build, left out of the bound.
    public var unplaceableJobs: Int

    /// Computes the bound for `jobs` on `hosts` (draining hosts are left out).
    public static func compute(jobs: [BuildJob], hosts: [Host], facts: [String: HostFacts] = [:],
                               durations: DurationModel = DurationModel()) -> LowerBound {
        let usable = hosts.filter { !$0.drain && $0.slots > 0 }
        var classIndex: [[Int]: Int] = [:]
        var classSets: [[Int]] = []
        var classWork: [Double] = []
        var classJobs: [Int] = []
        var classLongest: [Double] = []
        var keyCache: [EligibilityKey: [Int]] = [:]
        var unplaceable = 0
        for job in jobs {
            let key = EligibilityKey(job)
            let eligible = keyCache[key] ?? usable.indices.filter {
                Eligibility.isEligible(host: usable[$0], job: job, facts: facts[usable[$0].name])
            }
            keyCache[key] = eligible
            guard !eligible.isEmpty else { unplaceable += 1; continue }
            var work = Double.infinity, shortest = Double.infinity
            for h in eligible {
                let d = durations.expectedSeconds(for: job, on: usable[h])
                shortest = min(shortest, d)
                work = min(work, d * DurationModel.speed(usable[h].speed))
            }
            let c: Int
            if let existing = classIndex[eligible] { c = existing } else {
                c = classSets.count
                classIndex[eligible] = c
                classSets.append(eligible); classWork.append(0); classJobs.append(0); classLongest.append(0)
            }
            classWork[c] += work; classJobs[c] += 1
            classLongest[c] = max(classLongest[c], shortest)
        }
        func capacity(_ set: Set<Int>) -> Double {
            // Summed in index order: a Set's order changes from process to process, and a float
            // sum in another order can differ in the last bit, which `simulate --json` would show.
            set.sorted().reduce(0) { $0 + Double(usable[$1].slots) * DurationModel.speed(usable[$1].speed) }
        }
        var best = classLongest.max() ?? 0
        // Every union of classes when there are few (2^k subsets); else each class, and all together.
        let k = classSets.count
        let masks: [Int] = k <= 14 ? Array(1..<(1 << k)) : (0..<k).map { 1 << $0 } + [(1 << min(k, 62)) - 1]
        for mask in masks {
            var hostSet = Set<Int>()
            for c in 0..<k where mask & (1 << c) != 0 { hostSet.formUnion(classSets[c]) }
            var work = 0.0
            for c in 0..<k where classSets[c].allSatisfy(hostSet.contains) { work += classWork[c] }
            best = max(best, work / capacity(hostSet))
        }
        let classes = classSets.indices.map { c in
            ClassBound(hosts: classSets[c].map { usable[$0].name }, jobs: classJobs[c],
                       workOverCapacity: classWork[c] / capacity(Set(classSets[c])), longestJob: classLongest[c])
        }
        return LowerBound(seconds: best, classes: classes, unplaceableJobs: unplaceable)
    }
}
