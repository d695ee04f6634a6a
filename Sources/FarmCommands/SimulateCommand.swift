import ArgumentParser
import FarmCore
import Foundation
import Inventory
import Recipes
import Scheduling

/// `wheelfarm simulate`: the real scheduler against simulated hosts and a simulated clock.
struct SimulateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Simulate a release on the inventory: makespan, lower bound, utilisation, timeline.",
        discussion: """
        The scheduler's own decision logic runs against simulated time: each build takes the
        variant's estimated minutes (recipe `estimated_minutes`, or --duration) divided by the
        host's speed, varied by --jitter; hosts can die, drain or leave at given minutes. Nothing
        is contacted. --join holds a host of the inventory back until a minute, as if it were added
        to the inventory file then. The same options and seed always give the same result.

        The lower bound is the larger of, over every capability class (the hosts a job may run on,
        and unions of them): total work over the classes' capacity, and the longest single job on
        its fastest eligible host. No schedule can beat it.

        Builds recorded in --dist-dir's journal replace the estimates where they exist (the \
        release's own duration model: per variant, arch, version family and host speed). The \
        --json document's keys are snake_case.

        Exit codes: 0 every simulated job succeeded, 1 some failed, 2 usage or inventory error.
        """)

    @OptionGroup(title: "Inventory") var inventoryOptions: InventoryOptions
    @OptionGroup(title: "Selection") var selection: SelectionOptions
    @OptionGroup(title: "Output") var output: OutputOptions

    @Option(name: .long, help: "Seed of every random draw (jitter, build failures).")
    var seed: UInt64 = 1

    @Option(name: .long, help: ArgumentHelp("Placement policy: scarce-first (wheelfarm's) or first-fit (naive baseline).", valueName: "policy"))
    var policy: String = PlacementPolicy.Strategy.scarceFirst.rawValue

    @Option(name: .long, parsing: .singleValue, help: ArgumentHelp(
        "Base minutes of a variant at speed 1.0, overriding the recipe's estimate (repeatable).", valueName: "variant=minutes"))
    var duration: [String] = []

    @Option(name: .long, help: ArgumentHelp("Relative variation of build durations, 0 to 0.9 (0.1 = ±10 %).", valueName: "fraction"))
    var jitter: Double = 0

    @Option(name: .customLong("build-failure-rate"), help: ArgumentHelp("Probability that an attempt fails to build, 0 to 1.", valueName: "p"))
    var buildFailureRate: Double = 0

    @Option(name: .customLong("max-build-attempts"), help: "Attempts per job that may end in a build failure.")
    var maxBuildAttempts: Int = 2

    @Option(name: .long, parsing: .singleValue, help: ArgumentHelp(
        "A host dies at a minute, optionally coming back at another (repeatable).", valueName: "host@min[-min]"))
    var kill: [String] = []

    @Option(name: .long, parsing: .singleValue, help: ArgumentHelp("A host is set to drain at a minute (repeatable).", valueName: "host@min"))
    var drain: [String] = []

    @Option(name: .long, parsing: .singleValue, help: ArgumentHelp("A host is removed from the inventory at a minute (repeatable).", valueName: "host@min"))
    var remove: [String] = []

    @Option(name: .long, parsing: .singleValue, help: ArgumentHelp(
        "A host of the inventory is absent at the start and added at a minute (repeatable).", valueName: "host@min"))
    var join: [String] = []

    @Option(name: .long, help: "Width of the text timeline in columns.")
    var width: Int = 72

    @Flag(name: .long, help: "Also print every scheduler event.")
    var events = false

    @Option(name: .customLong("dist-dir"), help: ArgumentHelp("A dist directory whose journal's earlier builds give expected durations.", valueName: "dir"))
    var distDir: String = "dist"

    func validate() throws {
        guard PlacementPolicy.Strategy(rawValue: policy) != nil else {
            throw ValidationError("invalid value '\(policy)' for --policy: expected one of \(PlacementPolicy.Strategy.allCases.map { "'\($0.rawValue)'" }.joined(separator: ", "))")
        }
        guard (0...0.9).contains(jitter) else { throw ValidationError("invalid value '\(jitter)' for --jitter: expected a fraction from 0 to 0.9") }
        guard (0...1).contains(buildFailureRate) else {
            throw ValidationError("invalid value '\(buildFailureRate)' for --build-failure-rate: expected a probability from 0 to 1")
        }
        guard maxBuildAttempts >= 1 else { throw ValidationError("invalid value '\(maxBuildAttempts)' for --max-build-attempts: expected 1 or more") }
        guard (10...400).contains(width) else { throw ValidationError("invalid value '\(width)' for --width: expected 10 to 400") }
    }

    func run() async throws {
        let inventory = try inventoryOptions.load(checkingSSH: false)
        let (recipe, jobs) = try selection.jobs()
        var scenario = try makeScenario(inventory: inventory, recipe: recipe, jobs: jobs)
        let history = DurationHistory.load(distDir: distDir, inventory: inventory, baseMinutes: scenario.durations.baseMinutes)
        scenario.durations = history.model
        let result = Simulator.run(scenario)
        if output.json {
            var doc = SimulateDocument(recipe: recipe.name, inventory: inventoryOptions.inventoryPath, result: result, withEvents: events)
            doc.durationSamples = history.samples
            try printJSON(doc, snakeCase: true)
        } else {
            print("durations: \(history.summary)")
            print(render(result, recipe: recipe, jobs: jobs.count, hosts: inventory.hosts.count))
        }
        if !result.report.failed.isEmpty { throw ExitCode(1) }
    }

    func makeScenario(inventory: Inventory, recipe: Recipe, jobs: [BuildJob]) throws -> SimulationScenario {
        var base: [String: Double] = [:]
        for item in duration {
            let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, let minutes = Double(parts[1]), minutes > 0 else {
                throw usage("invalid value '\(item)' for --duration: expected variant=minutes, e.g. avx512=45")
            }
            guard let v = recipe.variant(named: parts[0]) else {
                throw usage("unknown variant '\(parts[0])' in --duration: expected one of \(recipe.variants.map { "'\($0.shortName)'" }.joined(separator: ", "))")
            }
            base[v.package] = minutes
        }
        var incidents: [Incident] = []
        func hostAndMinutes(_ item: String, option: String, allowRange: Bool) throws -> (String, Double, Double?) {
            let form = allowRange ? "host@minute or host@minute-minute" : "host@minute"
            let parts = item.split(separator: "@", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { throw usage("invalid value '\(item)' for \(option): expected \(form)") }
            guard inventory[parts[0]] != nil else {
                let hint = DidYouMean.suggestion(for: parts[0], among: inventory.hosts.map(\.name)).map { "; did you mean '\($0)'?" } ?? ""
                throw usage("unknown host '\(parts[0])' in \(option): expected a host of the inventory\(hint)")
            }
            let times = parts[1].split(separator: "-", maxSplits: 1).map { Double($0) }
            guard let first = times.first ?? nil, first >= 0, times.allSatisfy({ $0 != nil }),
                  allowRange || times.count == 1, times.count == 1 || times[1]! > first else {
                throw usage("invalid value '\(item)' for \(option): expected \(form) (minutes, the second after the first)")
            }
            return (parts[0], first, times.count == 2 ? times[1] : nil)
        }
        for item in kill {
            let (h, at, back) = try hostAndMinutes(item, option: "--kill", allowRange: true)
            incidents.append(.hostDies(h, at: at * 60, revivesAt: back.map { $0 * 60 }))
        }
        for item in drain {
            let (h, at, _) = try hostAndMinutes(item, option: "--drain", allowRange: false)
            incidents.append(.hostDrains(h, at: at * 60))
        }
        for item in remove {
            let (h, at, _) = try hostAndMinutes(item, option: "--remove", allowRange: false)
            incidents.append(.hostLeaves(h, at: at * 60))
        }
        var initial = inventory
        for item in join {
            let (h, at, _) = try hostAndMinutes(item, option: "--join", allowRange: false)
            initial.hosts.removeAll { $0.name == h }
            incidents.append(.hostJoins(inventory[h]!, at: at * 60))
        }
        return SimulationScenario(
            inventory: initial, jobs: jobs, durations: DurationModel(baseMinutes: base), jitter: jitter,
            buildFailureRate: buildFailureRate, incidents: incidents,
            configuration: SchedulerConfiguration(strategy: PlacementPolicy.Strategy(rawValue: policy)!, maxBuildAttempts: maxBuildAttempts),
            seed: seed)
    }

    private func usage(_ message: String) -> ExitCode {
        printError("wheelfarm: \(message)")
        return ExitCode(2)
    }

    private func render(_ r: SimulationResult, recipe: Recipe, jobs: Int, hosts: Int) -> String {
        func f(_ s: Double) -> String { Timeline.format(seconds: s) }
        func ratio(_ x: Double) -> String { String(format: "%.2f", x) }
        var out = "simulated \(jobs) job\(jobs == 1 ? "" : "s") of \(recipe.name) on \(hosts) host\(hosts == 1 ? "" : "s") · policy \(r.strategy.rawValue) · seed \(r.seed)\n\n"
        out += "makespan                 \(f(r.makespan))\n"
        out += "lower bound              \(f(r.lowerBound.seconds))  (makespan is \(ratio(r.ratioToLowerBound))× the bound)\n"
        if r.makespan > 0 {
            out += "one host, in sequence    \(f(r.sequentialSeconds))  (\(ratio(r.sequentialSeconds / r.makespan))× the makespan; speed 1.0, one slot)\n"
        }
        out += "jobs                     \(r.report.succeeded.count) succeeded, \(r.report.failed.count) failed\n\n"
        var classes = TextTable("CAPABILITY CLASS (HOSTS)", "JOBS", "WORK/CAPACITY", "LONGEST JOB")
        for c in r.lowerBound.classes {
            classes.add(c.hosts.joined(separator: ", "), "\(c.jobs)", f(c.workOverCapacity), f(c.longestJob))
        }
        out += classes.render() + "\n\n"
        var usage = TextTable("HOST", "SLOTS", "SPEED", "BUSY", "UTILISATION")
        for h in r.hosts {
            usage.add(h.name, "\(h.slots)", String(format: "%.2f", h.speed), f(h.busySeconds), String(format: "%.0f %%", h.utilisation * 100))
        }
        out += usage.render() + "\n\ntimeline:\n" + r.timeline(width: width)
        let failed = r.report.failed
        if !failed.isEmpty {
            out += "\n\(failed.count) job\(failed.count == 1 ? "" : "s") failed:\n"
            out += failed.map { "  \($0.job.id): \($0.reason ?? "")" }.joined(separator: "\n") + "\n"
        }
        if events { out += "\nevents:\n" + r.events.map { "  " + $0 }.joined(separator: "\n") + "\n" }
        return out
    }
}

/// The `simulate --json` document (printed with snake_case keys).
struct SimulateDocument: Encodable {
    /// Earlier builds from the journal the durations come from (0: the recipe's estimates).
    var durationSamples = 0
    struct Failure: Encodable { var job: String; var reason: String }
    var recipe: String
    var inventory: String
    var policy: String
    var seed: UInt64
    var jobs: Int
    var succeeded: Int
    var failed: [Failure]
    var makespanSeconds: Double
    var lowerBoundSeconds: Double
    var ratioToLowerBound: Double
    var sequentialSeconds: Double
    var capabilityClasses: [LowerBound.ClassBound]
    var hosts: [SimulationResult.HostUsage]
    var segments: [Timeline.Segment]
    var events: [String]?

    init(recipe: String, inventory: String, result r: SimulationResult, withEvents: Bool) {
        self.recipe = recipe; self.inventory = inventory; policy = r.strategy.rawValue; seed = r.seed
        jobs = r.report.results.count; succeeded = r.report.succeeded.count
        failed = r.report.failed.map { Failure(job: $0.job.id, reason: $0.reason ?? "") }
        makespanSeconds = r.makespan; lowerBoundSeconds = r.lowerBound.seconds; ratioToLowerBound = r.ratioToLowerBound
        sequentialSeconds = r.sequentialSeconds; capabilityClasses = r.lowerBound.classes; hosts = r.hosts
        segments = r.segments; events = withEvents ? r.events : nil
    }
}
