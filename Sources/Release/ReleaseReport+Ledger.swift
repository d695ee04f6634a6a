import FarmCore
import Foundation
import Publishing

extension ReleaseReport {
    /// The report of a run, read from its ledger.
    init(run: ReleaseRun, ledger: JobLedger, status: String, configuration: ReleaseConfiguration) {
        self.init(runID: run.id, recipe: configuration.recipe.name, startedAt: run.startedAt, finishedAt: Date(), status: status,
                  hosts: configuration.inventory.hosts.map(\.name),
                  jobs: ledger.records.map { Job(record: $0, destination: run.destination) })
        fault = run.faultText
    }
}

extension ReleaseReport.Job {
    /// A job's story from its ledger record.
    init(record r: JobLedger.Record, destination: String) {
        let job = r.job
        if let listed = r.listed {
            // Published before this run; failed only when its GitHub release could not be completed.
            self.init(id: r.id, package: job.variant.package, arch: job.arch.rawValue, python: job.python.description,
                      version: job.publishedVersion, state: (r.failure == nil ? JobState.published : .failed).rawValue,
                      attempts: r.attempts, wheel: listed.filename, sha256: listed.sha256?.hex,
                      publications: ["on \(destination) before this run"] + r.publications, detail: r.failure)
            return
        }
        let path = r.wheel ?? r.lastWheel
        // Digests already computed (by the publication gate, or while downloading) are reused.
        var digest: (digest: SHA256Digest, size: Int64)?
        switch r.state {
        case let .published(w), let .attached(w): digest = (w.sha256, w.size)
        default: digest = r.built.flatMap { $0.path == path ? ($0.sha256, $0.size) : nil }
        }
        if digest == nil, let path, FileManager.default.fileExists(atPath: path.path) { digest = try? StreamingDigest.file(at: path.path) }
        let report = r.verification
        self.init(id: r.id, package: job.variant.package, arch: job.arch.rawValue, python: job.python.description,
                  version: job.publishedVersion, state: JobLedger.journalState(r).rawValue, attempts: r.attempts,
                  wheel: path?.lastPathComponent, sha256: digest?.digest.hex, size: digest?.size,
                  checks: report?.checks.map { .init(id: $0.id.rawValue, outcome: $0.outcome.rawValue, message: $0.message) } ?? [],
                  isaCounts: report?.isa?.byCapability ?? [:], publications: r.publications, detail: r.failure)
    }
}
