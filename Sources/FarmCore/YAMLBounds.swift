import Foundation
// libyaml as Yams vendors it: its event parser sees aliases before anything expands them.
internal import CYaml

/// Limits a YAML document must stay within before it is composed into nodes.
///
/// Composing is where hostile YAML costs: an alias repeats its anchor's whole content, so nested
/// aliases ("billion laughs") make a small file expand to billions of nodes, and a mapping key that
/// is such a node is hashed, compared and rendered in full. ``check(_:into:)`` reads the document's
/// events once (linear in the text, nothing expanded), counts the nodes it would expand to, and
/// rejects — with file, line and key, without rendering anything — documents over the limits and
/// mapping keys that are not text.
public struct YAMLBounds: Sendable, Hashable {
    /// The most bytes a file may have.
    public var maxBytes: Int
    /// The most nodes the document may expand to, aliases counted with their anchor's content.
    public var maxExpandedNodes: Int
    /// The deepest nesting of lists and mappings.
    public var maxDepth: Int

    /// Limits far above any inventory or recipe (thousands of hosts) and far below what hurts.
    public static let standard = YAMLBounds(maxBytes: 16 << 20, maxExpandedNodes: 1_000_000, maxDepth: 256)

    public init(maxBytes: Int, maxExpandedNodes: Int, maxDepth: Int) {
        self.maxBytes = maxBytes; self.maxExpandedNodes = maxExpandedNodes; self.maxDepth = maxDepth
    }

    /// Checks `text` against the limits; reports the first violation into `collector` and returns
    /// false, or returns true (syntax errors are left to the composer, which reports them with
    /// Yams' wording).
    public func check(_ text: String, into collector: DiagnosticCollector) -> Bool {
        if text.utf8.count > maxBytes {
            collector.report(line: 0, key: "", "the file has \(text.utf8.count) bytes, more than the \(maxBytes) a configuration file may have")
            return false
        }
        var scan = Scan(bounds: self)
        let problem: Scan.Problem? = text.utf8CString.withUnsafeBufferPointer { chars in
            chars.withMemoryRebound(to: UInt8.self) { bytes in scan.run(bytes.baseAddress!, count: bytes.count - 1) }
        }
        guard let problem else { return true }
        collector.report(line: problem.line, column: problem.column, key: problem.key, problem.message)
        return false
    }

    /// One pass over the events of a document.
    struct Scan {
        struct Problem { let line: Int; let column: Int; let key: String; let message: String }

        /// An open list or mapping.
        struct Frame {
            var isMapping: Bool
            var anchor: String?
            /// Expanded nodes in it so far, itself included.
            var size: Int = 1
            /// In a mapping: whether the next node is a key.
            var expectingKey = true
            /// In a mapping: the text of the key whose value is being read (for messages).
            var key: String?
            var index = 0
        }

        let bounds: YAMLBounds
        var stack: [Frame] = []
        /// Expanded size and whether it is a scalar, per anchor (a later anchor of a name shadows it).
        var anchors: [String: (size: Int, scalar: Bool)] = [:]
        var expanded = 0

        init(bounds: YAMLBounds) { self.bounds = bounds }

        /// The dotted key path of the node being read, as far as it is text.
        var path: String {
            var parts: [String] = []
            for frame in stack {
                if frame.isMapping { if let k = frame.key { parts.append(k) } } else { parts.append("[\(frame.index)]") }
            }
            return parts.joined(separator: ".").replacingOccurrences(of: ".[", with: "[")
        }

        mutating func run(_ bytes: UnsafePointer<UInt8>, count: Int) -> Problem? {
            var parser = yaml_parser_t()
            guard yaml_parser_initialize(&parser) == 1 else { return nil }
            defer { yaml_parser_delete(&parser) }
            yaml_parser_set_input_string(&parser, bytes, count)
            while true {
                var event = yaml_event_t()
                // A syntax error: the composer reports it.
                guard yaml_parser_parse(&parser, &event) == 1 else { return nil }
                defer { yaml_event_delete(&event) }
                let line = Int(event.start_mark.line) + 1, column = Int(event.start_mark.column) + 1
                switch event.type {
                case YAML_STREAM_END_EVENT:
                    return nil
                case YAML_DOCUMENT_START_EVENT:
                    stack.removeAll(); expanded = 0
                case YAML_SCALAR_EVENT:
                    let value = event.data.scalar.value.map { String(cString: $0) } ?? ""
                    if let problem = node(size: 1, scalar: true, text: value, line: line, column: column) { return problem }
                    if let anchor = Self.string(event.data.scalar.anchor) { anchors[anchor] = (1, true) }
                case YAML_ALIAS_EVENT:
                    let name = Self.string(event.data.alias.anchor) ?? ""
                    let target = anchors[name] ?? (1, true)
                    if let problem = node(size: target.size, scalar: target.scalar, text: nil, line: line, column: column,
                                          alias: name) { return problem }
                case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
                    let mapping = event.type == YAML_MAPPING_START_EVENT
                    if let problem = node(size: 1, scalar: false, text: nil, line: line, column: column,
                                          kind: mapping ? "a mapping" : "a list") { return problem }
                    let anchor = Self.string(mapping ? event.data.mapping_start.anchor : event.data.sequence_start.anchor)
                    stack.append(Frame(isMapping: mapping, anchor: anchor))
                    if stack.count > bounds.maxDepth {
                        return Problem(line: line, column: column, key: path,
                                       message: "lists and mappings are nested more than \(bounds.maxDepth) deep")
                    }
                case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                    guard let done = stack.popLast() else { continue }
                    if let anchor = done.anchor { anchors[anchor] = (done.size, false) }
                    completed(size: done.size)
                default:
                    break
                }
            }
        }

        /// A node begins (a scalar or alias is also complete); checks the limits and key rules.
        mutating func node(size: Int, scalar: Bool, text: String?, line: Int, column: Int,
                           alias: String? = nil, kind: String? = nil) -> Problem? {
            expanded += size
            if let top = stack.last, top.isMapping, top.expectingKey, !scalar {
                let what = alias.map { "the alias '*\($0)', which stands for a list or mapping" } ?? kind ?? "not text"
                return Problem(line: line, column: column, key: path,
                               message: "a mapping key must be text, found \(what); write the key as plain text")
            }
            if expanded > bounds.maxExpandedNodes {
                let cause = alias.map { " (the alias '*\($0)' repeats \(size) nodes; aliases of aliases multiply)" } ?? ""
                return Problem(line: line, column: column, key: path,
                               message: "the document expands to more than \(bounds.maxExpandedNodes) nodes\(cause); remove the aliases that repeat large parts")
            }
            if scalar || alias != nil {
                if var top = stack.popLast() {
                    if top.isMapping && top.expectingKey { top.key = text.map { String($0.prefix(64)) } ?? "*\(alias ?? "")" }
                    stack.append(top)
                }
                completed(size: size)
            }
            return nil
        }

        /// A node of `size` expanded nodes is complete: it counts in its parent, and a mapping's
        /// next node is a key again after a value.
        mutating func completed(size: Int) {
            guard var top = stack.popLast() else { return }
            top.size += size
            if top.isMapping {
                if !top.expectingKey { top.key = nil }
                top.expectingKey.toggle()
            } else {
                top.index += 1
            }
            stack.append(top)
        }

        static func string(_ pointer: UnsafeMutablePointer<UInt8>?) -> String? {
            pointer.map { String(cString: $0) }
        }
    }
}
