import struct Inventory.Host
import Agents
import ArgumentParser
import FarmCore
import Foundation
import Inventory
import Recipes
import Release
import Scheduling
import Wheels

/// `wheelfarm plan`: the job matrix and, for each job, the hosts able to build it natively.
struct PlanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Show the job matrix and which hosts can build each job natively.",
        discussion: """
        Nothing is started: the inventory and the recipe alone decide. A host can build a job when \
        its arch matches, it has every CPU flag the variant requires, it has none of the flags the \
        variant forbids (they would leak into the wheel), it is not reserved for other work and it is \
        not draining. Hosts probed before (wheelfarm hosts probe caches their reports) are also \
        judged on their Python, GCC and C library: a recipe requiring a platform tag \
        (platform: manylinux_2_28) needs hosts whose glibc is no newer than the tag's, or \
        --builder docker; plan says which hosts can produce the tag and why the others cannot. \
        Jobs no host can take are listed with the reason and the closest host, and what would \
        fix it. Each job's expected build time on its fastest eligible host comes from earlier \
        builds recorded in --dist-dir's journal when there are some (per variant, arch, version \
        family and host speed), else from the recipe's estimate.

        Exit codes: 0 every job has a host, 1 some job cannot be placed, 2 usage or inventory error. \
        The --json document is described in docs/PLAN-JSON.md.
        """)

    @OptionGroup(title: "Inventory") var inventoryOptions: InventoryOptions
    @OptionGroup(title: "Selection") var selection: SelectionOptions
    @OptionGroup(title: "Output") var output: OutputOptions

    @Option(name: .long, help: ArgumentHelp("How the release would build: native or docker (a manylinux container on each host).", valueName: "type"))
    var builder: ReleaseCommand.Builder = .native

    @Option(name: .customLong("probe-cache"), help: ArgumentHelp(
        "Probe reports of `hosts probe` to judge prerequisites, toolchains and C libraries with (one JSON file per host).",
        discussion: "Default: $WHEELFARM_PROBE_CACHE, else .wheelfarm/probes when it exists. Hosts without a report are judged by the inventory alone.",
        valueName: "dir"))
    var probeCache: String?

    @Option(name: .customLong("dist-dir"), help: ArgumentHelp("A dist directory whose journal's earlier builds give expected durations.", valueName: "dir"))
    var distDir: String = "dist"

    /// Cached probe reports, by host name.
    func cachedReports(_ hosts: [Host]) -> [String: ProbeReport] {
        let env = ProcessInfo.processInfo.environment["WHEELFARM_PROBE_CACHE"].flatMap { $0.isEmpty ? nil : $0 }
        guard let dir = probeCache ?? env ?? (FileManager.default.fileExists(atPath: ".wheelfarm/probes") ? ".wheelfarm/probes" : nil) else { return [:] }
        let cache = ProbeCache(directory: URL(fileURLWithPath: dir))
        var out: [String: ProbeReport] = [:]
        for h in hosts { if let entry = try? cache.load(host: h.name) { out[h.name] = entry.report } }
        return out
    }

    func run() async throws {
        let inventory = try inventoryOptions.load(checkingSSH: false)
        let (recipe, matrix) = try selection.matrix()
        let jobs = matrix.jobs
        let reports = cachedReports(inventory.hosts)
        let facts = reports.mapValues { HostFacts(probe: $0, builder: builder == .docker ? .docker : .native) }
        let analysis = PlanAnalysis(jobs: jobs, hosts: inventory.hosts, facts: facts)
        let platform = PlatformPlan(jobs: jobs, inventory: inventory, reports: reports, docker: builder == .docker)
        let history = DurationHistory.load(distDir: distDir, inventory: inventory)
        if output.json {
            var document = PlanDocument(recipe: recipe, inventory: inventoryOptions.inventoryPath, analysis: analysis,
                                        platform: platform, durations: history.model)
            document.not_built = matrix.notBuilt.map { .init(package: $0.package, version: $0.version.description, python: $0.python?.description, reason: $0.reason, refused: $0.refused) }
            try printJSON(document)
        } else {
            print(render(recipe: recipe, analysis: analysis, history: history) + platform.render() + Self.renderNotBuilt(matrix)
                  + Self.renderTests(recipe: recipe, jobs: jobs, hosts: inventory.hosts))
        }
        if !analysis.unplaceable.isEmpty || matrix.notBuilt.contains(where: \.refused) { throw ExitCode(1) }
    }

    /// Where each wheel's test will run (the weakest eligible host), or why it cannot.
    static func renderTests(recipe: Recipe, jobs: [BuildJob], hosts: [Host]) -> String {
        guard recipe.test != nil, !jobs.isEmpty else { return "" }
        var out = "\n\ntests (weakest eligible host):\n"
        for job in jobs {
            if let arches = recipe.test?.arches, !arches.contains(job.arch) { out += "  \(job.id): not tested (the recipe tests \(arches.sorted().map(\.rawValue).joined(separator: ", ")) wheels only)\n"; continue }
            let p = TestPlacement.weakest(for: job, hosts: hosts)
            out += "  \(job.id): " + (p.host.map { "on \($0)" } ?? "cannot be tested") + (p.note.map { " — \($0)" } ?? "") + "\n"
        }
        return String(out.dropLast())
    }

    /// What the selection names that gets no job, and the versioned notes in force.
    static func renderNotBuilt(_ matrix: MatrixPlan) -> String {
        var out = ""
        if !matrix.notBuilt.isEmpty {
            out += "\n\nnot built (\(matrix.notBuilt.count)):\n"
            out += matrix.notBuilt.map { "  \($0.package)==\($0.version)\($0.python.map { " cp\($0.major)\($0.minor)" } ?? ""): \($0.reason)" }.joined(separator: "\n")
        }
        if !matrix.notes.isEmpty { out += "\n\nnotes:\n" + matrix.notes.map { "  \($0)" }.joined(separator: "\n") }
        return out
    }

    private func render(recipe: Recipe, analysis: PlanAnalysis, history: DurationHistory) -> String {
        let jobs = analysis.entries.map(\.job)
        let versions = Set(jobs.map(\.publishedVersion)).count
        let variants = Set(jobs.map(\.variant.package)).count
        let pythons = Set(jobs.map(\.python)).count
        let arches = Set(jobs.map(\.arch)).sorted().map(\.rawValue).joined(separator: ", ")
        var out = "recipe \(recipe.name) · inventory \(inventoryOptions.inventoryPath) · \(jobs.count) job\(jobs.count == 1 ? "" : "s")"
        out += " (\(versions) version\(versions == 1 ? "" : "s") × \(variants) variant\(variants == 1 ? "" : "s") × \(pythons) Python\(pythons == 1 ? "" : "s"); arches: \(arches.isEmpty ? "none" : arches))\n"
        if let note = JobMatrix.abi3Note(recipe: recipe, selection: selection.selection) { out += "\(note)\n" }
        out += "\n"
        out += "expected durations: \(history.summary)\n\n"
        var table = TextTable("JOB", "HOSTS ABLE TO BUILD IT", "EXPECTED")
        for e in analysis.entries {
            let expected = Expectation(e, durations: history.model).map { "\(ReleaseReport.duration($0.seconds)) on \($0.host) (\($0.source))" } ?? "-"
            table.add(e.job.id, e.eligible.isEmpty ? "— none" : e.eligible.map(\.name).joined(separator: ", "), expected)
        }
        out += table.render()
        let bad = analysis.unplaceable
        if bad.isEmpty {
            out += "\n\nevery job can be placed"
        } else {
            out += "\n\n\(bad.count) job\(bad.count == 1 ? "" : "s") cannot be placed:\n"
            out += bad.map { "  \($0.job.id): \($0.unplaceableReason ?? "")" }.joined(separator: "\n")
            out += "\nwhat would fix it: " + PlanAnalysis.remedies(for: bad).joined(separator: "; ")
        }
        return out
    }
}

/// The `plan --json` document (schema `wheelfarm.plan/1`, see docs/PLAN-JSON.md).
struct PlanDocument: Encodable {
    struct Summary: Encodable { let jobs: Int; let placeable: Int; let unplaceable: Int }
    struct Rejection: Encodable { let host: String; let reasons: [String] }
    struct NotBuilt: Encodable { let package: String; let version: String; let python: String?; let reason: String; let refused: Bool }
    struct Job: Encodable {
        let id: String
        let package: String
        let variant: String
        let arch: String
        let python: String
        let version: String
        let published_version: String
        let placeable: Bool
        let eligible_hosts: [String]
        let reason: String?
        let rejected_hosts: [Rejection]
        let expected: Expected?
    }
    /// The job's expected build time on its fastest eligible host.
    struct Expected: Encodable {
        let seconds: Double
        let host: String
        /// `history` (earlier builds in the journal) or `estimate` (the recipe's).
        let from: String
        let samples: Int
    }
    let schema = "wheelfarm.plan/1"
    let recipe: String
    let inventory: String
    let summary: Summary
    let jobs: [Job]
    /// Per required platform tag, which hosts can produce it (absent when the recipe requires none).
    let platform: [PlatformPlan.Requirement]?
    /// Packages (and Pythons) the selection names that have no build for a version, and why.
    var not_built: [NotBuilt] = []

    init(recipe: Recipe, inventory: String, analysis: PlanAnalysis, platform: PlatformPlan? = nil, durations: DurationModel = DurationModel()) {
        self.recipe = recipe.name
        self.inventory = inventory
        self.platform = platform.flatMap { $0.requirements.isEmpty ? nil : $0.requirements }
        let bad = analysis.unplaceable.count
        summary = Summary(jobs: analysis.entries.count, placeable: analysis.entries.count - bad, unplaceable: bad)
        jobs = analysis.entries.map { e in
            Job(id: e.job.id, package: e.job.variant.package, variant: e.job.variant.shortName, arch: e.job.arch.rawValue,
                python: e.job.python.description, version: e.job.version.description, published_version: e.job.publishedVersion,
                placeable: e.unplaceableReason == nil, eligible_hosts: e.eligible.map(\.name), reason: e.unplaceableReason,
                rejected_hosts: e.rejected.map { Rejection(host: $0.host.name, reasons: $0.reasons.map(\.description)) },
                expected: Expectation(e, durations: durations).map { x in
                    let (from, samples): (String, Int) = if case let .history(n, _) = x.source { ("history", n) } else { ("estimate", 0) }
                    return Expected(seconds: x.seconds, host: x.host, from: from, samples: samples)
                })
        }
    }
}

/// Which hosts can produce each platform tag the selected jobs require, and why the others
/// cannot (from the probe reports `hosts probe` cached).
struct PlatformPlan {
    struct HostVerdict: Encodable {
        let host: String
        /// `can`, `cannot` or `unknown` (not probed).
        let verdict: String
        let libc: String?
        let libstdcxx: String?
        let reason: String
    }
    struct Requirement: Encodable {
        let required: String
        let builder: String
        let hosts: [HostVerdict]
    }
    let requirements: [Requirement]

    init(jobs: [BuildJob], inventory: Inventory, reports: [String: ProbeReport], docker: Bool) {
        let hosts = inventory.hosts
        var byRequirement: [PlatformRequirement: Set<Arch>] = [:]
        for job in jobs { if let p = job.variant.platform, p != .linux { byRequirement[p, default: []].insert(job.arch) } }
        requirements = byRequirement.keys.sorted { $0.description < $1.description }.map { required in
            let arches = byRequirement[required]!
            let verdicts: [HostVerdict] = hosts.filter { arches.contains($0.arch) }.map { host in
                guard let report = reports[host.name] else {
                    return HostVerdict(host: host.name, verdict: "unknown", libc: nil, libstdcxx: nil,
                                       reason: "not probed: run 'wheelfarm hosts probe' (the build checks the host's C library itself)")
                }
                let facts = HostFacts(probe: report, builder: docker ? .docker : .native)
                let libc = report.libc?.description
                let glibcxx = report.libstdcxx?.glibcxx
                if let problem = facts.platformProblem(required) {
                    return HostVerdict(host: host.name, verdict: "cannot", libc: libc, libstdcxx: glibcxx, reason: problem.description)
                }
                if docker, let image = HostFacts.containerLibc(for: required.libc!) {
                    return HostVerdict(host: host.name, verdict: "can", libc: libc, libstdcxx: glibcxx,
                                       reason: "builds in a container with \(image) (the required \(required) or older)")
                }
                guard let found = report.libc else {
                    return HostVerdict(host: host.name, verdict: "unknown", libc: nil, libstdcxx: glibcxx, reason: "the probe found no C library version")
                }
                var reason = "\(found) is no newer than \(required) allows"
                if let glibcxx, let allowed = PlatformPolicies.policy(for: required.libc!, machine: host.arch.kernelName)?.newest("GLIBCXX"),
                   ProbeComparison.isNewer(glibcxx, than: allowed) {
                    reason += "; its libstdc++ defines GLIBCXX_\(glibcxx), newer than the tag allows (\(allowed)): C++ code may need it, and the audit of each wheel decides"
                }
                return HostVerdict(host: host.name, verdict: "can", libc: libc, libstdcxx: glibcxx, reason: reason)
            }
            return Requirement(required: required.description, builder: docker ? "docker" : "native", hosts: verdicts)
        }
    }

    func render() -> String {
        guard !requirements.isEmpty else { return "" }
        var out = ""
        for r in requirements {
            out += "\n\nplatform: wheels must be \(r.required) or more compatible (--builder \(r.builder)):"
            for h in r.hosts { out += "\n  \(h.host): \(h.verdict == "can" ? "can" : h.verdict == "cannot" ? "cannot" : "unknown") — \(h.reason)" }
            if r.hosts.contains(where: { $0.verdict == "cannot" }) && r.builder == "native" {
                out += "\n  (--builder docker builds in the manylinux image for the tag on any host with docker)"
            }
        }
        return out
    }
}

/// A job's expected build time on the eligible host where it is shortest.
struct Expectation {
    let seconds: Double
    let host: String
    let source: DurationModel.Source

    init?(_ entry: PlanAnalysis.Entry, durations: DurationModel) {
        let best = entry.eligible.map { ($0.name, durations.explain(entry.job, on: $0)) }.min { $0.1.seconds < $1.1.seconds }
        guard let best else { return nil }
        seconds = best.1.seconds; host = best.0; source = best.1.source
    }
}

/// Build durations learned from a dist directory's journal, for `plan` and `simulate`.
struct DurationHistory {
    let model: DurationModel
    let samples: Int
    let journal: String?

    /// The history in `distDir`'s journal (none when it has none or it cannot be read).
    static func load(distDir: String, inventory: Inventory, baseMinutes: [String: Double] = [:]) -> DurationHistory {
        let layout = DistLayout(root: URL(fileURLWithPath: distDir))
        guard layout.hasJournal else { return DurationHistory(model: DurationModel(baseMinutes: baseMinutes), samples: 0, journal: nil) }
        let speeds = Dictionary(inventory.hosts.map { ($0.name, $0.speed) }, uniquingKeysWith: { a, _ in a })
        do {
            let samples = try Journal(layout: layout).durationSamples(speeds: speeds)
            return DurationHistory(model: DurationModel(history: samples, baseMinutes: baseMinutes), samples: samples.count, journal: layout.journalFile.path)
        } catch {
            printError("wheelfarm: cannot read build durations from '\(layout.journalFile.path)' (\(error)); using the recipe's estimates")
            return DurationHistory(model: DurationModel(baseMinutes: baseMinutes), samples: 0, journal: nil)
        }
    }

    /// `3 earlier builds in dist/.wheelfarm/journal.sqlite, else the recipe's estimates`.
    var summary: String {
        guard let journal, samples > 0 else { return "the recipe's estimates (no earlier builds recorded)" }
        return "\(samples) earlier build\(samples == 1 ? "" : "s") in \(journal), else the recipe's estimates"
    }
}
