import Crypto
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// OpenSSH known_hosts files, read as `ssh` reads them (`sshd(8)` "SSH_KNOWN_HOSTS FILE FORMAT").
///
/// Written by hand because libssh2's known-host API drops what matters: it cannot parse marker
/// lines (`@revoked`, `@cert-authority`), so they would be skipped and a revoked key accepted.
/// Here every line is kept with its file and line: plain and hashed (`|1|salt|hmac`) host
/// patterns, `*`/`?` wildcards, `!` negation, `[host]:port`, several keys per host, markers.
struct KnownHosts: Sendable {
    /// A line's marker.
    enum Marker: String, Sendable, Hashable {
        case none = ""
        case certAuthority = "@cert-authority"
        case revoked = "@revoked"
    }

    /// One key line.
    struct Entry: Sendable, Hashable {
        var marker: Marker
        /// The host field as written (patterns, or a hashed name).
        var hosts: String
        var keyType: String
        var key: Data
        var file: String
        var line: Int

        /// `file:line`, for messages.
        var location: String { "'\(file)' line \(line)" }
    }

    /// A known_hosts file that exists but cannot be read or parsed usefully.
    struct ReadError: Error, Sendable { var file: String; var message: String }

    private(set) var entries: [Entry] = []

    /// Reads `files` in order (user files first, then global ones); missing files are skipped.
    static func load(_ files: [String]) throws(ReadError) -> KnownHosts {
        var store = KnownHosts()
        for file in files {
            guard FileManager.default.fileExists(atPath: file) else { continue }
            guard let data = FileManager.default.contents(atPath: file) else {
                throw ReadError(file: file, message: "cannot read known_hosts '\(file)' (\(errnoText())); check its permissions")
            }
            var number = 0
            for raw in String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false) {
                number += 1
                if let entry = parse(raw, file: file, line: number) { store.entries.append(entry) }
            }
        }
        return store
    }

    /// One line; `nil` for blank lines, comments and lines that hold no usable key (as OpenSSH
    /// skips them).
    static func parse(_ raw: Substring, file: String, line: Int) -> Entry? {
        var fields = raw.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard let first = fields.first, !first.hasPrefix("#") else { return nil }
        var marker = Marker.none
        if first.hasPrefix("@") {
            guard let m = Marker(rawValue: first.lowercased()), m != .none else { return nil }
            marker = m
            fields.removeFirst()
        }
        guard fields.count >= 3, let key = Data(base64Encoded: fields[2]) else { return nil }
        return Entry(marker: marker, hosts: fields[0], keyType: fields[1], key: key, file: file, line: line)
    }

    /// The entries whose host field matches `name` (`host` or `[host]:port`, lowercase).
    func entries(for name: String) -> [Entry] {
        let lowered = name.lowercased()
        return entries.filter { Self.matches(lowered, hostField: $0.hosts) }
    }

    /// `match_maybe_hashed`: a hashed name is compared by HMAC-SHA1; a pattern list by
    /// OpenSSH's wildcard rules, where a matching negated pattern excludes the line.
    static func matches(_ name: String, hostField: String) -> Bool {
        if hostField.hasPrefix("|1|") {
            let parts = hostField.split(separator: "|", omittingEmptySubsequences: true)
            guard parts.count == 3, parts[0] == "1", let salt = Data(base64Encoded: String(parts[1])),
                  let hash = Data(base64Encoded: String(parts[2])) else { return false }
            let mac = HMAC<Insecure.SHA1>.authenticationCode(for: Data(name.utf8), using: SymmetricKey(data: salt))
            return Data(mac) == hash
        }
        return SSHPattern.matchList(name, hostField, lowercasing: true) == 1
    }

    /// A hashed host field for `name`, as `ssh-keygen -H` and `HashKnownHosts yes` write it.
    static func hashedName(_ name: String) -> String {
        let salt = Data((0..<20).map { _ in UInt8.random(in: 0...255) })
        let mac = HMAC<Insecure.SHA1>.authenticationCode(for: Data(name.utf8), using: SymmetricKey(data: salt))
        return "|1|\(salt.base64EncodedString())|\(Data(mac).base64EncodedString())"
    }

    /// What the files say about a host offering `key` of type `type`.
    enum Verdict: Sendable {
        /// A plain entry holds this key.
        case known(Entry)
        /// A `@revoked` line holds this key.
        case revoked(Entry)
        /// Entries of the same type hold other keys.
        case changed([Entry])
        /// Only keys of other types are known for the host: the host changed, or it is an impostor.
        case otherTypes([Entry])
        /// The host is trusted through a certificate authority only; the key is not a certificate.
        case certificateAuthorityOnly([Entry])
        /// Nothing is known about the host.
        case unknown
    }

    /// Decides on an offered key, as `check_host_key` does, except that a host known with keys of
    /// other types is never taken as new.
    func verdict(for name: String, type: String, key: Data) -> Verdict {
        let matching = entries(for: name)
        if let revoked = matching.first(where: { $0.marker == .revoked && $0.key == key }) { return .revoked(revoked) }
        let plain = matching.filter { $0.marker == .none }
        if let known = plain.first(where: { $0.keyType == type && $0.key == key }) { return .known(known) }
        let sameType = plain.filter { $0.keyType == type }
        if !sameType.isEmpty { return .changed(sameType) }
        if !plain.isEmpty { return .otherTypes(plain) }
        let authorities = matching.filter { $0.marker == .certAuthority }
        if !authorities.isEmpty { return .certificateAuthorityOnly(authorities) }
        return .unknown
    }

    /// The key types listed (not revoked) for the host, in the files' order.
    func knownTypes(for name: String) -> [String] {
        var out: [String] = []
        for e in entries(for: name) where e.marker == .none && !out.contains(e.keyType) { out.append(e.keyType) }
        return out
    }
}
