import struct Inventory.Host
import Inventory
import Logging

/// Makes the right transport for an inventory host.
public enum Transports {
    /// A ``LocalTransport`` for `connection: local`, an ``SSHTransport`` otherwise.
    public static func make(for host: Host, ssh: SSHSettings, options: SSHClientOptions = SSHClientOptions(),
                            logger: Logger) -> any Transport {
        switch host.connection {
        case .local: LocalTransport(host: host, logger: logger)
        case .ssh: SSHTransport(host: host, settings: ssh, options: options, logger: logger)
        }
    }
}
