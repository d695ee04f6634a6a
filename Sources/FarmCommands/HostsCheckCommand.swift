import ArgumentParser

/// `wheelfarm hosts check`.
struct HostsCheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "check", abstract: "Not available yet.")
    func run() async throws { throw notAvailableYet("hosts check") }
}
