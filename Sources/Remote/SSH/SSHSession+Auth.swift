internal import CLibSSH2
import Foundation
import Inventory
#if canImport(Glibc)
import Glibc
#endif

extension SSHSession {
    /// Public-key authentication as OpenSSH orders it: the agent's keys (with `IdentitiesOnly`,
    /// only those belonging to an identity file), then the identity files (the inventory's and
    /// ssh_config's, else `~/.ssh/id_ed25519` and `~/.ssh/id_ecdsa`).
    ///
    /// A private key that others can read is skipped, as OpenSSH skips it. The passphrase of an
    /// identity file comes only from the environment variable the inventory names
    /// (`passphrase_env`); it is never logged or put in an error. The error lists what was tried.
    func authenticate(_ control: OperationControl) throws {
        guard let session = handle else { return }
        let user = target.user
        self.user = user
        var tried: [String] = []
        var rsaRefused = false
        var triedBlobs: Set<Data> = []
        let identityBlobs = Dictionary(target.identities.compactMap { identity -> (Data, SSHIdentity)? in
            SSHKeyBlob.publicBlob(forPrivateKey: identity.path).map { ($0, identity) }
        }, uniquingKeysWith: { first, _ in first })

        if let socketPath = target.agentSocket {
            if let agent = libssh2_agent_init(session) {
                defer { libssh2_agent_disconnect(agent); libssh2_agent_free(agent) }
                libssh2_agent_set_identity_path(agent, socketPath)
                if libssh2_agent_connect(agent) != 0 {
                    tried.append("ssh-agent at '\(socketPath)': cannot connect")
                } else if libssh2_agent_list_identities(agent) != 0 {
                    tried.append("ssh-agent at '\(socketPath)': cannot list its keys")
                } else {
                    var previous: UnsafeMutablePointer<libssh2_agent_publickey>?
                    var count = 0
                    while true {
                        var identity: UnsafeMutablePointer<libssh2_agent_publickey>?
                        guard libssh2_agent_get_identity(agent, &identity, previous) == 0, let identity else { break }
                        previous = identity
                        count += 1
                        let blob = Data(bytes: identity.pointee.blob, count: Int(identity.pointee.blob_len))
                        let type = SSHKeyBlob.type(of: blob) ?? "unknown type"
                        let comment = identity.pointee.comment.map { String(cString: $0) } ?? ""
                        if target.identitiesOnly && identityBlobs[blob] == nil {
                            tried.append("ssh-agent key '\(comment)' (\(type)): skipped, IdentitiesOnly is set and no identity file holds it")
                            continue
                        }
                        triedBlobs.insert(blob)
                        let rc = try retry(control) { libssh2_agent_userauth(agent, user, identity) }
                        if rc == 0 {
                            authenticatedBy = "ssh-agent key '\(comment)' (\(type))"
                            return
                        }
                        if SSHSession.isConnectionError(rc) { throw authConnectionLost(tried: tried, user: user) }
                        tried.append("ssh-agent key '\(comment)' (\(type)): refused")
                        if type == "ssh-rsa" { rsaRefused = true }
                    }
                    if count == 0 { tried.append("ssh-agent at '\(socketPath)': holds no keys") }
                }
            }
        } else {
            tried.append("ssh-agent: " + (target.origins["identityagent"].map { "none (\($0))" } ?? "SSH_AUTH_SOCK is not set"))
        }

        for identity in target.identities {
            let path = identity.path
            let label = identity.isDefault ? "default identity '\(identity.written)'" : "identity file '\(path)'"
            var st = stat()
            guard stat(path, &st) == 0 else {
                if !identity.isDefault { tried.append("\(label) (\(identity.origin)): does not exist") }
                continue
            }
            if st.st_uid == geteuid() && st.st_mode & 0o077 != 0 {
                tried.append("\(label): permissions \(String(format: "%04o", st.st_mode & 0o777)) are too open, skipped as OpenSSH skips it (UNPROTECTED PRIVATE KEY FILE; run 'chmod 600 \(path)')")
                continue
            }
            if let blob = identityBlobs.first(where: { $0.value == identity })?.key, triedBlobs.contains(blob) {
                // OpenSSH does not offer a key twice either.
                tried.append("\(label): refused by the server (its key was offered through ssh-agent)")
                continue
            }
            var passphrase: String?
            var passphraseNote = ""
            if let variable = target.passphraseEnv {
                passphrase = options.environment[variable]
                if passphrase == nil { passphraseNote = "; its passphrase variable '\(variable)' is not set" }
            }
            let isRSA = SSHKeyBlob.isRSAKeyFile(path)
            guard access(path, R_OK) == 0 else {
                tried.append("\(label): cannot be read (\(errnoText()))")
                continue
            }
            let rc = try retry(control) {
                libssh2_userauth_publickey_fromfile_ex(session, user, UInt32(user.utf8.count), nil, path, passphrase)
            }
            if rc == 0 {
                authenticatedBy = "identity file '\(path)'"
                return
            }
            switch rc {
            case LIBSSH2_ERROR_FILE:
                tried.append("\(label): cannot be loaded (wrong or missing passphrase, or a format libssh2 cannot read)\(passphraseNote)")
            case LIBSSH2_ERROR_AUTHENTICATION_FAILED, LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED:
                tried.append("\(label)\(isRSA ? " (ssh-rsa)" : ""): refused by the server")
                if isRSA { rsaRefused = true }
            default:
                if SSHSession.isConnectionError(rc) { throw authConnectionLost(tried: tried, user: user) }
                tried.append("\(label): \(lastErrorText())")
            }
        }
        if target.identities.allSatisfy(\.isDefault) {
            tried.append("identity files: none named in the inventory or ssh_config, and no usable \(target.identities.map(\.written).joined(separator: " or "))")
        }

        var message = "authentication as '\(user)' on '\(endpoint)' was refused; tried: " + tried.joined(separator: "; ")
        if rsaRefused {
            message += ". An RSA key was refused: libssh2 1.10 can only sign with 'ssh-rsa' (SHA-1), which OpenSSH 8.8 and newer reject, not with rsa-sha2-256/512; create an ed25519 key (ssh-keygen -t ed25519) and add it to the host's authorized_keys"
        } else {
            message += ". Add one of these public keys to '~/.ssh/authorized_keys' of '\(user)' on the host, or load the right key into ssh-agent"
        }
        throw TransportError(.authentication, host: host.name, message)
    }

    private func authConnectionLost(tried: [String], user: String) -> TransportError {
        markBroken()
        return TransportError(.authentication, host: host.name,
                              "'\(endpoint)' closed the connection during authentication as '\(user)' (\(lastErrorText())) after: \(tried.joined(separator: "; ")); the server may limit attempts (MaxAuthTries): remove unneeded keys from ssh-agent")
    }
}
