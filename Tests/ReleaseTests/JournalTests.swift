import FarmCore
import FarmTestSupport
import Foundation
import Release
import Testing

@Suite("Journal and coordinator lock")
struct JournalTests {
    @Test func recordsRunsJobsArtifactsAndPublicationsAcrossReopen() throws {
        let dist = try TestEnvironment.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dist) }
        let digest = SHA256Digest.of(Array("wheel bytes".utf8))
        do {
            let j = try Journal(distDir: dist)
            let run = try j.beginRun(recipe: "sample", inventory: "inventory/local.yaml", arguments: ["release", "--variant", "all"])
            try j.setJob(run: run, job: JobRecord(jobID: "p==1.0 cp311 amd64", package: "p", arch: "amd64", python: "3.11", version: "1.0", state: .building, host: "h1", attempts: 1))
            let attempt = try j.beginAttempt(run: run, jobID: "p==1.0 cp311 amd64", number: 1, host: "h1", remoteBuildDir: "/w/jobs/x")
            #expect(try j.unfinishedAttempts().map(\.id) == [attempt])
            try j.finishAttempt(attempt, outcome: "succeeded")
            try j.recordArtifact(ArtifactRecord(filename: "p-1.0-cp311-cp311-manylinux_2_28_x86_64.whl", sha256: digest, size: 11,
                                                jobID: "p==1.0 cp311 amd64", host: "h1", verified: true, report: "{}"))
            try j.recordPublication(filename: "p-1.0-cp311-cp311-manylinux_2_28_x86_64.whl", sha256: digest, target: "file:///idx", outcome: "uploaded")
            try j.setJob(run: run, job: JobRecord(jobID: "p==1.0 cp311 amd64", package: "p", arch: "amd64", python: "3.11", version: "1.0", state: .published, host: "h1", attempts: 1, wheel: "p-1.0-cp311-cp311-manylinux_2_28_x86_64.whl"))
            try j.setHost(run: run, HostRecord(name: "h1", address: "h1.farm.example", arch: "amd64", state: "reachable", detail: "Python 3.11"))
            try j.setHost(run: run, HostRecord(name: "h2", state: "joined"))
            try j.setHost(run: run, HostRecord(name: "h1", state: "quarantined", detail: "failure 1: connection lost"))
            // The coordinator "dies" here: the run is never finished.
        }
        let j = try Journal(distDir: dist)
        #expect(try j.unfinishedAttempts().isEmpty)
        #expect(try j.verifiedArtifact(jobID: "p==1.0 cp311 amd64")?.sha256 == digest)
        #expect(try j.isPublished(filename: "p-1.0-cp311-cp311-manylinux_2_28_x86_64.whl", sha256: digest, target: "file:///idx"))
        // Same name, other content: not the same publication.
        #expect(try !j.isPublished(filename: "p-1.0-cp311-cp311-manylinux_2_28_x86_64.whl", sha256: SHA256Digest.of([1]), target: "file:///idx"))
        let first = try #require(try j.summary())
        #expect(first.status == .running && first.jobs.map(\.state) == [.published])
        // Hosts: the latest state wins, the address and arch given earlier are kept.
        #expect(first.hosts == [HostRecord(name: "h1", address: "h1.farm.example", arch: "amd64", state: "quarantined", detail: "failure 1: connection lost"),
                                HostRecord(name: "h2", state: "joined")])
        // The next run marks the dead one interrupted.
        let second = try j.beginRun(recipe: "sample", inventory: "x", arguments: [])
        #expect(try j.summary(run: first.id)?.status == .interrupted)
        try j.finishRun(second, status: .succeeded)
        #expect(try j.summary()?.id == second)
        #expect(try j.runIDs().count == 2)
        try j.removeArtifact(filename: "p-1.0-cp311-cp311-manylinux_2_28_x86_64.whl")
        #expect(try j.verifiedArtifact(jobID: "p==1.0 cp311 amd64") == nil)
    }

    @Test func aSecondCoordinatorIsRefusedUntilTheFirstIsGone() throws {
        let dist = try TestEnvironment.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dist) }
        // Another process holds the lock (flock is per open file description, so use a child).
        let lockFile = dist.appendingPathComponent(".wheelfarm/lock").path
        try FileManager.default.createDirectory(at: dist.appendingPathComponent(".wheelfarm"), withIntermediateDirectories: true)
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        let ready = dist.appendingPathComponent("holder-ready").path
        holder.arguments = ["python3", "-c", """
            import fcntl, sys, time
            f = open(sys.argv[1], 'a+')
            fcntl.flock(f, fcntl.LOCK_EX)
            f.seek(0); f.truncate(); f.write('4242'); f.flush()
            open(sys.argv[2], 'w').close()
            time.sleep(600)
            """, lockFile, ready]
        try holder.run()
        defer { if holder.isRunning { kill(holder.processIdentifier, SIGKILL); holder.waitUntilExit() } }
        for _ in 0..<1200 where !FileManager.default.fileExists(atPath: ready) { Thread.sleep(forTimeInterval: 0.05) }
        try #require(FileManager.default.fileExists(atPath: ready), "the lock holder did not start within a minute")
        #expect(throws: (any Error).self) { _ = try CoordinatorLock(distDir: dist) }
        do { _ = try CoordinatorLock(distDir: dist) } catch {
            #expect("\(error)".contains("another wheelfarm coordinator (pid 4242)"))
        }
        // SIGKILL: the kernel releases the lock, so a crashed coordinator leaves nothing stale.
        kill(holder.processIdentifier, SIGKILL)
        holder.waitUntilExit()
        let lock = try CoordinatorLock(distDir: dist)
        #expect(lock.path == lockFile)
    }

    @Test func statusCommandShowsTheLastRun() throws {
        let dist = try TestEnvironment.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dist) }
        let none = try TestProcess.wheelfarm(["status", "--dist-dir", dist.path])
        #expect(none.status == 2 && none.stderr.contains("no release has been recorded"))
        let j = try Journal(distDir: dist)
        let run = try j.beginRun(recipe: "sample", inventory: "inventory/local.yaml", arguments: ["release"])
        try j.setJob(run: run, job: JobRecord(jobID: "a==1 cp311 amd64", package: "a", arch: "amd64", python: "3.11", version: "1", state: .failed, host: "h", attempts: 2, detail: "build failed twice"))
        try j.finishRun(run, status: .failed)
        let r = try TestProcess.wheelfarm(["status", "--dist-dir", dist.path])
        #expect(r.status == 1)
        #expect(r.stdout.contains("run \(run) · failed"))
        #expect(r.stdout.contains("a==1 cp311 amd64") && r.stdout.contains("build failed twice"))
        let json = try TestProcess.wheelfarm(["status", "--dist-dir", dist.path, "--json"])
        #expect(json.stdout.contains("\"schema\" : \"wheelfarm.status/1\""))
    }
}
