import FarmTestSupport
import Foundation
import Testing

/// The release engineer's weekly operations on real sshd build hosts, run as the built binary:
/// Ctrl-C, two coordinators sharing a host, a broken source repository, learned durations.
@Suite("release pipeline v2 (sshd farm, built binary)", .serialized)
struct PipelineFarmTests {
    /// Process groups with a member on host `name` whose leader is a build (a `pid` file of a job).
    static func buildGroups(_ farm: SSHTestFarm, _ name: String) throws -> [String] {
        let jobs = "\(farm.inventoryHost(name).workDir)/jobs"
        let script = "for f in \(jobs)/*/pid; do p=$(cat \"$f\" 2>/dev/null) && kill -0 \"$p\" 2>/dev/null && ps -o pgid= -p \"$p\"; done; true"
        return try farm.shell(on: name, script).stdout.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// The processes of group `pgid` still running on host `name` (zombies do not run: the
    /// simulated host's init, a shell, does not reap them), waiting up to 10 s for them to go.
    static func groupAlive(_ farm: SSHTestFarm, _ name: String, _ pgid: String) async throws -> String? {
        var left = ""
        for _ in 0..<50 {
            left = try farm.shell(on: name, "ps -e -o pgid=,stat=,pid=,args= | awk '$1 == \(pgid) && $2 !~ /^Z/'").stdout
            if left.isEmpty { return nil }
            try await Task.sleep(for: .milliseconds(200))
        }
        return left
    }

    @Test func ctrlCMidBuildStopsTheRemoteBuildExits130AndTheSameCommandResumes() async throws {
        try await ReleaseFaultTests.withPlainFarm(["alpha"]) { farm, inventory, dist, scratch in
            let args = ReleaseFaultTests.arguments(inventory: inventory, dist: dist, versions: "1.0.0,1.1.0")
            try HostTools.hold(ReleaseFaultTests.tools(scratch, "alpha"))
            let first = try BackgroundRelease(args, in: scratch)
            try await first.waitFor(": compile")
            let groups = try Self.buildGroups(farm, "alpha")
            try #require(groups.count == 1, "expected one build on the host, found \(groups)")
            first.process.send(SIGINT)
            let status = await first.exitStatus(timeout: 120)
            #expect(status == 130, "\(first.output)")
            // The remote build and everything it started are gone.
            let left = try await Self.groupAlive(farm, "alpha", groups[0])
            #expect(left == nil, "the build's process group \(groups[0]) still runs on alpha:\n\(left ?? "")")
            #expect(first.output.contains("SIGINT received: stopping the running builds"), "\(first.output)")
            #expect(first.output.contains("=== Summary ===") && first.output.contains("cancelled: run the same command again to resume"), "\(first.output)")
            let report = try ReleaseReportFile(dist: dist)
            #expect(report.jobs.count == 2 && report.jobs.allSatisfy { $0.state == "cancelled" }, "\(report.jobs)")
            #expect(report.jobs.flatMap(\.attempts).map(\.outcome) == ["cancelled"], "\(report.jobs)")
            let journal = try await TestProcess.wheelfarmInBackground(["status", "--dist-dir", dist.path])
            #expect(journal.stdout.contains("· cancelled ·"), "\(journal.stdout)")

            // The same command resumes: nothing was left for an orphan sweep, everything is built.
            HostTools.release(ReleaseFaultTests.tools(scratch, "alpha"))
            let second = try BackgroundRelease(args, in: scratch)
            #expect(await second.exitStatus() == 0, "\(second.output)")
            #expect(!second.output.contains("left by an interrupted run"), "\(second.output)")
            #expect(ReleaseFaultTests.indexed(dist).count == 2)
            // Logs are never overwritten: the cancelled attempt's log and both new ones.
            let logs = try FileManager.default.contentsOfDirectory(atPath: dist.appendingPathComponent("logs").path)
            #expect(logs.count == 3, "\(logs)")
        }
    }

    @Test func sigtermMidBuildStopsTheRemoteBuildAndExits143() async throws {
        try await ReleaseFaultTests.withPlainFarm(["alpha"]) { farm, inventory, dist, scratch in
            let args = ReleaseFaultTests.arguments(inventory: inventory, dist: dist)
            try HostTools.hold(ReleaseFaultTests.tools(scratch, "alpha"))
            defer { HostTools.release(ReleaseFaultTests.tools(scratch, "alpha")) }
            let run = try BackgroundRelease(args, in: scratch)
            try await run.waitFor(": compile")
            let groups = try Self.buildGroups(farm, "alpha")
            try #require(groups.count == 1, "expected one build on the host, found \(groups)")
            run.process.send(SIGTERM)
            #expect(await run.exitStatus(timeout: 120) == 143, "\(run.output)")
            let left = try await Self.groupAlive(farm, "alpha", groups[0])
            #expect(left == nil, "the build's process group \(groups[0]) still runs on alpha:\n\(left ?? "")")
            #expect(run.output.contains("SIGTERM received: stopping the running builds"), "\(run.output)")
            let report = try ReleaseReportFile(dist: dist)
            #expect(report.jobs.map(\.state) == ["cancelled"], "\(report.jobs)")
        }
    }

    @Test func aSecondCtrlCExitsAtOnceNamingWhatMayStillRun() async throws {
        try await ReleaseFaultTests.withPlainFarm(["alpha"]) { farm, inventory, dist, scratch in
            let args = ReleaseFaultTests.arguments(inventory: inventory, dist: dist)
            let tools = ReleaseFaultTests.tools(scratch, "alpha")
            // A compiler that takes eight seconds to stop when told to (as real builds may; the
            // agent's grace is ten), so the second Ctrl-C, two seconds after the first, comes
            // while the first one's cancellation is under way, however late the test reads the
            // coordinator's output on a loaded machine.
            let slow = """
                #!/bin/sh
                trap 'sleep 8; exit 143' TERM
                case " $* " in
                  *" -c "*)
                    waited=0
                    while [ -e "$(dirname "$0")/hold" ] && [ "$waited" -lt 9000 ]; do sleep 0.1; waited=$((waited + 1)); done ;;
                esac
                /usr/bin/gcc "$@"

                """
            for name in ["gcc", "cc"] {
                try slow.write(to: tools.appendingPathComponent(name), atomically: true, encoding: .utf8)
                try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: tools.appendingPathComponent(name).path)
            }
            try HostTools.hold(tools)
            let release = try BackgroundRelease(args, in: scratch)
            try await release.waitFor(": compile")
            let groups = try Self.buildGroups(farm, "alpha")
            release.process.send(SIGINT)
            try await Task.sleep(for: .seconds(2))
            release.process.send(SIGINT)
            #expect(await release.exitStatus(timeout: 60) == 130, "\(release.output)")
            #expect(release.output.contains("SIGINT again: exiting now."), "\(release.output)")
            // The build still stopping is named by job, host and job directory, with the command that stops it.
            let named = lines(release.output, containing: " on alpha (").filter { $0.contains("/jobs/") }
            #expect(named.count == 1 && named[0].contains("/jobs/wfsample-cpu-1.0.0-cp311-amd64-a1-"), "\(release.output)")
            #expect(release.output.contains("cancel.sh --work-dir"), "\(release.output)")
            // The next run stops whatever is left and completes.
            HostTools.release(tools)
            let again = try BackgroundRelease(args, in: scratch)
            #expect(await again.exitStatus() == 0, "\(again.output)")
            for group in groups {
                let left = try await Self.groupAlive(farm, "alpha", group)
                #expect(left == nil, "\(left ?? "")")
            }
            #expect(ReleaseFaultTests.indexed(dist).count == 1)
        }
    }

    @Test func twoCoordinatorsShareASlotsOneHostWithoutEverBuildingTwiceAtOnce() async throws {
        try await ReleaseFaultTests.withPlainFarm(["solo"]) { _, inventory, dist, scratch in
            // A compiler that notes any compilation overlapping another on the host, and waits
            // while the test holds it.
            let tools = ReleaseFaultTests.tools(scratch, "solo")
            let wrapper = """
                #!/bin/sh
                d="$(dirname "$0")"
                case " $* " in
                  *" -c "*)
                    mkdir "$d/compiling" 2>/dev/null || : > "$d/overlap"
                    waited=0
                    while [ -e "$d/hold" ] && [ "$waited" -lt 9000 ]; do sleep 0.1; waited=$((waited + 1)); done
                    /usr/bin/gcc "$@"; rc=$?
                    rmdir "$d/compiling" 2>/dev/null
                    exit $rc ;;
                esac
                exec /usr/bin/gcc "$@"

                """
            for name in ["gcc", "cc"] {
                try wrapper.write(to: tools.appendingPathComponent(name), atomically: true, encoding: .utf8)
                try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: tools.appendingPathComponent(name).path)
            }
            let text = try String(contentsOf: inventory, encoding: .utf8)
            try text.replacingOccurrences(of: "    arch: amd64\n", with: "    arch: amd64\n    slots: 1\n").write(to: inventory, atomically: true, encoding: .utf8)
            try HostTools.hold(tools)
            let distB = scratch.appendingPathComponent("dist-b")
            let a = try BackgroundRelease(ReleaseFaultTests.arguments(inventory: inventory, dist: dist), in: scratch)
            try await a.waitFor(": compile")
            let b = try BackgroundRelease(ReleaseFaultTests.arguments(inventory: inventory, dist: distB), in: scratch)
            try await b.waitFor("waiting for a build slot")
            try await Task.sleep(for: .seconds(2))     // b keeps waiting while a holds the only slot
            #expect(!FileManager.default.fileExists(atPath: tools.appendingPathComponent("overlap").path))
            HostTools.release(tools)
            #expect(await a.exitStatus() == 0, "\(a.output)")
            #expect(await b.exitStatus() == 0, "\(b.output)")
            #expect(!FileManager.default.fileExists(atPath: tools.appendingPathComponent("overlap").path), "two builds ran at once on a slots: 1 host")
            #expect(!b.output.contains("already running"), "\(b.output)")
            for d in [dist, distB] {
                let job = try #require(try ReleaseReportFile(dist: d).jobs.first)
                #expect(job.state == "published" && job.attempts.count == 1, "\(job)")
            }
        }
    }

    @Test func aBrokenSourceRepositoryFailsOnceAsABuildFailureWithGitsMessage() async throws {
        try await ReleaseFaultTests.withPlainFarm(["alpha"]) { _, inventory, dist, scratch in
            // vLLM's recipe, pointed at a folder that is not a git repository.
            let notARepo = scratch.appendingPathComponent("not-a-repo")
            try FileManager.default.createDirectory(at: notARepo, withIntermediateDirectories: true)
            let recipe = scratch.appendingPathComponent("vllm-broken.yaml")
            let shipped = try String(contentsOf: TestEnvironment.repositoryRoot.appendingPathComponent("recipes/vllm-cpu.yaml"), encoding: .utf8)
            // The recipe's own files (its step, its patches) go with it; the platform requirement
            // goes (the farm's hosts are Debian 12, glibc 2.36: a manylinux_2_28 build would
            // never be placed, and this test is about the source phase).
            try FileManager.default.copyItem(at: TestEnvironment.repositoryRoot.appendingPathComponent("recipes/vllm-cpu"),
                                             to: scratch.appendingPathComponent("vllm-broken"))
            try #require(shipped.contains("  git: https://github.com/vllm-project/vllm.git") && shipped.contains("\nplatform: manylinux_2_28\n"),
                         "the shipped recipe's source or platform line moved: this test would not point it elsewhere")
            try shipped.replacingOccurrences(of: "  git: https://github.com/vllm-project/vllm.git", with: "  git: file://\(notARepo.path)")
                .replacingOccurrences(of: "\nplatform: manylinux_2_28\n", with: "\n")
                .write(to: recipe, atomically: true, encoding: .utf8)
            let r = try await TestProcess.wheelfarmInBackground(
                ["release", "--recipe", recipe.path, "--variant", "noavx512", "--platform", "linux/amd64", "--vllm-versions", "0.11.0",
                 "--python-versions", "3.11", "--inventory", inventory.path, "--dist-dir", dist.path, "--skip-github"],
                environment: ProcessInfo.processInfo.environment.merging(["CI": "true"]) { $1 })
            #expect(r.status == 1, "\(r.stdout)\n\(r.stderr)")
            let job = try #require(try ReleaseReportFile(dist: dist).jobs.first)
            #expect(job.state == "failed")
            #expect(job.attempts.map(\.outcome) == ["build-failed"], "not retried on the same host: \(job.attempts)")
            let detail = job.attempts.first?.detail ?? ""
            #expect(detail.contains("'git' failed") && detail.contains("(phase source)"), "\(detail)")
            #expect(detail.contains("does not appear to be a git repository") && detail.contains(": fatal: "), "git's own message: \(detail)")
            #expect(detail.range(of: #"line \d+: fatal: "#, options: .regularExpression) != nil, "with its log line: \(detail)")
            // A build failure, not a lost host.
            #expect(!r.stdout.contains("quarantined") && !r.stdout.contains("lost its build host"), "\(r.stdout)")
        }
    }

    @Test func theSecondRunsPlanUsesTheFirstRunsDurations() async throws {
        try await ReleaseFaultTests.withPlainFarm(["alpha"]) { _, inventory, dist, scratch in
            let plan = ["plan", "--recipe", "sample", "--variant", "noavx512", "--platform", "linux/amd64", "--versions", "1.0.0,1.1.0",
                        "--inventory", inventory.path, "--dist-dir", dist.path, "--json"]
            func expected(_ r: ProcessResult) throws -> [[String: Any]] {
                let doc = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
                return (doc["jobs"] as? [[String: Any]] ?? []).compactMap { $0["expected"] as? [String: Any] }
            }
            let before = try expected(try await TestProcess.wheelfarmInBackground(plan))
            #expect(before.count == 2 && before.allSatisfy { $0["from"] as? String == "estimate" }, "\(before)")

            let first = try BackgroundRelease(ReleaseFaultTests.arguments(inventory: inventory, dist: dist), in: scratch)
            #expect(await first.exitStatus() == 0, "\(first.output)")
            let attempt = try #require(try ReleaseReportFile(dist: dist).jobs.first?.attempts.first)
            #expect(attempt.outcome == "succeeded")

            // Both versions (1.1.0 of the same family has no build of its own yet) now expect what
            // the 1.0.0 build took on alpha, not the recipe's 2 minutes.
            let after = try expected(try await TestProcess.wheelfarmInBackground(plan))
            #expect(after.count == 2 && after.allSatisfy { $0["from"] as? String == "history" && $0["samples"] as? Int == 1 && $0["host"] as? String == "alpha" }, "\(after)")
            let seconds = try #require(after.first?["seconds"] as? Double)
            let report = try JSONSerialization.jsonObject(with: Data(contentsOf: try #require(
                try FileManager.default.contentsOfDirectory(at: dist.appendingPathComponent("reports"), includingPropertiesForKeys: nil)
                    .first { $0.pathExtension == "json" }))) as? [String: Any]
            let recorded = ((report?["jobs"] as? [[String: Any]])?.first?["attempts"] as? [[String: Any]])?.first
            let formatter = ISO8601DateFormatter()
            let took = try #require(formatter.date(from: recorded?["end"] as? String ?? "")).timeIntervalSince(try #require(formatter.date(from: recorded?["start"] as? String ?? "")))
            #expect(abs(seconds - took) <= 2.5, "plan expects \(seconds) s, the build took \(took) s")
            // The simulator plans with the same history.
            let sim = try await TestProcess.wheelfarmInBackground(["simulate"] + Array(plan.dropFirst().dropLast()))
            #expect(sim.stdout.contains("durations: 1 earlier build in"), "\(sim.stdout)\n\(sim.stderr)")
        }
    }
}
