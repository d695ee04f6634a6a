import FarmTestSupport
import Foundation
@testable import Release
import Testing

@Suite("Release report")
struct ReportTests {
    func sample() -> ReleaseReport {
        let t0 = Date(timeIntervalSince1970: 1_800_000_000)
        return ReleaseReport(runID: "20261129-000000-abcd", recipe: "sample", startedAt: t0, finishedAt: t0.addingTimeInterval(600),
                             status: "failed", hosts: ["h1", "h2"], jobs: [
            .init(id: "a==1 cp311 amd64", package: "a", arch: "amd64", python: "3.11", version: "1", state: "published",
                  attempts: [.init(host: "h1", start: t0, end: t0.addingTimeInterval(120), outcome: "host-failed", detail: "connection lost"),
                             .init(host: "h2", start: t0.addingTimeInterval(130), end: t0.addingTimeInterval(400), outcome: "succeeded")],
                  wheel: "a-1-cp311-cp311-manylinux_2_28_x86_64.whl", sha256: String(repeating: "0", count: 64), size: 10,
                  checks: [.init(id: "zip.crc", outcome: "pass", message: "ok")], isaCounts: ["avx2": 12], publications: ["uploaded to http://127.0.0.1/"]),
            .init(id: "b<script>==1 cp311 amd64", package: "b", arch: "amd64", python: "3.11", version: "1", state: "failed",
                  attempts: [.init(host: "h2", start: t0, end: t0.addingTimeInterval(60), outcome: "build-failed")],
                  checks: [.init(id: "isa.excluded", outcome: "fail", message: "avx512f: 3 instructions")], detail: "build failed twice"),
        ])
    }

    @Test func jsonRoundTrips() throws {
        let r = sample()
        let back = try ReleaseReport.decode(try r.json())
        #expect(back.jobs.count == 2 && back.jobs[0].attempts.count == 2 && back.jobs[0].isaCounts == ["avx2": 12])
        #expect(back.startedAt == r.startedAt)
    }

    @Test func htmlHasATimelineBarPerAttemptAndEscapes() {
        let html = sample().html()
        #expect(html.components(separatedBy: "<rect ").count - 1 == 3)
        #expect(html.contains("class=\"bar host-failed\"") && html.contains("class=\"bar succeeded\"") && html.contains("class=\"bar build-failed\""))
        #expect(!html.contains("b<script>") && html.contains("b&lt;script&gt;"))
        #expect(html.contains("isa.excluded: avx512f: 3 instructions"))
    }

    @Test func summaryTableCountsStates() {
        let t = sample().summaryTable()
        #expect(t.contains("2 jobs: 1 failed, 1 published · 10m 00s"))
        #expect(t.contains("a==1 cp311 amd64") && t.contains("h2"))
    }

    @Test func writesBothFiles() throws {
        let dir = try TestEnvironment.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let paths = try sample().write(to: dir)
        #expect(FileManager.default.fileExists(atPath: paths.json.path) && FileManager.default.fileExists(atPath: paths.html.path))
    }
}
