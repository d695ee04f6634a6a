import ArgumentParser

/// `wheelfarm rewrite`.
struct RewriteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rewrite", abstract: "Not available yet.")

    func run() async throws {
        throw notAvailableYet("rewrite")
    }
}
