internal import CLibSSH2
import Foundation
import Inventory
#if canImport(Glibc)
import Glibc
#endif

extension SSHSession {
    /// The target's known_hosts files: user files, then global ones (`/etc/ssh/ssh_known_hosts`).
    func loadKnownHosts() throws -> KnownHosts {
        do {
            return try KnownHosts.load(target.userKnownHosts + target.globalKnownHosts)
        } catch {
            throw TransportError(.hostKey, host: host.name, error.message)
        }
    }

    /// Checks the server's host key as OpenSSH does, plus the inventory's pinned key.
    ///
    /// - A key on a `@revoked` line is refused.
    /// - A pinned key (`host_key` in the inventory) must match; a match is enough to trust it.
    /// - A plain entry with this key: known. Entries with other keys of this type: changed.
    ///   Entries with keys of other types only: changed too, never new (an impostor offering a
    ///   new key type must not be recorded under accept-new).
    /// - A host trusted only through `@cert-authority`: refused with an explanation (libssh2 1.10
    ///   cannot verify host certificates).
    /// - Unknown: refused under `strict`, recorded in the first user known_hosts file under accept-new.
    func verifyHostKey(_ knownHosts: KnownHosts) throws {
        guard let session = handle else { return }
        var length = 0
        var type: Int32 = 0
        guard let raw = libssh2_session_hostkey(session, &length, &type) else {
            throw TransportError(.unreachable, host: host.name, "'\(endpoint)' sent no host key")
        }
        let key = Data(bytes: raw, count: length)
        let typeName = HostKeyType.name(type)
        let fingerprint = SSHKeyBlob.fingerprint(key)
        let name = target.knownHostsName
        let writable = target.userKnownHosts.first ?? "~/.ssh/known_hosts"
        let files = (target.userKnownHosts + target.globalKnownHosts).map { "'\($0)'" }.joined(separator: ", ")
        let verdict = knownHosts.verdict(for: name, type: typeName, key: key)

        if case let .revoked(entry) = verdict {
            throw TransportError(.hostKey, host: host.name,
                                 "revoked host key: '\(endpoint)' offers \(typeName) key '\(fingerprint)', which \(entry.location) marks @revoked; refusing to connect (OpenSSH: REVOKED HOST KEY DETECTED). The host must get a new key; verify it on the host and add it to known_hosts")
        }
        var pinnedMatch = false
        if let pinnedText = target.pinnedHostKey {
            guard let pinned = SSHKeyBlob.parse(pinnedText) else {
                throw TransportError(.hostKey, host: host.name,
                                     "the inventory's host_key '\(pinnedText.prefix(40))…' is not 'TYPE BASE64'; copy it from the host's /etc/ssh/ssh_host_ed25519_key.pub")
            }
            guard pinned.type == typeName, pinned.blob == key else {
                throw TransportError(.hostKey, host: host.name,
                                     "host key mismatch: '\(endpoint)' offers \(typeName) key '\(fingerprint)' but the inventory pins \(pinned.type) key '\(SSHKeyBlob.fingerprint(pinned.blob))'; refusing to connect. If the host was reinstalled, verify the new key on the host and update host_key; otherwise someone may be intercepting the connection")
            }
            pinnedMatch = true
        }

        switch verdict {
        case .known, .revoked:
            hostKeyStatus = .known
        case let .changed(entries):
            let file = entries.first?.file ?? writable
            throw TransportError(.hostKey, host: host.name,
                                 "host key mismatch: '\(endpoint)' now offers \(typeName) key '\(fingerprint)', which differs from the key known_hosts holds for '\(name)' (\(entries.map(\.location).joined(separator: ", "))); refusing to connect (OpenSSH: REMOTE HOST IDENTIFICATION HAS CHANGED). This can mean someone is intercepting the connection. If the host was reinstalled, verify the new key on the host, then remove the old entry with: ssh-keygen -R '\(name)' -f '\(file)'")
        case let .otherTypes(entries):
            if pinnedMatch { hostKeyStatus = .pinned; return }
            let types = Set(entries.map(\.keyType)).sorted().joined(separator: ", ")
            let file = entries.first?.file ?? writable
            throw TransportError(.hostKey, host: host.name,
                                 "host key mismatch: '\(endpoint)' offers a \(typeName) key '\(fingerprint)', but known_hosts knows '\(name)' only by \(types) (\(entries.map(\.location).joined(separator: ", "))) and the server did not offer that type; refusing to connect, also under accept-new (OpenSSH: REMOTE HOST IDENTIFICATION HAS CHANGED). If the host really changed its keys, verify the new key on the host, then remove the old entries with: ssh-keygen -R '\(name)' -f '\(file)'")
        case let .certificateAuthorityOnly(entries):
            if pinnedMatch { hostKeyStatus = .pinned; return }
            throw TransportError(.hostKey, host: host.name,
                                 "host certificates are not supported by libssh2 1.10: known_hosts trusts '\(name)' only through @cert-authority (\(entries.map(\.location).joined(separator: ", "))), but libssh2 \(LibSSH2.version) cannot verify OpenSSH host certificates (it has no host-key verifier for the *-cert-v01@openssh.com types), so it received the plain \(typeName) key '\(fingerprint)' instead; refusing to connect, also under accept-new. Add the host's plain key to known_hosts after checking it on the host (ssh-keyscan -p \(target.port) -t \(typeName) \(target.hostname) >> '\(writable)'), or pin it in the inventory with host_key")
        case .unknown:
            if pinnedMatch {
                hostKeyStatus = .pinned
            } else if target.hostKeyChecking == .acceptNew {
                guard let file = target.userKnownHosts.first else {
                    throw TransportError(.hostKey, host: host.name,
                                         "unknown host key: '\(endpoint)' offers \(typeName) key '\(fingerprint)' and accept-new would record it, but UserKnownHostsFile is 'none' (\(target.origins["userknownhostsfile"].map(String.init(describing:)) ?? "ssh_config")); name a known_hosts file")
                }
                let field = target.hashKnownHosts ? KnownHosts.hashedName(name) : name
                try appendKnownHost(path: file, line: "\(field) \(typeName) \(key.base64EncodedString())")
                hostKeyStatus = .recorded
                logger.notice("recorded new host key", metadata: [
                    "host": "\(host.name)", "key": "\(typeName) \(fingerprint)", "known_hosts": "\(file)"])
            } else {
                let short = typeName.replacingOccurrences(of: "ssh-", with: "").replacingOccurrences(of: "-sha2-", with: "")
                throw TransportError(.hostKey, host: host.name,
                                     "unknown host key: '\(endpoint)' offers \(typeName) key '\(fingerprint)', which is neither in known_hosts (\(files)) nor pinned in the inventory; refusing to connect (host_key_checking: strict, from \(target.origins["stricthostkeychecking"].map(String.init(describing:)) ?? "the default")). Check the fingerprint on the host (ssh-keygen -lf /etc/ssh/ssh_host_\(short.hasPrefix("ecdsa") ? "ecdsa" : short)_key.pub), then add it with: ssh-keyscan -p \(target.port) -t \(typeName) \(target.hostname) >> '\(writable)'; or pin it in the inventory with host_key: \"\(typeName) \(key.base64EncodedString())\"; or set host_key_checking: accept-new")
            }
        }
    }

    /// Appends one line to known_hosts, creating the file (and its directory) if needed.
    private func appendKnownHost(path: String, line: String) throws {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                     attributes: [.posixPermissions: 0o700])
        }
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, mode_t(0o600))
        guard fd >= 0 else {
            throw TransportError(.hostKey, host: host.name, "cannot record the host key in known_hosts '\(path)': \(errnoText())")
        }
        defer { close(fd) }
        var text = line + "\n"
        if let size = try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int, size > 0,
           let handle = FileHandle(forReadingAtPath: path) {
            try? handle.seek(toOffset: UInt64(size - 1))
            if handle.readData(ofLength: 1) != Data("\n".utf8) { text = "\n" + text }
            try? handle.close()
        }
        let bytes = Array(text.utf8)
        guard write(fd, bytes, bytes.count) == bytes.count else {
            throw TransportError(.hostKey, host: host.name, "cannot record the host key in known_hosts '\(path)': \(errnoText())")
        }
    }
}
