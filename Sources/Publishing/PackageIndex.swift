import FarmCore
import Foundation
import NIOHTTP1

/// An index that speaks the upload API: where to upload, and where to look for what is there.
public struct PackageIndex: Sendable, Hashable, CustomStringConvertible {
    /// PyPI's upload URL, the default repository.
    public static let pypiUploadURL = "https://upload.pypi.org/legacy/"
    /// TestPyPI's upload URL.
    public static let testPyPIUploadURL = "https://test.pypi.org/legacy/"

    /// Where files are POSTed.
    public let uploadURL: String
    /// The simple API base (PEP 503/691), ending in `/`; project pages are `<simpleURL><name>/`.
    public let simpleURL: String
    /// PyPI's JSON API base (`https://pypi.org/pypi/`), when the index has one.
    public let jsonAPIURL: String?

    /// Describes an index by its upload URL; the simple API URL is derived when not given.
    ///
    /// Derivation: PyPI and TestPyPI map to their known simple and JSON APIs; any other index
    /// (pypiserver, Artifactory, Nexus) serves `<upload URL>/simple/`. devpi serves
    /// `<index URL>/+simple/`: pass it as `simpleURL`.
    public init(uploadURL: String, simpleURL: String? = nil) throws(PublishingError) {
        guard let url = URL(string: uploadURL), let scheme = url.scheme?.lowercased(),
              scheme == "http" || scheme == "https", url.host != nil else {
            throw .invalidConfiguration(what: "repository URL", value: uploadURL,
                                        expected: "an http:// or https:// upload URL such as '\(Self.pypiUploadURL)'")
        }
        guard url.user == nil && url.password == nil else {
            // Printed in reports and errors, so it must not carry a credential.
            throw .invalidConfiguration(what: "repository URL", value: "\(scheme)://…@\(url.host!)",
                                        expected: "a URL without a username or password; set TWINE_USERNAME/TWINE_PASSWORD or a token variable instead")
        }
        self.uploadURL = uploadURL
        let host = url.host!.lowercased()
        let known: (simple: String, json: String)? = switch host {
        case "upload.pypi.org", "pypi.org": ("https://pypi.org/simple/", "https://pypi.org/pypi/")
        case "test.pypi.org": ("https://test.pypi.org/simple/", "https://test.pypi.org/pypi/")
        default: nil
        }
        if let simpleURL {
            guard let s = URL(string: simpleURL), s.scheme == "http" || s.scheme == "https", s.user == nil, s.password == nil else {
                throw .invalidConfiguration(what: "index URL", value: simpleURL,
                                            expected: "the http:// or https:// URL of the index's simple API")
            }
            self.simpleURL = simpleURL.hasSuffix("/") ? simpleURL : simpleURL + "/"
            self.jsonAPIURL = simpleURL == known?.simple ? known?.json : nil
        } else if let known {
            self.simpleURL = known.simple
            self.jsonAPIURL = known.json
        } else {
            self.simpleURL = (uploadURL.hasSuffix("/") ? uploadURL : uploadURL + "/") + "simple/"
            self.jsonAPIURL = nil
        }
    }

    /// The upload URL.
    public var description: String { uploadURL }

}

/// A distribution file an index lists.
public struct IndexedFile: Sendable, Hashable {
    /// The file name.
    public let filename: String
    /// Its SHA-256 when the index states it.
    public let sha256: SHA256Digest?
    /// Where to download it (absolute).
    public let url: String?
}

/// Whether a file is on an index already.
public enum Presence: Sendable, Equatable {
    /// No file of that name.
    case absent
    /// A file of that name with the same SHA-256.
    case identical
    /// A file of that name with other content: the filename is burnt.
    case differentContent(existing: SHA256Digest)
}

/// Reads what an index holds for a project: PyPI's JSON API where it exists, else the simple API
/// (PEP 691 JSON when offered, PEP 503 HTML with `#sha256=` fragments otherwise).
struct IndexListing: Sendable {
    let index: PackageIndex
    let transport: HTTPTransport
    let credentials: IndexCredentials?
    /// How often a transient failure of a listing or download is retried.
    var retry = RetryPolicy(maxAttempts: 3)

    /// All files of `project` (empty when the index does not know the project).
    func files(project: String) async throws -> [IndexedFile] {
        let name = ProjectName.normalise(project)
        if let json = index.jsonAPIURL {
            let url = json + name + "/json"
            let reply = try await get(url, accept: "application/json")
            if reply.status == 404 { return [] }
            guard reply.status == 200 else { throw unreadable(url, reply) }
            return try Self.parsePyPIJSON(reply.body, url: url)
        }
        let url = index.simpleURL + name + "/"
        let reply = try await get(url, accept: "application/vnd.pypi.simple.v1+json, text/html;q=0.1")
        if reply.status == 404 { return [] }
        guard reply.status == 200 else { throw unreadable(url, reply) }
        if reply.contentType == "application/vnd.pypi.simple.v1+json" {
            return try Self.parsePEP691(reply.body, pageURL: url)
        }
        return Self.parsePEP503(reply.text, pageURL: url)
    }

    /// Decides whether `filename` with `sha256` is on the index; when the index lists the file
    /// without a digest, downloads it and hashes it.
    func presence(of filename: String, sha256: SHA256Digest, project: String) async throws -> (Presence, [IndexedFile]) {
        let files = try await self.files(project: project)
        guard let match = files.first(where: { $0.filename == filename }) else { return (.absent, files) }
        var digest = match.sha256
        if digest == nil, let url = match.url { digest = try await downloadDigest(url) }
        guard let digest else { throw PublishingError.indexUnreadable(url: index.simpleURL, problem: "'\(filename)' is listed without a digest or URL") }
        return (digest == sha256 ? .identical : .differentContent(existing: digest), files)
    }

    /// The `Authorization` header for `url` when it is on the upload URL's exact origin (scheme,
    /// host and port); nothing for any other URL.
    private func authorizationHeaders(for url: String) -> [(String, String)] {
        guard let credentials, let origin = Origin(url), origin == Origin(index.uploadURL) else { return [] }
        return [("Authorization", credentials.basicAuthorization)]
    }

    /// GETs `url`, following redirects on the same origin (an index may redirect to the normalised
    /// name). A redirect to another origin is answered as 404: pypiserver sends requests for
    /// projects it does not hold to its fallback index (PyPI), and what PyPI holds is not on this
    /// index. Nothing is ever fetched from the other origin. Transient failures (a broken
    /// connection, a deadline of ``HTTPLimits``, 5xx, 429) are retried with backoff.
    private func get(_ url: String, accept: String) async throws -> HTTPReply {
        try await retryingTransient(url) {
            let reply = try await followingRedirects(url, status: \.status, headers: \.headers) { current in
                try await transport.send(.GET, current, headers: [("Accept", accept)] + authorizationHeaders(for: current))
            } ?? HTTPReply(status: 404, headers: [:], body: [])
            return (reply, Self.isTransient(status: reply.status))
        }
    }

    /// Runs `attempt` up to the retry policy's attempts while it fails transiently (throws anything
    /// but a ``PublishingError`` or cancellation, or answers a status that says "try later");
    /// returns the last answer, or throws ``PublishingError/indexUnreadable(url:problem:)`` with
    /// the last failure.
    private func retryingTransient<Reply: Sendable>(_ url: String, _ attempt: () async throws -> (Reply, Bool)) async throws -> Reply {
        var lastProblem = ""
        for number in 1...retry.maxAttempts {
            if number > 1 { try await Task.sleep(for: retry.delay(before: number)) }
            do {
                let (reply, again) = try await attempt()
                if !again || number == retry.maxAttempts { return reply }
                lastProblem = "a transient answer"
            } catch let error as PublishingError {
                throw error
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                lastProblem = Redaction.scrub("\(error)")
            }
        }
        throw PublishingError.indexUnreadable(url: url, problem: "\(lastProblem) (after \(retry.maxAttempts) attempts)")
    }

    static func isTransient(status: Int) -> Bool { status == 408 || status == 425 || status == 429 || status >= 500 }

    /// Sends a request to `url` with `send`, and again to each redirect's target on the same origin
    /// (at most 5); returns the first answer that is not such a redirect, or nil for a redirect to
    /// another origin.
    private func followingRedirects<Reply>(_ url: String, status: (Reply) -> Int, headers: (Reply) -> HTTPHeaders,
                                           _ send: (String) async throws -> Reply) async throws -> Reply? {
        var current = url
        for _ in 0..<5 {
            let reply = try await send(current)
            let code = status(reply)
            guard (300..<400).contains(code), code != 304, let location = headers(reply).first(name: "location"),
                  let next = URL(string: location, relativeTo: URL(string: current))?.absoluteURL else { return reply }
            guard let origin = Origin(next), origin == Origin(current) else { return nil }
            current = next.absoluteString
        }
        throw PublishingError.indexUnreadable(url: url, problem: "too many redirects")
    }

    /// The SHA-256 of the file at `url`, hashed as it streams in (wheels can be far larger than
    /// what is worth holding in memory).
    private func downloadDigest(_ url: String) async throws -> SHA256Digest {
        try await download(url, to: nil).sha256
    }

    /// Downloads `file` to a new file at `path`, checking the SHA-256 the index states for it;
    /// on any failure nothing is left at `path`.
    func fetch(_ file: IndexedFile, to path: String) async throws {
        guard let url = file.url else {
            throw PublishingError.indexUnreadable(url: index.simpleURL, problem: "'\(file.filename)' is listed without a URL")
        }
        let got = try await download(url, to: path)
        if let listed = file.sha256, listed != got.sha256 {
            try? FileManager.default.removeItem(atPath: path)
            throw PublishingError.indexUnreadable(url: url, problem: "the downloaded file's SHA-256 is \(got.sha256.hex), the index lists \(listed.hex)")
        }
    }

    /// Streams the file at `url` (same-origin redirects followed, as for listings) into `path`, or
    /// only hashes it when `path` is nil; transient failures are retried.
    private func download(_ url: String, to path: String?) async throws -> HTTPTransport.Download {
        let got = try await retryingTransient(url) {
            let got = try await followingRedirects(url, status: \.status, headers: \.headers) { current in
                try await transport.download(current, headers: authorizationHeaders(for: current), to: path)
            }
            return (got, got.map { Self.isTransient(status: $0.status) } ?? false)
        }
        guard let got, got.status == 200 else {
            throw PublishingError.indexUnreadable(url: url, problem: "status \(got?.status ?? 404) downloading the file")
        }
        return got
    }

    private func unreadable(_ url: String, _ reply: HTTPReply) -> PublishingError {
        .indexUnreadable(url: url, problem: "status \(reply.status) '\(reply.excerpt)'")
    }

    // MARK: parsers

    static func parsePyPIJSON(_ body: [UInt8], url: String) throws -> [IndexedFile] {
        struct Doc: Decodable {
            struct File: Decodable {
                let filename: String
                let url: String?
                let digests: [String: String]?
            }
            let releases: [String: [File]]?
            let urls: [File]?
        }
        let doc: Doc
        do { doc = try JSONDecoder().decode(Doc.self, from: Data(body)) } catch {
            throw PublishingError.indexUnreadable(url: url, problem: "not PyPI JSON API data: \(error)")
        }
        var seen = Set<String>(), out = [IndexedFile]()
        for file in (doc.releases ?? [:]).values.flatMap({ $0 }) + (doc.urls ?? []) where seen.insert(file.filename).inserted {
            out.append(IndexedFile(filename: file.filename, sha256: file.digests?["sha256"].flatMap(SHA256Digest.init(hex:)), url: file.url))
        }
        return out
    }

    static func parsePEP691(_ body: [UInt8], pageURL: String) throws -> [IndexedFile] {
        struct Doc: Decodable {
            struct File: Decodable { let filename: String; let url: String; let hashes: [String: String]? }
            let files: [File]
        }
        let doc: Doc
        do { doc = try JSONDecoder().decode(Doc.self, from: Data(body)) } catch {
            throw PublishingError.indexUnreadable(url: pageURL, problem: "not PEP 691 JSON: \(error)")
        }
        return doc.files.map { f in
            IndexedFile(filename: f.filename, sha256: f.hashes?["sha256"].flatMap(SHA256Digest.init(hex:)),
                        url: URL(string: f.url, relativeTo: URL(string: pageURL))?.absoluteString)
        }
    }

    /// Parses the anchors of a PEP 503 page. A regular expression suffices: PEP 503 pages are
    /// generated lists of `<a href="…">file</a>`; no kept package parses HTML.
    static func parsePEP503(_ html: String, pageURL: String) -> [IndexedFile] {
        let pattern = #"<a\s[^>]*?href\s*=\s*["']([^"']*)["'][^>]*>(.*?)</a\s*>"#
        guard let regex = try? NSRegularExpression(pattern: pattern, options: [.caseInsensitive, .dotMatchesLineSeparators]) else { return [] }
        let ns = html as NSString
        var out = [IndexedFile]()
        for match in regex.matches(in: html, range: NSRange(location: 0, length: ns.length)) {
            let href = unescapeHTML(ns.substring(with: match.range(at: 1)))
            let text = unescapeHTML(ns.substring(with: match.range(at: 2))).trimmingCharacters(in: .whitespacesAndNewlines)
            var fragment: String?
            var base = href
            if let hash = href.firstIndex(of: "#") {
                fragment = String(href[href.index(after: hash)...]); base = String(href[..<hash])
            }
            let lastComponent = base.split(separator: "/").last.map { String($0).removingPercentEncoding ?? String($0) } ?? ""
            let filename = text.isEmpty || text.contains("<") ? lastComponent : text
            var digest: SHA256Digest?
            if let fragment, fragment.lowercased().hasPrefix("sha256=") { digest = SHA256Digest(hex: String(fragment.dropFirst(7))) }
            out.append(IndexedFile(filename: filename, sha256: digest,
                                   url: URL(string: base, relativeTo: URL(string: pageURL))?.absoluteString))
        }
        return out
    }

    private static func unescapeHTML(_ s: String) -> String {
        s.replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&#39;", with: "'")
            .replacingOccurrences(of: "&amp;", with: "&")
    }
}

/// Choosing a new version when a filename is burnt.
public enum BurntFilename {
    /// The next `.postN` suffix not used by any listed file of the same base version.
    ///
    /// The base is the wheel's version without its post and dev segments; `N` is one more than the
    /// highest post number listed for that base (at least 1). Indexes such as PyPI also burn
    /// names of deleted files, which no listing shows; if the suggestion is refused, go higher.
    public static func nextFreePostSuffix(version: String, listedFilenames: [String]) -> VersionSuffix {
        guard let ours = PEP440Version(version) else { return VersionSuffix(kind: .post, number: 1) }
        var base = ours; base.post = nil; base.dev = nil
        var highest = ours.post ?? 0
        for file in listedFilenames {
            guard let v = ProjectName.nameAndVersion(ofDistributionFile: file).flatMap({ PEP440Version($0.version) }) else { continue }
            var b = v; b.post = nil; b.dev = nil
            if b == base, let p = v.post { highest = max(highest, p) }
        }
        return VersionSuffix(kind: .post, number: highest + 1)
    }
}
