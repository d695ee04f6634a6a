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

        \(PublishingOptions.discussion)

        Exit codes: 0 all done, 1 some jobs failed, 2 configuration or usage error.
        """)

    @OptionGroup(title: "Inventory") var inventoryOptions: InventoryOptions
    @OptionGroup(title: "Selection") var selection: SelectionOptions
    @OptionGroup(title: "Publishing") var publishing: PublishingOptions

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

    @Flag(name: .customLong("update-readme"), help: ArgumentHelp(
        "Replace the project description inside the existing wheels in --dist-dir with --readme; nothing is built or uploaded."))
    var updateReadme = false

    @Option(name: .long, help: ArgumentHelp("The description file used by --update-readme.", valueName: "file"))
    var readme: String = "README.md"

    @Flag(name: .customLong("dry-run"), help: "Show the plan and every command that would run; change nothing.")
    var dryRun = false

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
        let (recipe, jobs) = try selection.jobs()
        var logger = Logger(label: "wheelfarm.release")
        logger.logLevel = verbose ? .info : .warning
        let dist = URL(fileURLWithPath: distDir)

        // One decision, shared with `publish`: where wheels go and with which credentials.
        let setup = try publishing.setup(command: "release", defaultLocalIndex: dist.appendingPathComponent("index"), logger: logger)
        defer { Task { await setup.shutdown() } }
        let packages = Array(Set(jobs.map(\.variant.package)))
        if dryRun {
            for line in setup.describe(packages: packages) { print(line) }
        }
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
        configuration.dryRun = dryRun
        configuration.updateReadme = updateReadme ? URL(fileURLWithPath: readme) : nil
        configuration.arguments = ["wheelfarm"] + CommandLine.arguments.dropFirst()
        configuration.notes = JobMatrix.abi3Note(recipe: recipe, selection: selection.selection).map { [$0] } ?? []

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
