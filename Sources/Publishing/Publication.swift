import FarmCore
import Foundation

/// What happened to one wheel at one destination.
public enum PublicationOutcome: Sendable, Equatable, CustomStringConvertible {
    /// The file was uploaded; `attempts` counts the requests it took (a file found on the index
    /// after an ambiguous failure counts as uploaded by the attempt that failed).
    case uploaded(attempts: Int)
    /// The same filename with the same SHA-256 was already there: nothing was sent.
    case alreadyThere
    /// A dry run: the file would be uploaded.
    case wouldUpload
    /// The file was not uploaded, and why.
    case refused(Refusal)
    /// Publishing failed with an error (network, credentials, server); running again may succeed.
    case failed(String)

    /// `uploaded`, `already there`, `would upload`, or `refused: …`.
    public var description: String {
        switch self {
        case .uploaded(let n): n == 1 ? "uploaded" : "uploaded (after \(n) attempts)"
        case .alreadyThere: "already there"
        case .wouldUpload: "would upload (dry run)"
        case .refused(let r): "refused: \(r)"
        case .failed(let e): "failed: \(e)"
        }
    }

    /// True when the wheel is (or, in a dry run, would be) at the destination.
    public var isSuccess: Bool {
        switch self {
        case .uploaded, .alreadyThere, .wouldUpload: true
        case .refused, .failed: false
        }
    }
}

/// Why a wheel was not published.
public enum Refusal: Sendable, Equatable, CustomStringConvertible {
    /// The filename exists on the destination with other content (or was used before and
    /// deleted): that name can never be used again.
    case filenameBurnt(filename: String, destination: String, existing: SHA256Digest?, ours: SHA256Digest,
                       suggestedSuffix: VersionSuffix)

    public var description: String {
        switch self {
        case let .filenameBurnt(filename, destination, existing, ours, suffix):
            let what = existing.map { "it holds other content (sha256 '\($0.hex)', this file '\(ours.hex)')" }
                ?? "the index refuses it as already used (this file's sha256 '\(ours.hex)')"
            return "filename '\(filename)' is burnt on '\(destination)': \(what); build again with --version-suffix \(suffix) to publish under a new version"
        }
    }
}

/// One line of a publish report.
public struct PublicationResult: Sendable, Equatable, CustomStringConvertible {
    /// The wheel's file name.
    public let filename: String
    /// Where it was published (upload URL, local index path, or GitHub release).
    public let destination: String
    /// What happened.
    public let outcome: PublicationOutcome

    /// Creates a result.
    public init(filename: String, destination: String, outcome: PublicationOutcome) {
        self.filename = filename; self.destination = destination; self.outcome = outcome
    }

    /// `FILE → DESTINATION: OUTCOME`.
    public var description: String { "\(filename) → \(destination): \(outcome)" }
}

/// A destination that takes wheels one at a time (an upload-API index or a local index).
public protocol WheelPublisher: Sendable {
    /// Where wheels go, for reports.
    var destination: String { get }
    /// Publishes one verified wheel, or decides it is already there or must be refused.
    func publish(_ wheel: PublishableWheel, dryRun: Bool) async throws -> PublicationOutcome
    /// The files the destination already holds for `project` (empty when it does not know it),
    /// so a release can skip jobs whose wheel is published before building anything.
    func listedFiles(project: String) async throws -> [IndexedFile]
    /// Downloads a file ``listedFiles(project:)`` returned to a new file at `path`, checking the
    /// SHA-256 the destination lists; on failure nothing is left at `path`.
    func fetch(_ file: IndexedFile, to path: String) async throws
}

/// How often and how patiently to retry a failed request.
public struct RetryPolicy: Sendable, Hashable {
    /// Total attempts (first try included).
    public var maxAttempts: Int
    /// The wait before the second attempt; doubled for each later one.
    public var initialDelay: Duration
    /// The longest wait between attempts.
    public var maxDelay: Duration
    /// How many times a destination is asked whether an upload it accepted is there before the
    /// upload counts as not stored (waiting as between attempts: listings lag behind uploads).
    public var confirmationLooks: Int

    /// Creates a policy; the default is 5 attempts, waiting 1 s, 2 s, 4 s, 8 s, and 3 looks to
    /// confirm an upload.
    public init(maxAttempts: Int = 5, initialDelay: Duration = .seconds(1), maxDelay: Duration = .seconds(30),
                confirmationLooks: Int = 3) {
        self.maxAttempts = max(1, maxAttempts); self.initialDelay = initialDelay; self.maxDelay = maxDelay
        self.confirmationLooks = max(1, confirmationLooks)
    }

    /// The wait before attempt `attempt` (2, 3, …).
    func delay(before attempt: Int) -> Duration {
        var d = initialDelay
        for _ in 2..<max(2, attempt) { d = min(d * 2, maxDelay) }
        return min(d, maxDelay)
    }
}

extension PublishableWheel {
    /// Re-hashes the file and throws when it is not the file the verifier stamped.
    func checkUnchangedSinceVerification() throws {
        let now: (digest: SHA256Digest, size: Int64)
        do { now = try StreamingDigest.file(at: path) } catch {
            throw PublishingError.fileAccess(path: path, problem: "\(error)")
        }
        guard now.digest == sha256, now.size == size else {
            throw PublishingError.wheelChangedSinceVerification(filename: filename, stamped: sha256, found: now.digest)
        }
    }
}
