import Foundation

/// The scheme, host and port of a URL: credentials are sent only to the exact origin they were
/// configured for (not to the same host over plain HTTP, nor to another port).
struct Origin: Sendable, Hashable, CustomStringConvertible {
    let scheme: String
    let host: String
    let port: Int

    /// The origin of `url`, with the scheme's default port when none is written; nil for a URL
    /// without an http(s) scheme or a host.
    init?(_ url: URL) {
        guard let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = url.host?.lowercased(), !host.isEmpty else { return nil }
        self.scheme = scheme
        self.host = host
        self.port = url.port ?? (scheme == "https" ? 443 : 80)
    }

    init?(_ text: String) {
        guard let url = URL(string: text) else { return nil }
        self.init(url)
    }

    /// `https://host:443`.
    var description: String { "\(scheme)://\(host):\(port)" }
}
