import ArgumentParser

/// `wheelfarm simulate`.
struct SimulateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "simulate", abstract: "Not available yet.")

    func run() async throws {
        throw notAvailableYet("simulate")
    }
}
