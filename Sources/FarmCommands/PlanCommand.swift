import ArgumentParser

/// `wheelfarm plan`.
struct PlanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "plan", abstract: "Show the job matrix and where each job can run.")

    func run() async throws {
        throw notAvailableYet("plan")
    }
}
