import FarmCore
import Foundation

/// A credential (API token or password) that never prints itself.
///
/// `description`, `debugDescription`, string interpolation, `dump` and `Mirror` all show
/// `<redacted>`. The value is reachable only through ``withRevealed(_:)``, which the HTTP layer uses
/// to build an `Authorization` header; nothing else in wheelfarm calls it. Every secret is
/// registered with ``Redaction`` when it is created, so any text the process writes can be scrubbed
/// of it in every form (raw, escaped, base64, leading parts).
public struct Secret: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible,
    CustomReflectable
{
    private let value: String

    /// Wraps a credential read from the environment or a file (and registers it for scrubbing).
    public init(_ value: String) {
        self.value = value
        Redaction.register(value)
    }

    /// Wraps a credential after checking it can be sent in an HTTP header: a control character
    /// (a trailing newline from `$(cat file)` of a CRLF file, a tab) is refused with a message
    /// naming `source` and the character's position, never the value.
    public static func validated(_ value: String, source: String) throws(PublishingError) -> Secret {
        let scalars = Array(value.unicodeScalars)
        if let index = scalars.firstIndex(where: { $0.properties.generalCategory == .control }) {
            let scalar = scalars[index]
            let name = switch scalar {
            case "\n": "a line feed (\\n)"
            case "\r": "a carriage return (\\r)"
            case "\t": "a tab"
            default: "the control character U+\(String(format: "%04X", scalar.value))"
            }
            throw .invalidCredential(source: source,
                                     problem: "it contains \(name) at character \(index + 1) of \(scalars.count)")
        }
        return Secret(value)
    }

    /// Always `<redacted>`.
    public var description: String { "<redacted>" }
    /// Always `<redacted>`.
    public var debugDescription: String { "<redacted>" }
    /// A mirror with no children, so `dump` shows nothing of the value.
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }

    /// True when the credential is the empty string.
    public var isEmpty: Bool { value.isEmpty }

    /// Calls `body` with the plain value; use only to build an `Authorization` header.
    public func withRevealed<T>(_ body: (String) throws -> T) rethrows -> T { try body(value) }

    /// Removes every registered credential (this one included) from `text` in every form
    /// ``Redaction/scrub(_:)`` knows: raw, escaped, base64 (Basic auth), leading parts.
    ///
    /// Server responses are quoted in errors; a server that echoes a credential must not leak it.
    public func scrub(_ text: String) -> String { Redaction.scrub(text) }
}

/// How wheelfarm authenticates to an upload-API index: a username and a password or API token.
///
/// PyPI tokens use the username `__token__`.
public struct IndexCredentials: Sendable, Hashable, CustomStringConvertible {
    /// The username (`__token__` for API tokens).
    public let username: String
    /// The password or API token.
    public let password: Secret
    /// Where the credentials came from (an environment variable or file name, never the value).
    public let source: String

    /// Creates credentials; `source` names where they came from, for messages.
    public init(username: String, password: Secret, source: String) {
        self.username = username; self.password = password; self.source = source
        password.withRevealed { Redaction.register($0, username: username) }
    }

    /// API-token credentials (username `__token__`).
    public static func token(_ token: Secret, source: String) -> IndexCredentials {
        IndexCredentials(username: "__token__", password: token, source: source)
    }

    /// `username '…' from SOURCE` (the password is never shown).
    public var description: String { "username '\(username)' from \(source)" }

    /// The `Authorization: Basic …` header value.
    var basicAuthorization: String {
        password.withRevealed { "Basic " + Data("\(username):\($0)".utf8).base64EncodedString() }
    }

    /// Removes the password (and every other registered credential) from a text quoted from a server.
    func scrub(_ text: String) -> String { Redaction.scrub(text) }
}
