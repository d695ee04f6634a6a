/// A CPython feature version (`3.12`), as selected with `--python-versions`.
public struct PythonVersion: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public let major: Int
    public let minor: Int

    public init(major: Int, minor: Int) { self.major = major; self.minor = minor }

    /// Parses `3.12` (also `cp312`, `py3.12`, `python3.12`).
    public init?(_ text: String) {
        var t = Substring(text.trimmingWhitespace().lowercased())
        for prefix in ["python", "py", "cp"] where t.hasPrefix(prefix) { t = t.dropFirst(prefix.count); break }
        if !t.contains("."), t.count >= 2, t.allSatisfy(\.isNumber) {
            // cp312 form
            guard let major = Int(t.prefix(1)), let minor = Int(t.dropFirst()) else { return nil }
            self.init(major: major, minor: minor); return
        }
        let parts = t.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let major = Int(parts[0]), let minor = Int(parts[1]),
              parts.allSatisfy({ $0.allSatisfy(\.isNumber) }), major >= 2, minor >= 0 else { return nil }
        self.init(major: major, minor: minor)
    }

    public var description: String { "\(major).\(minor)" }
    /// The CPython wheel tag (`cp312`).
    public var cpythonTag: String { "cp\(major)\(minor)" }
    /// The interpreter command (`python3.12`).
    public var interpreter: String { "python\(major).\(minor)" }

    public static func < (l: Self, r: Self) -> Bool { (l.major, l.minor) < (r.major, r.minor) }

    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let v = PythonVersion(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "'\(text)' is not a Python version such as 3.12"))
        }
        self = v
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }

    /// The accepted forms of `--python-versions`, for error messages.
    public static let selectionHint = "a version (3.12), a comma list (3.10,3.11,3.12) or a range (3.10-3.13)"

    /// Parses a `--python-versions` selection: `3.12`, `3.10,3.11`, `3.10-3.13`, or a mix.
    ///
    /// Returns the versions sorted and without duplicates, or throws ``SelectionError``.
    public static func parseSelection(_ text: String) throws(SelectionError) -> [PythonVersion] {
        var out = Set<PythonVersion>()
        let items = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingWhitespace() }
        guard !text.trimmingWhitespace().isEmpty else {
            throw SelectionError(option: "--python-versions", value: text, expected: selectionHint)
        }
        for item in items {
            if item.contains("-") {
                let ends = item.split(separator: "-", omittingEmptySubsequences: false).map { String($0) }
                guard ends.count == 2, let lo = PythonVersion(ends[0]), let hi = PythonVersion(ends[1]),
                      lo.major == hi.major, lo <= hi else {
                    throw SelectionError(option: "--python-versions", value: item, expected: selectionHint + "; a range needs the same major version and low-high order")
                }
                for minor in lo.minor...hi.minor { out.insert(PythonVersion(major: lo.major, minor: minor)) }
            } else {
                guard let v = PythonVersion(item) else {
                    throw SelectionError(option: "--python-versions", value: item, expected: selectionHint)
                }
                out.insert(v)
            }
        }
        return out.sorted()
    }
}

/// A selection option (`--python-versions`, `--variant`, …) had a value outside its allowed forms.
public struct SelectionError: Error, Sendable, Equatable, CustomStringConvertible {
    public let option: String
    public let value: String
    public let expected: String
    public init(option: String, value: String, expected: String) {
        self.option = option; self.value = value; self.expected = expected
    }
    public var description: String { "invalid value '\(value)' for \(option): expected \(expected)" }
}
