import ArgumentParser

/// `wheelfarm hosts probe`.
struct HostsProbeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "probe", abstract: "Not available yet.")
    func run() async throws { throw notAvailableYet("hosts probe") }
}
