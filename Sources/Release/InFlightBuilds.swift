import Foundation
import Synchronization

/// The remote builds this coordinator has started and not yet seen end: what may still run where
/// if the coordinator exits at once (a second Ctrl-C).
public final class InFlightBuilds: Sendable {
    /// One build under way on a host.
    public struct Build: Sendable, Hashable, CustomStringConvertible {
        /// The job's id.
        public var job: String
        /// The inventory host it runs on.
        public var host: String
        /// The host's address (or `local`).
        public var address: String
        /// The host's work directory.
        public var workDir: String
        /// The job's id on the host: its directory is `<workDir>/jobs/<remoteJobID>`.
        public var remoteJobID: String

        /// `job on host (address): <workDir>/jobs/<id>`.
        public var description: String { "\(job) on \(host) (\(address)): \(workDir)/jobs/\(remoteJobID)" }

        /// The command that stops it, run on its host.
        public var cancelCommand: String { "bash <agent dir>/cancel.sh --work-dir \(workDir) --job-id \(remoteJobID)" }
    }

    private let builds = Mutex([String: Build]())

    /// Creates an empty registry.
    public init() {}

    /// Records a build that is starting.
    func started(_ build: Build) { builds.withLock { $0[build.remoteJobID] = build } }

    /// Forgets a build that ended (or was stopped).
    func ended(remoteJobID: String) { _ = builds.withLock { $0.removeValue(forKey: remoteJobID) } }

    /// The builds under way, by host then job.
    public var current: [Build] { builds.withLock { Array($0.values) }.sorted { ($0.host, $0.job) < ($1.host, $1.job) } }
}
