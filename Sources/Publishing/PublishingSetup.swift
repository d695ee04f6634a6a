import Foundation
import Logging

/// What the user asked for on the command line about publishing (the `PublishingOptions` that
/// `release` and `publish` share).
public struct PublishingRequest: Sendable {
    /// `--local-index DIR`.
    public var localIndex: String?
    /// `--repository-url URL`.
    public var repositoryURL: String?
    /// `--repository NAME` (a `~/.pypirc` section; `pypi` and `testpypi` built in).
    public var repository: String?
    /// `--index-url URL` (the simple API, for existence checks).
    public var indexURL: String?
    /// `--cert FILE` (a CA bundle for the index).
    public var cert: String?
    /// `--env-file FILE`.
    public var envFile: String?
    /// `--github-repository OWNER/NAME`.
    public var gitHubRepository: String?
    /// `--github-api-url URL`.
    public var gitHubAPIURL: String?
    /// `--tag-template`.
    public var tagTemplate: String
    /// `--skip-github`.
    public var skipGitHub: Bool
    /// Attempts per upload.
    public var attempts: Int
    /// The deadlines and minimum rates of every request (`--http-timeout`, `--min-transfer-rate`).
    public var limits: HTTPLimits

    public init(localIndex: String? = nil, repositoryURL: String? = nil, repository: String? = nil, indexURL: String? = nil,
                cert: String? = nil, envFile: String? = nil, gitHubRepository: String? = nil, gitHubAPIURL: String? = nil,
                tagTemplate: String = "default", skipGitHub: Bool = false, attempts: Int = 5,
                limits: HTTPLimits = HTTPLimits()) {
        self.localIndex = localIndex; self.repositoryURL = repositoryURL; self.repository = repository
        self.indexURL = indexURL; self.cert = cert; self.envFile = envFile; self.gitHubRepository = gitHubRepository
        self.gitHubAPIURL = gitHubAPIURL; self.tagTemplate = tagTemplate; self.skipGitHub = skipGitHub; self.attempts = attempts
        self.limits = limits
    }
}

/// Where wheels go and with which credentials: the one decision `release` and `publish` share,
/// so the same options, environment and `~/.pypirc` always mean the same destination.
///
/// **Destination**, first found wins (a command-line option before the environment):
/// 1. `--local-index DIR`: a static index in that directory;
/// 2. `--repository-url URL`;
/// 3. `--repository NAME`: that repository of `~/.pypirc` (listed in `[distutils] index-servers`,
///    as twine requires; `pypi` and `testpypi` need no section);
/// 4. `TWINE_REPOSITORY_URL`, then 5. `TWINE_REPOSITORY` (environment, then `.env`);
/// 6. PyPI, when a credential for PyPI is configured (a `PYPI_*` token, `TWINE_PASSWORD`, a
///    password in `~/.pypirc`'s `[pypi]`, or the GitHub Actions OIDC variables);
/// 7. otherwise the command's default: `release` publishes into `<dist-dir>/index`, `publish` to PyPI.
/// (twine lets `TWINE_REPOSITORY_URL` override `--repository`; here an option always wins.)
///
/// **Credentials** per package, first found wins: `PYPI_TOKEN_<PACKAGE>`, `PYPI_API_TOKEN`,
/// `PYPI_TOKEN`, `TWINE_USERNAME`/`TWINE_PASSWORD`, the repository's `~/.pypirc` section, the
/// system keyring (`keyring get URL USER`), then Trusted Publishing when
/// `ACTIONS_ID_TOKEN_REQUEST_URL` and `_TOKEN` are set. A `pypi-` token goes only to PyPI and
/// TestPyPI.
///
/// **CA bundle** for the index: `--cert`, `TWINE_CERT`, the section's `ca_cert`.
public final class PublishingSetup: Sendable {
    /// Where wheels are published.
    public enum Destination: Sendable {
        /// A static index in a directory.
        case localIndex(URL)
        /// An index speaking the upload API.
        case uploadAPI(PackageIndex)
    }

    /// The destination.
    public let destination: Destination
    /// Why it is the destination (`--repository 'local': section [local] of '~/.pypirc' line 5`).
    public let destinationSource: String
    /// The CA bundle for the index and where it was named, if one was.
    public let caBundle: (path: String, source: String)?
    /// The credential sources (environment, `.env`, `~/.pypirc`).
    public let sources: CredentialSources
    /// The GitHub instance and repository, unless GitHub is skipped or none is configured.
    public let gitHub: (instance: GitHubInstance, repository: String, source: String)?
    /// The tag template for GitHub releases.
    public let tagTemplate: TagTemplate
    /// The HTTP client for the index (trusting `caBundle` when given).
    public let indexTransport: HTTPTransport
    /// The HTTP client for GitHub.
    public let gitHubTransport: HTTPTransport
    private let repository: PyPIRC.Repository?
    private let keyring: KeyringLookup
    private let trustedPublishing: TrustedPublishing?
    private let retry: RetryPolicy
    private let logger: Logger

    /// `destination` as text (the directory or the upload URL).
    public var destinationDescription: String {
        switch destination {
        case let .localIndex(root): root.path
        case let .uploadAPI(index): index.uploadURL
        }
    }

    /// Decides destination, CA bundle and GitHub target from the request and the environment;
    /// configuration errors (a malformed `.env` or `~/.pypirc`, an unknown repository name, an
    /// unreadable CA bundle) are thrown before anything is built or sent.
    ///
    /// - Parameter defaultLocalIndex: where to publish when nothing names a destination and no
    ///   PyPI credential is configured (`release`: `<dist-dir>/index`); `nil` means PyPI.
    public static func resolve(_ request: PublishingRequest, environment: [String: String] = ProcessInfo.processInfo.environment,
                               defaultLocalIndex: URL?, logger: Logger) throws -> PublishingSetup {
        let sources = try CredentialSources.standard(envFilePath: request.envFile, environment: environment)
        let pypirc = try sources.pypircPath.flatMap { try PyPIRC.load(path: $0) }
        let pypircPath = sources.pypircPath ?? "~/.pypirc"
        var repository: PyPIRC.Repository?
        func named(_ name: String, _ how: String) throws -> (String, String) {
            if let file = pypirc {
                repository = try file.repository(named: name)
            } else if let url = PyPIRC.builtInURLs[name] {
                repository = PyPIRC.Repository(name: name, uploadURL: url, origin: "twine's built-in '\(name)'")
            } else {
                throw PublishingError.invalidConfiguration(what: "repository", value: name,
                                                           expected: "'pypi', 'testpypi' or a section of '\(pypircPath)', which does not exist (\(how))")
            }
            return (repository!.uploadURL, "\(how) '\(name)': \(repository!.origin)")
        }

        var upload: (url: String, why: String)?
        var local: (URL, String)?
        if let dir = request.localIndex {
            local = (URL(fileURLWithPath: dir), "--local-index")
        } else if let url = request.repositoryURL {
            upload = (url, "--repository-url")
        } else if let name = request.repository {
            upload = try named(name, "--repository")
        } else if let url = sources.lookup("TWINE_REPOSITORY_URL") {
            upload = (url.value, url.source)
        } else if let name = sources.lookup("TWINE_REPOSITORY") {
            upload = try named(name.value, name.source)
        } else if let why = pyPICredentialConfigured(sources, pypirc: pypirc) {
            upload = (PackageIndex.pypiUploadURL, "PyPI, since \(why)")
        } else if let defaultLocalIndex {
            local = (defaultLocalIndex, "the default: no destination is named and no PyPI credential is configured")
        } else {
            upload = (PackageIndex.pypiUploadURL, "the default (PyPI)")
        }

        let destination: Destination
        let destinationSource: String
        if let (root, why) = local {
            destination = .localIndex(root); destinationSource = why
        } else {
            let (url, why) = upload!
            destination = .uploadAPI(try PackageIndex(uploadURL: url, simpleURL: request.indexURL))
            destinationSource = why
            if repository == nil { repository = pypirc?.repository(forUploadURL: url) }
        }

        var caBundle: (String, String)?
        if let cert = request.cert { caBundle = (cert, "--cert") }
        else if let cert = sources.lookup("TWINE_CERT") { caBundle = (cert.value, cert.source) }
        else if let cert = repository?.caCert { caBundle = (cert, "ca_cert in \(repository!.origin)") }
        let indexTransport = try caBundle.map { try HTTPTransport(caBundle: $0.0, limits: request.limits) } ?? HTTPTransport(limits: request.limits)

        var gitHub: (GitHubInstance, String, String)?
        if !request.skipGitHub {
            let repo = request.gitHubRepository.map { ($0, "--github-repository") }
                ?? sources.lookup("GITHUB_REPOSITORY").map { ($0.value, $0.source) }
            if let (name, source) = repo {
                gitHub = (GitHubInstance.resolve(apiURLOption: request.gitHubAPIURL, sources: sources), name, source)
            }
        }
        let gitHubTransport = HTTPTransport(limits: request.limits)
        return PublishingSetup(destination: destination, destinationSource: destinationSource, caBundle: caBundle, sources: sources,
                               gitHub: gitHub, tagTemplate: try TagTemplate(request.tagTemplate), indexTransport: indexTransport,
                               gitHubTransport: gitHubTransport, repository: repository,
                               keyring: KeyringLookup(environment: environment),
                               trustedPublishing: TrustedPublishing.fromEnvironment(sources, transport: indexTransport, logger: logger),
                               retry: RetryPolicy(maxAttempts: request.attempts), logger: logger)
    }

    private init(destination: Destination, destinationSource: String, caBundle: (String, String)?, sources: CredentialSources,
                 gitHub: (GitHubInstance, String, String)?, tagTemplate: TagTemplate, indexTransport: HTTPTransport,
                 gitHubTransport: HTTPTransport, repository: PyPIRC.Repository?, keyring: KeyringLookup,
                 trustedPublishing: TrustedPublishing?, retry: RetryPolicy, logger: Logger) {
        self.destination = destination; self.destinationSource = destinationSource
        self.caBundle = caBundle.map { (path: $0.0, source: $0.1) }; self.sources = sources
        self.gitHub = gitHub.map { (instance: $0.0, repository: $0.1, source: $0.2) }
        self.tagTemplate = tagTemplate; self.indexTransport = indexTransport; self.gitHubTransport = gitHubTransport
        self.repository = repository; self.keyring = keyring; self.trustedPublishing = trustedPublishing
        self.retry = retry; self.logger = logger
    }

    /// Why PyPI is the destination when nothing names one, or `nil` when no PyPI credential is configured.
    static func pyPICredentialConfigured(_ sources: CredentialSources, pypirc: PyPIRC?) -> String? {
        for name in ["PYPI_API_TOKEN", "PYPI_TOKEN", "TWINE_PASSWORD"] {
            if let found = sources.lookup(name) { return "\(found.source) holds a credential" }
        }
        let perPackage = (sources.environment.keys.map { ($0, "environment variable \($0)") }
                          + sources.envFile.keys.map { ($0, "\($0) in '\(sources.envFilePath ?? ".env")'") })
            .filter { $0.0.hasPrefix("PYPI_TOKEN_") }.sorted { $0.0 < $1.0 }
        if let first = perPackage.first { return "\(first.1) holds a credential" }
        if let file = pypirc, let pypi = try? file.repository(named: "pypi"), pypi.password != nil {
            return "\(pypi.passwordOrigin ?? pypi.origin) holds a password"
        }
        if sources.lookup("ACTIONS_ID_TOKEN_REQUEST_URL") != nil && sources.lookup("ACTIONS_ID_TOKEN_REQUEST_TOKEN") != nil {
            return "GitHub Actions' OIDC variables allow Trusted Publishing"
        }
        return nil
    }

    // MARK: Credentials

    /// How a package's uploads authenticate.
    public enum CredentialPlan: Sendable {
        /// Configured or keyring credentials.
        case fixed(IndexCredentials)
        /// A token minted through Trusted Publishing just before the uploads.
        case trustedPublishing(mintURL: String, source: String)
        /// Nothing found; `looked` lists every place.
        case missing(looked: [String])

        /// Where the credential comes from, never its value.
        public var description: String {
            switch self {
            case let .fixed(c): "username '\(c.username)' from \(c.source)"
            case let .trustedPublishing(url, source): "Trusted Publishing: the GitHub Actions OIDC token (\(source)) exchanged at '\(url)' just before the upload"
            case let .missing(looked): "none found (looked in \(looked.joined(separator: ", ")))"
            }
        }
    }

    /// The credentials `package`'s uploads would use (the keyring is asked; nothing is minted).
    public func credentialPlan(for package: String) throws -> CredentialPlan {
        guard case let .uploadAPI(index) = destination else { return .missing(looked: []) }
        var (found, looked) = try CredentialResolver.configuredCredentials(for: index, project: package, sources: sources,
                                                                            repository: repository)
        if let found { return .fixed(found) }
        let username = sources.lookup("TWINE_USERNAME")?.value ?? repository?.username ?? (index.jsonAPIURL != nil ? "__token__" : nil)
        switch keyring.lookup(service: index.uploadURL, username: username) {
        case let .found(credentials):
            if index.jsonAPIURL != nil || !credentials.password.withRevealed({ $0.hasPrefix("pypi-") }) { return .fixed(credentials) }
            looked.append("the system keyring (found a PyPI token, which is never sent to another index)")
        case let .none(note): looked.append(note)
        }
        if let trustedPublishing {
            return .trustedPublishing(mintURL: TrustedPublishing.mintURL(for: index), source: trustedPublishing.source)
        }
        looked.append("Trusted Publishing (ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN are not set)")
        return .missing(looked: looked)
    }

    /// The publisher for `package`. Credential problems are thrown here (before anything is
    /// built); a dry run reads listings anonymously and needs none.
    public func publisher(for package: String, dryRun: Bool = false) throws -> any WheelPublisher {
        switch destination {
        case let .localIndex(root):
            return LocalIndexPublisher(root: root, logger: logger)
        case let .uploadAPI(index):
            if dryRun { return UploadAPIPublisher(index: index, credentials: nil, transport: indexTransport, retry: retry, logger: logger) }
            switch try credentialPlan(for: package) {
            case let .fixed(credentials):
                return UploadAPIPublisher(index: index, credentials: credentials, transport: indexTransport, retry: retry, logger: logger)
            case .trustedPublishing:
                let tp = trustedPublishing!
                return UploadAPIPublisher(index: index, credentialProvider: { try await tp.credentials(for: index, project: package) },
                                          transport: indexTransport, retry: retry, logger: logger)
            case let .missing(looked):
                throw PublishingError.missingCredentials(destination: index.uploadURL, looked: looked)
            }
        }
    }

    /// The GitHub Releases publisher, or `nil` when GitHub is skipped or no repository is configured.
    public func gitHubPublisher() throws -> GitHubReleasePublisher? {
        guard let gitHub else { return nil }
        let token = try gitHub.instance.token(sources: sources, repository: gitHub.repository)
        return try GitHubReleasePublisher(apiBaseURL: gitHub.instance.apiURL, repository: try GitHubRepository(gitHub.repository),
                                          token: token.token, tagTemplate: tagTemplate, transport: gitHubTransport,
                                          retry: retry, logger: logger)
    }

    /// What a dry run says about publishing: destination, CA bundle, credentials per package and
    /// GitHub, each with where it comes from (never a value).
    public func describe(packages: [String]) -> [String] {
        var lines = ["publish to: \(destinationDescription) (\(destinationSource))"]
        if let caBundle { lines.append("  CA bundle: '\(caBundle.path)' (\(caBundle.source))") }
        if case .uploadAPI = destination {
            for package in packages.sorted() {
                let plan = (try? credentialPlan(for: package)).map(\.description) ?? "unreadable configuration"
                lines.append("  credentials for \(package): \(plan)")
            }
        }
        if let gitHub {
            let token: String
            if let found = try? gitHub.instance.token(sources: sources, repository: gitHub.repository) { token = "token from \(found.source)" }
            else { token = "no token (looked in \(gitHub.instance.tokenVariables.joined(separator: ", ")))" }
            lines.append("GitHub releases in \(gitHub.repository) (\(gitHub.source)) at \(gitHub.instance.apiURL) (\(gitHub.instance.source)); \(token)")
        }
        return lines
    }

    /// Closes the HTTP clients.
    public func shutdown() async {
        try? await indexTransport.shutdown()
        try? await gitHubTransport.shutdown()
    }
}
