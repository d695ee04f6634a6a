import FarmTestSupport
import Foundation
import Testing

/// `wheelfarm release` through faults, on real sshd build hosts: each test ends in a complete and
/// correct release, with nothing built twice that was verified and nothing uploaded twice.
///
/// The hosts build `wfsample-cpu` (AVX2 level) with a compiler a test can hold
/// (``HostTools/hold(_:)``), so a build stays under way until the test has acted, however slowly
/// the test process is scheduled; progress arrives as plain timestamped lines (`CI=true`), which
/// the tests wait for.
@Suite("release through faults (sshd farm, built binary)", .serialized)
struct ReleaseFaultTests {
    /// The release arguments for `wfsample-cpu` on amd64 in `versions`.
    static func arguments(inventory: URL, dist: URL, versions: String = "1.0.0") -> [String] {
        ["--recipe", "sample", "--variant", "noavx512", "--platform", "linux/amd64", "--versions", versions,
         "--inventory", inventory.path, "--dist-dir", dist.path, "--skip-github"]
    }

    /// Runs `body` with a farm of AVX2-level hosts named `names` (each with its own ``HostTools``),
    /// an inventory listing `listed` of them (all by default), and a dist directory; everything is
    /// removed afterwards. `body` gets the farm, the inventory, the dist directory and a scratch
    /// directory; a host's tools are in ``tools(_:_:)``.
    static func withPlainFarm(_ names: [String], corruptFirstWheel: Bool = false, listed: [String]? = nil,
                              _ body: (SSHTestFarm, URL, URL, URL) async throws -> Void) async throws {
        let scratch = try TestEnvironment.makeTemporaryDirectory("wheelfarm-fault")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let hosts = try names.map {
            plainHost($0, tools: try HostTools.make(in: tools(scratch, $0), corruptFirstWheel: corruptFirstWheel))
        }
        try await SSHTestFarm.withFarm(hosts) { farm in
            let inventory = scratch.appendingPathComponent("inventory.yaml")
            try farm.writeInventory(to: inventory, only: listed)
            try await body(farm, inventory, scratch.appendingPathComponent("dist"), scratch)
        }
    }

    /// The directory of host `name`'s ``HostTools``.
    static func tools(_ scratch: URL, _ name: String) -> URL {
        scratch.appendingPathComponent("tools-\(name)")
    }

    /// Files in the embedded default's local index for `wfsample-cpu`.
    static func indexed(_ dist: URL) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dist.appendingPathComponent("index/packages/wfsample-cpu").path)) ?? []).sorted()
    }

    @Test func aHostKilledMidBuildLosesItsJobToAnotherHost() async throws {
        try await Self.withPlainFarm(["alpha", "beta"]) { farm, inventory, dist, scratch in
            for host in ["alpha", "beta"] { try HostTools.hold(Self.tools(scratch, host)) }
            let release = try BackgroundRelease(Self.arguments(inventory: inventory, dist: dist), in: scratch)
            try await release.waitFor(": compile")
            let victim = try #require(lines(release.output, containing: "started ").first?.components(separatedBy: " on ").last?.components(separatedBy: " ").first)
            let survivor = victim == "alpha" ? "beta" : "alpha"
            farm.kill(victim)   // sshd, the build and everything else on the host die at once
            HostTools.release(Self.tools(scratch, survivor))
            let status = await release.exitStatus()
            #expect(status == 0, "\(release.output)")

            let job = try #require(try ReleaseReportFile(dist: dist).jobs.first)
            #expect(job.state == "published")
            #expect(job.attempts.first?.host == victim && job.attempts.first?.outcome == "host-failed", "\(job.attempts)")
            #expect(job.attempts.last?.host == survivor && job.attempts.last?.outcome == "succeeded", "\(job.attempts)")
            #expect(Self.indexed(dist) == [try #require(job.wheel)])
            #expect(release.output.contains("host \(victim) quarantined"))
            // The journal keeps what happened to the host.
            let journal = try await TestProcess.wheelfarmInBackground(["status", "--dist-dir", dist.path, "--json"])
            let doc = try JSONSerialization.jsonObject(with: Data(journal.stdout.utf8)) as? [String: Any]
            let hostRows = doc?["hosts"] as? [[String: Any]] ?? []
            let row = hostRows.first { $0["name"] as? String == victim }
            #expect(["quarantined", "lost"].contains(row?["state"] as? String ?? ""), "\(hostRows)")
            #expect(hostRows.first { $0["name"] as? String == survivor }?["state"] as? String == "reachable", "\(hostRows)")
        }
    }

    @Test func aWheelCorruptedAfterTheBuildIsCaughtDeletedAndRebuilt() async throws {
        try await Self.withPlainFarm(["alpha"], corruptFirstWheel: true) { _, inventory, dist, scratch in
            let tools = scratch.appendingPathComponent("tools-alpha")
            let r = try await TestProcess.wheelfarmInBackground(["release"] + Self.arguments(inventory: inventory, dist: dist),
                                              environment: ProcessInfo.processInfo.environment.merging(["CI": "true"]) { $1 })
            #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
            #expect(FileManager.default.fileExists(atPath: tools.appendingPathComponent("corrupted-once").path), "the host never corrupted a wheel")

            let job = try #require(try ReleaseReportFile(dist: dist).jobs.first)
            #expect(job.state == "published")
            #expect(job.attempts.map(\.outcome) == ["verify-failed", "succeeded"], "\(job.attempts)")
            let failure = job.attempts.first?.detail ?? ""
            #expect(failure.contains("failed verification and was deleted") && failure.contains("zip."), "\(failure)")
            // The published wheel is the rebuilt one, intact: it passes verification and pip installs it.
            let wheel = try #require(job.wheel)
            #expect(Self.indexed(dist) == [wheel])
            let published = dist.appendingPathComponent("index/packages/wfsample-cpu/\(wheel)")
            #expect(try sha256Hex(published) == job.sha256)
            let verify = try await TestProcess.wheelfarmInBackground(["verify", published.path])
            #expect(verify.status == 0, "\(verify.stdout)")
        }
    }

    @Test func theIndexAnswering500OnTheFirstUploadIsRetried() async throws {
        try await Self.withPlainFarm(["alpha"]) { _, inventory, dist, scratch in
            let server = try PyPIServerHarness()
            defer { server.stop() }
            let proxy = try FaultProxy(upstreamPort: try #require(URLComponents(string: server.url)?.port), plan: ["500"], directory: scratch)
            defer { proxy.stop() }
            let env = ProcessInfo.processInfo.environment.merging(server.credentialsEnvironment.merging(["CI": "true"]) { $1 }) { $1 }
            let args = ["release"] + Self.arguments(inventory: inventory, dist: dist) + ["--repository-url", proxy.url, "--index-url", server.simpleURL]
            let r = try await TestProcess.wheelfarmInBackground(args, environment: env)
            #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
            #expect(proxy.steps == ["POST:500"])
            let job = try #require(try ReleaseReportFile(dist: dist).jobs.first)
            #expect(job.state == "published")
            #expect(try server.storedFiles() == [try #require(job.wheel)])
            #expect(try sha256Hex(server.packagesDirectory.appendingPathComponent(job.wheel!)) == job.sha256)
            #expect(!r.stdout.contains(server.password) && !r.stderr.contains(server.password))

            // Run again: nothing is built or uploaded.
            let again = try await TestProcess.wheelfarmInBackground(args, environment: env)
            #expect(again.status == 0, "\(again.stdout)")
            #expect(again.stdout.contains("0 to build · 1 already built and verified"))
            #expect(again.stdout.contains("already published"))
        }
    }

    @Test func aWheelPublishedBeforeTheRunIsAttachedToItsGitHubReleaseFromTheIndexOnlyIfItVerifies() async throws {
        try await Self.withPlainFarm(["alpha"]) { _, inventory, dist, scratch in
            let server = try PyPIServerHarness()
            defer { server.stop() }
            let token = "ghp_fromindex\(UUID().uuidString.prefix(12))"
            let github = try FakeGitHub(token: token, directory: scratch)
            defer { github.stop() }
            let env = server.credentialsEnvironment.merging(["GITHUB_TOKEN": token]) { $1 }

            // Published to the index, GitHub skipped.
            let first = try BackgroundRelease(Self.arguments(inventory: inventory, dist: dist) + ["--repository-url", server.url], in: scratch, environment: env)
            #expect(await first.exitStatus() == 0, "\(first.output)")
            let stored = try server.storedFiles()
            try #require(stored.count == 1)
            let onIndex = server.packagesDirectory.appendingPathComponent(stored[0])
            let good = try Data(contentsOf: onIndex)

            // From a fresh dist directory (another machine, or the old one lost), with GitHub set up.
            let fresh = scratch.appendingPathComponent("dist-fresh")
            let args = Self.arguments(inventory: inventory, dist: fresh).filter { $0 != "--skip-github" }
                + ["--repository-url", server.url, "--github-repository", "wheelfarm-test/wfsample", "--github-api-url", github.apiURL]

            // The index's copy is damaged (an index listing a digest of the damaged bytes): it is
            // fetched, fails verification and is not attached; the run fails.
            try WheelFixtures.corruptFirstMember(onIndex)
            let refused = try BackgroundRelease(args, in: scratch, environment: env)
            #expect(await refused.exitStatus() == 1, "\(refused.output)")
            #expect(refused.output.contains("0 to build") && lines(refused.output, containing: "started ").isEmpty, "\(refused.output)")
            #expect(refused.output.contains("\(stored[0]): not attached to its GitHub release"), "\(refused.output)")
            let noAssets = try github.state()
            #expect(noAssets.allSatisfy { $0.assets.isEmpty }, "\(noAssets)")

            // The index's copy intact: fetched, verified, attached, the release published; nothing built or uploaded.
            try good.write(to: onIndex)
            let attached = try BackgroundRelease(args, in: scratch, environment: env)
            #expect(await attached.exitStatus() == 0, "\(attached.output)")
            #expect(attached.output.contains("\(stored[0]): fetched from"), "\(attached.output)")
            #expect(lines(attached.output, containing: "started ").isEmpty && !attached.output.contains("=== Phase 2"), "\(attached.output)")
            let releases = try github.state()
            #expect(releases.count == 1 && releases.first?.draft == false && releases.first?.assets.map(\.name) == stored, "\(releases)")
            #expect(releases.first?.assets.first?.sha256 == (try sha256Hex(onIndex)))
            #expect(try server.storedFiles() == stored)
            for out in [refused.output, attached.output] { #expect(!out.contains(token) && !out.contains(server.password)) }

            // Once attached, nothing is fetched or sent again.
            let before = github.requests.count
            let again = try BackgroundRelease(args, in: scratch, environment: env)
            #expect(await again.exitStatus() == 0, "\(again.output)")
            #expect(!again.output.contains("fetched from"), "\(again.output)")
            #expect(!github.requests.dropFirst(before).contains { !$0.hasPrefix("GET") }, "\(github.requests.dropFirst(before))")
        }
    }

    @Test func theCoordinatorKilledDuringABuildResumesAndStopsTheOrphanedBuild() async throws {
        try await Self.withPlainFarm(["alpha"]) { farm, inventory, dist, scratch in
            let args = Self.arguments(inventory: inventory, dist: dist, versions: "1.0.0,1.1.0")
            try HostTools.hold(Self.tools(scratch, "alpha"))
            let first = try BackgroundRelease(args, in: scratch)
            try await first.waitFor(": compile")
            first.kill()
            // The build it started is still running on the host, owned by nobody.
            let jobs = "\(farm.inventoryHost("alpha").workDir)/jobs"
            let running = "for f in \(jobs)/*/pid; do p=$(cat \"$f\") && kill -0 \"$p\" 2>/dev/null && echo \"$p\"; done; true"
            let orphans = try farm.shell(on: "alpha", running).stdout.split(separator: "\n").map(String.init)
            #expect(orphans.count == 1, "expected one orphaned build on the host, found \(orphans)")

            let second = try BackgroundRelease(args, in: scratch)
            try await second.waitFor("still running on alpha: stopped")
            HostTools.release(Self.tools(scratch, "alpha"))
            #expect(await second.exitStatus() == 0, "\(second.output)")
            #expect(second.output.contains("stopping 1 build left by an interrupted run"), "\(second.output)")
            let stillRunning = try farm.shell(on: "alpha", running).stdout
            #expect(stillRunning.isEmpty, "builds still running on the host after the release: \(stillRunning)")
            let report = try ReleaseReportFile(dist: dist)
            #expect(report.jobs.count == 2 && report.jobs.allSatisfy { $0.state == "published" }, "\(report.jobs)")
            #expect(Self.indexed(dist).count == 2)
            let status = try await TestProcess.wheelfarmInBackground(["status", "--dist-dir", dist.path])
            #expect(status.stdout.contains("succeeded"), "\(status.stdout)")
        }
    }

    @Test func theCoordinatorKilledDuringPublishingResumesWithoutUploadingTwice() async throws {
        try await Self.withPlainFarm(["alpha"]) { _, inventory, dist, scratch in
            let server = try PyPIServerHarness()
            defer { server.stop() }
            // The first upload passes; the second is held until the coordinator has been killed
            // while it is in flight; the proxy then delivers it anyway (the index stores a file
            // whose upload the coordinator never saw finish).
            let proxy = try FaultProxy(upstreamPort: try #require(URLComponents(string: server.url)?.port), plan: ["pass", "hold"], directory: scratch)
            defer { proxy.stop() }
            let env = server.credentialsEnvironment
            let args = Self.arguments(inventory: inventory, dist: dist, versions: "1.0.0,1.1.0") + ["--repository-url", proxy.url, "--index-url", server.simpleURL]
            let first = try BackgroundRelease(args, in: scratch, environment: env)
            let deadline = Date().addingTimeInterval(300)
            while !proxy.steps.contains("POST:hold") && Date() < deadline && first.process.isRunning { try await Task.sleep(for: .milliseconds(50)) }
            #expect(proxy.steps == ["POST:pass", "POST:hold"], "\(first.output)")
            first.kill()
            proxy.letHeldRequestsGo()
            #expect(first.output.contains("=== Phase 2"))
            #expect(!lines(first.output, containing: " complete").contains { $0.hasPrefix("release ") }, "the coordinator finished before it was killed")
            // Wait for the held upload to land.
            let landed = Date().addingTimeInterval(30)
            while (try server.storedFiles()).count < 2 && Date() < landed { try await Task.sleep(for: .milliseconds(100)) }
            let stored = try server.storedFiles()
            #expect(stored.count == 2)

            let second = try BackgroundRelease(args, in: scratch, environment: env)
            #expect(await second.exitStatus() == 0, "\(second.output)")
            #expect(second.output.contains("0 to build · 2 already built and verified"), "\(second.output)")
            #expect(lines(second.output, containing: ".whl: already").count == 2, "\(second.output)")
            #expect(!second.output.contains(": uploaded"), "\(second.output)")
            #expect(proxy.steps.count == 2, "the second run uploaded again: \(proxy.steps)")
            #expect(try server.storedFiles() == stored)
            let report = try ReleaseReportFile(dist: dist)
            for job in report.jobs {
                #expect(job.state == "published")
                #expect(try sha256Hex(server.packagesDirectory.appendingPathComponent(try #require(job.wheel))) == job.sha256)
            }
        }
    }

    @Test func aHostAddedToTheInventoryMidRunReceivesWork() async throws {
        try await Self.withPlainFarm(["alpha", "beta"], listed: ["alpha"]) { farm, inventory, dist, scratch in
            // alpha's first build waits until beta has joined, so work is still queued when it does.
            try HostTools.hold(Self.tools(scratch, "alpha"))
            let release = try BackgroundRelease(Self.arguments(inventory: inventory, dist: dist, versions: "1.0.0,1.1.0,1.2.0"), in: scratch)
            try await release.waitFor("started ")
            try farm.writeInventory(to: inventory)   // beta joins
            try await release.waitFor("host beta joined")
            HostTools.release(Self.tools(scratch, "alpha"))
            #expect(await release.exitStatus() == 0, "\(release.output)")
            let report = try ReleaseReportFile(dist: dist)
            #expect(report.jobs.count == 3 && report.jobs.allSatisfy { $0.state == "published" })
            let builtOn = report.jobs.compactMap { $0.attempts.last?.host }
            #expect(builtOn.contains("beta"), "the new host got no work: \(builtOn)")
            let status = try await TestProcess.wheelfarmInBackground(["status", "--dist-dir", dist.path])
            #expect(lines(status.stdout, containing: "beta").contains { $0.contains(" joined ") }, "\(status.stdout)")
            #expect(Self.indexed(dist).count == 3)
        }
    }

    @Test func aHostRemovedFromTheInventoryMidRunGetsNoMoreWork() async throws {
        try await Self.withPlainFarm(["alpha", "beta"]) { farm, inventory, dist, scratch in
            // Both hosts' first builds wait until beta has left, so it leaves with a build under way
            // and work still queued.
            for host in ["alpha", "beta"] { try HostTools.hold(Self.tools(scratch, host)) }
            let release = try BackgroundRelease(Self.arguments(inventory: inventory, dist: dist, versions: "1.0.0,1.1.0,1.2.0,1.3.0"), in: scratch)
            try await release.waitFor("on beta (attempt 1)")
            try farm.writeInventory(to: inventory, only: ["alpha"])   // beta leaves
            try await release.waitFor("host beta left the inventory")
            for host in ["alpha", "beta"] { HostTools.release(Self.tools(scratch, host)) }
            #expect(await release.exitStatus() == 0, "\(release.output)")
            let out = release.output
            let left = try #require(out.range(of: "host beta left the inventory"), "\(out)")
            let afterLeaving = lines(String(out[left.upperBound...]), containing: "started ")
            #expect(!afterLeaving.isEmpty && afterLeaving.allSatisfy { !$0.contains(" on beta ") }, "beta got work after it left:\n\(out)")
            let report = try ReleaseReportFile(dist: dist)
            #expect(report.jobs.count == 4 && report.jobs.allSatisfy { $0.state == "published" }, "\(report.jobs)")
            #expect(report.jobs.contains { $0.attempts.contains { $0.host == "beta" && $0.outcome == "succeeded" } },
                    "beta's build under way when it left should have finished")
            let status = try await TestProcess.wheelfarmInBackground(["status", "--dist-dir", dist.path])
            #expect(lines(status.stdout, containing: "beta").contains { $0.contains(" left ") }, "\(status.stdout)")
            #expect(Self.indexed(dist).count == 4)
        }
    }
}
