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

        \(PublishingOptions.discussion)

        Exit codes: 0 all done, 1 some jobs failed or a local fault (disk full, I/O error) \
        stopped the run, 2 configuration or usage error (an empty selection included), 130 \
        cancelled by SIGINT, 143 cancelled by SIGTERM.
        """)

    @OptionGroup(title: "Inventory") var inventoryOptions: InventoryOptions
    @OptionGroup(title: "Selection") var selection: SelectionOptions
    @OptionGroup(title: "Build limits") var buildLimits: BuildLimitOptions
    @OptionGroup(title: "Network limits") var networkLimits: NetworkLimitOptions
    @OptionGroup(title: "Publishing") var publishing: PublishingOptions

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

    @Flag(name: .customLong("skip-tests"), help: "Do not run the recipe's test on the built wheels (the release says so).")
    var skipTests = false

    @Flag(name: .customLong("update-readme"), help: ArgumentHelp(
        "Replace the project description inside the existing wheels in --dist-dir with --readme; nothing is built or uploaded."))
    var updateReadme = false

    @Option(name: .long, help: ArgumentHelp("The description file used by --update-readme.", valueName: "file"))
    var readme: String = "README.md"

    @Flag(name: .customLong("dry-run"), help: "Show the plan and every command that would run; change nothing.")
    var dryRun = false

    @Flag(name: .long, help: "Log each step to standard error.")
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
        var (recipe, matrix) = try selection.matrix()
        var jobs = matrix.jobs
        if allowLinuxTag {
            do { (recipe, jobs) = try LinuxTagPolicy.allowLinuxTags(recipe: recipe, jobs: jobs) } catch {
                printError("wheelfarm release: \(error)")
                throw ExitCode(2)
            }
        }
        let logger = commandLogger("wheelfarm.release", verbose: verbose)
        let dist = URL(fileURLWithPath: distDir)

        // One decision, shared with `publish`: where wheels go and with which credentials.
        let setup = try publishing.setup(command: "release", defaultLocalIndex: DistLayout(root: dist).indexDirectory,
                                         limits: networkLimits.limits, logger: logger)
        defer { Task { await setup.shutdown() } }
        if case let .uploadAPI(index) = setup.destination {
            // linux_* wheels (host-specific) never go to an upload-API index.
            do { try LinuxTagPolicy.refuseUpload(of: jobs, to: index.uploadURL, flag: allowLinuxTag) } catch {
                printError("wheelfarm release: \(error)")
                throw ExitCode(2)
            }
        }
        // With --json, standard output carries only the JSON document: progress goes to stderr.
        // Unbuffered, as the live view is: a coordinator killed with SIGKILL has shown everything
        // it did up to then, in the order it happened.
        let json = output.json
        let fd = json ? STDERR_FILENO : STDOUT_FILENO
        let write: @Sendable (String) -> Void = { line in FileHandle(fileDescriptor: fd).write(Data((line + "\n").utf8)) }
        let packages = Array(Set(jobs.map(\.variant.package)))
        if dryRun { setup.describe(packages: packages).forEach(write) }
        let publishers = PublisherFactory(destination: setup.destinationDescription) { [dryRun] package in
            try setup.publisher(for: package, dryRun: dryRun)
        }
        var makeGitHub: (@Sendable () throws -> GitHubReleasePublisher)?
        if setup.gitHub != nil { makeGitHub = { try setup.gitHubPublisher()! } }

        var configuration = ReleaseConfiguration(recipe: recipe, jobs: jobs, inventory: inventory,
                                                 inventoryPath: inventoryOptions.inventoryPath, distDir: dist)
        configuration.builder = builder == .docker ? .docker : .native
        configuration.maxJobs = maxJobs
        configuration.skipBuild = skipBuild
        configuration.skipGitHub = publishing.skipGitHub
        configuration.skipTests = skipTests
        configuration.dryRun = dryRun
        configuration.updateReadme = updateReadme ? URL(fileURLWithPath: readme) : nil
        configuration.arguments = Redaction.arguments(["wheelfarm"] + CommandLine.arguments.dropFirst())
        configuration.buildLimits = buildLimits.limits
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
