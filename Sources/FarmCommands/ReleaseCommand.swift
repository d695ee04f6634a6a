import ArgumentParser
import Foundation

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

    @Flag(name: .customLong("update-readme"), help: ArgumentHelp(
        "Replace the project description inside the existing wheels in --dist-dir with --readme; nothing is built or uploaded."))
    var updateReadme = false

    @Option(name: .long, help: ArgumentHelp("The description file used by --update-readme.", valueName: "file"))
    var readme: String = "README.md"

    @Flag(name: .customLong("dry-run"), help: "Show the plan and every command that would run; change nothing.")
    var dryRun = false

    func validate() throws {
        if let maxJobs, maxJobs < 1 { throw ValidationError("--max-jobs must be at least 1, found \(maxJobs)") }
        if distDir.isEmpty { throw ValidationError("--dist-dir must not be empty") }
        if updateReadme, !FileManager.default.isReadableFile(atPath: readme) {
            throw ValidationError("--update-readme needs a readable --readme file; '\(readme)' cannot be read")
        }
    }

    func run() async throws {
        _ = try inventoryOptions.load()
        _ = try selection.jobs()
        throw notAvailableYet("release")
    }
}
