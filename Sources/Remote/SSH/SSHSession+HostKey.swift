import struct Inventory.Host
internal import CLibSSH2
import Foundation
import Inventory
#if canImport(Glibc)
import Glibc
#endif

extension SSHSession {
    /// Checks the server's host key against the pinned key and known_hosts (see ``SSHSettings``).
    ///
    /// - A pinned key (`host_key` in the inventory) must match; a match is enough to trust the host.
    /// - A known_hosts entry for the host with the same key type must match.
    /// - An unknown key is refused under `strict` and appended to known_hosts under `accept-new`.
    func verifyHostKey() throws {
        guard let session = handle else { return }
        var length = 0
        var type: Int32 = 0
        guard let raw = libssh2_session_hostkey(session, &length, &type) else {
            throw TransportError(.unreachable, host: host.name, "'\(endpoint)' sent no host key")
        }
        let key = Data(bytes: raw, count: length)
        let typeName = HostKeyType.name(type)
        let fingerprint = SSHKeyBlob.fingerprint(key)
        let knownHostsPath = expandTilde(settings.knownHosts, environment: options.environment)
        let pattern = host.port == 22 ? host.address : "[\(host.address)]:\(host.port)"

        var pinnedMatch = false
        if let pinnedText = host.hostKey {
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

        switch try checkKnownHosts(path: knownHostsPath, key: key, type: type) {
        case LIBSSH2_KNOWNHOST_CHECK_MATCH:
            hostKeyStatus = .known
        case LIBSSH2_KNOWNHOST_CHECK_MISMATCH:
            throw TransportError(.hostKey, host: host.name,
                                 "host key mismatch: '\(endpoint)' now offers \(typeName) key '\(fingerprint)', which differs from the key known_hosts '\(knownHostsPath)' holds for it; refusing to connect. This can mean someone is intercepting the connection. If the host was reinstalled, verify the new key on the host, then remove the old entry with: ssh-keygen -R '\(pattern)' -f '\(knownHostsPath)'")
        default:
            if pinnedMatch {
                hostKeyStatus = .pinned
            } else if settings.hostKeyChecking == .acceptNew {
                try appendKnownHost(path: knownHostsPath, line: "\(pattern) \(typeName) \(key.base64EncodedString())")
                hostKeyStatus = .recorded
                logger.notice("recorded new host key", metadata: [
                    "host": "\(host.name)", "key": "\(typeName) \(fingerprint)", "known_hosts": "\(knownHostsPath)"])
            } else {
                let short = typeName.replacingOccurrences(of: "ssh-", with: "").replacingOccurrences(of: "-sha2-", with: "")
                throw TransportError(.hostKey, host: host.name,
                                     "unknown host key: '\(endpoint)' offers \(typeName) key '\(fingerprint)', which is neither in known_hosts '\(knownHostsPath)' nor pinned in the inventory; refusing to connect (host_key_checking: strict). Check the fingerprint on the host (ssh-keygen -lf /etc/ssh/ssh_host_\(short.hasPrefix("ecdsa") ? "ecdsa" : short)_key.pub), then add it with: ssh-keyscan -p \(host.port) -t \(typeName) \(host.address) >> '\(knownHostsPath)'; or pin it in the inventory with host_key: \"\(typeName) \(key.base64EncodedString())\"; or set host_key_checking: accept-new")
            }
        }
    }

    /// `libssh2_knownhost_checkp` against the file, read line by line so that lines libssh2 cannot
    /// parse (certificate authorities, security-key types) are skipped instead of failing the file.
    private func checkKnownHosts(path: String, key: Data, type: Int32) throws -> Int32 {
        guard let session = handle, let store = libssh2_knownhost_init(session) else {
            throw TransportError(.localIO, host: host.name, "libssh2 could not create a known_hosts store")
        }
        defer { libssh2_knownhost_free(store) }
        if FileManager.default.fileExists(atPath: path) {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw TransportError(.hostKey, host: host.name, "cannot read known_hosts '\(path)'; check its permissions")
            }
            for line in text.split(separator: "\n") {
                let trimmed = line.trimmingCharacters(in: .whitespaces)
                if trimmed.isEmpty || trimmed.hasPrefix("#") || trimmed.hasPrefix("@") { continue }
                let bytes = Array(trimmed.utf8)
                let rc = bytes.withUnsafeBufferPointer { buffer in
                    buffer.withMemoryRebound(to: CChar.self) {
                        libssh2_knownhost_readline(store, $0.baseAddress, $0.count, LIBSSH2_KNOWNHOST_FILE_OPENSSH)
                    }
                }
                if rc != 0 { logger.debug("skipped a known_hosts line libssh2 cannot parse", metadata: ["file": "\(path)"]) }
            }
        }
        var entry: UnsafeMutablePointer<libssh2_knownhost>?
        let typeMask = wf_knownhost_type_plain | wf_knownhost_keyenc_raw | HostKeyType.knownHostMask(type)
        return key.withUnsafeBytes { bytes in
            libssh2_knownhost_checkp(store, host.address, Int32(host.port),
                                     bytes.baseAddress?.assumingMemoryBound(to: CChar.self), bytes.count, typeMask, &entry)
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
