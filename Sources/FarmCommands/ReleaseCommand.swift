import ArgumentParser

/// `wheelfarm release`.
struct ReleaseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "release", abstract: "Not available yet.")

    func run() async throws {
        throw notAvailableYet("release")
    }
}
