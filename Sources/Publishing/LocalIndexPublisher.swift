#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import FarmCore
import Foundation
import Logging

/// Publishes wheels into a directory laid out as a static package index.
///
/// Layout under the root:
/// - `packages/<project>/<file>`: the wheels;
/// - `simple/index.html`, `simple/<project>/index.html`: PEP 503 pages, links carrying `#sha256=`
///   and `data-requires-python`;
/// - `simple/index.json`, `simple/<project>/index.json`: the same as PEP 691 JSON (the project's
///   JSON file is the record the pages are generated from).
///
/// `pip install --index-url file:///ROOT/simple NAME` works, and so does any static web server
/// serving ROOT. The same filename with the same SHA-256 is skipped; with other content it is
/// refused, as on a real index. Concurrent publishers are serialised with a lock file.
public struct LocalIndexPublisher: WheelPublisher {
    /// The index root directory.
    public let root: URL
    private let logger: Logger

    /// Creates a publisher for the index at `root` (created on first publish).
    public init(root: URL, logger: Logger) {
        self.root = root.standardizedFileURL; self.logger = logger
    }

    /// The root path.
    public var destination: String { root.path }

    /// The `--index-url` pip needs for this index.
    public var pipIndexURL: String { root.appendingPathComponent("simple").absoluteString }

    /// The files the index holds for `project`, with their digests.
    public func listedFiles(project: String) async throws -> [IndexedFile] {
        let record = try readRecord(project: ProjectName.normalise(project))
        return (record?.files ?? []).map {
            IndexedFile(filename: $0.filename, sha256: $0.hashes["sha256"].flatMap(SHA256Digest.init(hex:)),
                        url: root.appendingPathComponent("packages/\(ProjectName.normalise(project))/\($0.filename)").absoluteString)
        }
    }

    /// Copies a listed file out of the index, checking its digest.
    public func fetch(_ file: IndexedFile, to path: String) async throws {
        guard let url = file.url.flatMap(URL.init(string:)), url.isFileURL else {
            throw PublishingError.indexUnreadable(url: root.path, problem: "'\(file.filename)' is not a file of this index")
        }
        try FileManager.default.copyItem(atPath: url.path, toPath: path)
        let copied = try StreamingDigest.file(at: path)
        if let listed = file.sha256, listed != copied.digest {
            try? FileManager.default.removeItem(atPath: path)
            throw PublishingError.indexUnreadable(url: url.path, problem: "the file's SHA-256 is \(copied.digest.hex), the index lists \(listed.hex)")
        }
    }

    /// Copies `wheel` into the index and regenerates the pages, unless it is already there.
    public func publish(_ wheel: PublishableWheel, dryRun: Bool = false) async throws -> PublicationOutcome {
        try wheel.checkUnchangedSinceVerification()
        if dryRun {
            let record = try? readRecord(project: wheel.projectName)
            return try decide(wheel, record: record ?? ProjectRecord(name: wheel.projectName, files: [])) ?? .wouldUpload
        }
        return try withLock {
            var record = try readRecord(project: wheel.projectName) ?? ProjectRecord(name: wheel.projectName, files: [])
            if let decided = try decide(wheel, record: record) {
                if decided == .alreadyThere { try repairRootPagesLocked() }
                return decided
            }
            let dir = root.appendingPathComponent("packages").appendingPathComponent(wheel.projectName)
            try createDirectory(dir)
            let final = dir.appendingPathComponent(wheel.filename)
            let partial = dir.appendingPathComponent(".\(wheel.filename).partial-\(UUID().uuidString.prefix(8))")
            do {
                try FileManager.default.copyItem(atPath: wheel.path, toPath: partial.path)
                let copied = try StreamingDigest.file(at: partial.path)
                guard copied.digest == wheel.sha256 else {
                    throw PublishingError.fileAccess(path: partial.path, problem: "copy has sha256 '\(copied.digest.hex)', expected '\(wheel.sha256.hex)'")
                }
                guard rename(partial.path, final.path) == 0 else {
                    throw PublishingError.fileAccess(path: final.path, problem: "cannot move the copy into place (errno \(errno))")
                }
            } catch {
                try? FileManager.default.removeItem(at: partial)
                throw error as? PublishingError ?? .fileAccess(path: final.path, problem: "\(error)")
            }
            record.files.removeAll { $0.filename == wheel.filename }
            record.files.append(.init(filename: wheel.filename, url: "../../packages/\(wheel.projectName)/\(wheel.filename)",
                                      hashes: ["sha256": wheel.sha256.hex],
                                      requiresPython: wheel.metadataValue("Requires-Python")))
            record.files.sort { $0.filename < $1.filename }
            try writeProject(record)
            try writeRootPages()
            logger.info("added to local index", metadata: ["file": "\(wheel.filename)", "index": "\(root.path)"])
            return .uploaded(attempts: 1)
        }
    }

    /// Rewrites the root pages (`simple/index.html`, `simple/index.json`) when they are missing or
    /// do not list every project page: a run that stopped between a project's page and the root
    /// pages (a full disk) leaves them so, and the files they should list are there. Returns
    /// whether it rewrote them.
    @discardableResult
    public func repairRootPages() throws -> Bool {
        guard FileManager.default.fileExists(atPath: simpleDir.path) else { return false }
        return try withLock { try repairRootPagesLocked() }
    }

    @discardableResult
    private func repairRootPagesLocked() throws -> Bool {
        guard rootPagesAreStale() else { return false }
        try writeRootPages()
        logger.info("local index root pages regenerated", metadata: ["index": "\(root.path)"])
        return true
    }

    private func decide(_ wheel: PublishableWheel, record: ProjectRecord) throws -> PublicationOutcome? {
        guard let existing = record.files.first(where: { $0.filename == wheel.filename }) else { return nil }
        let digest = existing.hashes["sha256"].flatMap(SHA256Digest.init(hex:))
        if digest == wheel.sha256 {
            // Listed is not enough: the file itself must be there (a lost file is copied again).
            let file = root.appendingPathComponent("packages/\(wheel.projectName)/\(wheel.filename)")
            let size = ((try? FileManager.default.attributesOfItem(atPath: file.path))?[.size] as? NSNumber)?.int64Value
            return size == wheel.size ? .alreadyThere : nil
        }
        return .refused(.filenameBurnt(filename: wheel.filename, destination: destination, existing: digest, ours: wheel.sha256,
                                       suggestedSuffix: BurntFilename.nextFreePostSuffix(version: wheel.version,
                                                                                         listedFilenames: record.files.map(\.filename))))
    }

    // MARK: records and pages

    /// The PEP 691 project document.
    struct ProjectRecord: Codable {
        struct File: Codable {
            let filename: String
            let url: String
            let hashes: [String: String]
            let requiresPython: String?
            enum CodingKeys: String, CodingKey { case filename, url, hashes, requiresPython = "requires-python" }
        }
        struct Meta: Codable { var apiVersion = "1.0"; enum CodingKeys: String, CodingKey { case apiVersion = "api-version" } }
        var meta = Meta()
        let name: String
        var files: [File]
        init(name: String, files: [File]) { self.name = name; self.files = files }
    }

    private var simpleDir: URL { root.appendingPathComponent("simple") }

    private func readRecord(project: String) throws -> ProjectRecord? {
        let url = simpleDir.appendingPathComponent(project).appendingPathComponent("index.json")
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        do { return try JSONDecoder().decode(ProjectRecord.self, from: Data(contentsOf: url)) } catch {
            throw PublishingError.fileAccess(path: url.path, problem: "not a PEP 691 project page written by wheelfarm: \(error)")
        }
    }

    private func writeProject(_ record: ProjectRecord) throws {
        let dir = simpleDir.appendingPathComponent(record.name)
        try createDirectory(dir)
        let encoder = JSONEncoder(); encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try write(try encoder.encode(record), to: dir.appendingPathComponent("index.json"))
        var html = "<!DOCTYPE html>\n<html>\n  <head>\n    <meta name=\"pypi:repository-version\" content=\"1.0\">\n"
        html += "    <title>Links for \(escape(record.name))</title>\n  </head>\n  <body>\n    <h1>Links for \(escape(record.name))</h1>\n"
        for f in record.files {
            let rp = f.requiresPython.map { " data-requires-python=\"\(escape($0))\"" } ?? ""
            html += "    <a href=\"\(escape(f.url))#sha256=\(f.hashes["sha256"] ?? "")\"\(rp)>\(escape(f.filename))</a><br>\n"
        }
        html += "  </body>\n</html>\n"
        try write(Data(html.utf8), to: dir.appendingPathComponent("index.html"))
    }

    /// The projects that have a project page, sorted.
    private func projectNames() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: simpleDir.path)) ?? [])
            .filter { FileManager.default.fileExists(atPath: simpleDir.appendingPathComponent($0).appendingPathComponent("index.json").path) }
            .sorted()
    }

    /// Whether the root pages are missing or do not list every project page.
    private func rootPagesAreStale() -> Bool {
        struct Root: Decodable { struct Project: Decodable { let name: String }; let projects: [Project] }
        let json = simpleDir.appendingPathComponent("index.json"), html = simpleDir.appendingPathComponent("index.html")
        guard FileManager.default.fileExists(atPath: html.path), let data = try? Data(contentsOf: json),
              let listed = try? JSONDecoder().decode(Root.self, from: data) else { return true }
        return listed.projects.map(\.name) != projectNames()
    }

    private func writeRootPages() throws {
        let names = projectNames()
        var html = "<!DOCTYPE html>\n<html>\n  <head>\n    <meta name=\"pypi:repository-version\" content=\"1.0\">\n    <title>Simple index</title>\n  </head>\n  <body>\n"
        for n in names { html += "    <a href=\"\(escape(n))/\">\(escape(n))</a><br>\n" }
        html += "  </body>\n</html>\n"
        try write(Data(html.utf8), to: simpleDir.appendingPathComponent("index.html"))
        struct Root: Encodable {
            struct Project: Encodable { let name: String }
            let meta = ProjectRecord.Meta()
            let projects: [Project]
        }
        let encoder = JSONEncoder(); encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try write(try encoder.encode(Root(projects: names.map(Root.Project.init))), to: simpleDir.appendingPathComponent("index.json"))
    }

    private func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    private func createDirectory(_ url: URL) throws {
        do { try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true) } catch {
            throw PublishingError.fileAccess(path: url.path, problem: "cannot create directory: \(error)")
        }
    }

    /// Writes through a temporary file and a rename, so readers never see half a page.
    private func write(_ data: Data, to url: URL) throws {
        do { try data.write(to: url, options: .atomic) } catch {
            throw PublishingError.fileAccess(path: url.path, problem: "\(error)")
        }
    }

    private func withLock<T>(_ body: () throws -> T) throws -> T {
        try createDirectory(root)
        let lockPath = root.appendingPathComponent(".lock").path
        let fd = open(lockPath, O_CREAT | O_RDWR, 0o644)
        guard fd >= 0 else { throw PublishingError.fileAccess(path: lockPath, problem: "cannot open lock file (errno \(errno))") }
        defer { close(fd) }
        guard flock(fd, LOCK_EX) == 0 else { throw PublishingError.fileAccess(path: lockPath, problem: "cannot lock (errno \(errno))") }
        defer { flock(fd, LOCK_UN) }
        return try body()
    }
}
