import Foundation

/// The first error lines of a failed build's log, with their line numbers: what a person reads
/// first to see why a build failed.
///
/// A failing command's output starts at the line the agent points at, but the error is usually
/// far below it (pip prints thousands of lines of compiler output before its generic footer), so
/// the excerpt searches from there for the lines that name the error: compiler diagnostics
/// (`file.c:12:5: error: …`, `fatal error: …`), the exception line ending a Python traceback,
/// `fatal:` lines of git, `CMake Error`. Generic lines (`error: subprocess-exited-with-error`,
/// pip's `ERROR: …`) are quoted only when nothing more specific is found.
///
/// Written by hand: no library knows these tools' output; the log is read in bounded chunks, so
/// a hostile or endless log costs bounded time and memory.
public struct BuildLogExcerpt: Sendable, Hashable {
    /// One quoted line.
    public struct Line: Sendable, Hashable, CustomStringConvertible {
        /// 1-based line number in the log.
        public var number: Int
        /// The line, trimmed and cut to 240 characters.
        public var text: String
        /// `line 2620: foo.c:3:1: error: expected ';'`.
        public var description: String { "line \(number): \(text)" }
    }

    /// The lines quoted, in log order.
    public var lines: [Line]

    /// Most lines quoted; most bytes read from the starting line on.
    static let maxLines = 4, maxBytes = 64 << 20

    /// Reads the log at `url` from line `from` (1-based; earlier lines are skipped) and quotes its
    /// first error lines. Nothing is quoted when the log cannot be read.
    public init(log url: URL, from: Int = 1) {
        var specific: [Line] = [], generic: [Line] = []
        var traceback: Int?                 // line number of an open "Traceback" header
        var number = 0
        Self.forEachLine(of: url) { text in
            number += 1
            guard number >= from else { return true }
            let line = text.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("Traceback (most recent call last)") { traceback = number; return true }
            if let start = traceback, Self.isExceptionLine(line) {
                specific.append(Line(number: number, text: Self.cut(line) + " (traceback from line \(start))"))
                traceback = nil
            } else if Self.isSpecificError(line) {
                specific.append(Line(number: number, text: Self.cut(line)))
            } else if generic.count < Self.maxLines, Self.isGenericError(line) {
                generic.append(Line(number: number, text: Self.cut(line)))
            }
            return specific.count < Self.maxLines
        }
        lines = specific.isEmpty ? generic : specific
    }

    /// `first errors: line 2620: …; line 2631: …`, or nil when nothing was found.
    public var summary: String? {
        lines.isEmpty ? nil : "first error\(lines.count == 1 ? "" : "s"): " + lines.map(\.description).joined(separator: "; ")
    }

    static func isSpecificError(_ line: String) -> Bool {
        // gcc/clang: "file.c:12:5: error: …", "cc1: fatal error: …"; the linker; git; CMake.
        if line.range(of: #"^\S.*?:(\d+:)*\s*(fatal )?error: "#, options: .regularExpression) != nil, !line.hasPrefix("error: ") { return true }
        if line.hasPrefix("fatal error: ") || line.hasPrefix("fatal: ") || line.hasPrefix("CMake Error") { return true }
        if line.contains("undefined reference to ") || line.hasPrefix("collect2: error:") { return true }
        return false
    }

    static func isGenericError(_ line: String) -> Bool {
        line.hasPrefix("error: ") || line.hasPrefix("ERROR: ") || line.hasPrefix("Error: ")
    }

    /// The last line of a Python traceback: `ModuleNotFoundError: No module named 'torch'`.
    static func isExceptionLine(_ line: String) -> Bool {
        line.range(of: #"^([A-Za-z_][A-Za-z0-9_]*\.)*[A-Za-z_][A-Za-z0-9_]*(Error|Exception|Exit|Interrupt)(: |$)"#,
                   options: .regularExpression) != nil
    }

    static func cut(_ s: String) -> String { s.count > 240 ? String(s.prefix(237)) + "…" : s }

    /// Calls `body` with each line (without its newline) until it returns false, reading at most
    /// ``maxBytes``.
    static func forEachLine(of url: URL, _ body: (String) -> Bool) {
        guard let handle = try? FileHandle(forReadingFrom: url) else { return }
        defer { try? handle.close() }
        var pending = Data(), read = 0
        while read < maxBytes, let chunk = try? handle.read(upToCount: 1 << 20), !chunk.isEmpty {
            read += chunk.count
            pending.append(chunk)
            var start = pending.startIndex
            while let newline = pending[start...].firstIndex(of: 0x0A) {
                if !body(String(decoding: pending[start..<newline], as: UTF8.self)) { return }
                start = pending.index(after: newline)
            }
            pending = Data(pending[start...])
            // A line longer than a chunk (a log without newlines) is cut rather than kept whole.
            if pending.count > 1 << 20 { _ = body(String(decoding: pending.prefix(4096), as: UTF8.self)); pending.removeAll() }
        }
        if !pending.isEmpty { _ = body(String(decoding: pending, as: UTF8.self)) }
    }
}
