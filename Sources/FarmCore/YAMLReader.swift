import Foundation
import Yams

/// A YAML node with the path that led to it, read with diagnostics instead of exceptions.
///
/// Loaders walk a document through this type and collect every problem into a
/// ``DiagnosticCollector`` so a user sees all mistakes at once, each with file, line and key.
public struct YAMLValue {
    /// The underlying Yams node (kept for its line marks).
    public let node: Node
    /// Dotted key path from the document root.
    public let path: String

    public init(node: Node, path: String) { self.node = node; self.path = path }

    /// 1-based line of the node.
    public var line: Int { node.mark?.line ?? 0 }
    public var column: Int { node.mark?.column ?? 0 }

    /// The scalar text, or nil for mappings and sequences.
    public var scalar: String? {
        if case let .scalar(s) = node { return s.string }
        return nil
    }

    /// True for an explicit `null`/`~`/empty scalar.
    public var isNull: Bool {
        if case let .scalar(s) = node { return s.tag == Tag(.null) || ["", "~", "null", "Null", "NULL"].contains(s.string) && s.style == .plain }
        return false
    }

    /// The entries of a mapping, in file order, each with its key's line.
    public var entries: [(key: String, keyLine: Int, keyColumn: Int, value: YAMLValue)]? {
        guard case let .mapping(m) = node else { return nil }
        return m.map { k, v in
            // A key that is not text is never rendered (it may be huge); YAMLBounds rejects it first.
            let name = k.string ?? "<\(YAMLValue(node: k, path: "").kindName) key>"
            return (name, k.mark?.line ?? 0, k.mark?.column ?? 0, YAMLValue(node: v, path: path.isEmpty ? name : "\(path).\(name)"))
        }
    }

    /// The items of a sequence.
    public var items: [YAMLValue]? {
        guard case let .sequence(s) = node else { return nil }
        return s.enumerated().map { YAMLValue(node: $1, path: "\(path)[\($0)]") }
    }

    /// A short name of the node's kind, for "expected a list, found a mapping".
    public var kindName: String {
        switch node {
        case .scalar: "a scalar"
        case .mapping: "a mapping"
        case .sequence: "a list"
        case .alias: "an alias"
        }
    }
}

/// Collects diagnostics for one file and offers typed readers that report instead of throwing.
public final class DiagnosticCollector {
    /// The file name used in every diagnostic.
    public let file: String
    /// Distinct problems, in the order first reported.
    public private(set) var diagnostics: [Diagnostic] = []
    /// How many reports were made, duplicates included (a value inherited by several hosts is
    /// reported once but makes each of them invalid).
    public private(set) var reportCount = 0
    private var seen: Set<Diagnostic> = []

    public init(file: String) { self.file = file }

    /// Records a problem at `value`'s position.
    public func report(_ value: YAMLValue, _ message: String) {
        record(Diagnostic(file: file, line: value.line, column: value.column, key: value.path, message: message))
    }

    /// Records a problem at an explicit position.
    public func report(line: Int, column: Int = 0, key: String, _ message: String) {
        record(Diagnostic(file: file, line: line, column: column, key: key, message: message))
    }

    private func record(_ d: Diagnostic) {
        reportCount += 1
        if seen.insert(d).inserted { diagnostics.append(d) }
    }

    /// The mapping entries of `value`, reporting unknown keys with a "did you mean" hint.
    public func entries(_ value: YAMLValue, allowed: [String]) -> [(key: String, value: YAMLValue)] {
        guard let entries = value.entries else {
            if !value.isNull { report(value, "expected a mapping, found \(value.kindName)") }
            return []
        }
        var out: [(String, YAMLValue)] = []
        for e in entries {
            if allowed.contains(e.key) {
                out.append((e.key, e.value))
            } else {
                let path = value.path.isEmpty ? e.key : "\(value.path).\(e.key)"
                let hint = DidYouMean.hint(for: e.key, among: allowed)
                report(line: e.keyLine, column: e.keyColumn, key: path,
                       "unknown key '\(e.key)'\(hint); allowed keys: \(allowed.sorted().joined(separator: ", "))")
            }
        }
        return out
    }

    public func string(_ value: YAMLValue) -> String? {
        guard let s = value.scalar else { report(value, "expected a text value, found \(value.kindName)"); return nil }
        return s
    }

    public func int(_ value: YAMLValue, minimum: Int? = nil, maximum: Int? = nil) -> Int? {
        guard let s = value.scalar, let n = Int(s) else {
            report(value, "expected a whole number, found '\(value.scalar ?? value.kindName)'"); return nil
        }
        if let minimum, n < minimum { report(value, "must be at least \(minimum), found \(n)"); return nil }
        if let maximum, n > maximum { report(value, "must be at most \(maximum), found \(n)"); return nil }
        return n
    }

    public func positiveDouble(_ value: YAMLValue) -> Double? {
        guard let s = value.scalar, let d = Double(s), d.isFinite else {
            report(value, "expected a number, found '\(value.scalar ?? value.kindName)'"); return nil
        }
        guard d > 0 else { report(value, "must be greater than 0, found \(s)"); return nil }
        return d
    }

    public func bool(_ value: YAMLValue) -> Bool? {
        switch value.scalar?.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: report(value, "expected true or false, found '\(value.scalar ?? value.kindName)'"); return nil
        }
    }

    /// A list of scalars; a single scalar is accepted as a one-item list.
    public func stringList(_ value: YAMLValue) -> [(String, YAMLValue)] {
        if let items = value.items {
            return items.compactMap { item in string(item).map { ($0, item) } }
        }
        if value.isNull { return [] }
        if let s = value.scalar { return [(s, value)] }
        report(value, "expected a list, found \(value.kindName)")
        return []
    }

    /// A mapping of text to text (environment variables).
    public func stringMap(_ value: YAMLValue) -> [String: String] {
        guard let entries = value.entries else {
            if !value.isNull { report(value, "expected a mapping, found \(value.kindName)") }
            return [:]
        }
        var out: [String: String] = [:]
        for e in entries { if let s = string(e.value) { out[e.key] = s } }
        return out
    }
}

/// Parses YAML text into a root ``YAMLValue``, turning syntax errors into diagnostics.
public enum YAMLDocument {
    /// Reads and parses `path`; returns nil after reporting when the file cannot be read or parsed.
    public static func load(path: String, into collector: DiagnosticCollector, bounds: YAMLBounds = .standard) -> YAMLValue? {
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        if let type = attributes?[.type] as? FileAttributeType, type != .typeRegular {
            // A device or pipe (`/dev/zero`, a FIFO) would be read without end.
            collector.report(line: 0, key: "", "not a regular file; pass the path of a YAML file")
            return nil
        }
        if let size = (attributes?[.size] as? NSNumber)?.intValue, size > bounds.maxBytes {
            collector.report(line: 0, key: "", "the file has \(size) bytes, more than the \(bounds.maxBytes) a configuration file may have")
            return nil
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            collector.report(line: 0, key: "", "cannot read the file (does it exist, and is it readable?)")
            return nil
        }
        guard let text = String(data: data, encoding: .utf8) else {
            collector.report(line: 0, key: "", "the file is not UTF-8 text")
            return nil
        }
        return parse(text, into: collector, bounds: bounds)
    }

    /// Parses YAML text; reports syntax errors, duplicate keys (with every line they stand on) and empty documents.
    ///
    /// The text is first checked against `bounds` (size, alias expansion, nesting, keys that are not
    /// text), so hostile YAML is rejected before anything is expanded.
    public static func parse(_ text: String, into collector: DiagnosticCollector, bounds: YAMLBounds = .standard) -> YAMLValue? {
        guard bounds.check(text, into: collector) else { return nil }
        do {
            guard let node = try Yams.compose(yaml: text) else {
                collector.report(line: 0, key: "", "the file is empty")
                return nil
            }
            return YAMLValue(node: node, path: "")
        } catch let YamlError.duplicatedKeysInMapping(duplicates, _) {
            // Yams stops at the first mapping with duplicate keys and keeps one mark only; find every
            // line on which each duplicated key is defined so the user can see both places.
            for key in duplicates {
                let lines = text.split(separator: "\n", omittingEmptySubsequences: false).enumerated().compactMap { i, line -> Int? in
                    let t = line.trimmingWhitespace()
                    let forms = ["\(key):", "\"\(key)\":", "'\(key)':", "- \(key):"]
                    return forms.contains(where: { t.hasPrefix($0) }) ? i + 1 : nil
                }
                collector.report(line: lines.last ?? 0, key: key,
                                 "duplicate key '\(key)' (defined on lines \(lines.map(String.init).joined(separator: ", "))); each name may appear once")
            }
            return nil
        } catch let YamlError.scanner(context, problem, mark, _) {
            collector.report(line: mark.line, column: mark.column, key: "", "YAML syntax error: \(problem)\(context.map { " \($0.text)" } ?? "")")
            return nil
        } catch let YamlError.parser(context, problem, mark, _) {
            collector.report(line: mark.line, column: mark.column, key: "", "YAML syntax error: \(problem)\(context.map { " \($0.text)" } ?? "")")
            return nil
        } catch let YamlError.composer(context, problem, mark, _) {
            collector.report(line: mark.line, column: mark.column, key: "", "YAML error: \(problem)\(context.map { " \($0.text)" } ?? "")")
            return nil
        } catch {
            collector.report(line: 0, key: "", "YAML error: \(error)")
            return nil
        }
    }
}
