/// A general error with a stable code, a message that says what to do, and an optional cause.
///
/// Modules define their own typed errors for what callers react to; this one is for the rest.
public struct FarmError: Error, Sendable, CustomStringConvertible {
    /// A stable dotted code, e.g. `file.unreadable`.
    public let code: String
    /// A lowercase message with values in quotes.
    public let message: String
    /// The underlying error's description, if any.
    public let cause: String?

    public init(code: String, message: String, cause: (any Error)? = nil) {
        self.code = code; self.message = message
        self.cause = cause.map { String(describing: $0) }
    }

    public var description: String { cause.map { "\(message): \($0)" } ?? message }
}
