import Foundation
import Logging

/// PyPI's Trusted Publishing from GitHub Actions: the workflow's OIDC token is exchanged at the
/// index for a short-lived API token, so no long-lived token is stored anywhere.
///
/// The exchange, as PyPI documents it (docs.pypi.org, "Trusted publishers"; twine, uv and
/// pypa/gh-action-pypi-publish do the same):
/// 1. `GET https://HOST/_/oidc/audience` (HOST is the upload URL's) → `{"audience": "pypi"}`;
/// 2. `GET $ACTIONS_ID_TOKEN_REQUEST_URL&audience=AUDIENCE` with
///    `Authorization: bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN` → `{"value": "<OIDC token>"}`;
/// 3. `POST https://HOST/_/oidc/mint-token` with `{"token": "<OIDC token>"}` →
///    `{"success": true, "token": "pypi-…"}`, or 422 with
///    `{"message": "Token request failed", "errors": [{"code": …, "description": …}]}`.
///
/// The minted token is valid for 15 minutes and scoped to the projects the trusted publisher
/// covers. One is minted per package (each may have its own publisher), just before its first
/// upload, and minted again when less than 5 minutes remain, as twine does. Errors quote the
/// index's (or GitHub's) message; no token appears in them.
public final class TrustedPublishing: Sendable {
    private let requestURL: String
    private let requestToken: Secret
    private let transport: HTTPTransport
    private let logger: Logger
    private let cache = TokenCache()

    /// Where the variables came from, for messages.
    public let source: String

    /// Trusted Publishing from the GitHub Actions variables, when both are set.
    public static func fromEnvironment(_ sources: CredentialSources, transport: HTTPTransport, logger: Logger) -> TrustedPublishing? {
        guard let url = sources.lookup("ACTIONS_ID_TOKEN_REQUEST_URL"), let token = sources.lookup("ACTIONS_ID_TOKEN_REQUEST_TOKEN") else {
            return nil
        }
        return TrustedPublishing(requestURL: url.value, requestToken: Secret(token.value), source: url.source,
                                 transport: transport, logger: logger)
    }

    init(requestURL: String, requestToken: Secret, source: String, transport: HTTPTransport, logger: Logger) {
        self.requestURL = requestURL; self.requestToken = requestToken; self.source = source
        self.transport = transport; self.logger = logger
    }

    /// The index's base (`scheme://host[:port]`) for its OIDC endpoints.
    public static func base(of index: PackageIndex) -> String {
        guard let url = URL(string: index.uploadURL), let scheme = url.scheme, let host = url.host else { return index.uploadURL }
        return "\(scheme)://\(host)" + (url.port.map { ":\($0)" } ?? "")
    }

    /// Where the token is minted, for messages.
    public static func mintURL(for index: PackageIndex) -> String { base(of: index) + "/_/oidc/mint-token" }

    /// Upload credentials for `project` on `index`, minted now unless a fresh one is cached.
    public func credentials(for index: PackageIndex, project: String) async throws -> IndexCredentials {
        let key = "\(index.uploadURL) \(ProjectName.normalise(project))"
        if let cached = await cache.fresh(key) { return cached }
        let base = Self.base(of: index)
        let audience = try await fetchAudience(base)
        let oidc = try await fetchOIDCToken(audience: audience)
        let minted = try await mint(base: base, oidc: oidc, project: project)
        await cache.store(key, minted, until: Date().addingTimeInterval(900))
        logger.info("minted a Trusted Publishing token", metadata: ["project": "\(project)", "index": "\(index.uploadURL)"])
        return minted
    }

    private func fetchAudience(_ base: String) async throws -> String {
        let url = base + "/_/oidc/audience"
        let reply: HTTPReply
        do { reply = try await transport.send(.GET, url, headers: [("Accept", "application/json")], maxBodyBytes: 1 << 16) } catch {
            throw PublishingError.trustedPublishingFailed(step: "asking the index for its OIDC audience", url: url, status: 0, serverMessage: "\(error)")
        }
        guard reply.status == 200, let json = Self.object(reply.body), let audience = json["audience"] as? String, !audience.isEmpty else {
            throw PublishingError.trustedPublishingFailed(step: "asking the index for its OIDC audience (does it support Trusted Publishing?)",
                                                          url: url, status: reply.status, serverMessage: Self.message(reply))
        }
        return audience
    }

    private func fetchOIDCToken(audience: String) async throws -> Secret {
        var allowed = CharacterSet.urlQueryAllowed
        allowed.remove(charactersIn: "&=+")
        let url = requestURL + (requestURL.contains("?") ? "&" : "?") + "audience=" + (audience.addingPercentEncoding(withAllowedCharacters: allowed) ?? audience)
        let shown = requestURL.split(separator: "?").first.map(String.init) ?? requestURL
        let reply: HTTPReply
        do {
            reply = try await transport.send(.GET, url, headers: [("Accept", "application/json"),
                                                                  ("Authorization", requestToken.withRevealed { "bearer \($0)" })],
                                             maxBodyBytes: 1 << 20)
        } catch {
            throw PublishingError.trustedPublishingFailed(step: "requesting the GitHub Actions OIDC token", url: shown, status: 0,
                                                          serverMessage: requestToken.scrub("\(error)"))
        }
        guard reply.status == 200, let json = Self.object(reply.body), let value = json["value"] as? String, !value.isEmpty else {
            var hint = requestToken.scrub(Self.message(reply))
            if reply.status == 401 || reply.status == 403 { hint += " (the workflow needs 'permissions: id-token: write')" }
            throw PublishingError.trustedPublishingFailed(step: "requesting the GitHub Actions OIDC token", url: shown,
                                                          status: reply.status, serverMessage: hint)
        }
        return Secret(value)
    }

    private func mint(base: String, oidc: Secret, project: String) async throws -> IndexCredentials {
        let url = base + "/_/oidc/mint-token"
        let body = oidc.withRevealed { token in
            (try? JSONSerialization.data(withJSONObject: ["token": token])).map { [UInt8]($0) } ?? []
        }
        let reply: HTTPReply
        do {
            reply = try await transport.send(.POST, url, headers: [("Content-Type", "application/json"), ("Accept", "application/json")],
                                             body: .bytes(body), maxBodyBytes: 1 << 20)
        } catch {
            throw PublishingError.trustedPublishingFailed(step: "minting an upload token for '\(project)'", url: url, status: 0,
                                                          serverMessage: oidc.scrub("\(error)"))
        }
        let json = Self.object(reply.body)
        guard reply.status == 200, let token = json?["token"] as? String, !token.isEmpty else {
            var said = json?["message"] as? String ?? ""
            if let errors = json?["errors"] as? [[String: Any]] {
                let reasons = errors.map { "\($0["code"] as? String ?? "?"): \($0["description"] as? String ?? "")" }
                said += (said.isEmpty ? "" : ": ") + reasons.joined(separator: "; ")
            }
            if said.isEmpty { said = reply.excerpt }
            throw PublishingError.trustedPublishingFailed(step: "minting an upload token for '\(project)'", url: url,
                                                          status: reply.status, serverMessage: oidc.scrub(said))
        }
        return IndexCredentials(username: "__token__", password: Secret(token),
                                source: "Trusted Publishing (a GitHub Actions OIDC token exchanged at '\(url)' for '\(project)')")
    }

    private static func object(_ body: [UInt8]) -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any]
    }

    private static func message(_ reply: HTTPReply) -> String {
        if let json = object(reply.body), let m = json["message"] as? String { return m }
        return reply.excerpt
    }
}

/// Minted tokens by index and project, with their expiry.
private actor TokenCache {
    private var entries: [String: (IndexCredentials, Date)] = [:]

    /// A cached token with more than 5 minutes left.
    func fresh(_ key: String) -> IndexCredentials? {
        guard let (credentials, expiry) = entries[key], expiry.timeIntervalSinceNow > 300 else { return nil }
        return credentials
    }

    func store(_ key: String, _ credentials: IndexCredentials, until expiry: Date) { entries[key] = (credentials, expiry) }
}
