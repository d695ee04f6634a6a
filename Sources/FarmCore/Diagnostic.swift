/// One problem found in a configuration file, located by file, line and key.
public struct Diagnostic: Sendable, Hashable, CustomStringConvertible {
    /// The file (as the user named it).
    public var file: String
    /// 1-based line, or 0 when unknown.
    public var line: Int
    /// 1-based column, or 0 when unknown.
    public var column: Int
    /// The key path, e.g. `hosts.icelake-1.arch`.
    public var key: String
    /// What is wrong and what is expected.
    public var message: String

    public init(file: String, line: Int, column: Int = 0, key: String, message: String) {
        self.file = file; self.line = line; self.column = column; self.key = key; self.message = message
    }

    /// `file:line:column: error: key: message`, the form editors and CI logs recognise.
    public var description: String {
        let location = line > 0 ? (column > 0 ? "\(file):\(line):\(column)" : "\(file):\(line)") : file
        return key.isEmpty ? "\(location): error: \(message)" : "\(location): error: \(key): \(message)"
    }
}

/// A configuration file had one or more problems; all of them are listed.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    /// What kind of file it was (`inventory`, `recipe`).
    public let kind: String
    public let diagnostics: [Diagnostic]

    public init(kind: String, diagnostics: [Diagnostic]) { self.kind = kind; self.diagnostics = diagnostics }

    public var description: String {
        let count = diagnostics.count
        let head = "\(kind) '\(diagnostics.first?.file ?? "?")' has \(count) problem\(count == 1 ? "" : "s"); nothing was started"
        return ([head] + diagnostics.map(\.description)).joined(separator: "\n")
    }
}
