import ArgumentParser

/// `wheelfarm status`: the state of the last (or a named) release run.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Show the last (or a named) release run recorded in --dist-dir.")

    @Argument(help: ArgumentHelp("A run id; default: the last run.", valueName: "run"))
    var run: String?

    @Option(name: .customLong("dist-dir"), help: ArgumentHelp("The release's dist directory.", valueName: "dir"))
    var distDir: String = "dist"

    @OptionGroup(title: "Output") var output: OutputOptions

    func run() async throws {
        throw notAvailableYet("status")
    }
}
