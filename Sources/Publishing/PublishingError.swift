import FarmCore

/// Why a publication step failed.
///
/// Messages never contain a credential: ``description`` passes the whole text through
/// ``Redaction/scrub(_:)`` (every registered credential in every form, and URL userinfo).
public enum PublishingError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The wheel's bytes differ from what the verifier stamped.
    case wheelChangedSinceVerification(filename: String, stamped: SHA256Digest, found: SHA256Digest)
    /// A file could not be read or written.
    case fileAccess(path: String, problem: String)
    /// No credentials were found for an index or for GitHub.
    case missingCredentials(destination: String, looked: [String])
    /// No token was found for a GitHub instance.
    case missingGitHubToken(host: String, looked: [String], repository: String?)
    /// A Trusted Publishing exchange failed; `serverMessage` quotes the answering service.
    case trustedPublishingFailed(step: String, url: String, status: Int, serverMessage: String)
    /// A `.env` file is readable by other users.
    case insecureEnvFile(path: String, mode: String)
    /// A credentials file could not be parsed.
    case malformedCredentialsFile(path: String, line: Int, problem: String)
    /// The index or GitHub rejected the credentials (401/403).
    case authenticationFailed(destination: String, status: Int, credentials: String, serverMessage: String)
    /// The index answered an upload with a redirect: the repository URL is probably wrong.
    case redirected(destination: String, status: Int, location: String)
    /// The index refused the upload for a reason other than credentials or an existing file.
    case uploadRejected(filename: String, destination: String, status: Int, serverMessage: String)
    /// Retries were exhausted.
    case gaveUp(filename: String, destination: String, attempts: Int, lastProblem: String)
    /// An index listing could not be read, so "already there" cannot be decided.
    case indexUnreadable(url: String, problem: String)
    /// A GitHub REST call failed.
    case gitHubRequestFailed(operation: String, status: Int, serverMessage: String)
    /// A published GitHub release already has an asset of that name with different content.
    case gitHubAssetConflict(tag: String, asset: String, existingSize: Int64, size: Int64)
    /// A configuration value (URL, tag template, repository) is invalid.
    case invalidConfiguration(what: String, value: String, expected: String)
    /// A credential cannot be used as it was read (a control character in it).
    case invalidCredential(source: String, problem: String)
    /// The destination accepted an upload (2xx) every time but never listed the file afterwards.
    case uploadNotStored(filename: String, destination: String, attempts: Int, detail: String)

    public var description: String { Redaction.scrub(text) }

    private var text: String {
        switch self {
        case let .wheelChangedSinceVerification(f, stamped, found):
            return "wheel '\(f)' changed since it was verified: verified sha256 '\(stamped.hex)', now '\(found.hex)'; verify it again before publishing"
        case let .fileAccess(path, problem):
            return "cannot access '\(path)': \(problem)"
        case let .missingCredentials(destination, looked):
            return "no credentials for '\(destination)': looked in \(looked.joined(separator: ", ")); set one of them (API tokens use username '__token__')"
        case let .missingGitHubToken(host, looked, repository):
            let scope = repository.map { " with 'contents: write' on \($0)" } ?? " with 'contents: write' on the repository"
            let variable = looked.first ?? "GH_TOKEN"
            return "no GitHub token for '\(host)': looked in \(looked.joined(separator: ", ")); create a token\(scope) and set \(variable), or pass --skip-github"
        case let .trustedPublishingFailed(step, url, status, message):
            let said = message.isEmpty ? "" : "; it said: '\(message)'"
            return "Trusted Publishing failed while \(step): '\(url)' answered \(status == 0 ? "nothing" : String(status))\(said)"
        case let .insecureEnvFile(path, mode):
            return "refusing to read '\(path)': its mode is \(mode), expected 0600 or stricter because it holds credentials; run 'chmod 600 \(path)'"
        case let .malformedCredentialsFile(path, line, problem):
            return "cannot parse '\(path)' line \(line): \(problem)"
        case let .authenticationFailed(destination, status, credentials, message):
            let hint = status == 401
                ? "the index did not accept any credentials; check the username and token"
                : "the credentials were rejected or lack permission to upload this project"
            return "'\(destination)' answered \(status) for \(credentials): \(hint)" + (message.isEmpty ? "" : " (server said: '\(message)')")
        case let .redirected(destination, status, location):
            return "'\(destination)' answered \(status) redirecting to '\(location)': use the upload URL itself with --repository-url (e.g. the https form, with or without the trailing slash the server expects)"
        case let .uploadRejected(f, destination, status, message):
            return "'\(destination)' rejected '\(f)' with \(status): '\(message)'"
        case let .gaveUp(f, destination, attempts, last):
            return "gave up uploading '\(f)' to '\(destination)' after \(attempts) attempts: \(last); it is not on the index, run publish again later"
        case let .indexUnreadable(url, problem):
            return "cannot read the index listing '\(url)': \(problem); pass --index-url with the index's simple API URL"
        case let .gitHubRequestFailed(operation, status, message):
            return "GitHub \(operation) failed with \(status)" + (message.isEmpty ? "" : ": '\(message)'")
        case let .gitHubAssetConflict(tag, asset, existing, size):
            return "release '\(tag)' is published and already has asset '\(asset)' of \(existing) bytes, this file has \(size) bytes; publish under a new version (--version-suffix) instead of replacing a published asset"
        case let .invalidConfiguration(what, value, expected):
            return "invalid \(what) '\(value)': expected \(expected)"
        case let .invalidCredential(source, problem):
            return "the credential in \(source) cannot be used: \(problem); remove it (for a file: tr -d '\\r\\n' < FILE) and run again (the value is not shown)"
        case let .uploadNotStored(f, destination, attempts, detail):
            return "'\(destination)' accepted '\(f)' \(attempts) time\(attempts == 1 ? "" : "s") but does not list it (\(detail)): it is not published; check the index's storage and run publish again"
        }
    }
}
