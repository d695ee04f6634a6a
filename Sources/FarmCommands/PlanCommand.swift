import struct Inventory.Host
import Agents
import ArgumentParser
import Foundation
import Inventory
import Release
import Recipes
import Scheduling

/// `wheelfarm plan`: the job matrix and, for each job, the hosts able to build it natively.
struct PlanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Show the job matrix and which hosts can build each job natively.",
        discussion: """
        Nothing is started: the inventory and the recipe alone decide. A host can build a job when \
        its arch matches, it has every CPU flag the variant requires, it has none of the flags the \
        variant forbids (they would leak into the wheel), it is not reserved for other work and it is \
        not draining. Jobs no host can take are listed with the reason and the closest host.

        Exit codes: 0 every job has a host, 1 some job cannot be placed, 2 usage or inventory error. \
        The --json document is described in docs/PLAN-JSON.md.
        """)

    @OptionGroup(title: "Inventory") var inventoryOptions: InventoryOptions
    @OptionGroup(title: "Selection") var selection: SelectionOptions
    @OptionGroup(title: "Output") var output: OutputOptions

    @Option(name: .customLong("probe-cache"), help: ArgumentHelp(
        "Probe reports of `hosts probe` to judge prerequisites and toolchains with (one JSON file per host).",
        discussion: "Default: $WHEELFARM_PROBE_CACHE, else .wheelfarm/probes when it exists. Hosts without a report are judged by the inventory alone.",
        valueName: "dir"))
    var probeCache: String?

    /// Facts from cached probe reports, by host name.
    func cachedFacts(_ hosts: [Host]) -> [String: HostFacts] {
        let env = ProcessInfo.processInfo.environment["WHEELFARM_PROBE_CACHE"].flatMap { $0.isEmpty ? nil : $0 }
        guard let dir = probeCache ?? env ?? (FileManager.default.fileExists(atPath: ".wheelfarm/probes") ? ".wheelfarm/probes" : nil) else { return [:] }
        let cache = ProbeCache(directory: URL(fileURLWithPath: dir))
        var out: [String: HostFacts] = [:]
        for h in hosts { if let entry = try? cache.load(host: h.name) { out[h.name] = HostFacts(report: entry.report) } }
        return out
    }

    func run() async throws {
        let inventory = try inventoryOptions.load()
        let (recipe, matrix) = try selection.matrix()
        let analysis = PlanAnalysis(jobs: matrix.jobs, hosts: inventory.hosts, facts: cachedFacts(inventory.hosts))
        if output.json {
            var document = PlanDocument(recipe: recipe, inventory: inventoryOptions.inventoryPath, analysis: analysis)
            document.not_built = matrix.notBuilt.map { .init(package: $0.package, version: $0.version.description, python: $0.python?.description, reason: $0.reason, refused: $0.refused) }
            try printJSON(document)
        } else {
            print(render(recipe: recipe, analysis: analysis) + Self.renderNotBuilt(matrix) + Self.renderTests(recipe: recipe, jobs: matrix.jobs, hosts: inventory.hosts))
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

    private func render(recipe: Recipe, analysis: PlanAnalysis) -> String {
        let jobs = analysis.entries.map(\.job)
        let versions = Set(jobs.map(\.publishedVersion)).count
        let variants = Set(jobs.map(\.variant.package)).count
        let pythons = Set(jobs.map(\.python)).count
        let arches = Set(jobs.map(\.arch)).sorted().map(\.rawValue).joined(separator: ", ")
        var out = "recipe \(recipe.name) · inventory \(inventoryOptions.inventoryPath) · \(jobs.count) job\(jobs.count == 1 ? "" : "s")"
        out += " (\(versions) version\(versions == 1 ? "" : "s") × \(variants) variant\(variants == 1 ? "" : "s") × \(pythons) Python\(pythons == 1 ? "" : "s"); arches: \(arches.isEmpty ? "none" : arches))\n"
        if let note = JobMatrix.abi3Note(recipe: recipe, selection: selection.selection) { out += "\(note)\n" }
        out += "\n"
        var table = TextTable("JOB", "HOSTS ABLE TO BUILD IT")
        for e in analysis.entries {
            table.add(e.job.id, e.eligible.isEmpty ? "— none" : e.eligible.map(\.name).joined(separator: ", "))
        }
        out += table.render()
        let bad = analysis.unplaceable
        if bad.isEmpty {
            out += "\n\nevery job can be placed"
        } else {
            out += "\n\n\(bad.count) job\(bad.count == 1 ? "" : "s") cannot be placed:\n"
            out += bad.map { "  \($0.job.id): \($0.unplaceableReason ?? "")" }.joined(separator: "\n")
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
    }
    let schema = "wheelfarm.plan/1"
    let recipe: String
    let inventory: String
    let summary: Summary
    let jobs: [Job]
    /// Packages (and Pythons) the selection names that have no build for a version, and why.
    var not_built: [NotBuilt] = []

    init(recipe: Recipe, inventory: String, analysis: PlanAnalysis) {
        self.recipe = recipe.name
        self.inventory = inventory
        let bad = analysis.unplaceable.count
        summary = Summary(jobs: analysis.entries.count, placeable: analysis.entries.count - bad, unplaceable: bad)
        jobs = analysis.entries.map { e in
            Job(id: e.job.id, package: e.job.variant.package, variant: e.job.variant.shortName, arch: e.job.arch.rawValue,
                python: e.job.python.description, version: e.job.version.description, published_version: e.job.publishedVersion,
                placeable: e.unplaceableReason == nil, eligible_hosts: e.eligible.map(\.name), reason: e.unplaceableReason,
                rejected_hosts: e.rejected.map { Rejection(host: $0.host.name, reasons: $0.reasons.map(\.description)) })
        }
    }
}
