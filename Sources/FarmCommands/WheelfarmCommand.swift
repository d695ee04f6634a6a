import ArgumentParser

/// The root `wheelfarm` command.
public struct WheelfarmCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "wheelfarm",
        abstract: "Build, verify and publish CPU-variant Python wheels on a farm of build hosts.",
        discussion: """
        A release expands a job matrix (variant × arch × Python × upstream version), places each job
        on an inventory host that can build it natively, builds over SSH, verifies every wheel
        centrally (including an audit of the CPU instructions it contains) and publishes it.

        Start with `wheelfarm plan` to see what a release would build and where.
        Exit codes: 0 success, 1 some work failed or could not be placed, 2 configuration or usage
        error, 3 the command is not available in this build.
        """,
        version: "0.1.0",
        subcommands: [
            ReleaseCommand.self, PlanCommand.self, HostsCommand.self, VerifyCommand.self,
            RewriteCommand.self, PublishCommand.self, SimulateCommand.self, StatusCommand.self,
        ]
    )

    public init() {}
}

/// Thrown by commands whose implementation has not landed yet.
func notAvailableYet(_ what: String) -> ExitCode {
    printError("wheelfarm: '\(what)' is not available yet in this build")
    return ExitCode(3)
}
