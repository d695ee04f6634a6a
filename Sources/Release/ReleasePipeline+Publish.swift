import Agents
import FarmCore
import Foundation
import Logging
import Publishing
import Recipes
import Wheels

extension ReleasePipeline {
    /// Rewrites: `--update-readme` puts the new description into the verified wheels (and
    /// nothing is published); `--version-suffix` turns each verified wheel into its suffixed
    /// version. The rewriter verifies what it writes.
    func rewrite(_ run: ReleaseRun) async throws {
        let verified = run.ledger.snapshot.verified
        if let readme = configuration.updateReadme {
            out("\n=== Update README in \(verified.count) wheels (nothing is built or uploaded) ===")
            let text = try String(contentsOf: readme, encoding: .utf8)
            let ext = readme.pathExtension.lowercased()
            let contentType = ext == "rst" ? "text/x-rst" : ext == "md" ? "text/markdown" : "text/plain"
            for (jobID, path) in verified where !Task.isCancelled {
                do {
                    _ = try await WheelRewriter().rewrite(path: path.path, changes: .init(readme: (text, contentType)), inPlace: true)
                    run.ledger.with { $0.set(jobID, .rewritten(path)) }
                    out("  ✓ \(path.lastPathComponent)")
                } catch {
                    run.ledger.with { $0.fail(jobID, "README update failed: \(error)") }
                    out("  ✗ \(path.lastPathComponent): \(error)")
                }
            }
            return
        }
        guard let suffixText = configuration.jobs.first?.suffix, let suffix = VersionSuffix(suffixText), !verified.isEmpty else { return }
        out("\n=== Version suffix \(suffix) ===")
        for (jobID, path) in verified where !Task.isCancelled {
            do {
                let result = try await WheelRewriter().rewrite(path: path.path, changes: .init(versionSuffix: suffix, versionFile: configuration.recipe.versionFile),
                                                               outputDirectory: layout.root.path)
                run.ledger.with { $0.set(jobID, .rewritten(URL(fileURLWithPath: result.path))) }
                out("  ✓ \(path.lastPathComponent) → \(URL(fileURLWithPath: result.path).lastPathComponent)")
            } catch {
                run.ledger.with { $0.fail(jobID, "version suffix rewrite failed: \(error)") }
                out("  ✗ \(path.lastPathComponent): \(error)")
            }
        }
        try run.syncJournal(verified.map(\.id))
    }

    /// Phase 2: each verified wheel goes through the publication gate to its project's index
    /// (the destination, not the journal, decides whether the file is there already).
    func publish(_ run: ReleaseRun) async throws {
        guard configuration.updateReadme == nil else { return }
        let ready = run.ledger.snapshot.readyToPublish
        guard !ready.isEmpty else { return }
        out("\n=== Phase 2: Publish to \(run.destination) ===")
        for (jobID, path) in ready {
            guard !Task.isCancelled else { return }
            guard let publisher = run.publisher(for: jobID) else { continue }
            do {
                let wheel = try await publicationVerifier.verifiedForPublishing(wheelAt: path.path)
                // The destination is asked, not only the journal: a file the journal records as
                // published that the index does not hold is uploaded again.
                let recorded = try run.journal.isPublished(filename: wheel.filename, sha256: wheel.sha256, target: publisher.destination)
                let outcome = try await publisher.publish(wheel, dryRun: false)
                if outcome == .alreadyThere {
                    if !recorded {
                        try run.journal.recordPublication(filename: wheel.filename, sha256: wheel.sha256, target: publisher.destination, outcome: "\(outcome)")
                    }
                    run.ledger.update(jobID) { $0.state = .published(wheel); $0.publications.append("already published to \(publisher.destination)") }
                    out("  = \(wheel.filename): already published")
                    continue
                }
                if recorded && outcome.isSuccess {
                    out("  ! \(wheel.filename): the journal recorded it as published, but \(publisher.destination) did not hold it: uploaded again")
                }
                guard outcome.isSuccess else {
                    run.ledger.with { $0.fail(jobID, "not published: \(outcome)") }
                    out("  ✗ \(wheel.filename): \(outcome)")
                    continue
                }
                try run.journal.recordPublication(filename: wheel.filename, sha256: wheel.sha256, target: publisher.destination, outcome: "\(outcome)")
                run.ledger.update(jobID) { $0.state = .published(wheel); $0.publications.append("\(outcome) → \(publisher.destination)") }
                logger.info("published", metadata: ["release.wheel": "\(wheel.filename)", "release.destination": "\(publisher.destination)"])
                out("  ✓ \(wheel.filename): \(outcome)")
            } catch {
                run.ledger.with { $0.fail(jobID, "not published: \(error)") }
                out("  ✗ \(path.lastPathComponent): \(error)")
            }
        }
        try run.syncJournal(ready.map(\.id))
    }

    /// Phase 3: GitHub releases, for the wheels the index accepted and the wheels the index held
    /// before this run that their release lacks (fetched from the index and verified first).
    func attach(_ run: ReleaseRun) async throws {
        guard let gitHub = run.gitHub else { return }
        let ledger = run.ledger.snapshot
        let published = ledger.published, before = ledger.alreadyPublished
        guard !published.isEmpty || !before.isEmpty else { return }
        out("\n=== Phase 3: GitHub releases in \(gitHub.repository) ===")
        let fromIndex = await fetchForGitHub(Dictionary(before.map { ($0.id, $0.file) }, uniquingKeysWith: { a, _ in a }), gitHub: gitHub, run: run)
        let ready = Dictionary(published.map { ($0.id, $0.wheel) }, uniquingKeysWith: { a, _ in a }).merging(fromIndex) { built, _ in built }
        let results = await gitHub.publish(ready.values.sorted { $0.filename < $1.filename })
        for r in results {
            guard let (jobID, wheel) = ready.first(where: { $0.value.filename == r.filename }) else { continue }
            if r.outcome.isSuccess {
                run.ledger.update(jobID) { record in
                    record.publications.append("\(r.outcome) → \(r.destination)")
                    if case .published = record.state { record.state = .attached(wheel) }
                }
                out("  ✓ \(r)")
            } else {
                run.ledger.with { $0.fail(jobID, "GitHub release: \(r.outcome)") }
                out("  ✗ \(r)")
            }
        }
        try run.syncJournal(Array(ready.keys))
    }

    /// Wheels the destination held before this run (so none was built) whose GitHub release lacks
    /// them, by job id: each is downloaded from the destination (its listed SHA-256 checked) into
    /// the layout's `from-index` directory, and verified exactly as a fresh build is before it may
    /// be attached. A run after a lost dist directory, or one whose GitHub phase failed, thus still
    /// completes every release without rebuilding anything. A wheel that cannot be fetched or
    /// fails verification is a failure of its job and is not attached.
    func fetchForGitHub(_ files: [String: IndexedFile], gitHub: GitHubReleasePublisher, run: ReleaseRun) async -> [String: PublishableWheel] {
        let wanted = files.sorted { $0.value.filename < $1.value.filename }.compactMap { jobID, file -> (jobID: String, tag: String, file: IndexedFile, publisher: any WheelPublisher)? in
            guard let name = WheelFilename(file.filename), let record = run.ledger.snapshot[jobID], let publisher = run.publisher(for: jobID) else { return nil }
            let package = record.job.variant.package
            return (jobID, gitHub.tagTemplate.tag(version: name.version, name: package, pythonTag: name.pythonTags.joined(separator: ".")), file, publisher)
        }
        guard !wanted.isEmpty else { return [:] }
        let missing: Set<String>
        do {
            missing = try await gitHub.missing(wanted.map { ($0.tag, $0.file.filename) })
        } catch {
            out("  ✗ could not read the GitHub releases of wheels published before this run: \(error)")
            run.ledger.with { ledger in for w in wanted { ledger.fail(w.jobID, "GitHub release: \(error)") } }
            return [:]
        }
        let directory = layout.fromIndexDirectory
        var fetched: [String: PublishableWheel] = [:]
        for w in wanted where missing.contains(w.file.filename) {
            let publisher = w.publisher
            let path = directory.appendingPathComponent(w.file.filename).path
            do {
                try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
                try? FileManager.default.removeItem(atPath: path)
                try await publisher.fetch(w.file, to: path)
                fetched[w.jobID] = try await publicationVerifier.verifiedForPublishing(wheelAt: path)
                out("  ↓ \(w.file.filename): fetched from \(publisher.destination) and verified, for its GitHub release")
            } catch {
                try? FileManager.default.removeItem(atPath: path)
                run.ledger.with { $0.fail(w.jobID, "GitHub release: the copy on \(publisher.destination) was not attached: \(error)") }
                out("  ✗ \(w.file.filename): not attached to its GitHub release: \(error)")
            }
        }
        return fetched
    }
}
