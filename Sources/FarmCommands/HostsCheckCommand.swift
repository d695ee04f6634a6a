import ArgumentParser
import Foundation
import Inventory
import Logging
import Remote

/// `wheelfarm hosts check`: connect to every host, check its key, log in and time a round trip.
struct HostsCheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check", abstract: "Connect to every host: reachability, host key, login and round-trip time.",
        discussion: """
        Hosts are checked in parallel (at most --parallel at a time). SSH settings come from the
        inventory, then ssh_config (~/.ssh/config, /etc/ssh/ssh_config), then the defaults;
        --json lists every effective value with its source, file and line. Host keys are checked
        against known_hosts as OpenSSH reads it and the pinned keys (strict refuses unknown keys;
        accept-new records them); logins use ssh-agent, then the identity files. Exit status 1
        when any host fails, 2 when the inventory or an SSH configuration is invalid.
        """)

    @OptionGroup(title: "Inventory") var inventoryOptions: InventoryOptions
    @OptionGroup(title: "Output") var output: OutputOptions

    @Option(name: .long, help: ArgumentHelp("Check only these hosts (comma list of names).", valueName: "names"))
    var hosts: String?

    @Option(name: .long, help: "How many hosts to check at the same time.")
    var parallel: Int = 8

    func validate() throws {
        guard parallel >= 1 else { throw ValidationError("--parallel must be at least 1, got \(parallel)") }
    }

    func run() async throws {
        let inventory = try inventoryOptions.load()
        let selected = try inventoryOptions.select(hosts, from: inventory)
        var logger = Logger(label: "wheelfarm.hosts-check")
        logger.logLevel = .warning
        let results = await HostChecker.check(selected, ssh: inventory.ssh, concurrency: parallel, logger: logger)
        let failed = results.filter { !$0.ok }.count

        if output.json {
            try printJSON(HostsCheckDocument(inventory: inventoryOptions.inventoryPath, hosts: results))
        } else {
            var table = TextTable("NAME", "ENDPOINT", "REACHABLE", "HOST KEY", "LOGIN", "CONNECT", "RTT", "STATUS")
            for r in results {
                table.add(r.host, r.endpoint, yesNo(r.reachable), r.hostKey ?? "-",
                          r.authenticated == true ? (r.user ?? "yes") : yesNo(r.authenticated),
                          milliseconds(r.connectSeconds), milliseconds(r.roundTripSeconds),
                          r.ok ? "ok" : (r.errorKind ?? "failed"))
            }
            print(table.render())
            for r in results where !r.ok {
                print("\n\(r.host): \(r.error ?? "failed")")
            }
            print("\n\(results.count - failed) of \(results.count) host\(results.count == 1 ? "" : "s") ok")
        }
        if failed > 0 { throw ExitCode(1) }
    }

    private func yesNo(_ value: Bool?) -> String { value.map { $0 ? "yes" : "no" } ?? "-" }
    private func milliseconds(_ seconds: Double?) -> String { seconds.map { String(format: "%.0f ms", $0 * 1000) } ?? "-" }
}

/// The `hosts check --json` document.
struct HostsCheckDocument: Encodable {
    let schema = "wheelfarm.hosts-check/1"
    let inventory: String
    let hosts: [HostCheckResult]
}
