import Foundation
import Synchronization

/// The credentials this process holds, and the one scrubber every text passes through before it is
/// truncated, logged, stored or shown.
///
/// A credential is registered once, when it is read (`Publishing.Secret` does it); from then on
/// ``scrub(_:)`` removes it from any text in every form a server, an HTTP library or an encoder
/// could have turned it into:
/// - the raw value, and the value escaped as Swift (`\n`, `\u{1}`) and JSON (`\n`, `\u000a`,
///   `\/`) escape it, and percent-encoded;
/// - base64 (standard and URL alphabets, with and without padding) of the value and of every
///   registered `username:value` pair (HTTP Basic);
/// - any run of at least ``minimumPrefix`` leading characters of each of those forms, so a
///   server that echoes part of a token (or a text cut short before this scrub saw it) leaks nothing.
///
/// It also replaces the userinfo of every URL (`https://user:token@host` → `https://<redacted>@host`).
/// Written by hand: no kept package redacts secrets; the forms follow what the encoders used here
/// (Foundation's JSONEncoder, Swift's `debugDescription`, AsyncHTTPClient's errors) produce.
public enum Redaction {
    /// What a redacted span is replaced with.
    public static let placeholder = "<redacted>"
    /// The shortest leading part of a credential's form that is redacted on its own.
    public static let minimumPrefix = 8
    /// Credentials shorter than this are not matched (they would redact ordinary words).
    public static let minimumLength = 4

    private struct Registry {
        /// Registered credential values, each with the usernames it was paired with.
        var secrets: [String: Set<String>] = [:]
        /// Every form of every credential, longest first.
        var forms: [String] = []
    }
    private static let registry = Mutex(Registry())

    /// Registers a credential so ``scrub(_:)`` removes it; `username` adds its HTTP Basic form.
    public static func register(_ secret: String, username: String? = nil) {
        guard secret.count >= minimumLength else { return }
        registry.withLock { r in
            var names = r.secrets[secret] ?? []
            if r.secrets[secret] != nil, username.map({ names.contains($0) }) ?? true { return }
            if let username { names.insert(username) }
            r.secrets[secret] = names
            var all = Set<String>()
            for (value, users) in r.secrets { all.formUnion(forms(of: value, usernames: users)) }
            r.forms = all.filter { $0.count >= minimumLength }.sorted { $0.count > $1.count }
        }
    }

    /// True when `text` holds a registered credential in any form (child environments use it).
    public static func containsSecret(_ text: String) -> Bool {
        let forms = registry.withLock { $0.forms }
        return forms.contains { text.contains($0) }
    }

    /// `text` with every registered credential (in every form, and every leading part of at least
    /// ``minimumPrefix`` characters) and every URL's userinfo replaced by ``placeholder``.
    public static func scrub(_ text: String) -> String {
        let out = redactingUserinfo(text)
        let forms = registry.withLock { $0.forms }
        return forms.isEmpty ? out : remove(forms, from: out)
    }

    /// The command line with the userinfo of every URL (and every registered credential) removed,
    /// for journals and reports.
    public static func arguments(_ arguments: [String]) -> [String] { arguments.map(scrub) }

    /// `text` with `scheme://userinfo@` replaced by `scheme://<redacted>@`.
    public static func redactingUserinfo(_ text: String) -> String {
        guard text.contains("@"), text.contains("://") else { return text }
        let ns = text as NSString
        return userinfo.stringByReplacingMatches(in: text, range: NSRange(location: 0, length: ns.length),
                                                 withTemplate: "$1\(placeholder)@")
    }

    // A URL scheme, then userinfo (no '/', '?', '#', '@' or whitespace), then '@'.
    nonisolated(unsafe) private static let userinfo = try! NSRegularExpression(
        pattern: #"([A-Za-z][A-Za-z0-9+.\-]*://)[^/?#@\s'"<>]+@"#)

    /// Removes every `form`, and every run of at least ``minimumPrefix`` of a form's leading
    /// characters. The spans of all forms are found first and merged, so a form that shares its
    /// first characters with another (the raw value and its escaped form) cannot cut a match short
    /// and leave the rest of a credential behind.
    static func remove(_ forms: [String], from text: String) -> String {
        let chars = Array(text)
        var covered = [Bool](repeating: false, count: chars.count)
        var any = false
        for form in forms {
            let f = Array(form)
            let headLength = min(minimumPrefix, f.count)
            guard headLength > 0, chars.count >= headLength, text.contains(String(f.prefix(headLength))) else { continue }
            var i = 0
            while i <= chars.count - headLength {
                var n = 0
                while n < f.count, i + n < chars.count, chars[i + n] == f[n] { n += 1 }
                if n >= headLength {
                    for k in i..<(i + n) { covered[k] = true }
                    any = true
                    i += n
                } else {
                    i += 1
                }
            }
        }
        guard any else { return text }
        var out = ""
        var inSpan = false
        for (k, c) in chars.enumerated() {
            if covered[k] {
                if !inSpan { out += placeholder; inSpan = true }
            } else {
                inSpan = false
                out.append(c)
            }
        }
        return out
    }

    /// Every form of `value` a text could hold.
    static func forms(of value: String, usernames: Set<String>) -> Set<String> {
        var out: Set<String> = [value]
        // Swift's escaping (`debugDescription`, as in "\(error)" of a struct holding the string).
        out.insert(String(String(reflecting: value).dropFirst().dropLast()))
        // JSON, as Foundation writes it (slashes escaped) and as others do (not escaped).
        if let data = try? JSONEncoder().encode(value), let json = String(data: data, encoding: .utf8) {
            let inner = String(json.dropFirst().dropLast())
            out.insert(inner)
            out.insert(inner.replacingOccurrences(of: "\\/", with: "/"))
        }
        out.insert(jsonUnicodeEscaped(value))
        if let percent = value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) { out.insert(percent) }
        var encoded = [value]
        for user in usernames { encoded.append("\(user):\(value)") }
        for text in encoded {
            let b64 = Data(text.utf8).base64EncodedString()
            let url = b64.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            for form in [b64, url] {
                out.insert(form)
                var trimmed = form
                while trimmed.hasSuffix("=") { trimmed.removeLast() }
                out.insert(trimmed)
            }
        }
        return out
    }

    /// JSON escaping with every control character as `\u00XX` (some encoders write `\u000a` for `\n`).
    private static func jsonUnicodeEscaped(_ value: String) -> String {
        var out = ""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
