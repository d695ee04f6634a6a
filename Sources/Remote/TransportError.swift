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
    }

    /// The category of the failure.
    public let kind: Kind
    /// The inventory name of the host involved.
    public let host: String
    /// A lowercase message with values in quotes.
    public let message: String

    /// Creates an error of `kind` for `host`.
    public init(_ kind: Kind, host: String, _ message: String) {
        self.kind = kind; self.host = host; self.message = message
    }

    /// True when retrying on another connection could succeed (the host or link is at fault).
    public var isHostFailure: Bool { kind == .unreachable || kind == .connectionLost }

    public var description: String { "host '\(host)': \(message)" }
}
