/// A `METADATA` or `WHEEL` file: RFC 822-style headers (repeatable, with continuation lines)
/// followed by an optional body.
///
/// Parsed by hand: it is the email header format Python's `email.parser` reads, reduced to what
/// packaging metadata uses; no Swift package parses it.
public struct CoreMetadata: Sendable, Hashable {
    /// Every header in order; a header may repeat (`Classifier`, `Requires-Dist`, `Tag`).
    public var fields: [(name: String, value: String)]
    /// The text after the first blank line (the long description in `METADATA`).
    public var body: String

    /// Parses UTF-8 text; throws ``MetadataParseError`` on a line that is neither a header nor a
    /// continuation, or on text that is not UTF-8.
    public init(bytes: [UInt8]) throws(MetadataParseError) {
        guard let text = String(validating: bytes, as: UTF8.self) else { throw MetadataParseError(line: 0, message: "not valid UTF-8") }
        try self.init(text: text)
    }

    /// Parses text; see ``init(bytes:)``.
    public init(text: String) throws(MetadataParseError) {
        fields = []
        body = ""
        var lineNumber = 0
        var rest = Substring(text)
        while !rest.isEmpty {
            lineNumber += 1
            let end = rest.firstIndex(of: "\n") ?? rest.endIndex
            var line = rest[..<end]
            rest = end == rest.endIndex ? rest[end...] : rest[rest.index(after: end)...]
            if line.last == "\r" { line = line.dropLast() }
            if line.isEmpty {
                body = String(rest)
                return
            }
            if line.first == " " || line.first == "\t" {
                guard !fields.isEmpty else { throw MetadataParseError(line: lineNumber, message: "continuation line before any header") }
                fields[fields.count - 1].value += "\n" + line.drop(while: { $0 == " " || $0 == "\t" })
                continue
            }
            guard let colon = line.firstIndex(of: ":"), colon != line.startIndex else {
                throw MetadataParseError(line: lineNumber, message: "expected 'Name: value', found '\(line.prefix(60))'")
            }
            let name = line[..<colon]
            guard name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) else {
                throw MetadataParseError(line: lineNumber, message: "invalid header name '\(name.prefix(60))'")
            }
            fields.append((String(name), trimSpaces(line[line.index(after: colon)...])))
        }
    }

    /// The first value of a header (case-insensitive name).
    public func value(_ name: String) -> String? {
        let n = name.lowercased()
        return fields.first { $0.name.lowercased() == n }?.value
    }

    /// Every value of a header (case-insensitive name).
    public func values(_ name: String) -> [String] {
        let n = name.lowercased()
        return fields.filter { $0.name.lowercased() == n }.map(\.value)
    }

    /// The long description: the body, or the legacy `Description` header when there is no body.
    public var description: String {
        let b = trimSpaces(Substring(body))
        if !b.isEmpty { return body }
        return value("Description") ?? ""
    }

    /// Serialises headers and body as `METADATA` writes them.
    public func rendered() -> String {
        var out = ""
        for (name, value) in fields {
            out += "\(name): " + value.split(separator: "\n", omittingEmptySubsequences: false).joined(separator: "\n        ") + "\n"
        }
        if !body.isEmpty { out += "\n" + body }
        return out
    }

    public static func == (l: Self, r: Self) -> Bool {
        l.body == r.body && l.fields.count == r.fields.count && zip(l.fields, r.fields).allSatisfy { $0.name == $1.name && $0.value == $1.value }
    }
    public func hash(into h: inout Hasher) {
        h.combine(body)
        for f in fields { h.combine(f.name); h.combine(f.value) }
    }
}

/// A metadata file could not be parsed.
public struct MetadataParseError: Error, Sendable, Hashable, CustomStringConvertible {
    /// 1-based line number (0 when the whole file is unusable).
    public var line: Int
    public var message: String
    public var description: String { line > 0 ? "line \(line): \(message)" : message }
}

/// `RECORD`: one CSV row per file with its path, `algorithm=urlsafe-base64-digest` and size.
public struct RecordFile: Sendable, Hashable {
    /// One row.
    public struct Row: Sendable, Hashable {
        public var path: String
        /// Empty, or `sha256=…`.
        public var hash: String
        /// Empty, or the size in bytes.
        public var size: String
        /// 1-based line number.
        public var line: Int
    }

    /// The rows in order.
    public var rows: [Row]

    /// Parses RECORD as Python's `csv` module writes it (comma-separated, fields optionally
    /// double-quoted with `""` for a quote). Written by hand: three columns, no Swift CSV
    /// package in our set, and the parser must bound its work on hostile input.
    public init(bytes: [UInt8]) throws(MetadataParseError) {
        guard String(validating: bytes, as: UTF8.self) != nil else { throw MetadataParseError(line: 0, message: "not valid UTF-8") }
        rows = []
        var i = 0
        var line = 1
        var fields: [[UInt8]] = []
        var field: [UInt8] = []
        var rowLine = 1
        func endRow() throws(MetadataParseError) {
            fields.append(field); field = []
            defer { fields = [] }
            if fields.count == 1 && fields[0].isEmpty { return }  // blank line
            guard fields.count == 3 else {
                throw MetadataParseError(line: rowLine, message: "expected 3 comma-separated fields (path,hash,size), found \(fields.count)")
            }
            rows.append(Row(path: String(decoding: fields[0], as: UTF8.self), hash: String(decoding: fields[1], as: UTF8.self),
                            size: String(decoding: fields[2], as: UTF8.self), line: rowLine))
        }
        while i < bytes.count {
            let c = bytes[i]
            if c == UInt8(ascii: "\""), field.isEmpty {
                // Quoted field.
                i += 1
                var closed = false
                while i < bytes.count {
                    if bytes[i] == UInt8(ascii: "\"") {
                        if i + 1 < bytes.count, bytes[i + 1] == UInt8(ascii: "\"") { field.append(UInt8(ascii: "\"")); i += 2; continue }
                        i += 1; closed = true; break
                    }
                    if bytes[i] == UInt8(ascii: "\n") { line += 1 }
                    field.append(bytes[i]); i += 1
                }
                guard closed else { throw MetadataParseError(line: rowLine, message: "unterminated quoted field") }
                if i < bytes.count, bytes[i] != UInt8(ascii: ","), bytes[i] != UInt8(ascii: "\n"), bytes[i] != UInt8(ascii: "\r") {
                    throw MetadataParseError(line: line, message: "unexpected character after a quoted field")
                }
                continue
            }
            switch c {
            case UInt8(ascii: ","):
                fields.append(field); field = []
                guard fields.count < 3 else { throw MetadataParseError(line: rowLine, message: "more than 3 fields") }
            case UInt8(ascii: "\r"):
                break
            case UInt8(ascii: "\n"):
                try endRow()
                line += 1; rowLine = line
            default:
                field.append(c)
            }
            i += 1
        }
        if !field.isEmpty || !fields.isEmpty { try endRow() }
    }

    /// Hash algorithms a RECORD may use: SHA-256 or stronger (the spec forbids md5 and sha1).
    public static let acceptedAlgorithms: Set<String> = ["sha256", "sha384", "sha512"]

    /// Renders rows as CSV the way Python's `csv` module does (quoting fields that need it).
    public static func render(_ rows: [(path: String, hash: String, size: String)]) -> String {
        func quote(_ s: String) -> String {
            s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" })
                ? "\"" + s.split(separator: "\"", omittingEmptySubsequences: false).joined(separator: "\"\"") + "\"" : s
        }
        return rows.map { "\(quote($0.path)),\(quote($0.hash)),\(quote($0.size))\n" }.joined()
    }
}

/// The text without leading and trailing spaces, tabs and line breaks (kept local so the parsers
/// build on their own for the fuzz target).
func trimSpaces(_ s: Substring) -> String {
    let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
    guard let start = s.firstIndex(where: { !isSpace($0) }), let end = s.lastIndex(where: { !isSpace($0) }) else { return "" }
    return String(s[start...end])
}
