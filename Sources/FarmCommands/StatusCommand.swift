import ArgumentParser

/// `wheelfarm status`.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Not available yet.")

    func run() async throws {
        throw notAvailableYet("status")
    }
}
