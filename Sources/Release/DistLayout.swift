import Agents
import Foundation

/// Where a release keeps everything in its dist directory: the one place that knows the layout.
///
/// ```
/// <dist>/
///   *.whl                      verified wheels (and their rewritten versions)
///   logs/<job>-<run>-a<n>.log  the build log of every attempt (never overwritten)
///   reports/<run>.json|.html   the report of every run
///   index/                     the embedded default's local package index
///   .wheelfarm/lock            the coordinator lock (flock)
///   .wheelfarm/journal.sqlite  the journal that makes a release resumable
///   .wheelfarm/probes/         cached host probe reports
///   .wheelfarm/sources/        source archives uploaded to hosts
///   .wheelfarm/from-index/     wheels fetched from the index to attach to GitHub releases
/// ```
///
/// Built once from `--dist-dir` and passed down, so that the lock, the journal, the logs, the
/// reports and the index can never disagree about where they live.
public struct DistLayout: Sendable, Hashable {
    /// The dist directory itself: verified wheels live directly in it.
    public let root: URL

    /// The layout of `root`.
    public init(root: URL) { self.root = root.standardizedFileURL }

    /// The coordinator's own state (lock, journal, caches).
    public var stateDirectory: URL { root.appendingPathComponent(".wheelfarm") }
    /// The coordinator lock file.
    public var lockFile: URL { stateDirectory.appendingPathComponent("lock") }
    /// The journal (SQLite).
    public var journalFile: URL { stateDirectory.appendingPathComponent("journal.sqlite") }
    /// Cached host probe reports.
    public var probesDirectory: URL { stateDirectory.appendingPathComponent("probes") }
    /// Source archives made for upload to hosts.
    public var sourcesDirectory: URL { stateDirectory.appendingPathComponent("sources") }
    /// Wheels fetched from the index so that they can be attached to their GitHub release.
    public var fromIndexDirectory: URL { stateDirectory.appendingPathComponent("from-index") }
    /// Where each build attempt's download waits for verification (`ArtifactStaging` in Agents
    /// makes and empties it; the path is decided there, since Agents cannot see this type).
    public var stagingDirectory: URL { ArtifactStaging.root(dist: root) }
    /// Build logs, one per attempt.
    public var logsDirectory: URL { root.appendingPathComponent("logs") }
    /// Reports, one JSON and one HTML file per run.
    public var reportsDirectory: URL { root.appendingPathComponent("reports") }
    /// The embedded default's local package index.
    public var indexDirectory: URL { root.appendingPathComponent("index") }

    /// The build log of one attempt: its file name carries the remote job id, which is unique per
    /// job, run and attempt, so no run ever overwrites another's log.
    public func buildLog(remoteJobID: String) -> URL { logsDirectory.appendingPathComponent("\(remoteJobID).log") }

    /// The path of a wheel kept in the dist directory.
    public func wheel(_ filename: String) -> URL { root.appendingPathComponent(filename) }

    /// `.whl` files directly in the dist directory, by file name.
    public func wheels() -> [String: URL] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []
        return Dictionary(uniqueKeysWithValues: names.filter { $0.hasSuffix(".whl") }.map { ($0, wheel($0)) })
    }

    /// Whether a journal exists (a release ran here before).
    public var hasJournal: Bool { FileManager.default.fileExists(atPath: journalFile.path) }
}
