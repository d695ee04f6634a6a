/// A version number as defined by PEP 440 (`1!2.0.0rc1.post2.dev3+local.1`).
///
/// Written by hand: no kept Swift package parses PEP 440 (semantic-version packages reject
/// `.post1`, `rc1` and epochs). Parsing follows the specification's normalisation rules
/// (case-insensitive, `-`/`_`/`.` separators, `alpha`/`beta`/`c`/`pre`/`preview`/`rev`/`r`
/// spellings, implicit numbers, `v` prefix); comparison follows its ordering rules.
public struct PEP440Version: Sendable, Hashable, Comparable, CustomStringConvertible, Codable {
    /// A pre-release segment kind, ordered `a < b < rc`.
    public enum PreKind: String, Sendable, Hashable, Comparable, Codable {
        case a, b, rc
        public static func < (l: PreKind, r: PreKind) -> Bool {
            let order: [PreKind] = [.a, .b, .rc]
            return order.firstIndex(of: l)! < order.firstIndex(of: r)!
        }
    }

    public var epoch: Int
    public var release: [Int]
    public var pre: (kind: PreKind, number: Int)? {
        get { preKind.map { ($0, preNumber) } }
        set { preKind = newValue?.kind; preNumber = newValue?.number ?? 0 }
    }
    public var post: Int?
    public var dev: Int?
    public var local: [String]?

    private var preKind: PreKind?
    private var preNumber: Int = 0

    /// The accepted forms, for error messages.
    public static let formHint = "a PEP 440 version such as 0.11.0, 0.11.0rc1, 0.11.0.post1 or 0.11.0.dev2"

    /// Parses a version string; `nil` if it is not valid PEP 440.
    public init?(_ text: String) {
        var s = Substring(text.trimmingWhitespace().lowercased())
        if s.first == "v" { s = s.dropFirst() }
        guard !s.isEmpty else { return nil }
        epoch = 0; release = []; post = nil; dev = nil; local = nil
        // local
        if let plus = s.firstIndex(of: "+") {
            let parts = s[s.index(after: plus)...].split(omittingEmptySubsequences: false, whereSeparator: { $0 == "." || $0 == "-" || $0 == "_" })
            guard !parts.isEmpty, parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) } }) else { return nil }
            local = parts.map { part in Int(part).map(String.init) ?? String(part) }
            s = s[..<plus]
        }
        // epoch
        if let bang = s.firstIndex(of: "!") {
            guard let e = Int(s[..<bang]), e >= 0 else { return nil }
            epoch = e
            s = s[s.index(after: bang)...]
        }
        // release
        var scanner = Scanner440(s)
        guard let first = scanner.number() else { return nil }
        release = [first]
        while scanner.peek(".") , let n = scanner.numberAfterDot() { release.append(n) }
        // pre, post, dev in that order
        if let (kind, n) = scanner.preRelease() { preKind = kind; preNumber = n }
        if let n = scanner.postRelease() { post = n }
        if let n = scanner.devRelease() { dev = n }
        guard scanner.atEnd else { return nil }
    }

    /// Creates a version from its parts.
    public init(epoch: Int = 0, release: [Int], pre: (kind: PreKind, number: Int)? = nil,
                post: Int? = nil, dev: Int? = nil, local: [String]? = nil) {
        self.epoch = epoch; self.release = release; self.post = post; self.dev = dev; self.local = local
        self.pre = pre
    }

    /// The normalised form (`1.0rc1.post2.dev3`).
    public var description: String {
        var out = epoch != 0 ? "\(epoch)!" : ""
        out += release.map(String.init).joined(separator: ".")
        if let preKind { out += "\(preKind.rawValue)\(preNumber)" }
        if let post { out += ".post\(post)" }
        if let dev { out += ".dev\(dev)" }
        if let local { out += "+" + local.joined(separator: ".") }
        return out
    }

    public static func == (l: Self, r: Self) -> Bool { l.compareKey == r.compareKey }
    public func hash(into h: inout Hasher) { h.combine(compareKey.description) }

    public static func < (l: Self, r: Self) -> Bool { compare(l, r) < 0 }

    private var trimmedRelease: [Int] {
        var r = release
        while r.count > 1, r.last == 0 { r.removeLast() }
        return r
    }
    private var compareKey: [String] {
        [String(epoch), trimmedRelease.map(String.init).joined(separator: "."),
         preKind.map { "\($0.rawValue)\(preNumber)" } ?? "-", post.map(String.init) ?? "-",
         dev.map(String.init) ?? "-", local?.joined(separator: ".") ?? "-"]
    }

    private static func compare(_ l: Self, _ r: Self) -> Int {
        if l.epoch != r.epoch { return l.epoch < r.epoch ? -1 : 1 }
        let n = max(l.release.count, r.release.count)
        for i in 0..<n {
            let a = i < l.release.count ? l.release[i] : 0, b = i < r.release.count ? r.release[i] : 0
            if a != b { return a < b ? -1 : 1 }
        }
        // pre: a dev-only release sorts before any pre; no pre sorts after all pre.
        func preRank(_ v: Self) -> (Int, Int, Int) {
            if let k = v.preKind { return (1, [.a: 0, .b: 1, .rc: 2][k]!, v.preNumber) }
            if v.post == nil, v.dev != nil { return (0, 0, 0) }
            return (2, 0, 0)
        }
        let pl = preRank(l), pr = preRank(r)
        if pl != pr { return pl < pr ? -1 : 1 }
        let postL = l.post.map { $0 } ?? -1, postR = r.post.map { $0 } ?? -1
        if postL != postR { return postL < postR ? -1 : 1 }
        let devL = l.dev ?? Int.max, devR = r.dev ?? Int.max
        if devL != devR { return devL < devR ? -1 : 1 }
        switch (l.local, r.local) {
        case (nil, nil): return 0
        case (nil, _): return -1
        case (_, nil): return 1
        case let (a?, b?):
            for (x, y) in zip(a, b) where x != y {
                switch (Int(x), Int(y)) {
                case let (i?, j?): return i < j ? -1 : 1
                case (_?, nil): return 1
                case (nil, _?): return -1
                default: return x < y ? -1 : 1
                }
            }
            return a.count == b.count ? 0 : (a.count < b.count ? -1 : 1)
        }
    }

    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let v = PEP440Version(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "'\(text)' is not \(Self.formHint)"))
        }
        self = v
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

/// A `--version-suffix`: `.postN` or `.devN`, the only suffixes PyPI accepts for re-uploads.
public struct VersionSuffix: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable { case post, dev }
    public let kind: Kind
    public let number: Int

    /// The accepted forms, for error messages.
    public static let formHint = "'.postN' or '.devN' with N a whole number, e.g. '.post1' or '.dev2'"

    /// Parses `.post1` / `.dev2` (the leading dot is required, as in the old pipeline).
    public init?(_ text: String) {
        let t = text.trimmingWhitespace().lowercased()
        for kind in [Kind.post, .dev] {
            let prefix = ".\(kind.rawValue)"
            if t.hasPrefix(prefix), let n = Int(t.dropFirst(prefix.count)), n >= 0,
               t.dropFirst(prefix.count).allSatisfy(\.isNumber) {
                self.kind = kind; self.number = n; return
            }
        }
        return nil
    }

    public init(kind: Kind, number: Int) { self.kind = kind; self.number = number }

    public var description: String { ".\(kind.rawValue)\(number)" }

    /// Applies the suffix to a base version; `nil` when the base already has that segment.
    public func applied(to base: PEP440Version) -> PEP440Version? {
        var v = base
        switch kind {
        case .post:
            guard v.post == nil, v.dev == nil else { return nil }
            v.post = number
        case .dev:
            guard v.dev == nil else { return nil }
            v.dev = number
        }
        return v
    }
}

private struct Scanner440 {
    var s: Substring
    init(_ s: Substring) { self.s = s }
    var atEnd: Bool { s.isEmpty }
    func peek(_ c: Character) -> Bool { s.first == c }

    mutating func number() -> Int? {
        let digits = s.prefix(while: { $0.isASCII && $0.isNumber })
        guard !digits.isEmpty, let n = Int(digits) else { return nil }
        s = s.dropFirst(digits.count)
        return n
    }
    mutating func numberAfterDot() -> Int? {
        let save = s
        s = s.dropFirst()
        if let n = number() { return n }
        s = save
        return nil
    }
    mutating func separator() { if let f = s.first, f == "." || f == "-" || f == "_" { s = s.dropFirst() } }
    mutating func word(_ options: [String]) -> String? {
        for o in options.sorted(by: { $0.count > $1.count }) where s.hasPrefix(o) {
            s = s.dropFirst(o.count); return o
        }
        return nil
    }
    mutating func optionalNumber() -> Int {
        let save = s
        separator()
        if let n = number() { return n }
        s = save
        return 0
    }
    mutating func preRelease() -> (PEP440Version.PreKind, Int)? {
        let save = s
        separator()
        guard let w = word(["alpha", "beta", "preview", "pre", "rc", "a", "b", "c"]) else { s = save; return nil }
        let kind: PEP440Version.PreKind = (w == "alpha" || w == "a") ? .a : (w == "beta" || w == "b") ? .b : .rc
        return (kind, optionalNumber())
    }
    mutating func postRelease() -> Int? {
        let save = s
        if s.first == "-", let n = { () -> Int? in s = s.dropFirst(); return number() }() { return n }
        s = save
        separator()
        guard word(["post", "rev", "r"]) != nil else { s = save; return nil }
        return optionalNumber()
    }
    mutating func devRelease() -> Int? {
        let save = s
        separator()
        guard word(["dev"]) != nil else { s = save; return nil }
        return optionalNumber()
    }
}

extension StringProtocol {
    /// The string without leading and trailing spaces, tabs and newlines.
    public func trimmingWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        guard let start = firstIndex(where: { !isSpace($0) }), let end = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[start...end])
    }
}
