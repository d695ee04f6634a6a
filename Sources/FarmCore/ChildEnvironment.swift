import Foundation

/// The environment wheelfarm gives the programs it starts on this machine (`connection: local`
/// builds, `tar`): its own, without any credential.
///
/// Removed are the variables credentials are read from (upload tokens, twine's variables, GitHub
/// tokens, Trusted Publishing's request token and URL, the ssh-agent socket, SSH key passphrase
/// variables), every variable whose name says it holds a credential (`…_TOKEN`, `…_PASSWORD`,
/// `…_PASSPHRASE`, `…_SECRET`, `…_API_KEY`), the extra names a caller passes (an inventory's
/// `passphrase_env`), and every variable whose value holds a credential this process has read
/// (``Redaction``), whatever its name.
public enum ChildEnvironment {
    /// Names removed exactly.
    public static let credentialNames: Set<String> = [
        "PYPI_API_TOKEN", "PYPI_TOKEN", "GH_TOKEN", "GITHUB_TOKEN", "GH_ENTERPRISE_TOKEN", "GITHUB_ENTERPRISE_TOKEN",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN", "ACTIONS_ID_TOKEN_REQUEST_URL", "SSH_AUTH_SOCK",
    ]
    /// Name prefixes removed: per-package tokens and everything twine reads.
    public static let credentialPrefixes = ["PYPI_TOKEN_", "TWINE_"]
    /// Name suffixes removed: names that say they hold a credential.
    public static let credentialSuffixes = ["_TOKEN", "_PASSWORD", "_PASSWD", "_PASSPHRASE", "_SECRET", "_API_KEY"]

    /// True when a variable named `name` (with value `value`, when known) must not reach a child.
    public static func isCredential(_ name: String, value: String? = nil, extraNames: Set<String> = []) -> Bool {
        let upper = name.uppercased()
        if credentialNames.contains(upper) || extraNames.contains(name) { return true }
        if credentialPrefixes.contains(where: upper.hasPrefix) || credentialSuffixes.contains(where: upper.hasSuffix) { return true }
        if let value, Redaction.containsSecret(value) { return true }
        return false
    }

    /// `environment` without any credential variable (see the type's documentation).
    public static func sanitized(_ environment: [String: String] = ProcessInfo.processInfo.environment,
                                 removing extraNames: Set<String> = []) -> [String: String] {
        environment.filter { !isCredential($0.key, value: $0.value, extraNames: extraNames) }
    }
}
