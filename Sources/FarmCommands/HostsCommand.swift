import struct Inventory.Host
import Foundation
import ArgumentParser
import Inventory

/// `wheelfarm hosts`: inspect the inventory's build hosts.
struct HostsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hosts", abstract: "List, check and probe the inventory's build hosts.",
        subcommands: [HostsListCommand.self, HostsCheckCommand.self, HostsProbeCommand.self],
        defaultSubcommand: HostsListCommand.self)
}

/// `wheelfarm hosts list`: the hosts as the inventory describes them, after inheritance.
struct HostsListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List hosts as the inventory describes them (after defaults and groups).",
        discussion: "Validates the inventory: every problem is listed with file, line and key, and the exit code is 2.")

    @OptionGroup(title: "Inventory") var inventoryOptions: InventoryOptions
    @OptionGroup(title: "Output") var output: OutputOptions

    func run() async throws {
        let inventory = try inventoryOptions.load()
        if output.json {
            try printJSON(HostsDocument(inventory: inventoryOptions.inventoryPath, hosts: inventory.hosts.map(HostsDocument.Entry.init)))
            return
        }
        var table = TextTable("NAME", "CONNECTION", "ADDRESS", "ARCH", "SLOTS", "MAX_JOBS", "SPEED", "STATE", "CAPABILITIES")
        for h in inventory.hosts {
            let address = h.connection == .local ? "-" : "\(h.user.map { "\($0)@" } ?? "")\(h.address):\(h.port)"
            var caps = h.capabilities.sorted().map(\.name).joined(separator: " ")
            if !h.reserved.isEmpty { caps += " (reserved: \(h.reserved.sorted().map(\.name).joined(separator: " ")))" }
            table.add(h.name, h.connection.rawValue, address, h.arch.rawValue, String(h.slots),
                      h.maxJobs.map(String.init) ?? "auto", "\(h.speed)", h.drain ? "draining" : "active", caps)
        }
        print(table.render())
        print("\n\(inventory.hosts.count) host\(inventory.hosts.count == 1 ? "" : "s") in \(inventoryOptions.inventoryPath)")
    }
}

/// The `hosts list --json` document.
struct HostsDocument: Encodable {
    struct Entry: Encodable {
        let name: String, connection: String, address: String, port: Int, user: String?
        let arch: String, capabilities: [String], reserved: [String], slots: Int, max_jobs: Int?
        let speed: Double, labels: [String], drain: Bool, work_dir: String, pinned_host_key: Bool
        init(_ h: Host) {
            name = h.name; connection = h.connection.rawValue; address = h.address; port = h.port; user = h.user
            arch = h.arch.rawValue; capabilities = h.capabilities.sorted().map(\.name); reserved = h.reserved.sorted().map(\.name)
            slots = h.slots; max_jobs = h.maxJobs; speed = h.speed; labels = h.labels.sorted(); drain = h.drain
            work_dir = h.workDir; pinned_host_key = h.hostKey != nil
        }
    }
    let schema = "wheelfarm.hosts/1"
    let inventory: String
    let hosts: [Entry]
}
