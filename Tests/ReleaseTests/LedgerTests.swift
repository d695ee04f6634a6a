import FarmCore
import Foundation
import struct Inventory.Host
import InMemoryLogging
import Logging
import Recipes
@testable import Release
import Inventory
import Scheduling
import Testing

/// The job ledger, the build log excerpt and the pipeline's log lines: the decisions of the
/// release pipeline that need no I/O.
@Suite("Job ledger and build failure messages")
struct LedgerTests {
    static let variant = Variant(package: "wfsample-cpu", shortName: "noavx512", arches: [.amd64: .init()])
    static func job(_ version: String, suffix: String? = nil) -> BuildJob {
        BuildJob(recipe: "sample", variant: variant, arch: .amd64, python: PythonVersion(major: 3, minor: 11),
                 version: PEP440Version(version)!, suffix: suffix)
    }

    @Test func oneRecordPerJobSettlesIntoTheJournalsStates() {
        let jobs = [Self.job("1.0.0"), Self.job("1.1.0"), Self.job("1.2.0"), Self.job("1.3.0")]
        var ledger = JobLedger(jobs: jobs, unplaceable: [jobs[3].id: "no amd64 host in the inventory"])
        #expect(ledger.toBuild.map(\.id) == jobs.prefix(3).map(\.id))
        #expect(ledger.preflightCounts == (toBuild: 3, verified: 0, alreadyPublished: 0, unplaceable: 1))
        let wheel = URL(fileURLWithPath: "/dist/wfsample_cpu-1.0.0-cp311-cp311-manylinux_2_28_x86_64.whl")
        ledger.set(jobs[0].id, .verified(wheel))
        ledger.fail(jobs[1].id, "build failed on 'alpha': 'gcc' failed")
        #expect(ledger.readyToPublish.map(\.id) == [jobs[0].id])
        #expect(!ledger.succeeded(readmeOnly: false))

        // Cancelled: what was never built is cancelled, the verified wheel stays verified for the next run.
        var cancelled = ledger
        cancelled.settle(cancelled: true, readmeOnly: false, fault: nil)
        #expect(cancelled.records.map { JobLedger.journalState($0) } == [.verified, .failed, .cancelled, .unplaceable])
        // A fault (a full disk) names itself in what it stopped.
        var faulted = ledger
        faulted.settle(cancelled: false, readmeOnly: false, fault: "No space left on device")
        #expect(faulted[jobs[0].id]?.failure == "the run stopped before it was published: No space left on device")
        #expect(faulted[jobs[2].id]?.failure?.hasSuffix("No space left on device") == true)
        // The journal row keeps the wheel a failed step had.
        #expect(faulted.journalRecord(jobs[0].id)?.wheel == wheel.lastPathComponent)
        #expect(faulted.journalRecord(jobs[3].id)?.state == .unplaceable)
    }

    @Test func aReadmeRunSucceedsWithVerifiedWheels() {
        let jobs = [Self.job("1.0.0")]
        var ledger = JobLedger(jobs: jobs)
        ledger.set(jobs[0].id, .rewritten(URL(fileURLWithPath: "/dist/w.whl")))
        ledger.settle(cancelled: false, readmeOnly: true, fault: nil)
        #expect(ledger.succeeded(readmeOnly: true))
        #expect(!ledger.succeeded(readmeOnly: false))
    }

    @Test func theSuffixIsAppliedAfterTheBuild() {
        let ledger = JobLedger(jobs: [Self.job("1.0.0", suffix: ".post1")])
        #expect(ledger.records[0].id == "wfsample-cpu==1.0.0 cp311 amd64")
        #expect(ledger.records[0].job.publishedVersion == "1.0.0.post1")
    }

    @Test func aCompileErrorIsQuotedWithItsLineNotTheFailingCommandsFirstLine() throws {
        let dir = try FileManager.default.url(for: .itemReplacementDirectory, in: .userDomainMask,
                                              appropriateFor: FileManager.default.temporaryDirectory, create: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let log = dir.appendingPathComponent("build.log")
        var lines = (1...309).map { "noise \($0)" }
        lines.append("+ python -m pip wheel --no-deps -v .")                       // line 310: the command starts
        lines += (311...2619).map { "  gcc -c src/k\($0).c" }
        lines.append("  src/kernels.c:42:7: error: 'vec' undeclared (first use in this function)")   // 2620
        lines.append("  src/kernels.c:43:1: error: expected ';' before '}' token")
        lines.append("  error: command '/usr/bin/gcc' failed with exit code 1")
        lines.append("  error: subprocess-exited-with-error")
        try lines.joined(separator: "\n").write(to: log, atomically: true, encoding: .utf8)
        let excerpt = BuildLogExcerpt(log: log, from: 310)
        #expect(excerpt.lines.map(\.number) == [2620, 2621])
        #expect(excerpt.summary == "first errors: line 2620: src/kernels.c:42:7: error: 'vec' undeclared (first use in this function); line 2621: src/kernels.c:43:1: error: expected ';' before '}' token")
    }

    @Test func aTracebackIsQuotedByItsExceptionAndGitByItsFatalLine() throws {
        let dir = try FileManager.default.url(for: .itemReplacementDirectory, in: .userDomainMask,
                                              appropriateFor: FileManager.default.temporaryDirectory, create: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let log = dir.appendingPathComponent("build.log")
        try """
            ==> phase configure
            Traceback (most recent call last):
              File "setup.py", line 3, in <module>
                import torch
            ModuleNotFoundError: No module named 'torch'
            ERROR: Failed building wheel
            """.write(to: log, atomically: true, encoding: .utf8)
        #expect(BuildLogExcerpt(log: log).summary == "first error: line 5: ModuleNotFoundError: No module named 'torch' (traceback from line 2)")
        try """
            + git clone --mirror file:///srv/nothing /w/cache/src/vllm.git
            Cloning into bare repository '/w/cache/src/vllm.git'...
            fatal: '/srv/nothing' does not appear to be a git repository
            fatal: Could not read from remote repository.
            """.write(to: log, atomically: true, encoding: .utf8)
        let git = BuildLogExcerpt(log: log)
        #expect(git.lines.map(\.number) == [3, 4])
        #expect(git.lines.first?.text == "fatal: '/srv/nothing' does not appear to be a git repository")
        // Only generic lines: they are quoted, rather than nothing.
        try "building\nERROR: Could not build wheels for wfsample\n".write(to: log, atomically: true, encoding: .utf8)
        #expect(BuildLogExcerpt(log: log).summary == "first error: line 2: ERROR: Could not build wheels for wfsample")
        // A log that cannot be read quotes nothing.
        #expect(BuildLogExcerpt(log: dir.appendingPathComponent("missing.log")).summary == nil)
    }

    @Test func placementsAndRetriesAreLoggedWithDottedMetadataKeys() {
        let logs = InMemoryLogHandler()
        var logger = Logger(label: "test") { _ in logs }
        logger.logLevel = .info
        let job = Self.job("1.0.0")
        ReleasePipeline.log(.jobPlaced(job, host: "alpha", attempt: 1, expectedSeconds: 95), logger)
        ReleasePipeline.log(.jobRequeued(job, host: "alpha", attempt: 1, reason: "host failure: connection lost"), logger)
        ReleasePipeline.log(.hostQuarantined("alpha", until: 30, failures: 1, reason: "connection lost"), logger)
        let entries = logs.entries
        #expect(entries.map(\.message.description) == ["job placed", "job retried", "host quarantined"])
        #expect(entries[0].metadata["release.job"] == "\(job.id)")
        #expect(entries[0].metadata["release.host"] == "alpha")
        #expect(entries[0].metadata["scheduling.expected_seconds"] == "95")
        #expect(entries[1].metadata["release.reason"] == "host failure: connection lost")
        // Info level: shown with --verbose only (the progress display already shows them).
        #expect(entries.allSatisfy { $0.level == .info })
        // Every key is dotted: module, then field.
        let keys = entries.flatMap { Array($0.metadata.keys) }
        #expect(keys.allSatisfy { $0.split(separator: ".").count == 2 }, "\(keys)")
    }

    @Test func unplaceableJobsNameWhatWouldFixThem() {
        let amx = Variant(package: "wfsample-cpu-amxbf16", shortName: "amxbf16",
                          arches: [.amd64: .init(requires: [Capability("amx_bf16"), Capability("avx512f")])])
        let arm = Self.variant
        let jobs = [BuildJob(recipe: "sample", variant: amx, arch: .amd64, python: PythonVersion(major: 3, minor: 11), version: PEP440Version("1.0")!),
                    BuildJob(recipe: "sample", variant: arm, arch: .arm64, python: PythonVersion(major: 3, minor: 11), version: PEP440Version("1.0")!)]
        let hosts = [Host(name: "plain", address: "127.0.0.1", arch: .amd64, capabilities: [Capability("avx2")])]
        let plan = PlanAnalysis(jobs: jobs, hosts: hosts)
        let remedies = PlanAnalysis.remedies(for: plan.unplaceable)
        #expect(remedies.contains("add a linux/amd64 host with amx_bf16, avx512f to the inventory (for wfsample-cpu-amxbf16)"), "\(remedies)")
        #expect(remedies.contains("add a linux/arm64 host to the inventory, or leave linux/arm64 out (--platform linux/amd64)"), "\(remedies)")
        #expect(remedies.last == "or leave variants amxbf16, noavx512 out of --variant")
    }
}
