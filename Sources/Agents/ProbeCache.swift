import Foundation

/// Probe results kept on the coordinator, one JSON file per host, so that planning does not probe
/// every host every time.
public struct ProbeCache: Sendable {
    /// A cached report and when it was taken.
    public struct Entry: Sendable, Hashable, Codable {
        public var host: String
        /// When the coordinator received the report.
        public var probedAt: Date
        public var report: ProbeReport
        public init(host: String, probedAt: Date, report: ProbeReport) {
            self.host = host; self.probedAt = probedAt; self.report = report
        }
    }

    /// The directory holding `<host>.json` files (created on first store).
    public let directory: URL

    public init(directory: URL) { self.directory = directory }

    /// The file of `host` (its name made safe for a file name).
    public func file(for host: String) -> URL {
        let safe = String(host.map { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) ? $0 : "_" })
        return directory.appendingPathComponent("\(safe).json")
    }

    /// Stores `report` for `host`, replacing the previous one atomically.
    public func store(_ report: ProbeReport, for host: String, at time: Date = Date()) throws(AgentError) {
        let url = file(for: host)
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let encoder = JSONEncoder()
            encoder.keyEncodingStrategy = .convertToSnakeCase
            encoder.dateEncodingStrategy = .iso8601
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(Entry(host: host, probedAt: time, report: report)).write(to: url, options: .atomic)
        } catch {
            throw .cacheUnusable(path: url.path, detail: String(describing: error))
        }
    }

    /// The cached entry of `host`, or `nil` when there is none.
    public func load(host: String) throws(AgentError) -> Entry? {
        let url = file(for: host)
        guard let data = FileManager.default.contents(atPath: url.path) else { return nil }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        decoder.dateDecodingStrategy = .iso8601
        do {
            return try decoder.decode(Entry.self, from: data)
        } catch {
            throw .cacheUnusable(path: url.path, detail: ProbeReport.describe(error) + "; delete the file to probe again")
        }
    }

    /// The cached entry of `host` if it is at most `maxAge` seconds old at `now`.
    public func fresh(host: String, maxAge: TimeInterval, now: Date = Date()) throws(AgentError) -> Entry? {
        guard let entry = try load(host: host) else { return nil }
        let age = now.timeIntervalSince(entry.probedAt)
        return age >= 0 && age <= maxAge ? entry : nil
    }
}
