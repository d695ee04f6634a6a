import ArgumentParser

/// The root `wheelfarm` command.
public struct WheelfarmCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "wheelfarm",
        abstract: "Build, verify and publish CPU-variant Python wheels on a farm of build hosts.",
        discussion: """
        A release expands a job matrix (variant × arch × Python × upstream version), places each job \
        on an inventory host that can build it natively, builds over SSH, verifies every wheel \
        centrally (including an audit of the CPU instructions it contains) and publishes it.

        Start with `wheelfarm plan` to see what a release would build and where.

        Exit codes: 0 success, 1 some work failed or could not be placed, 2 configuration or usage \
        error.
        """,
        version: "0.1.0",
        subcommands: [
            ReleaseCommand.self, PlanCommand.self, HostsCommand.self, VerifyCommand.self,
            RewriteCommand.self, PublishCommand.self, SimulateCommand.self, StatusCommand.self, RecipeCommand.self,
        ]
    )

    public init() {}
}

extension WheelfarmCommand {
    /// Parses the command line, runs the command and exits with wheelfarm's documented codes.
    ///
    /// ArgumentParser exits usage errors with 64 (EX_USAGE); wheelfarm's contract is 2 for
    /// every configuration or usage error, so the mapping happens here.
    public static func runMain(_ arguments: [String]? = nil) async -> Never {
        do {
            var command = try parseAsRoot(arguments)
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            exit(withError: nil)
        } catch {
            var code = exitCode(for: error)
            if code == .validationFailure { code = ExitCode(2) }
            let message = fullMessage(for: error)
            if code == .success {
                if !message.isEmpty { print(message) }
            } else if !message.isEmpty {
                printError(message)
            }
            exit(withError: code == .success ? nil : code)
        }
    }
}
