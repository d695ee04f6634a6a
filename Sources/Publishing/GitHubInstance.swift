import Foundation

/// A GitHub instance: github.com, a GHE.com tenancy, or a GitHub Enterprise Server, with its
/// REST API URL and the token variables that belong to it, as the GitHub CLI (`gh`) decides.
///
/// - API URL: `https://api.github.com` for github.com; `https://api.HOST` for `*.ghe.com`;
///   `https://HOST/api/v3` for Enterprise Server; `http://api.github.localhost` for gh's
///   development host.
/// - Token: `GH_TOKEN`, then `GITHUB_TOKEN`, for github.com and tenancies;
///   `GH_ENTERPRISE_TOKEN`, then `GITHUB_ENTERPRISE_TOKEN`, for Enterprise Server. wheelfarm then
///   also accepts `GH_TOKEN`/`GITHUB_TOKEN` for Enterprise Server (gh would not), as it did before
///   `GH_HOST` was supported and as GitHub Actions on Enterprise Server provides `GITHUB_TOKEN`.
public struct GitHubInstance: Sendable, Hashable {
    /// The host name (`github.com`, `github.example.com`).
    public let host: String
    /// The REST API base URL, without a trailing slash.
    public let apiURL: String
    /// Where the API URL came from (`--github-api-url`, `GH_HOST`, …), for messages.
    public let source: String

    /// github.com.
    public static let dotCom = GitHubInstance(host: "github.com", apiURL: "https://api.github.com", source: "the default")

    /// True for GitHub Enterprise Server (not github.com, not a tenancy, not gh's localhost).
    public var isEnterpriseServer: Bool { Self.isEnterpriseServer(host) }

    /// The instance for a host name (as `GH_HOST` gives it), with gh's API URL for it.
    public init(host raw: String, source: String) {
        var host = raw.lowercased().trimmingCharacters(in: .whitespaces)
        if let scheme = host.range(of: "://") { host = String(host[scheme.upperBound...]) }
        while host.hasSuffix("/") { host.removeLast() }
        if host.hasSuffix(".github.com") { host = "github.com" }
        if host.hasSuffix(".github.localhost") { host = "github.localhost" }
        self.host = host
        self.source = source
        if Self.isEnterpriseServer(host) {
            apiURL = "https://\(host)/api/v3"
        } else if host == "github.localhost" {
            apiURL = "http://api.github.localhost"
        } else {
            apiURL = "https://api.\(host)"
        }
    }

    /// An instance given by its API URL (`--github-api-url`, `GITHUB_API_URL`).
    public init(apiURL: String, source: String) {
        var url = apiURL
        while url.hasSuffix("/") { url.removeLast() }
        var host = URL(string: url)?.host?.lowercased() ?? url
        if host.hasPrefix("api.") && !url.contains("/api/v3") { host = String(host.dropFirst(4)) }
        if host.hasSuffix(".github.com") { host = "github.com" }
        self.host = host
        self.apiURL = url
        self.source = source
    }

    private init(host: String, apiURL: String, source: String) {
        self.host = host; self.apiURL = apiURL; self.source = source
    }

    static func isEnterpriseServer(_ host: String) -> Bool {
        host != "github.com" && host != "github.localhost" && !host.hasSuffix(".ghe.com")
    }

    /// Decides the instance, first found wins: `--github-api-url`, `GH_HOST` (API URL derived as
    /// gh derives it), `GITHUB_API_URL` (set by GitHub Actions), github.com.
    public static func resolve(apiURLOption: String?, sources: CredentialSources) -> GitHubInstance {
        if let url = apiURLOption, !url.isEmpty { return GitHubInstance(apiURL: url, source: "--github-api-url") }
        if let host = sources.lookup("GH_HOST") { return GitHubInstance(host: host.value, source: host.source) }
        if let url = sources.lookup("GITHUB_API_URL") { return GitHubInstance(apiURL: url.value, source: url.source) }
        return .dotCom
    }

    /// The token variables for this instance, in the order they are tried.
    public var tokenVariables: [String] {
        isEnterpriseServer ? ["GH_ENTERPRISE_TOKEN", "GITHUB_ENTERPRISE_TOKEN", "GH_TOKEN", "GITHUB_TOKEN"] : ["GH_TOKEN", "GITHUB_TOKEN"]
    }

    /// The token for this instance (environment first, then `.env`, for each name); the error is
    /// about GitHub: which variables were read and what token to create.
    public func token(sources: CredentialSources, repository: String?) throws -> (token: Secret, source: String) {
        for name in tokenVariables {
            if let found = sources.lookup(name) { return (try Secret.validated(found.value, source: found.source), found.source) }
        }
        throw PublishingError.missingGitHubToken(host: host, looked: tokenVariables + (sources.envFilePath.map { ["'\($0)'"] } ?? []),
                                                 repository: repository)
    }
}
