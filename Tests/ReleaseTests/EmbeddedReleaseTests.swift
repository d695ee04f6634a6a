import FarmTestSupport
import Foundation
import Testing

/// `wheelfarm release` on the embedded default (this machine through `inventory/local.yaml`,
/// a local index), run as the built binary: a real sample wheel is built, verified centrally
/// (ISA audit included), published, and the run resumes and re-suffixes without rebuilding.
@Suite("release on the embedded default (built binary)", .serialized)
struct EmbeddedReleaseTests {
    let selection = ["--recipe", "sample", "--inventory", "inventory/local.yaml", "--variant", "noavx512", "--platform", "linux/amd64"]

    @Test func buildsVerifiesPublishesResumesAndSuffixes() throws {
        let dist = try TestEnvironment.makeTemporaryDirectory("wf-release")
        defer { try? FileManager.default.removeItem(at: dist) }
        let args = ["release"] + selection + ["--dist-dir", dist.path]

        let first = try TestProcess.wheelfarm(args, environment: ProcessInfo.processInfo.environment.merging(["CI": "true"]) { $1 })
        #expect(first.status == 0, "\(first.stdout)\n\(first.stderr)")
        // The wheel is tagged with what its content allows (auditwheel on the host, the audit
        // centrally): the sample is plain C, so an old glibc; auditwheel agrees.
        let published = try FileManager.default.contentsOfDirectory(atPath: dist.appendingPathComponent("index/packages/wfsample-cpu").path)
        let wheel = try #require(published.first { $0.hasPrefix("wfsample_cpu-1.0.0-cp311-cp311-manylinux") }, "\(published)")
        let platformTags = String(wheel.dropLast(4).split(separator: "-").last!)
        let verdict = try PlatformFixtures.show(dist.appendingPathComponent("index/packages/wfsample-cpu/\(wheel)"))
        #expect(platformTags.split(separator: ".").contains { $0 == verdict.overall_tag }, "\(wheel) vs \(verdict.overall_tag)")
        #expect(first.stdout.contains("✓ \(wheel): uploaded"))
        // Pre-flight's probe result reaches the run (the release build once lost it: see
        // Result(catching:) in FarmCore).
        #expect(first.stdout.contains("host localhost: reachable, "), "\(first.stdout)")
        #expect(FileManager.default.fileExists(atPath: dist.appendingPathComponent("index/packages/wfsample-cpu/\(wheel)").path))
        let reports = try FileManager.default.contentsOfDirectory(atPath: dist.appendingPathComponent("reports").path)
        #expect(reports.contains { $0.hasSuffix(".html") } && reports.contains { $0.hasSuffix(".json") })
        let logs = try FileManager.default.contentsOfDirectory(atPath: dist.appendingPathComponent("logs").path)
        #expect(logs.count == 1)

        // The same command again: nothing rebuilt, nothing re-uploaded.
        let again = try TestProcess.wheelfarm(args)
        #expect(again.status == 0)
        #expect(again.stdout.contains("0 to build · 1 already built and verified"))
        #expect(again.stdout.contains("= \(wheel): already published"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dist.appendingPathComponent("logs").path).count == 1)
        let dry = try TestProcess.wheelfarm(args + ["--dry-run"])
        #expect(dry.stdout.contains("already published as \(wheel): would not be rebuilt"), "\(dry.stdout)")

        // A burnt filename is fixed with a suffix, by rewriting the verified wheel (no rebuild).
        let post = try TestProcess.wheelfarm(args + ["--version-suffix", ".post1"])
        #expect(post.status == 0, "\(post.stdout)")
        #expect(post.stdout.contains("✓ wfsample_cpu-1.0.0.post1-cp311-cp311-\(platformTags).whl: uploaded"), "\(post.stdout)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dist.appendingPathComponent("logs").path).count == 1)

        // A fresh checkout (no wheels, no journal) against the same index: what the index holds
        // is published already and not rebuilt.
        for name in try FileManager.default.contentsOfDirectory(atPath: dist.path) where name.hasSuffix(".whl") || name == ".wheelfarm" {
            try FileManager.default.removeItem(at: dist.appendingPathComponent(name))
        }
        let fresh = try TestProcess.wheelfarm(args + ["--version-suffix", ".post1"])
        #expect(fresh.status == 0, "\(fresh.stdout)")
        #expect(fresh.stdout.contains("already published as wfsample_cpu-1.0.0.post1-cp311-cp311-\(platformTags).whl (not rebuilt)"), "\(fresh.stdout)")
        #expect(fresh.stdout.contains("0 to build · 0 already built and verified in \(dist.path) · 1 already published"), "\(fresh.stdout)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dist.appendingPathComponent("logs").path).count == 1)

        // pip installs the new version from the local index.
        let site = dist.appendingPathComponent("site")
        let pip = try TestProcess.run(TestEnvironment.python, ["-m", "pip", "install", "--quiet", "--no-deps", "--target", site.path,
                                                               "--index-url", dist.appendingPathComponent("index/simple").absoluteString,
                                                               "wfsample-cpu==1.0.0.post1"])
        #expect(pip.status == 0, "\(pip.stderr)")
        let version = try TestProcess.run(TestEnvironment.python, ["-c", "import importlib.metadata as m; print(m.version('wfsample-cpu'))"],
                                          environment: ["PYTHONPATH": site.path, "PATH": "/usr/bin:/bin"])
        #expect(version.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "1.0.0.post1")

        let status = try TestProcess.wheelfarm(["status", "--dist-dir", dist.path])
        #expect(status.status == 0 && status.stdout.contains("succeeded"))
    }

    @Test func dryRunShowsEveryCommandAndChangesNothing() throws {
        let dist = try TestEnvironment.makeTemporaryDirectory("wf-dry")
        try FileManager.default.removeItem(at: dist)
        let r = try TestProcess.wheelfarm(["release", "--recipe", "sample", "--inventory", "inventory/local.yaml", "--variant", "all",
                                           "--dist-dir", dist.path, "--dry-run"])
        #expect(r.status == 1, "some variants cannot be placed on this CPU")
        #expect(r.stdout.contains("[DRY RUN] Would run on localhost: bash "))
        #expect(r.stdout.contains("--env WFSAMPLE_CPU_DISABLE_AVX512=true"))
        #expect(r.stdout.contains("wfsample-cpu-amxbf16==1.0.0 cp311 amd64: cannot be placed"))
        #expect(!FileManager.default.fileExists(atPath: dist.path))
    }
}
