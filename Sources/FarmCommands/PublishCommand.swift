import ArgumentParser

/// `wheelfarm publish`.
struct PublishCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "publish", abstract: "Not available yet.")

    func run() async throws {
        throw notAvailableYet("publish")
    }
}
