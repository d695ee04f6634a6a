internal import CLibSSH2
import Foundation
import Synchronization

/// Process-wide libssh2 initialisation (`libssh2_init` is not thread-safe: run it once, first).
enum LibSSH2 {
    private static let initialised: Bool = { libssh2_init(0) == 0 }()

    /// Initialises libssh2 if it was not yet; `false` if that failed.
    static func ensureInitialised() -> Bool { initialised }

    /// The library's version string.
    static var version: String { String(cString: libssh2_version(0)) }
}

/// libssh2's key type for a host key type number, as written in known_hosts.
enum HostKeyType {
    static func name(_ type: Int32) -> String {
        switch type {
        case LIBSSH2_HOSTKEY_TYPE_RSA: "ssh-rsa"
        case LIBSSH2_HOSTKEY_TYPE_DSS: "ssh-dss"
        case LIBSSH2_HOSTKEY_TYPE_ECDSA_256: "ecdsa-sha2-nistp256"
        case LIBSSH2_HOSTKEY_TYPE_ECDSA_384: "ecdsa-sha2-nistp384"
        case LIBSSH2_HOSTKEY_TYPE_ECDSA_521: "ecdsa-sha2-nistp521"
        case LIBSSH2_HOSTKEY_TYPE_ED25519: "ssh-ed25519"
        default: "unknown"
        }
    }

    /// The `LIBSSH2_KNOWNHOST_KEY_*` bits for a host key type number.
    static func knownHostMask(_ type: Int32) -> Int32 {
        switch type {
        case LIBSSH2_HOSTKEY_TYPE_RSA: wf_knownhost_key_sshrsa
        case LIBSSH2_HOSTKEY_TYPE_ECDSA_256: wf_knownhost_key_ecdsa_256
        case LIBSSH2_HOSTKEY_TYPE_ECDSA_384: wf_knownhost_key_ecdsa_384
        case LIBSSH2_HOSTKEY_TYPE_ECDSA_521: wf_knownhost_key_ecdsa_521
        case LIBSSH2_HOSTKEY_TYPE_ED25519: wf_knownhost_key_ed25519
        default: wf_knownhost_key_unknown
        }
    }
}

/// Facts about the libssh2 library in use.
public enum LibSSH2Info {
    /// The runtime libssh2 version (e.g. `1.10.0`).
    public static var version: String { LibSSH2.version }
}
