import Foundation

/// A credential (API token or password) that never prints itself.
///
/// `description`, `debugDescription`, string interpolation, `dump` and `Mirror` all show
/// `<redacted>`. The value is reachable only through ``withRevealed(_:)``, which the HTTP layer uses
/// to build an `Authorization` header; nothing else in wheelfarm calls it.
public struct Secret: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible,
    CustomReflectable
{
    private let value: String

    /// Wraps a credential read from the environment or a file.
    public init(_ value: String) { self.value = value }

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

    /// Removes every occurrence of this secret (and of its base64 forms used in Basic auth) from `text`.
    ///
    /// Server responses are quoted in errors; a server that echoes a credential must not leak it.
    public func scrub(_ text: String) -> String {
        guard value.count >= 4 else { return text }
        var out = text.replacingOccurrences(of: value, with: "<redacted>")
        let b64 = Data(value.utf8).base64EncodedString()
        out = out.replacingOccurrences(of: b64, with: "<redacted>")
        return out
    }
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

    /// Removes the password from a text quoted from a server.
    func scrub(_ text: String) -> String {
        let basic = basicAuthorization.dropFirst("Basic ".count)
        return password.scrub(text).replacingOccurrences(of: String(basic), with: "<redacted>")
    }
}
