import Agents
import ArgumentParser
import FarmCore
import Foundation
import Logging
import Publishing
import Recipes
import Release
import UnixSignals
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

        Ctrl-C (SIGINT) or SIGTERM cancels the run: running builds are stopped on their hosts, \
        the journal, the summary and the report are written, and the same command resumes. A \
        second Ctrl-C exits at once and names the builds that may still run where (the next run \
        stops them).

        Exit codes: 0 all done, 1 some jobs failed or a local fault (disk full, I/O error) \
        stopped the run, 2 configuration or usage error (an empty selection included), 130 \
        cancelled by SIGINT, 143 cancelled by SIGTERM.
        """)

    @OptionGroup(title: "Inventory") var inventoryOptions: InventoryOptions
    @OptionGroup(title: "Selection") var selection: SelectionOptions
    @OptionGroup(title: "Build limits") var buildLimits: BuildLimitOptions
    @OptionGroup(title: "Network limits") var networkLimits: NetworkLimitOptions

    /// How a build runs on its host.
    enum Builder: String, ExpressibleByArgument, CaseIterable {
        case native, docker
    }

    @Option(name: .long, help: ArgumentHelp("Build method on each host: native or docker (a manylinux container on the host).", valueName: "type"))
    var builder: Builder = .native

    @Flag(name: .customLong("allow-linux-tag"), help: ArgumentHelp(
        "Keep a host-specific linux_* tag when a wheel fits no manylinux/musllinux policy.",
        discussion: "For the local index only: PyPI and other upload indexes are refused before building (a recipe with platform: linux is treated the same)."))
    var allowLinuxTag = false

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

    @Flag(name: .long, help: "Log each step (phases, placements, retries, errors) to standard error.")
    var verbose = false

    @OptionGroup(title: "Output") var output: OutputOptions

    func validate() throws {
        if let maxJobs, maxJobs < 1 { throw ValidationError("--max-jobs must be at least 1, found \(maxJobs)") }
        if distDir.isEmpty { throw ValidationError("--dist-dir must not be empty") }
        if updateReadme, !FileManager.default.isReadableFile(atPath: readme) {
            throw ValidationError("--update-readme needs a readable --readme file; '\(readme)' cannot be read")
        }
    }

    func run() async throws {
        let inventory = try inventoryOptions.load()
        var (recipe, jobs) = try selection.jobs()
        if allowLinuxTag {
            do { (recipe, jobs) = try LinuxTagPolicy.allowLinuxTags(recipe: recipe, jobs: jobs) } catch {
                printError("wheelfarm release: \(error)")
                throw ExitCode(2)
            }
        }
        let logger = commandLogger("wheelfarm.release", verbose: verbose)
        let environment = ProcessInfo.processInfo.environment
        let dist = URL(fileURLWithPath: distDir)

        let sources: CredentialSources
        let publishers: PublisherFactory
        let template: TagTemplate
        let transport = HTTPTransport(limits: networkLimits.limits)
        defer { Task { try? await transport.shutdown() } }
        do {
            sources = try CredentialSources.standard(envFilePath: envFile, environment: environment)
            template = try TagTemplate(tagTemplate)
            let hasPyPIToken = ["PYPI_API_TOKEN", "PYPI_TOKEN", "TWINE_PASSWORD"].contains { sources.environment[$0] != nil || sources.envFile[$0] != nil }
                || jobs.contains { job in CredentialResolver.perPackageTokenVariables(project: job.variant.package).contains { sources.environment[$0] != nil || sources.envFile[$0] != nil } }
            if let upload = repositoryURL ?? sources.repositoryURL ?? (hasPyPIToken ? PackageIndex.pypiUploadURL : nil) {
                try LinuxTagPolicy.refuseUpload(of: jobs, to: upload, flag: allowLinuxTag)
                let index = try PackageIndex(uploadURL: upload, simpleURL: indexURL)
                publishers = PublisherFactory(destination: index.uploadURL) { [logger] package in
                    let credentials = dryRun ? nil : try CredentialResolver.indexCredentials(for: index, project: package, sources: sources)
                    return UploadAPIPublisher(index: index, credentials: credentials, transport: transport, logger: logger)
                }
            } else {
                let root = DistLayout(root: dist).indexDirectory
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
        configuration.dryRun = dryRun
        configuration.updateReadme = updateReadme ? URL(fileURLWithPath: readme) : nil
        configuration.arguments = Redaction.arguments(["wheelfarm"] + CommandLine.arguments.dropFirst())
        configuration.buildLimits = buildLimits.limits
        configuration.notes = JobMatrix.abi3Note(recipe: recipe, selection: selection.selection).map { [$0] } ?? []

        let recipeForGate = recipe
        let jobsForGate = jobs.map { ($0, ReleasePipelineSupport.expectation(for: $0, recipe: recipe)) }
        let gate = VerifyingGate { path in
            let name = URL(fileURLWithPath: path).lastPathComponent
            return jobsForGate.first { ReleasePipelineSupport.matches(file: name, job: $0.0) }?.1
                ?? WheelExpectation(requiredFiles: recipeForGate.requiredFiles)
        }
        // With --json, standard output carries only the JSON document: progress goes to stderr.
        let json = output.json
        let write: @Sendable (String) -> Void = { line in if json { printError(line) } else { print(line) } }
        let fd = json ? STDERR_FILENO : STDOUT_FILENO
        let display = ProgressDisplay(mode: ProgressDisplay.automaticMode(fd: fd), hosts: inventory.hosts.map(\.name),
                                      width: { ProgressDisplay.terminalWidth(fd: fd) },
                                      sink: { text in FileHandle(fileDescriptor: fd).write(Data(text.utf8)) })
        let pipeline = ReleasePipeline(configuration: configuration, logger: logger, display: display,
                                       publicationVerifier: gate, publishers: publishers, makeGitHub: makeGitHub, out: write)
        let outcome: ReleasePipeline.Outcome
        let signal: UnixSignal?
        do {
            (outcome, signal) = try await SignalCancellation.run({ try await pipeline.run() }, onFirst: { signal in
                printError("\nwheelfarm release: \(signal) received: stopping the running builds and writing the report (again to exit at once)")
            }, onSecond: { signal in
                let left = pipeline.inFlight.current
                printError("wheelfarm release: \(signal) again: exiting now.")
                if left.isEmpty { return }
                printError("These builds may still be running (the next release with --dist-dir \(distDir) stops them):")
                for build in left { printError("  \(build)\n    stop it by hand: \(build.cancelCommand)") }
            })
        } catch let error as ReleaseError {
            printError("wheelfarm release: \(error)")
            if case .configuration = error { throw ExitCode(2) }
            throw ExitCode(1)
        } catch {
            printError("wheelfarm release: \(error)")
            throw ExitCode(1)
        }
        if json { try printJSON(ReleaseDocument(outcome: outcome)) }
        if outcome.cancelled { throw ExitCode(SignalCancellation.exitStatus(for: signal ?? .sigint)) }
        if outcome.exitCode != 0 { throw ExitCode(outcome.exitCode) }
    }
}

/// The `release --json` document (schema `wheelfarm.release/1`): the run's report, with where
/// its files are.
struct ReleaseDocument: Encodable {
    let schema = "wheelfarm.release/1"
    let exit_code: Int32
    let report_json: String?
    let report_html: String?
    let report: ReleaseReport

    init(outcome: ReleasePipeline.Outcome) {
        exit_code = outcome.exitCode; report = outcome.report
        report_json = outcome.reportFiles?.json.path; report_html = outcome.reportFiles?.html.path
    }
}
