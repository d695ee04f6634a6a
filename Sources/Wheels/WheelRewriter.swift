#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Crypto
import FarmCore
import Foundation

/// Turns a built wheel into a new one without rebuilding: a version suffix (`0.11.0` →
/// `0.11.0.post1`) and/or a new long description.
///
/// The original must pass verification first (its RECORD hashes are then known good, so
/// unchanged members keep their rows). Unchanged members are copied raw — no inflate, no
/// deflate — so the cost is about that of copying the file; only METADATA, the version file and
/// RECORD are rewritten. The result is written to a temporary name next to its destination,
/// verified, and only then renamed into place.
public struct WheelRewriter: Sendable {
    /// What to change.
    public struct Changes: Sendable, Hashable {
        /// A `.postN` / `.devN` suffix for the version.
        public var versionSuffix: VersionSuffix?
        /// A new long description and its content type (`text/markdown`).
        public var readme: (text: String, contentType: String)?
        /// A file inside the package that carries the version (`vllm/_version.py`), updated too.
        public var versionFile: String?

        /// Creates a change set.
        public init(versionSuffix: VersionSuffix? = nil, readme: (text: String, contentType: String)? = nil, versionFile: String? = nil) {
            self.versionSuffix = versionSuffix; self.readme = readme; self.versionFile = versionFile
        }

        public static func == (l: Self, r: Self) -> Bool {
            l.versionSuffix == r.versionSuffix && l.versionFile == r.versionFile && l.readme?.text == r.readme?.text && l.readme?.contentType == r.readme?.contentType
        }
        public func hash(into h: inout Hasher) {
            h.combine(versionSuffix); h.combine(versionFile); h.combine(readme?.text); h.combine(readme?.contentType)
        }
    }

    /// What a rewrite produced.
    public struct Result: Sendable {
        /// The new wheel's path.
        public var path: String
        /// The new filename.
        public var filename: WheelFilename
        /// Verification of the new wheel.
        public var report: WheelReport
        /// Members copied raw and members rewritten.
        public var copied: Int
        public var rewritten: Int
        /// How long each phase took.
        public var timings: Timings
    }

    /// Wall-clock seconds of each phase of one rewrite.
    public struct Timings: Sendable, Hashable, Codable {
        /// Verifying the original.
        public var verifyBefore: Double = 0
        /// Writing the new wheel (into the page cache; not yet on disk).
        public var write: Double = 0
        /// `fsync` of the new wheel. It runs while the new wheel is verified, so it overlaps
        /// ``verifyAfter`` and is not part of the total on its own.
        public var sync: Double = 0
        /// Verifying the new wheel.
        public var verifyAfter: Double = 0
        /// After verification: waiting for the sync to end, the rename and the directory sync.
        public var commit: Double = 0
        /// The whole rewrite.
        public var total: Double = 0

        public init() {}

        /// One line, `name=seconds` pairs, for `wheelfarm rewrite --timings`.
        public var line: String {
            func s(_ v: Double) -> String { String(format: "%.3f", v) }
            return "verify_before=\(s(verifyBefore)) write=\(s(write)) sync=\(s(sync)) verify_after=\(s(verifyAfter)) commit=\(s(commit)) total=\(s(total))"
        }
    }

    /// The verifier used before and after.
    public var verifier: WheelVerifier
    /// The expectation the original must meet (name, arch, ISA…); the version is checked by the rewriter.
    public var expectation: WheelExpectation

    /// Creates a rewriter.
    public init(verifier: WheelVerifier = WheelVerifier(), expectation: WheelExpectation = WheelExpectation()) {
        self.verifier = verifier; self.expectation = expectation
    }

    /// Rewrites `path` into `outputDirectory` (default: next to the original); with `inPlace`
    /// the original is replaced atomically (removed once the new file is in place when the
    /// filename changes).
    public func rewrite(path: String, changes: Changes, outputDirectory: String? = nil, inPlace: Bool = false) async throws -> Result {
        guard changes.versionSuffix != nil || changes.readme != nil else {
            throw WheelError.invalidInput("nothing to rewrite: give --version-suffix and/or --readme")
        }
        let clock = ContinuousClock()
        let start = clock.now
        var timings = Timings()
        func seconds(since t: ContinuousClock.Instant) -> Double { (clock.now - t).seconds }
        let before = await verifier.verify(path: path, expectation: expectation)
        timings.verifyBefore = seconds(since: start)
        guard before.passed else {
            throw WheelError.verificationFailed(path: path, failures: before.failures.map { "\($0.id.rawValue): \($0.message)" })
        }
        let writeStart = clock.now
        let plan = try await Self.onThread { try Self.write(path: path, changes: changes, outputDirectory: inPlace ? nil : outputDirectory) }
        timings.write = seconds(since: writeStart)
        if !inPlace, (plan.finalPath as NSString).standardizingPath == (path as NSString).standardizingPath {
            Self.discard(plan.temporaryPath)
            throw WheelError.invalidInput("the rewritten wheel has the same name as '\(path)': give -o DIR or --in-place to replace it")
        }
        var after = expectation
        after.version = plan.filename.version
        // The new file must be on disk before the rename makes it visible. Verification reads it
        // from the page cache and does not need it on disk, so the fsync runs meanwhile on
        // another thread instead of adding the disk's write time to the rewrite.
        let verifyStart = clock.now
        async let synced: Double = Self.onThread {
            let t = clock.now
            try Self.sync(path: plan.temporaryPath)
            return (clock.now - t).seconds
        }
        let report = await verifier.verify(path: plan.temporaryPath, expectation: after)
        timings.verifyAfter = seconds(since: verifyStart)
        let commitStart = clock.now
        do {
            timings.sync = try await synced
        } catch {
            Self.discard(plan.temporaryPath)
            throw error
        }
        guard report.passed else {
            Self.discard(plan.temporaryPath)
            throw WheelError.verificationFailed(path: plan.finalPath, failures: report.failures.map { "\($0.id.rawValue): \($0.message)" })
        }
        guard rename(plan.temporaryPath, plan.finalPath) == 0 else {
            let e = errno
            Self.discard(plan.temporaryPath)
            throw WheelError.io(path: plan.finalPath, operation: "rename into", errno: e)
        }
        rmdir((plan.temporaryPath as NSString).deletingLastPathComponent)
        if inPlace, plan.finalPath != path { unlink(path) }
        // The rename itself is durable once the directory is synced.
        try Self.sync(path: (plan.finalPath as NSString).deletingLastPathComponent, directory: true)
        timings.commit = seconds(since: commitStart)
        timings.total = seconds(since: start)
        var finalReport = report
        finalReport.path = plan.finalPath
        return Result(path: plan.finalPath, filename: plan.filename, report: finalReport, copied: plan.copied, rewritten: plan.rewritten,
                      timings: timings)
    }

    /// Runs blocking work (file I/O, fsync) on a Dispatch thread rather than on the cooperative pool.
    static func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(with: Swift.Result { try body() }) }
        }
    }

    /// Flushes a file (or a directory's entries) to disk.
    static func sync(path: String, directory: Bool = false) throws(WheelError) {
        let fd = open(path.isEmpty ? "." : path, O_RDONLY | O_CLOEXEC | (directory ? O_DIRECTORY : 0))
        guard fd >= 0 else { throw WheelError.io(path: path, operation: "open", errno: errno) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw WheelError.io(path: path, operation: "sync", errno: errno) }
    }

    /// Removes a temporary wheel and its private directory.
    static func discard(_ temporaryPath: String) {
        unlink(temporaryPath)
        rmdir((temporaryPath as NSString).deletingLastPathComponent)
    }

    struct Plan: Sendable {
        var temporaryPath: String
        var finalPath: String
        var filename: WheelFilename
        var copied: Int
        var rewritten: Int
    }

    /// The new version for a suffix; throws when the suffix cannot apply or would not sort higher.
    public static func newVersion(_ version: String, suffix: VersionSuffix) throws(WheelError) -> PEP440Version {
        guard let original = PEP440Version(version) else { throw WheelError.invalidInput("the wheel's version '\(version)' is not valid PEP 440") }
        var base = original
        // Rewriting 0.11.0.post1 with .post2 starts from the release, not from the .post1.
        if suffix.kind == .post { base.post = nil; base.dev = nil } else { base.dev = nil }
        guard let v = suffix.applied(to: base) else { throw WheelError.invalidSuffix(suffix.description) }
        guard v > original else { throw WheelError.versionNotGreater(original: original.description, rewritten: v.description) }
        return v
    }

    static func write(path: String, changes: Changes, outputDirectory: String?) throws -> Plan {
        let archive = try ZipArchive(path: path)
        let basename = (path as NSString).lastPathComponent
        guard var filename = WheelFilename(basename) else { throw WheelError.invalidInput("'\(basename)' is not a wheel filename") }
        let oldVersion = filename.version
        var newVersion = oldVersion
        if let suffix = changes.versionSuffix { newVersion = try Self.newVersion(oldVersion, suffix: suffix).description }
        filename.version = newVersion
        let directory = outputDirectory ?? (path as NSString).deletingLastPathComponent
        let dir = directory.isEmpty ? "." : directory
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let finalPath = dir + "/" + filename.description
        // The new wheel is written under its final name inside a private directory next to the
        // destination (same filesystem, so the final rename is atomic), and verified there.
        let scratch = dir + "/.wheelfarm-rewrite-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        guard mkdir(scratch, 0o700) == 0 else { throw WheelError.io(path: scratch, operation: "create", errno: errno) }
        let temporaryPath = scratch + "/" + filename.description

        // The .dist-info / .data directories as they are named in the archive.
        let distInfo = archive.entries.compactMap { e -> String? in
            let first = e.name.split(separator: "/", maxSplits: 1).first.map(String.init) ?? ""
            return first.hasSuffix(".dist-info") && e.name.contains("/") ? first : nil
        }.first ?? "\(filename.name)-\(oldVersion).dist-info"
        let stem = String(distInfo.dropLast(".dist-info".count))
        let newStem = String(stem[..<(stem.lastIndex(of: "-") ?? stem.endIndex)]) + "-" + newVersion
        func rename(_ name: String) -> String {
            for suffix in [".dist-info/", ".data/"] where name.hasPrefix(stem + suffix) {
                return newStem + suffix + name.dropFirst(stem.count + suffix.count)
            }
            return name
        }

        let reader = MemberReader()
        let limits = archive.limits
        var oldRecord: [String: RecordFile.Row] = [:]
        if let recordEntry = archive.entries.first(where: { $0.name == "\(distInfo)/RECORD" }) {
            for row in try RecordFile(bytes: try reader.readAll(archive, recordEntry, limit: limits.maxMetadataBytes)).rows { oldRecord[row.path] = row }
        }
        let writer = try ZipWriter(path: temporaryPath)
        var rows: [(path: String, hash: String, size: String)] = []
        var copied = 0, rewritten = 0
        do {
            for entry in archive.entries {
                let newName = rename(entry.name)
                if entry.name == "\(distInfo)/RECORD" { continue }
                var replacement: [UInt8]?
                if entry.name == "\(distInfo)/METADATA" {
                    var metadata = try CoreMetadata(bytes: try reader.readAll(archive, entry, limit: limits.maxMetadataBytes))
                    if changes.versionSuffix != nil {
                        for i in metadata.fields.indices where metadata.fields[i].name.lowercased() == "version" { metadata.fields[i].value = newVersion }
                    }
                    if let readme = changes.readme {
                        metadata.fields.removeAll { $0.name.lowercased() == "description" || $0.name.lowercased() == "description-content-type" }
                        metadata.fields.append(("Description-Content-Type", readme.contentType))
                        metadata.body = readme.text.hasSuffix("\n") ? readme.text : readme.text + "\n"
                    }
                    replacement = Array(metadata.rendered().utf8)
                } else if changes.versionSuffix != nil, let versionFile = changes.versionFile, entry.name == versionFile {
                    let text = String(decoding: try reader.readAll(archive, entry, limit: limits.maxMetadataBytes), as: UTF8.self)
                    replacement = Array(Self.replaceVersion(in: text, old: oldVersion, new: PEP440Version(newVersion)!).utf8)
                }
                if let bytes = replacement {
                    try writer.addDeflated(name: Array(newName.utf8), bytes: bytes, like: entry)
                    rows.append((newName, "sha256=" + RecordHasher.urlsafeBase64(Array(SHA256.hash(data: bytes))), String(bytes.count)))
                    rewritten += 1
                } else {
                    let data = try archive.memberData(entry)
                    try writer.copyRaw(entry, data: data, from: archive, name: Array(newName.utf8))
                    if !entry.isDirectory {
                        let row = oldRecord[entry.name]
                        rows.append((newName, row?.hash ?? "", row?.size ?? ""))
                    }
                    copied += 1
                }
            }
            let recordName = newStem + ".dist-info/RECORD"
            rows.append((recordName, "", ""))
            try writer.addDeflated(name: Array(recordName.utf8), bytes: Array(RecordFile.render(rows).utf8), like: nil)
            rewritten += 1
            try writer.finish()
        } catch {
            unlink(temporaryPath)
            rmdir(scratch)
            throw error
        }
        return Plan(temporaryPath: temporaryPath, finalPath: finalPath, filename: filename, copied: copied, rewritten: rewritten)
    }

    /// Rewrites the version in a version file as setuptools-scm writes it (`vllm/_version.py`):
    ///
    ///     __version__ = version = '0.11.0'
    ///     __version_tuple__ = version_tuple = (0, 11, 0)
    ///
    /// Every string literal equal to the old version (`'0.11.0'`, `"0.11.0"`) becomes the new
    /// version, and the tuple literal assigned to `__version_tuple__` / `version_tuple` becomes
    /// ``versionTuple(_:)`` of the new version. Every other byte is kept, line endings included.
    static func replaceVersion(in text: String, old: String, new: PEP440Version) -> String {
        var out = text
        for q in ["'", "\""] { out = out.replacingOccurrences(of: q + old + q, with: q + new.description + q) }
        let tuple = versionTuple(new)
        // Split on "\n" as a Unicode scalar: split on Characters would miss it inside "\r\n",
        // which Swift treats as one Character.
        let lines = out.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false).map { scalars -> String in
            let text = String(String.UnicodeScalarView(scalars))
            let line = Substring(text)
            guard let range = versionTupleLiteral(in: line) else { return text }
            return String(line[..<range.lowerBound]) + tuple + String(line[range.upperBound...])
        }
        return lines.joined(separator: "\n")
    }

    /// The version tuple setuptools-scm writes for `version` (its `_version_as_tuple`, rendered
    /// with Python's `repr`), so a rewritten wheel says what a build of that version would have
    /// said: the release numbers as ints, then as strings the epoch (`'1!'`, placed first), the
    /// pre-release (`'rc1'`), `'postN'`, `'devN'` and the local label (`'g1234.d20250101'`).
    /// `0.11.0.post1` → `(0, 11, 0, 'post1')`; `1.0.0.dev3+g1234` → `(1, 0, 0, 'dev3', 'g1234')`.
    static func versionTuple(_ v: PEP440Version) -> String {
        var items: [String] = []
        if v.epoch != 0 { items.append("'\(v.epoch)!'") }
        items += v.release.map(String.init)
        if let pre = v.pre { items.append("'\(pre.kind.rawValue)\(pre.number)'") }
        if let post = v.post { items.append("'post\(post)'") }
        if let dev = v.dev { items.append("'dev\(dev)'") }
        if let local = v.local { items.append("'\(local.joined(separator: "."))'") }
        return "(" + items.joined(separator: ", ") + (items.count == 1 ? ",)" : ")")
    }

    /// The range of the tuple literal in a line `__version_tuple__ = version_tuple = (…)`
    /// (targets in any order and number, optionally annotated, `# comment` allowed after it);
    /// `nil` for any other line. A hand-written scan rather than a regular expression so that
    /// quotes inside the tuple are skipped properly.
    static func versionTupleLiteral(in line: Substring) -> Range<Substring.Index>? {
        var i = line.startIndex
        func skipBlanks() { while i < line.endIndex, line[i] == " " || line[i] == "\t" { i = line.index(after: i) } }
        func identifier() -> Substring {
            let s = i
            while i < line.endIndex, line[i] == "_" || (line[i].isASCII && (line[i].isLetter || line[i].isNumber)) { i = line.index(after: i) }
            return line[s..<i]
        }
        skipBlanks()
        var targets = 0
        while true {
            let name = identifier()
            guard name == "__version_tuple__" || name == "version_tuple" else { return nil }
            skipBlanks()
            if i < line.endIndex, line[i] == ":" {  // `version_tuple: VERSION_TUPLE = (…)`
                while i < line.endIndex, line[i] != "=" { i = line.index(after: i) }
            }
            guard i < line.endIndex, line[i] == "=" else { return nil }
            i = line.index(after: i)
            guard i == line.endIndex || line[i] != "=" else { return nil }
            targets += 1
            skipBlanks()
            if i < line.endIndex, line[i] == "(" { break }
        }
        guard targets > 0 else { return nil }
        let open = i
        var quote: Character?
        i = line.index(after: i)
        while i < line.endIndex {
            let c = line[i]
            if let q = quote {
                if c == "\\" { i = line.index(after: i); if i == line.endIndex { return nil } } else if c == q { quote = nil }
            } else if c == "'" || c == "\"" {
                quote = c
            } else if c == "(" {
                return nil  // nested: not a version tuple as setuptools-scm writes it
            } else if c == ")" {
                let close = line.index(after: i)
                var rest = line[close...].drop { $0 == " " || $0 == "\t" }
                if rest.last == "\r" { rest = rest.dropLast() }
                guard rest.isEmpty || rest.first == "#" else { return nil }
                return open..<close
            }
            i = line.index(after: i)
        }
        return nil
    }
}
