import Agents
import FarmTestSupport
import Foundation
import Testing

@Suite("probe cache")
struct ProbeCacheTests {
    @Test("a stored report comes back with its time, and ages out")
    func roundTrip() throws {
        let dir = try TestEnvironment.makeTemporaryDirectory("wf-cache")
        defer { try? FileManager.default.removeItem(at: dir) }
        let report = try Scripts.localProbe(workDir: dir)
        let cache = ProbeCache(directory: dir.appendingPathComponent("probes"))
        #expect(try cache.load(host: "icelake-1") == nil)
        let when = Date(timeIntervalSince1970: 1_800_000_000)
        try cache.store(report, for: "icelake-1", at: when)
        let entry = try #require(try cache.load(host: "icelake-1"))
        #expect(entry.report == report && entry.host == "icelake-1" && entry.probedAt == when)
        #expect(try cache.fresh(host: "icelake-1", maxAge: 3600, now: when.addingTimeInterval(60)) != nil)
        #expect(try cache.fresh(host: "icelake-1", maxAge: 3600, now: when.addingTimeInterval(7200)) == nil)
        // A host name cannot escape the cache directory.
        let escaped = cache.file(for: "../etc/x")
        #expect(escaped.lastPathComponent == ".._etc_x.json" && escaped.path == cache.directory.path + "/.._etc_x.json")
    }

    @Test("a damaged cache file is an error that says how to recover")
    func damaged() throws {
        let dir = try TestEnvironment.makeTemporaryDirectory("wf-cache")
        defer { try? FileManager.default.removeItem(at: dir) }
        let cache = ProbeCache(directory: dir)
        try Data("{".utf8).write(to: cache.file(for: "h"))
        #expect { try cache.load(host: "h") } throws: { error in
            (error as? AgentError)?.description.contains("delete the file") == true
        }
    }
}
