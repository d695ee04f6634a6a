import FarmCore

/// A validated set of build hosts, as loaded from one inventory file.
public struct Inventory: Sendable, Hashable {
    /// The hosts, in file order.
    public var hosts: [Host]
    /// The file the inventory came from (for messages), or `nil` when built in code.
    public var source: String?

    public init(hosts: [Host], source: String? = nil) {
        self.hosts = hosts; self.source = source
    }

    /// The host with that name.
    public subscript(name: String) -> Host? { hosts.first { $0.name == name } }
}
