import FarmCore
import Foundation
import Inventory
import Recipes
import Release
import Scheduling
import Synchronization
import Testing

final class Collected: Sendable {
    let text = Mutex("")
    func append(_ s: String) { text.withLock { $0 += s } }
}

@Suite("Progress display")
struct ProgressDisplayTests {
    let job = BuildJob(recipe: "sample", variant: Variant(package: "wfsample-cpu", shortName: "noavx512", arches: [.amd64: .init()]),
                       arch: .amd64, python: PythonVersion(major: 3, minor: 11), version: PEP440Version("1.0.0")!)
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func plainModeWritesTimestampedLines() {
        let out = Collected()
        let d = ProgressDisplay(mode: .plain, now: { [t0] in t0 }, sink: out.append)
        d.handle(ProgressUpdate(time: 0, event: .jobStarted(job, host: "h1", attempt: 1)))
        d.phase(job: job.id, phase: "compiling")
        d.handle(ProgressUpdate(time: 5, event: .jobRequeued(job, host: "h1", attempt: 1, reason: "connection lost")))
        let lines = out.text.withLock { $0 }.split(separator: "\n").map(String.init)
        #expect(lines.count == 3)
        #expect(lines.allSatisfy { $0.hasPrefix("2027-01-15T08:00:00Z ") })
        #expect(lines[0].hasSuffix("started wfsample-cpu==1.0.0 cp311 amd64 on h1 (attempt 1)"))
        #expect(lines[1].hasSuffix("wfsample-cpu==1.0.0 cp311 amd64: compiling"))
        #expect(!lines.joined().contains("\u{1B}["))
    }

    @Test func liveFrameShowsHostsPhasesAndTotals() {
        let clock = Mutex(t0)
        let out = Collected()
        let d = ProgressDisplay(mode: .live, hosts: ["h1", "h2"], now: { clock.withLock { $0 } }, sink: out.append)
        d.handle(ProgressUpdate(time: 0, event: .jobQueued(job)))
        d.handle(ProgressUpdate(time: 0, event: .jobStarted(job, host: "h1", attempt: 2)))
        d.phase(job: job.id, phase: "compiling")
        clock.withLock { $0 = t0.addingTimeInterval(75) }
        let frame = d.frame()
        #expect(frame[0] == "h1        wfsample-cpu==1.0.0 cp311 amd64 (attempt 2)  compiling  1m 15s")
        #expect(frame[1] == "h2        idle")
        #expect(frame[2] == "queued 0 · running 1 · built 0 · retried 0 · failed 0")
        d.handle(ProgressUpdate(time: 80, event: .jobFailed(job, reason: "build failed twice")))
        #expect(d.frame().last == "  ✗ wfsample-cpu==1.0.0 cp311 amd64: build failed twice")
        // Redraws move the cursor back over the previous frame instead of scrolling.
        #expect(out.text.withLock { $0 }.contains("\u{1B}[3F\u{1B}[J"))
    }

    @Test func aRefusedHostShowsWhyInTheLiveFrame() {
        let d = ProgressDisplay(mode: .live, hosts: ["h1", "h2"], now: { t0 }, sink: { _ in })
        d.handle(ProgressUpdate(time: 0, event: .hostRefused("h2", reason: "host key mismatch: 'x' now offers another key")))
        #expect(d.frame()[1] == "h2        out of the run: host key mismatch: 'x' now offers another key")
    }

    @Test func ciIsNeverLive() {
        #expect(ProgressDisplay.automaticMode(environment: ["CI": "true", "TERM": "xterm"]) == .plain)
    }
}
