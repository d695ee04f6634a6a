import Agents
import ArgumentParser
import FarmCore
import Foundation
import Logging
import Publishing
import Recipes
import Release
import Wheels

/// `wheelfarm release`: the whole pipeline (pre-flight, build, verify, publish, GitHub release).
struct ReleaseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "release",
        abstract: "Build, verify and publish a release across the farm.",
        discussion: """
        Phases: pre-flight (tools, credentials, inventory, hosts, what is already published), \
        build (jobs placed on hosts that can build them natively), verify (every wheel, centrally, \
        including an audit of its CPU instructions; a failing wheel is rebuilt, at most 2 attempts), \
        publish (only verified wheels; never the same file twice) and GitHub release.

        Every option of the single-host test_and_publish.sh exists here with the same meaning.

        Exit codes: 0 all done, 1 some jobs failed, 2 configuration or usage error.
        """)

    @OptionGroup(title: "Inventory") var inventoryOptions: InventoryOptions
    @OptionGroup(title: "Selection") var selection: SelectionOptions

    /// How a build runs on its host.
    enum Builder: String, ExpressibleByArgument, CaseIterable {
        case native, docker
    }

    @Option(name: .long, help: ArgumentHelp("Build method on each host: native or docker (a manylinux container on the host).", valueName: "type"))
    var builder: Builder = .native

    @Option(name: .customLong("dist-dir"), help: ArgumentHelp("Where wheels, logs, the journal and reports are kept.", valueName: "dir"))
    var distDir: String = "dist"

    @Option(name: .customLong("max-jobs"), help: ArgumentHelp(
        "Parallel compile jobs per build (MAX_JOBS). Default: the host's max_jobs from the inventory, else its core count.",
        valueName: "n"))
    var maxJobs: Int?

    @Flag(name: .customLong("skip-build"), help: "Build nothing: verify and publish the wheels already in --dist-dir.")
    var skipBuild = false

    @Flag(name: .customLong("skip-github"), help: "Do not create or complete GitHub releases.")
    var skipGitHub = false

    @Flag(name: .customLong("skip-tests"), help: "Do not run the recipe's test on the built wheels (the release says so).")
    var skipTests = false

    @Flag(name: .customLong("update-readme"), help: ArgumentHelp(
        "Replace the project description inside the existing wheels in --dist-dir with --readme; nothing is built or uploaded."))
    var updateReadme = false

    @Option(name: .long, help: ArgumentHelp("The description file used by --update-readme.", valueName: "file"))
    var readme: String = "README.md"

    @Flag(name: .customLong("dry-run"), help: "Show the plan and every command that would run; change nothing.")
    var dryRun = false

    @Option(name: .customLong("repository-url"), help: ArgumentHelp(
        "Upload URL of the index. Default: TWINE_REPOSITORY_URL; else PyPI when a PyPI token is configured; else a local index in <dist-dir>/index (the embedded default).",
        valueName: "url"))
    var repositoryURL: String?

    @Option(name: .customLong("index-url"), help: ArgumentHelp("Simple API URL of the index, for existence checks (default: derived from --repository-url).", valueName: "url"))
    var indexURL: String?

    @Option(name: .customLong("env-file"), help: ArgumentHelp("A .env file with credentials, mode 0600 (default: ./.env when it exists).", valueName: "file"))
    var envFile: String?

    @Option(name: .customLong("github-repository"), help: ArgumentHelp("GitHub repository OWNER/NAME for releases (default: GITHUB_REPOSITORY; none: no GitHub release).", valueName: "owner/name"))
    var githubRepository: String?

    @Option(name: .customLong("github-api-url"), help: ArgumentHelp("GitHub REST API base URL (GitHub Enterprise: https://HOST/api/v3).", valueName: "url"))
    var githubAPIURL: String?

    @Option(name: .customLong("tag-template"), help: ArgumentHelp("Release tag template ({version} {package} {name} {python}) or preset: default (v{version}-{package}), old (v{version}-cpu).", valueName: "template"))
    var tagTemplate = "default"

    @Flag(name: .long, help: "Log each step to standard error.")
    var verbose = false

    func validate() throws {
        if let maxJobs, maxJobs < 1 { throw ValidationError("--max-jobs must be at least 1, found \(maxJobs)") }
        if distDir.isEmpty { throw ValidationError("--dist-dir must not be empty") }
        if updateReadme, !FileManager.default.isReadableFile(atPath: readme) {
            throw ValidationError("--update-readme needs a readable --readme file; '\(readme)' cannot be read")
        }
    }

    func run() async throws {
        let inventory = try inventoryOptions.load()
        let (recipe, matrix) = try selection.matrix()
        let jobs = matrix.jobs
        var logger = Logger(label: "wheelfarm.release")
        logger.logLevel = verbose ? .info : .warning
        let environment = ProcessInfo.processInfo.environment
        let dist = URL(fileURLWithPath: distDir)

        let sources: CredentialSources
        let publishers: PublisherFactory
        let template: TagTemplate
        let transport = HTTPTransport()
        defer { Task { try? await transport.shutdown() } }
        do {
            sources = try CredentialSources.standard(envFilePath: envFile, environment: environment)
            template = try TagTemplate(tagTemplate)
            let hasPyPIToken = ["PYPI_API_TOKEN", "PYPI_TOKEN", "TWINE_PASSWORD"].contains { sources.environment[$0] != nil || sources.envFile[$0] != nil }
                || jobs.contains { job in CredentialResolver.perPackageTokenVariables(project: job.variant.package).contains { sources.environment[$0] != nil || sources.envFile[$0] != nil } }
            if let upload = repositoryURL ?? sources.repositoryURL ?? (hasPyPIToken ? PackageIndex.pypiUploadURL : nil) {
                let index = try PackageIndex(uploadURL: upload, simpleURL: indexURL)
                publishers = PublisherFactory(destination: index.uploadURL) { [logger] package in
                    let credentials = dryRun ? nil : try CredentialResolver.indexCredentials(for: index, project: package, sources: sources)
                    return UploadAPIPublisher(index: index, credentials: credentials, transport: transport, logger: logger)
                }
            } else {
                let root = dist.appendingPathComponent("index")
                publishers = PublisherFactory(destination: root.path) { [logger] _ in LocalIndexPublisher(root: root, logger: logger) }
            }
        } catch {
            printError("wheelfarm release: \(error)")
            throw ExitCode(2)
        }

        var makeGitHub: (@Sendable () throws -> GitHubReleasePublisher)?
        if let repo = githubRepository ?? environment["GITHUB_REPOSITORY"].flatMap({ $0.isEmpty ? nil : $0 }) {
            let api = githubAPIURL ?? environment["GITHUB_API_URL"].flatMap { $0.isEmpty ? nil : $0 } ?? GitHubReleasePublisher.defaultAPIBaseURL
            makeGitHub = { [logger] in
                let token = try CredentialResolver.gitHubToken(sources: sources)
                return try GitHubReleasePublisher(apiBaseURL: api, repository: try GitHubRepository(repo), token: token.token,
                                                  tagTemplate: template, transport: transport, logger: logger)
            }
        }

        var configuration = ReleaseConfiguration(recipe: recipe, jobs: jobs, inventory: inventory,
                                                 inventoryPath: inventoryOptions.inventoryPath, distDir: dist)
        configuration.builder = builder == .docker ? .docker : .native
        configuration.maxJobs = maxJobs
        configuration.skipBuild = skipBuild
        configuration.skipGitHub = skipGitHub
        configuration.skipTests = skipTests
        configuration.dryRun = dryRun
        configuration.updateReadme = updateReadme ? URL(fileURLWithPath: readme) : nil
        configuration.arguments = ["wheelfarm"] + CommandLine.arguments.dropFirst()
        configuration.notes = JobMatrix.abi3Note(recipe: recipe, selection: selection.selection).map { [$0] } ?? []
        configuration.notes += matrix.notBuilt.map { "not built: \($0.package)==\($0.version)\($0.python.map { " (Python \($0))" } ?? ""): \($0.reason)" }
        configuration.notes += matrix.notes.map { "note: \($0)" }

        let recipeForGate = recipe
        let jobsForGate = jobs.map { ($0, ReleasePipelineSupport.expectation(for: $0, recipe: recipe)) }
        let gate = VerifyingGate { path in
            let name = URL(fileURLWithPath: path).lastPathComponent
            return jobsForGate.first { ReleasePipelineSupport.matches(file: name, job: $0.0) }?.1
                ?? WheelExpectation(requiredFiles: recipeForGate.requiredFiles)
        }
        let pipeline = ReleasePipeline(configuration: configuration, logger: logger,
                                       display: ProgressDisplay(mode: ProgressDisplay.automaticMode(), hosts: inventory.hosts.map(\.name)),
                                       publicationVerifier: gate, publishers: publishers, makeGitHub: makeGitHub)
        let outcome: ReleasePipeline.Outcome
        do {
            outcome = try await pipeline.run()
        } catch {
            printError("wheelfarm release: \(error)")
            throw ExitCode(2)
        }
        if outcome.exitCode != 0 { throw ExitCode(outcome.exitCode) }
    }
}
