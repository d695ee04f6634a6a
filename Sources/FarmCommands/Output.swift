import Foundation
import Logging

/// Writes a line to standard error.
func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}

/// The logger of a command: standard error, `info` and above with `--verbose` (phases,
/// placements, retries, swallowed errors, with dotted metadata keys such as `release.job`),
/// warnings and errors otherwise.
func commandLogger(_ label: String, verbose: Bool) -> Logger {
    var logger = Logger(label: label) { StreamLogHandler.standardError(label: $0) }
    logger.logLevel = verbose ? .info : .warning
    return logger
}

/// Encodes a value as stable, pretty, key-sorted JSON and prints it.
///
/// Document types spell their keys in snake_case themselves; `snakeCase` converts the property
/// names of types that do not (never dictionary keys: they are data).
func printJSON(_ value: some Encodable, snakeCase: Bool = false) throws {
    let encoder = JSONEncoder()
    if snakeCase { encoder.keyEncodingStrategy = .convertToSnakeCase }
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    encoder.dateEncodingStrategy = .iso8601
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

/// A plain-text table with left-aligned columns.
struct TextTable {
    var header: [String]
    var rows: [[String]] = []

    init(_ header: String...) { self.header = header }

    mutating func add(_ row: String...) { rows.append(row) }
    mutating func add(_ row: [String]) { rows.append(row) }

    func render() -> String {
        let all = [header] + rows
        let widths = header.indices.map { i in all.map { i < $0.count ? $0[i].count : 0 }.max() ?? 0 }
        return all.map { row in
            row.enumerated().map { i, cell in
                i == row.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }
}
