import Inventory

/// An error from a transport, classified so that callers (the scheduler) can react by kind.
///
/// The message is lowercase, names the host and the values involved in quotes, and says what to do.
public struct TransportError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, as a category the scheduler reacts to.
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        /// The host could not be reached: no route, connection refused, connect timeout, no SSH server.
        case unreachable
        /// The server refused every key that was tried, or a key could not be used.
        case authentication
        /// The host key is unknown, changed, or differs from the pinned key.
        case hostKey
        /// A remote command or file operation failed (for example a missing remote file).
        case commandFailed
        /// An established connection broke in the middle of an operation.
        case connectionLost
        /// The operation ran past its wall-clock timeout (its remote processes were stopped).
        case timeout
        /// The operation was cancelled (its remote processes were stopped).
        case cancelled
        /// A transferred file does not have the expected size or SHA-256 digest.
        case transferCorrupt
        /// A local file could not be read or written.
        case localIO
        /// A command printed more than the coordinator reads from a host (it was stopped).
        case outputTooLarge
        /// The SSH configuration for the host is unusable (ssh_config, identity file permissions).
        case configuration
    }

    /// The category of the failure.
    public let kind: Kind
    /// The inventory name of the host involved.
    public let host: String
    /// A lowercase message with values in quotes.
    public let message: String
    /// True when trying again cannot help until someone changes something (a host key that
    /// differs from known_hosts, a revoked key, keys the server refuses, a bad configuration):
    /// the host is taken out of the run at once instead of being retried as an outage.
    public let isPermanent: Bool

    /// Creates an error of `kind` for `host`; `permanent` defaults to true for host-key,
    /// authentication and configuration failures.
    public init(_ kind: Kind, host: String, _ message: String, permanent: Bool? = nil) {
        self.kind = kind; self.host = host; self.message = message
        self.isPermanent = permanent ?? [.hostKey, .authentication, .configuration].contains(kind)
    }

    /// The same error with `prefix` before the message (e.g. which bastion failed).
    public func prefixed(_ prefix: String) -> TransportError {
        TransportError(kind, host: host, prefix + message, permanent: isPermanent)
    }

    /// True when retrying on another connection could succeed (the host or link is at fault).
    public var isHostFailure: Bool { kind == .unreachable || kind == .connectionLost }

    public var description: String { "host '\(host)': \(message)" }
}
