import ArgumentParser
import Foundation
import Release

/// `wheelfarm status`: the state of the last (or a named) release run.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Show the last (or a named) release run recorded in --dist-dir.",
        discussion: "Reads the journal in <dist-dir>/.wheelfarm/journal.sqlite. Exit code 0 when the run succeeded, 1 otherwise, 2 when there is no such run.")

    @Argument(help: ArgumentHelp("A run id; default: the last run.", valueName: "run"))
    var run: String?

    @Option(name: .customLong("dist-dir"), help: ArgumentHelp("The release's dist directory.", valueName: "dir"))
    var distDir: String = "dist"

    @Flag(name: .long, help: "List every recorded run id, newest first.")
    var list = false

    @OptionGroup(title: "Output") var output: OutputOptions

    func run() async throws {
        let layout = DistLayout(root: URL(fileURLWithPath: distDir))
        guard layout.hasJournal else {
            printError("wheelfarm: no release has been recorded in '\(distDir)' (no \(layout.journalFile.path))")
            throw ExitCode(2)
        }
        let journal = try Journal(layout: layout)
        if list {
            for id in try journal.runIDs() { print(id) }
            return
        }
        guard let summary = try journal.summary(run: run) else {
            printError("wheelfarm: no run '\(run ?? "")' in '\(distDir)'; runs: \((try journal.runIDs()).joined(separator: ", "))")
            throw ExitCode(2)
        }
        if output.json {
            try printJSON(StatusDocument(summary))
        } else {
            print(render(summary))
        }
        if summary.status != .succeeded { throw ExitCode(1) }
    }

    private func render(_ s: RunSummary) -> String {
        var out = "run \(s.id) · \(s.status.rawValue) · recipe \(s.recipe) · inventory \(s.inventory)\n"
        out += "started \(s.startedAt.formatted(.iso8601))"
        if let f = s.finishedAt { out += " · finished \(f.formatted(.iso8601))" }
        out += "\ncommand: \(s.arguments)\n\n"
        var table = TextTable("JOB", "STATE", "HOST", "ATTEMPTS", "WHEEL / DETAIL")
        for j in s.jobs {
            table.add(j.jobID, j.state.rawValue, j.host ?? "-", String(j.attempts), j.wheel ?? j.detail ?? "")
        }
        out += table.render()
        let counts = Dictionary(grouping: s.jobs, by: \.state).map { "\($0.value.count) \($0.key.rawValue)" }.sorted()
        out += "\n\n\(s.jobs.count) jobs: \(counts.joined(separator: ", "))"
        if !s.hosts.isEmpty {
            var hosts = TextTable("HOST", "ADDRESS", "ARCH", "STATE", "DETAIL")
            for h in s.hosts { hosts.add(h.name, h.address ?? "-", h.arch ?? "-", h.state, h.detail ?? "") }
            out += "\n\n" + hosts.render()
        }
        return out
    }
}

/// The `status --json` document (schema `wheelfarm.status/1`).
struct StatusDocument: Encodable {
    let schema = "wheelfarm.status/1"
    let id: String
    let status: String
    let recipe: String
    let inventory: String
    let arguments: String
    let started_at: Date
    let finished_at: Date?
    let jobs: [JobRecord]
    let hosts: [HostRecord]

    init(_ s: RunSummary) {
        id = s.id; status = s.status.rawValue; recipe = s.recipe; inventory = s.inventory; arguments = s.arguments
        started_at = s.startedAt; finished_at = s.finishedAt; jobs = s.jobs; hosts = s.hosts
    }
}
