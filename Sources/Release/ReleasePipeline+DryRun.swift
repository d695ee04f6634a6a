import Agents
import FarmCore
import Foundation
import Inventory
import struct Inventory.Host
import Publishing
import Recipes
import Remote
import Scheduling
import Wheels

extension ReleasePipeline {
    /// `--dry-run`: the plan and every command that would run; nothing is changed.
    ///
    /// It follows the options the real run would: `--skip-build` and `--update-readme` build
    /// nothing and name the wheels they would use; otherwise each job's build command is the one
    /// the real run sends (the same request, `--max-jobs`, slot count and uploaded source path;
    /// only the run id in the job's id is not known yet).
    func dryRun(plan: PlanAnalysis, startedAt: Date) async throws -> Outcome {
        let config = configuration
        out("=== Dry run: nothing will be built, changed or uploaded ===")
        for note in config.notes { out(note) }
        out("\n[DRY RUN] Phase 0: pre-flight would probe \(config.inventory.hosts.filter { !$0.drain }.count) hosts and check \(layout.root.path) for verified wheels")
        // Read-only look-ups: what the destination lists, and which wheels dist already holds.
        var publisherByProject: [String: any WheelPublisher] = [:]
        if config.updateReadme == nil {
            for package in Set(config.jobs.map(\.variant.package)) { publisherByProject[package] = try? publishers.make(package) }
        }
        let onIndex = await publishedBeforeRun(publisherByProject)
        let inDist = layout.wheels()
        let buildsNothing = config.skipBuild || config.updateReadme != nil
        let flag = config.skipBuild ? "--skip-build" : "--update-readme"
        out(buildsNothing ? "\n[DRY RUN] Phase 1: \(plan.entries.count) jobs; \(flag): nothing would be built" : "\n[DRY RUN] Phase 1: \(plan.entries.count) jobs")
        let source = buildsNothing ? nil : try dryRunSource()
        defer { if let source { try? FileManager.default.removeItem(at: source.path.deletingLastPathComponent()) } }
        var missing = 0
        for e in plan.entries {
            let inDistFile = inDist.keys.sorted().first { ReleasePipelineSupport.matches(file: $0, job: e.job) }
            if buildsNothing {
                if let file = inDistFile {
                    out("  \(e.job.id): \(file) is in \(layout.root.path): would be verified again\(config.updateReadme != nil ? " and get the new README" : " and published")")
                } else {
                    missing += 1
                    out("  \(e.job.id): no wheel for it in '\(layout.root.path)' (\(flag) builds nothing): would fail")
                }
                continue
            }
            if let file = onIndex[e.job.id] {
                out("  \(e.job.id): already published as \(file.filename): would not be rebuilt")
                continue
            }
            if let file = inDistFile {
                out("  \(e.job.id): \(file) is in \(layout.root.path): would be verified again and reused if it passes (rebuilt otherwise)")
                continue
            }
            guard let host = e.eligible.first else {
                missing += 1
                out("  \(e.job.id): cannot be placed: \(e.unplaceableReason ?? "")")
                out("    would fix it: \(PlanAnalysis.remedies(for: [e]).joined(separator: "; "))")
                continue
            }
            out("  \(e.job.id) on one of \(e.eligible.map(\.name).joined(separator: ", ")):")
            out("    [DRY RUN] Would run on \(host.name): \(dryRunCommand(for: e.job, on: host, source: source))")
            out("    [DRY RUN] Would verify the wheel (zip, PEP 427, metadata, RECORD, required files, ELF, ISA audit)")
        }
        dryRunLater(config)
        let report = ReleaseReport(runID: "dry-run", recipe: config.recipe.name, startedAt: startedAt, finishedAt: Date(),
                                   status: "dry-run", hosts: config.inventory.hosts.map(\.name), jobs: [])
        return Outcome(exitCode: missing == 0 ? 0 : 1, cancelled: false, report: report, reportFiles: nil)
    }

    /// The build command a real run would send for `job` on `host`.
    func dryRunCommand(for job: BuildJob, on host: Host, source: SourceArchive?) -> String {
        var host = host
        if let maxJobs = configuration.maxJobs { host.maxJobs = maxJobs }
        var request = BuildRequest(job: job, recipe: configuration.recipe, host: host,
                                   source: source?.remotePath(workDir: host.workDir, recipe: configuration.recipe.buildStep) ?? configuration.recipe.source,
                                   builder: configuration.builder)
        request.jobID = ReleaseJobRunner.remoteJobID(for: job, runID: "<run-id>", attempt: 1)
        request.hostSlots = host.slots
        let agentDir = (try? Self.agentBundle().including(recipe: configuration.recipe))?.installDirectory(workDir: host.workDir) ?? "\(host.workDir)/agents/<version>"
        return request.commandLine(agentDirectory: agentDir, workDir: host.workDir)
    }

    /// The source archive a real run would upload, made in a scratch directory (so its path on
    /// the hosts, which carries its digest, is the real one).
    func dryRunSource() throws -> SourceArchive? {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("wheelfarm-dry-run-\(UUID().uuidString.prefix(8))")
        let source = configuration.recipe.source
        guard !source.contains("://"), !source.hasPrefix("git@") else { return nil }
        let candidates = [URL(fileURLWithPath: source)] + (ResourceLocator.directory(source.components(separatedBy: "/").first ?? source)
            .map { [$0.deletingLastPathComponent().appendingPathComponent(source)] } ?? [])
        guard let dir = candidates.first(where: { FileManager.default.fileExists(atPath: $0.path) }) else { return nil }
        return try SourceArchive.make(from: dir, in: scratch)
    }

    /// What the later phases would do.
    func dryRunLater(_ config: ReleaseConfiguration) {
        if let suffix = config.jobs.first?.suffix { out("\n[DRY RUN] Would rewrite each verified wheel with version suffix \(suffix)") }
        if let readme = config.updateReadme {
            out("\n[DRY RUN] Would replace the README in the existing wheels with '\(readme.path)'; nothing would be uploaded")
            return
        }
        out("\n[DRY RUN] Phase 2: would publish each verified wheel to \(publishers.destination) (skipping files already there with the same SHA-256)")
        if config.skipGitHub || makeGitHub == nil { out("[DRY RUN] Phase 3: no GitHub release\(config.skipGitHub ? " (--skip-github)" : " (no repository configured)")") }
        else { out("[DRY RUN] Phase 3: would create or complete the GitHub release of each tag and attach every wheel (a wheel published before this run that its release lacks is fetched from the index and verified first)") }
    }
}
