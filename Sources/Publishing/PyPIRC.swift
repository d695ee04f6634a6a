import Foundation

/// `~/.pypirc`, read as twine reads it (Python's `configparser.RawConfigParser` and twine's
/// `get_config`): sections of `key = value` (or `key: value`) lines, keys case-insensitive,
/// indented lines continuing a value, `#` and `;` comment lines, `[distutils] index-servers`
/// naming the repositories that may be used (`pypi testpypi` when absent), `[server-login]`
/// supplying a default username and password, and `pypi`/`testpypi` knowing their URLs.
///
/// Parsed by hand: no kept Swift package reads INI files. A file that configparser refuses (a
/// duplicate section or key, a line that is neither) is refused here with its file and line;
/// values never appear in messages, since the file holds passwords.
public struct PyPIRC: Sendable {
    /// One `[section]`.
    public struct Section: Sendable {
        /// The section name as written (case-sensitive, as in configparser).
        public var name: String
        /// The line of its header.
        public var line: Int
        /// Values by lowercased key, each with the line it starts on.
        var values: [String: (value: String, line: Int)]

        /// The value of `key`, if set.
        func value(_ key: String) -> String? { values[key]?.value }
    }

    /// The file as named in messages.
    public let path: String
    /// The sections in file order.
    public let sections: [Section]

    /// Reads `path`; `nil` when the file does not exist.
    public static func load(path: String) throws(PublishingError) -> PyPIRC? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .fileAccess(path: path, problem: "cannot read the file (check its permissions)")
        }
        return try parse(String(decoding: data, as: UTF8.self), path: path)
    }

    /// Parses pypirc text; `path` names it in messages.
    public static func parse(_ text: String, path: String) throws(PublishingError) -> PyPIRC {
        var sections: [Section] = []
        var currentKey: String?
        var keyIndent = 0
        var number = 0
        func fail(_ line: Int, _ problem: String) -> PublishingError {
            .malformedCredentialsFile(path: path, line: line, problem: problem + " (twine refuses this file too)")
        }
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            number += 1
            var line = Substring(rawLine)
            if line.hasSuffix("\r") { line = line.dropLast() }
            let indent = line.prefix { $0 == " " || $0 == "\t" }.count
            let stripped = line.trimmingCharacters(in: .whitespaces)
            if stripped.hasPrefix("#") || stripped.hasPrefix(";") { continue }
            if stripped.isEmpty {
                // An empty line inside a value is kept by configparser; it only matters for
                // multi-line values, which are split on whitespace (index-servers) anyway.
                continue
            }
            if let key = currentKey, indent > keyIndent, !sections.isEmpty {
                // A continuation line of the previous value.
                let s = sections.count - 1
                if let existing = sections[s].values[key] {
                    sections[s].values[key] = (existing.value + "\n" + stripped, existing.line)
                }
                continue
            }
            if stripped.hasPrefix("[") {
                guard let close = stripped.lastIndex(of: "]") else { throw fail(number, "a section header needs a closing ']'") }
                let name = String(stripped[stripped.index(after: stripped.startIndex)..<close])
                guard !name.isEmpty else { throw fail(number, "empty section name") }
                if let first = sections.first(where: { $0.name == name }) {
                    throw fail(number, "section [\(name)] is defined twice (first on line \(first.line)); merge the two")
                }
                sections.append(Section(name: name, line: number, values: [:]))
                currentKey = nil
                continue
            }
            guard let separator = stripped.firstIndex(where: { $0 == "=" || $0 == ":" }) else {
                throw fail(number, "expected 'key = value' or a [section] header")
            }
            guard !sections.isEmpty else { throw fail(number, "a key outside any [section]") }
            let key = stripped[..<separator].trimmingCharacters(in: .whitespaces).lowercased()
            guard !key.isEmpty else { throw fail(number, "a value without a key") }
            let value = stripped[stripped.index(after: separator)...].trimmingCharacters(in: .whitespaces)
            let s = sections.count - 1
            if let first = sections[s].values[key] {
                throw fail(number, "key '\(key)' is set twice in section [\(sections[s].name)] (first on line \(first.line))")
            }
            sections[s].values[key] = (value, number)
            currentKey = key
            keyIndent = indent
        }
        return PyPIRC(path: path, sections: sections)
    }

    /// The section called `name`.
    public func section(_ name: String) -> Section? { sections.first { $0.name == name } }

    /// The repositories twine will use: `[distutils] index-servers`, else `pypi testpypi`.
    public var indexServers: [String] {
        guard let list = section("distutils")?.value("index-servers") else { return ["pypi", "testpypi"] }
        return list.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }).map(String.init)
    }

    /// The upload URL twine uses for the built-in names.
    static let builtInURLs = ["pypi": PackageIndex.pypiUploadURL, "testpypi": PackageIndex.testPyPIUploadURL]

    /// A repository as a section describes it (twine's `RepositoryConfig`).
    public struct Repository: Sendable {
        /// The section name.
        public var name: String
        /// The upload URL.
        public var uploadURL: String
        /// The username, if the section (or `[server-login]`) sets one.
        public var username: String?
        /// The password or token, if set.
        public var password: Secret?
        /// A CA bundle for the index (`ca_cert`).
        public var caCert: String?
        /// Where the URL came from, for messages (`section [local] of '~/.pypirc' line 7`).
        public var origin: String
        /// Where the password came from.
        public var passwordOrigin: String?
    }

    /// The repository `name`, as `twine upload --repository NAME` would use it.
    ///
    /// The name must be listed in `index-servers` (twine ignores other sections); `pypi` always
    /// works and `testpypi` works when listed (it is by default).
    public func repository(named name: String) throws(PublishingError) -> Repository {
        let servers = indexServers
        let listed = servers.contains(name) || name == "pypi"
        guard listed else {
            let hint: String
            if let s = section(name) {
                hint = "section [\(name)] (line \(s.line)) is not listed in [distutils] index-servers, and twine ignores sections not listed there; add '\(name)' to index-servers"
            } else {
                hint = "there is no section [\(name)]; the repositories are: \(servers.joined(separator: ", "))"
            }
            throw .invalidConfiguration(what: "repository", value: name, expected: "a repository of '\(path)': \(hint)")
        }
        return try repository(from: section(name), name: name)
    }

    /// The listed repository whose URL is `uploadURL` (so `--repository-url` still finds the
    /// section's credentials), if any.
    public func repository(forUploadURL uploadURL: String) -> Repository? {
        for name in indexServers + ["pypi"] {
            guard let repo = try? repository(from: section(name), name: name) else { continue }
            if Self.sameURL(repo.uploadURL, uploadURL) { return repo }
        }
        return nil
    }

    private func repository(from section: Section?, name: String) throws(PublishingError) -> Repository {
        let login = self.section("server-login")
        guard let url = section?.value("repository") ?? Self.builtInURLs[name] else {
            throw .invalidConfiguration(what: "repository", value: name,
                                        expected: "a 'repository = URL' line in section [\(name)] of '\(path)' (line \(section?.line ?? 0))")
        }
        let where_ = section.map { "section [\(name)] of '\(path)' line \($0.values["repository"]?.line ?? $0.line)" }
            ?? "twine's built-in '\(name)'"
        var passwordOrigin: String?
        var password = section?.value("password")
        if let p = section?.values["password"] { passwordOrigin = "section [\(name)] of '\(path)' line \(p.line)" }
        if password == nil, let p = login?.values["password"] {
            password = p.value; passwordOrigin = "section [server-login] of '\(path)' line \(p.line)"
        }
        // A password with a control character is refused (naming where it is, never the value).
        var secret: Secret?
        if let password { secret = try Secret.validated(password, source: passwordOrigin ?? where_) }
        return Repository(name: name, uploadURL: url, username: section?.value("username") ?? login?.value("username"),
                          password: secret, caCert: section?.value("ca_cert"),
                          origin: where_, passwordOrigin: passwordOrigin)
    }

    static func sameURL(_ a: String, _ b: String) -> Bool {
        func normalised(_ url: String) -> String {
            var u = url.lowercased(); while u.hasSuffix("/") { u.removeLast() }; return u
        }
        return normalised(a) == normalised(b)
    }
}
