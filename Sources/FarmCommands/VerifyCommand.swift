import ArgumentParser

/// `wheelfarm verify`.
struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "verify", abstract: "Not available yet.")

    func run() async throws {
        throw notAvailableYet("verify")
    }
}
