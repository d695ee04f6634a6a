import ArgumentParser

/// `wheelfarm hosts`: inspect the inventory's build hosts.
struct HostsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hosts", abstract: "List, check and probe the inventory's build hosts.",
        subcommands: [HostsListCommand.self, HostsCheckCommand.self, HostsProbeCommand.self],
        defaultSubcommand: HostsListCommand.self)
}

/// `wheelfarm hosts list`.
struct HostsListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List hosts as the inventory describes them.")
    func run() async throws { throw notAvailableYet("hosts list") }
}
