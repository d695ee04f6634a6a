import FarmCore
import Foundation
import Logging

/// Publishes wheels to an index through the upload API (the multipart protocol twine uses).
///
/// Before uploading it asks the index whether the exact file is there (same filename and
/// SHA-256 → skip; same filename with other content → refuse and suggest the next free `.postN`).
/// It retries 5xx answers and dropped connections with backoff, and after every ambiguous failure
/// it looks again before sending the file anew, so a file is never uploaded twice. A 409, or a 400
/// saying the file exists, is resolved the same way.
///
/// An upload counts only when it is confirmed: after a 2xx the index must list the file with the
/// wheel's SHA-256 (looked at a few times, since listings lag). An answer that does not stick is
/// retried like a failure and, when no attempt sticks, reported as
/// ``PublishingError/uploadNotStored(filename:destination:attempts:detail:)``.
public struct UploadAPIPublisher: WheelPublisher {
    /// The index.
    public let index: PackageIndex
    private let credentials: IndexCredentials?
    /// Obtains credentials just before an upload (short-lived Trusted Publishing tokens).
    private let credentialProvider: (@Sendable () async throws -> IndexCredentials)?
    private let transport: HTTPTransport
    private let retry: RetryPolicy
    private let logger: Logger

    /// Creates a publisher for `index` using `credentials`.
    ///
    /// Without credentials only dry runs work (the listing is read anonymously); an upload then
    /// fails with ``PublishingError/missingCredentials(destination:looked:)``.
    public init(index: PackageIndex, credentials: IndexCredentials?, transport: HTTPTransport,
                retry: RetryPolicy = RetryPolicy(), logger: Logger) {
        self.index = index; self.credentials = credentials; self.transport = transport
        self.retry = retry; self.logger = logger; self.credentialProvider = nil
    }

    /// Creates a publisher whose credentials `provider` obtains just before each upload (a
    /// Trusted Publishing token is minted then, since it expires after 15 minutes); listings are
    /// read anonymously.
    public init(index: PackageIndex, credentialProvider provider: @escaping @Sendable () async throws -> IndexCredentials,
                transport: HTTPTransport, retry: RetryPolicy = RetryPolicy(), logger: Logger) {
        self.index = index; self.credentials = nil; self.credentialProvider = provider; self.transport = transport
        self.retry = retry; self.logger = logger
    }

    /// The upload URL.
    public var destination: String { index.uploadURL }

    private var listing: IndexListing { IndexListing(index: index, transport: transport, credentials: credentials) }

    /// The files the index lists for `project` (PyPI's JSON API or the simple API).
    public func listedFiles(project: String) async throws -> [IndexedFile] { try await listing.files(project: project) }

    /// Downloads a listed file (credentials go only to the index's own host).
    public func fetch(_ file: IndexedFile, to path: String) async throws { try await listing.fetch(file, to: path) }

    /// Uploads `wheel` unless the exact file is already there; see the type's documentation.
    public func publish(_ wheel: PublishableWheel, dryRun: Bool = false) async throws -> PublicationOutcome {
        try wheel.checkUnchangedSinceVerification()
        let (presence, files) = try await listing.presence(of: wheel.filename, sha256: wheel.sha256, project: wheel.name)
        switch presence {
        case .identical:
            logger.info("already on the index", metadata: ["file": "\(wheel.filename)", "index": "\(destination)"])
            return .alreadyThere
        case .differentContent(let existing):
            return .refused(burnt(wheel, existing: existing, files: files))
        case .absent:
            break
        }
        if dryRun { return .wouldUpload }
        var obtained = credentials
        if obtained == nil, let credentialProvider { obtained = try await credentialProvider() }
        guard let credentials = obtained else {
            throw PublishingError.missingCredentials(destination: destination, looked: ["the caller's configuration"])
        }

        let form = UploadForm(wheel: wheel)
        let body = RequestBody.file(prefix: form.prefix(filename: wheel.filename), path: wheel.path,
                                    fileSize: wheel.size, suffix: form.suffix)
        let headers = [("Authorization", credentials.basicAuthorization), ("Content-Type", form.contentType)]
        var lastProblem = ""
        var unstored = 0   // 2xx answers whose file the index then did not list
        for attempt in 1...retry.maxAttempts {
            if attempt > 1 {
                let wait = retry.delay(before: attempt)
                logger.notice("retrying upload", metadata: ["file": "\(wheel.filename)", "attempt": "\(attempt)",
                                                            "after": "\(lastProblem)", "wait": "\(wait)"])
                try await Task.sleep(for: wait)
                // The previous attempt may have stored the file before failing: look before sending again.
                let (found, listed) = try await listing.presence(of: wheel.filename, sha256: wheel.sha256, project: wheel.name)
                switch found {
                case .identical: return .uploaded(attempts: attempt - 1)
                case .differentContent(let existing): return .refused(burnt(wheel, existing: existing, files: listed))
                case .absent: break
                }
            }
            let reply: HTTPReply
            do {
                reply = try await transport.send(.POST, index.uploadURL, headers: headers, body: body)
            } catch let error as PublishingError {
                throw error
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                lastProblem = Redaction.scrub("connection failed (\(error))")
                continue
            }
            let message = credentials.scrub(reply.excerpt)
            switch reply.status {
            case 200..<300:
                // Confirmed only when the index lists the file with our digest.
                let (found, listed, looks) = try await confirm(wheel)
                switch found {
                case .identical:
                    logger.info("uploaded", metadata: ["file": "\(wheel.filename)", "index": "\(destination)"])
                    return .uploaded(attempts: attempt)
                case .differentContent(let existing):
                    return .refused(burnt(wheel, existing: existing, files: listed))
                case .absent:
                    unstored += 1
                    lastProblem = "the index answered \(reply.status) but did not list the file in \(looks) looks"
                    logger.warning("upload not stored", metadata: ["file": "\(wheel.filename)", "index": "\(destination)",
                                                                   "status": "\(reply.status)", "attempt": "\(attempt)"])
                    continue
                }
            case _ where reply.status == 409 || (reply.status == 400 && Self.saysFileExists(reply.text)):
                // Listings can lag behind uploads (PyPI's are cached): look a few times before deciding.
                var (found, listed) = try await listing.presence(of: wheel.filename, sha256: wheel.sha256, project: wheel.name)
                var looks = 1
                while found == .absent && looks < 3 {
                    try await Task.sleep(for: retry.delay(before: looks + 1))
                    (found, listed) = try await listing.presence(of: wheel.filename, sha256: wheel.sha256, project: wheel.name)
                    looks += 1
                }
                switch found {
                case .identical: return attempt == 1 ? .alreadyThere : .uploaded(attempts: attempt - 1)
                case .differentContent(let existing): return .refused(burnt(wheel, existing: existing, files: listed))
                case .absent where attempt == 1:
                    // Never listed, yet refused as existing: a deleted file whose name stays burnt.
                    return .refused(burnt(wheel, existing: nil, files: listed))
                case .absent:
                    throw PublishingError.uploadRejected(
                        filename: wheel.filename, destination: destination, status: reply.status,
                        serverMessage: "\(message) — an earlier attempt may have stored it but the index does not list it yet; run publish again to confirm")
                }
            case 401, 403:
                throw PublishingError.authenticationFailed(destination: destination, status: reply.status,
                                                           credentials: credentials.description, serverMessage: message)
            case 300..<400:
                throw PublishingError.redirected(destination: destination, status: reply.status,
                                                 location: reply.headers.first(name: "location") ?? "")
            case 408, 425, 429, 500...:
                lastProblem = "status \(reply.status)" + (message.isEmpty ? "" : " '\(message)'")
                continue
            default:
                throw PublishingError.uploadRejected(filename: wheel.filename, destination: destination,
                                                     status: reply.status, serverMessage: message)
            }
        }
        // A last look: the final attempt may have stored the file before failing.
        let (last, listed) = try await listing.presence(of: wheel.filename, sha256: wheel.sha256, project: wheel.name)
        switch last {
        case .identical: return .uploaded(attempts: retry.maxAttempts)
        case .differentContent(let existing): return .refused(burnt(wheel, existing: existing, files: listed))
        case .absent where unstored > 0:
            throw PublishingError.uploadNotStored(filename: wheel.filename, destination: destination, attempts: unstored,
                                                  detail: lastProblem)
        case .absent:
            throw PublishingError.gaveUp(filename: wheel.filename, destination: destination,
                                         attempts: retry.maxAttempts, lastProblem: lastProblem)
        }
    }

    /// Looks for the file after a 2xx answer, up to ``RetryPolicy/confirmationLooks`` times with
    /// backoff while it is absent (listings such as PyPI's are cached and lag behind uploads).
    private func confirm(_ wheel: PublishableWheel) async throws -> (Presence, [IndexedFile], looks: Int) {
        var looks = 0
        while true {
            looks += 1
            let (found, listed) = try await listing.presence(of: wheel.filename, sha256: wheel.sha256, project: wheel.name)
            if found != .absent || looks >= retry.confirmationLooks { return (found, listed, looks) }
            try await Task.sleep(for: retry.delay(before: looks + 1))
        }
    }

    /// True when an upload answer's text says the file is there already (pypiserver, PyPI, devpi,
    /// Artifactory and Nexus wordings).
    static func saysFileExists(_ text: String) -> Bool {
        let t = text.lowercased()
        return t.contains("already exists") || t.contains("already been used") || t.contains("file exists")
    }

    private func burnt(_ wheel: PublishableWheel, existing: SHA256Digest?, files: [IndexedFile]) -> Refusal {
        .filenameBurnt(filename: wheel.filename, destination: destination, existing: existing, ours: wheel.sha256,
                       suggestedSuffix: BurntFilename.nextFreePostSuffix(version: wheel.version,
                                                                         listedFilenames: files.map(\.filename)))
    }
}
