import Agents
import FarmCore
import FarmTestSupport
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// What a host may make the coordinator (and a running build) suffer: a probe that prints without
/// end (through the built binary), and a second start of a running job (through build.sh itself).
@Suite("untrusted build hosts: probe output and job refusal")
struct UntrustedAgentTests {
    @Test func aProbeThatFloodsIsStoppedAtTheOutputCapInBoundedMemory() async throws {
        let scratch = try TestEnvironment.makeTemporaryDirectory("wf-probe-flood")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let agent = try HostileAgent.make(in: scratch, wheels: scratch, firstAttempt: "honest",
                                          probe: "yes 'a probe that prints without end'")
        let inventory = try LocalInventory.write(in: scratch, hosts: [("flooder", 1.0)])
        var env = ProcessInfo.processInfo.environment
        env["WHEELFARM_AGENTS_DIR"] = agent.directory.path
        let run = try await MeasuredRun.wheelfarm(["hosts", "probe", "--inventory", inventory.path, "--cache-dir",
                                                   scratch.appendingPathComponent("cache").path, "--recipes", "sample"],
                                                  environment: env)
        #expect(run.status == 1, "\(run.stdout)\n\(run.stderr)")
        #expect((run.stdout + run.stderr).contains("printed more than \(4 << 20) bytes"), "\(run.stdout)\n\(run.stderr)")
        // The old coordinator read it all (16 GB in 40 s); now a few MiB are held at most.
        #expect(run.peakResidentBytes < 400 << 20, "peak RSS \(run.peakResidentBytes >> 20) MiB")
        print("measured: \(#function): peak RSS \(run.peakResidentBytes >> 20) MiB")
        #expect(run.stdout.utf8.count + run.stderr.utf8.count < 64 << 10, "the error is short")
        let left = try TestProcess.run("/bin/sh", ["-c", "ps -eo args | grep -c '^yes a probe that print[s]' || true"])
        #expect(left.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "0", "the probe was stopped")
    }

    @Test func aSecondStartOfARunningJobLeavesItsPidFileAndStatusAlone() throws {
        let scratch = try TestEnvironment.makeTemporaryDirectory("wf-already-running")
        defer { try? FileManager.default.removeItem(at: scratch) }
        // An agent whose recipe builds by sleeping: a build that stays running as long as needed.
        let agents = scratch.appendingPathComponent("agents")
        #expect(try TestProcess.run("cp", ["-R", Scripts.agents.path, agents.path]).status == 0)
        try """
            # shellcheck shell=bash
            WF_RECIPE_MIN_FREE_MB=1
            recipe_env() { :; }
            recipe_build() { wf_phase compile; wf_run sleep 615; }

            """.write(to: agents.appendingPathComponent("recipes/sleepy.sh"), atomically: true, encoding: .utf8)
        let python = try Scripts.buildPython(try Scripts.localProbe(workDir: scratch)).version
        let work = scratch.appendingPathComponent("work")
        let args = [agents.appendingPathComponent("build.sh").path, "--work-dir", work.path, "--job-id", "twice", "--recipe", "sleepy",
                    "--package", "sleepy-pkg", "--version", "1.0", "--python", python.description]
        let first = try ServerProcess("/bin/bash", args, logFile: scratch.appendingPathComponent("first.log"))
        defer { first.stop() }
        let job = work.appendingPathComponent("jobs/twice")
        let deadline = Date().addingTimeInterval(120)
        while !((try? String(contentsOf: job.appendingPathComponent("build.log"), encoding: .utf8)) ?? "").contains("sleep 615"), Date() < deadline {
            usleep(100_000)
        }
        let pid = try String(contentsOf: job.appendingPathComponent("pid"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        // Whatever happens below, the build's session goes (a build that escaped cancel.sh would
        // otherwise outlive the test).
        defer { if let leader = Int32(pid) { kill(-leader, SIGKILL) } }

        let second = try Scripts.run("/bin/bash", args)
        #expect(second.status == 2, "\(second.stdout)\n\(second.stderr)")
        #expect(second.stdout.contains("job 'twice' is already running on this host"), "\(second.stdout)")
        // The running build keeps its pid file and has no status: cancel.sh can still find it.
        #expect(try String(contentsOf: job.appendingPathComponent("pid"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) == pid)
        #expect(!FileManager.default.fileExists(atPath: job.appendingPathComponent("status.json").path))
        let cancel = try TestProcess.run("/bin/bash", [agents.appendingPathComponent("cancel.sh").path, "--work-dir", work.path, "--job-id", "twice"])
        #expect(cancel.stdout.contains("\"running\":true"), "\(cancel.stdout)\n\(cancel.stderr)")
        #expect(first.waitForExit(timeout: 30) == 4, "the first build ends cancelled")
        #expect(try String(contentsOf: job.appendingPathComponent("status.json"), encoding: .utf8).contains("\"cancelled\""))
    }
}
