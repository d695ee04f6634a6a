/// A PEP 440 version specifier set (`>=0.12,<0.17`, `==0.16.*`, `~=3.10`, `<3.13,>=3.9`).
///
/// Written by hand, like ``PEP440Version``: no kept Swift package implements PEP 440. Recipes use
/// it for the upstream versions a variant or a setting applies to, and for `requires-python`.
/// Pre-releases follow the specification: `<V` does not admit pre-releases of `V`, and a set
/// admits a pre-release only when one of its clauses names a pre-release.
public struct VersionSpecifierSet: Sendable, Hashable, Codable, CustomStringConvertible {
    /// One clause (`>=0.12`).
    public struct Clause: Sendable, Hashable, Codable, CustomStringConvertible {
        public enum Operator: String, Sendable, Hashable, Codable, CaseIterable {
            case compatible = "~=", equal = "==", notEqual = "!=", lessOrEqual = "<=", greaterOrEqual = ">="
            case less = "<", greater = ">", arbitrary = "==="
        }
        public var op: Operator
        /// The version text after the operator (may end in `.*` for `==`/`!=`).
        public var version: String

        public var description: String { "\(op.rawValue)\(version)" }

        /// Parses one clause; nil when it is not `OP VERSION`.
        public init?(_ text: String) {
            let t = text.trimmingWhitespace()
            let ops = Operator.allCases.sorted { $0.rawValue.count > $1.rawValue.count }
            guard let op = ops.first(where: { t.hasPrefix($0.rawValue) }) else { return nil }
            let rest = String(t.dropFirst(op.rawValue.count)).trimmingWhitespace()
            guard !rest.isEmpty else { return nil }
            if op == .arbitrary { self.op = op; version = rest; return }
            let wildcard = rest.hasSuffix(".*")
            if wildcard, op != .equal, op != .notEqual { return nil }
            guard let v = PEP440Version(wildcard ? String(rest.dropLast(2)) : rest) else { return nil }
            if op == .compatible, v.release.count < 2 { return nil }
            if wildcard, v.local != nil { return nil }
            self.op = op; version = rest
        }

        var parsed: PEP440Version? { PEP440Version(version.hasSuffix(".*") ? String(version.dropLast(2)) : version) }

        /// Whether `candidate` satisfies this clause (ignoring the pre-release admission rule).
        public func admits(_ candidate: PEP440Version) -> Bool {
            if op == .arbitrary { return candidate.description == version }
            guard let spec = parsed else { return false }
            let wildcard = version.hasSuffix(".*")
            var c = candidate
            if spec.local == nil { c.local = nil }
            switch op {
            case .equal: return wildcard ? Self.hasPrefix(c, spec) : c == spec
            case .notEqual: return wildcard ? !Self.hasPrefix(c, spec) : c != spec
            case .lessOrEqual: return c <= spec
            case .greaterOrEqual: return c >= spec
            case .less:
                guard c < spec else { return false }
                // `<V` never admits a pre-release of V itself (unless V is one).
                if spec.pre == nil, spec.dev == nil, c.pre != nil || c.dev != nil, Self.sameRelease(c, spec) { return false }
                return true
            case .greater:
                guard c > spec else { return false }
                if spec.post == nil, c.post != nil, Self.sameRelease(c, spec) { return false }
                return true
            case .compatible:
                var prefix = spec
                prefix.release = Array(spec.release.dropLast())
                prefix.pre = nil; prefix.post = nil; prefix.dev = nil
                return c >= spec && Self.hasPrefix(c, prefix)
            case .arbitrary: return false
            }
        }

        static func padded(_ r: [Int], _ n: Int) -> [Int] { r + Array(repeating: 0, count: max(0, n - r.count)) }
        static func sameRelease(_ a: PEP440Version, _ b: PEP440Version) -> Bool {
            let n = max(a.release.count, b.release.count)
            return a.epoch == b.epoch && padded(a.release, n) == padded(b.release, n)
        }
        static func hasPrefix(_ c: PEP440Version, _ prefix: PEP440Version) -> Bool {
            guard c.epoch == prefix.epoch else { return false }
            let n = prefix.release.count
            return Array(padded(c.release, n).prefix(n)) == prefix.release
        }
    }

    public var clauses: [Clause]

    /// The form a specifier takes, for error messages.
    public static let formHint = "PEP 440 specifiers such as '>=0.12', '<=0.16', '==0.16.0', '>=0.12,<0.17' or '==0.16.*'"

    /// Parses a comma-separated specifier set; nil when a clause does not parse. An empty string
    /// is the set that admits every version.
    public init?(_ text: String) {
        let parts = text.split(separator: ",").map { String($0).trimmingWhitespace() }.filter { !$0.isEmpty }
        var out: [Clause] = []
        for p in parts { guard let c = Clause(p) else { return nil }; out.append(c) }
        clauses = out
    }

    /// The set that admits every version.
    public static let any = VersionSpecifierSet(clauses: [])
    public init(clauses: [Clause]) { self.clauses = clauses }

    public var description: String { clauses.map(\.description).joined(separator: ",") }
    public var isEmpty: Bool { clauses.isEmpty }

    /// Whether `version` satisfies every clause. Pre-releases are admitted only when a clause
    /// names one (or `prereleases` is true).
    public func admits(_ version: PEP440Version, prereleases: Bool = false) -> Bool {
        if version.pre != nil || version.dev != nil, !prereleases,
           !clauses.contains(where: { $0.parsed.map { $0.pre != nil || $0.dev != nil } ?? false }) {
            return false
        }
        return clauses.allSatisfy { $0.admits(version) }
    }

    /// Whether CPython `python` (as X.Y.0 up to X.Y.max) could satisfy the set: `requires-python`
    /// is about interpreters, so `<3.13` rules out 3.13 and `>=3.11` admits 3.11.
    public func admits(python: PythonVersion) -> Bool {
        // The interpreter's feature releases X.Y.z: admitted when X.Y.0 is, or (for ranges ending
        // inside the minor version, `<3.11.4`) any X.Y.z is; checking .0 and a high patch suffices.
        [0, 99].contains { patch in admits(PEP440Version(release: [python.major, python.minor, patch])) }
    }

    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let v = VersionSpecifierSet(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "invalid specifier '\(text)'"))
        }
        self = v
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}
