internal import CLibSSH2
import Foundation
import Inventory

extension SSHSession {
    /// Public-key authentication: every ssh-agent key, then the inventory's identity file.
    ///
    /// The passphrase of the identity file comes only from the environment variable the inventory
    /// names (`passphrase_env`); it is never logged or put in an error. The error lists what was tried.
    func authenticate(_ control: OperationControl) throws {
        guard let session = handle else { return }
        let user = host.user ?? options.defaultUser
        self.user = user
        var tried: [String] = []
        var rsaRefused = false

        if let socketPath = options.agentSocket {
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
            tried.append("ssh-agent: SSH_AUTH_SOCK is not set")
        }

        if let file = host.identityFile {
            let path = expandTilde(file, environment: options.environment)
            var passphrase: String?
            var passphraseNote = ""
            if let variable = host.passphraseEnv {
                passphrase = options.environment[variable]
                if passphrase == nil { passphraseNote = "; its passphrase variable '\(variable)' is not set" }
            }
            let isRSA = SSHKeyBlob.isRSAKeyFile(path)
            if !FileManager.default.isReadableFile(atPath: path) {
                tried.append("identity file '\(path)': cannot be read")
            } else {
                let rc = try retry(control) {
                    libssh2_userauth_publickey_fromfile_ex(session, user, UInt32(user.utf8.count), nil, path, passphrase)
                }
                if rc == 0 {
                    authenticatedBy = "identity file '\(path)'"
                    return
                }
                switch rc {
                case LIBSSH2_ERROR_FILE:
                    tried.append("identity file '\(path)': cannot be loaded (wrong or missing passphrase, or a format libssh2 cannot read)\(passphraseNote)")
                case LIBSSH2_ERROR_AUTHENTICATION_FAILED, LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED:
                    tried.append("identity file '\(path)'\(isRSA ? " (ssh-rsa)" : ""): refused by the server")
                    if isRSA { rsaRefused = true }
                default:
                    if SSHSession.isConnectionError(rc) { throw authConnectionLost(tried: tried, user: user) }
                    tried.append("identity file '\(path)': \(lastErrorText())")
                }
            }
        } else {
            tried.append("identity file: none set in the inventory")
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
