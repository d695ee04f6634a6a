import Agents
import FarmTestSupport
import Foundation
import struct Inventory.Host
import Inventory
import Logging
import Recipes
@testable import Release
import Scheduling
import Synchronization
import Testing
import Wheels

/// What people read: the live terminal view (in a real terminal, tmux), the HTML report (in
/// headless Chromium), the dry run, and the runs a local fault stops.
@Suite("release output (built binary, tmux, Chromium)", .serialized)
struct OutputTests {
    /// Runs tmux on a server of its own.
    struct Tmux {
        let socket = "wf-test-\(UUID().uuidString.prefix(8))"
        @discardableResult
        func callAsFunction(_ args: [String]) throws -> ProcessResult {
            try TestProcess.run("/usr/bin/tmux", ["-L", socket, "-f", "/dev/null"] + args)
        }
        /// Starts the server with a first command. Through Python's subprocess, which closes
        /// every other descriptor: the server tmux forks would otherwise keep the ones this test
        /// process watches its children by, and the client's end would never be seen.
        func start(_ args: [String]) throws {
            let r = try TestProcess.run("/usr/bin/python3", [
                "-c", "import subprocess, sys; d = subprocess.DEVNULL; sys.exit(subprocess.run(sys.argv[1:], stdin=d, stdout=d, stderr=d).returncode)",
                "/usr/bin/tmux", "-L", socket, "-f", "/dev/null"] + args)
            guard r.status == 0 else { throw HarnessError("tmux did not start: exit \(r.status) \(r.stderr)") }
        }
        /// The pane's text: the visible screen, or with `history` everything, wrapped lines joined.
        func capture(history: Bool = false) throws -> [String] {
            try self(["capture-pane", "-p", "-t", "t"] + (history ? ["-J", "-S", "-"] : [])).stdout
                .split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        }
        /// Stops the server and everything in its panes, by PID (a `kill-server` left them
        /// running once a test had failed).
        func stop() {
            let pid = (try? self(["display-message", "-p", "#{pid}"]))?.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            if let pid, let n = Int32(pid), n > 0 {
                let panes = (try? self(["list-panes", "-a", "-F", "#{pane_pid}"]))?.stdout.split(separator: "\n").compactMap { Int32($0) } ?? []
                for p in panes { kill(-p, SIGKILL); kill(p, SIGKILL) }
                kill(n, SIGKILL)
            } else {
                _ = try? self(["kill-server"])
            }
        }
        func wait(for text: String, timeout: TimeInterval = 240) async throws -> [String] {
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline {
                let screen = try capture(history: true)
                if screen.contains(where: { $0.contains(text) }) { return screen }
                try await Task.sleep(for: .milliseconds(200))
            }
            throw HarnessError("'\(text)' did not appear in the terminal within \(Int(timeout)) s:\n\(try capture(history: true).joined(separator: "\n"))")
        }
    }

    static func quote(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }

    @Test func theLiveViewTicksEverySecondFitsTheTerminalAndLeavesNoStaleRows() async throws {
        try await ReleaseFaultTests.withPlainFarm(["alpha"]) { _, inventory, dist, scratch in
            let tools = ReleaseFaultTests.tools(scratch, "alpha")
            try HostTools.hold(tools)
            let tmux = Tmux()
            defer { tmux.stop() }
            let command = (["env", "-u", "CI", "TERM=xterm", TestProcess.wheelfarmBinary, "release"]
                           + ReleaseFaultTests.arguments(inventory: inventory, dist: dist, versions: "1.0.0,1.1.0")).map(Self.quote).joined(separator: " ")
            try tmux.start(["new-session", "-d", "-s", "t", "-x", "100", "-y", "40", "-c", TestEnvironment.repositoryRoot.path,
                            "sh", "-c", command + "; echo WHEELFARM-EXIT=$?; sleep 600"])
            // A compile held on alpha: its elapsed time moves while nothing else happens. (The
            // build venv is set up first, from the index: under the whole suite's load that alone
            // has taken 9 minutes, hence the long deadline.)
            _ = try await tmux.wait(for: " compile ", timeout: 1200)
            func elapsed() throws -> String? {
                try tmux.capture().last { $0.hasPrefix("alpha ") && $0.contains(" compile ") }?.split(separator: " ").last.map(String.init)
            }
            let t1 = try elapsed()
            try await Task.sleep(for: .milliseconds(2500))
            let t2 = try elapsed()
            #expect(t1 != nil && t2 != nil && t1 != t2, "the elapsed time did not move: \(t1 ?? "-") then \(t2 ?? "-")")

            // Narrowed to 50 columns: the view's lines are clipped to fit and the view is redrawn in place.
            try tmux(["resize-window", "-t", "t", "-x", "50", "-y", "40"])
            try await Task.sleep(for: .milliseconds(2500))
            func viewLines(_ screen: [String]) -> [String] { screen.filter { $0.hasPrefix("alpha ") || $0.contains(" · running ") } }
            let narrow = viewLines(try tmux.capture(history: true))
            #expect(!narrow.isEmpty && narrow.allSatisfy { $0.count <= 50 }, "lines wider than the terminal:\n\(narrow.joined(separator: "\n"))")
            #expect(narrow.contains { $0.hasSuffix("…") }, "nothing needed clipping at 50 columns: \(narrow)")

            HostTools.release(tools)
            let done = try await tmux.wait(for: "WHEELFARM-EXIT=")
            #expect(done.contains("WHEELFARM-EXIT=0"), "\(done.joined(separator: "\n"))")
            // One live view in the whole scrollback: every redraw replaced the one before.
            let status = done.filter { $0.contains(" · running ") }
            #expect(status.count == 1, "stale rows of the live view:\n\(done.joined(separator: "\n"))")
            #expect(status.first?.hasPrefix("queued 0 · running 0 · built 2") == true, "\(status)")
        }
    }

    @Test func theHTMLReportRendersInChromiumWithALabelledLinkedBarPerAttempt() throws {
        let chromium = try #require(["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) },
                                    "chromium is not installed: run scripts/setup.sh")
        let dir = try TestEnvironment.makeTemporaryDirectory("wf-report")
        defer { try? FileManager.default.removeItem(at: dir) }
        let t0 = Date(timeIntervalSince1970: 1_800_000_000)
        func attempt(_ host: String, _ from: Double, _ to: Double, _ outcome: String, _ detail: String? = nil, _ log: String) -> ReleaseReport.Attempt {
            .init(host: host, start: t0.addingTimeInterval(from), end: t0.addingTimeInterval(to), outcome: outcome, detail: detail, log: log)
        }
        let report = ReleaseReport(runID: "20270115-080000-abcd", recipe: "sample", startedAt: t0, finishedAt: t0.addingTimeInterval(2750),
                                   status: "failed", hosts: ["skylake", "cascadelake"], jobs: [
            .init(id: "wfsample-cpu-avx512==1.0.0 cp311 amd64", package: "wfsample-cpu-avx512", arch: "amd64", python: "3.11", version: "1.0.0",
                  state: "published", attempts: [attempt("skylake", 5, 900, "host-failed", "connection lost: host unreachable", "a1.log"),
                                                 attempt("skylake", 960, 2100, "succeeded", nil, "a2.log")],
                  wheel: "wfsample_cpu_avx512-1.0.0-cp311-cp311-manylinux_2_28_x86_64.whl"),
            .init(id: "wfsample-cpu-avx512==1.1.0 cp311 amd64", package: "wfsample-cpu-avx512", arch: "amd64", python: "3.11", version: "1.1.0",
                  state: "published", attempts: [attempt("skylake", 30, 1400, "succeeded", nil, "b1.log")]),
            .init(id: "wfsample-cpu-avx512vnni==1.0.0 cp311 amd64", package: "wfsample-cpu-avx512vnni", arch: "amd64", python: "3.11", version: "1.0.0",
                  state: "failed", attempts: [attempt("cascadelake", 10, 2700, "build-failed",
                                                      "'pip' failed with exit 1 in phase 'compile' (log line 310); first error: line 2620: src/k.c:42:7: error: 'vec' undeclared", "c1.log")],
                  detail: "build failed on 'cascadelake'"),
        ])
        let files = try report.write(to: dir.appendingPathComponent("reports"))
        let screenshot = dir.appendingPathComponent("report.png")
        let flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1300,900"]
        let shot = try TestProcess.run(chromium, flags + ["--screenshot=\(screenshot.path)", files.html.absoluteString])
        #expect(shot.status == 0, "\(shot.stderr)")
        // The page rendered: a PNG of the window's size, with more than a blank page's colours.
        let png = try Data(contentsOf: screenshot)
        #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]))
        let be = { (o: Int) in png[o..<o + 4].reduce(0) { $0 << 8 | Int($1) } }
        #expect(be(16) == 1300 && be(20) == 900, "screenshot of \(be(16))×\(be(20))")
        #expect(png.count > 20_000, "a \(png.count)-byte screenshot is a blank page")
        // The DOM Chromium built: every bar is a link to its attempt's log and carries a label.
        let dom = try TestProcess.run(chromium, flags + ["--dump-dom", files.html.absoluteString])
        #expect(dom.status == 0, "\(dom.stderr)")
        let links = dom.stdout.components(separatedBy: "<a class=\"bar-link\"").dropFirst()
        #expect(links.count == 4, "\(links.count) bars")
        for (link, log) in zip(links, ["a1.log", "a2.log", "b1.log", "c1.log"]) {
            #expect(link.contains("href=\"../logs/\(log)\""), "\(link.prefix(300))")
            let label = link.components(separatedBy: "class=\"label\">").dropFirst().first?.components(separatedBy: "<").first ?? ""
            #expect(label.contains("wfsample-cpu-avx512") && label.contains("py3.11") && label.contains("#"), "bar label '\(label)'")
        }
        // Each failed attempt's reason is on the page, next to a link to its log.
        #expect(dom.stdout.contains("connection lost: host unreachable") && dom.stdout.contains("error: 'vec' undeclared"))
        // Round time ticks: 0, 10m, 20m, 30m, 40m for a 46-minute run.
        for tick in ["0", "10m", "20m", "30m", "40m"] { #expect(dom.stdout.contains(">\(tick)</text>"), "tick \(tick)") }
        #expect(!dom.stdout.contains(">45m</text>") && !dom.stdout.contains(">11m 27s</text>"))
    }

    @Test func theDryRunFollowsSkipBuildAndSendsTheRealCommand() throws {
        let dist = try TestEnvironment.makeTemporaryDirectory("wf-dry2")
        defer { try? FileManager.default.removeItem(at: dist) }
        let base = ["release", "--recipe", "sample", "--inventory", "inventory/local.yaml", "--variant", "noavx512", "--platform", "linux/amd64",
                    "--dist-dir", dist.path, "--dry-run"]
        let build = try TestProcess.wheelfarm(base + ["--max-jobs", "3"])
        #expect(build.status == 0, "\(build.stdout)\n\(build.stderr)")
        let command = try #require(lines(build.stdout, containing: "[DRY RUN] Would run on localhost: ").first)
        // The options of the real run: --max-jobs, the slot count, the uploaded source by its digest.
        #expect(command.contains("--max-jobs 3") && command.contains("--slots 1"), "\(command)")
        #expect(command.range(of: #"--source /var/tmp/wheelfarm/cache/src/sample/[0-9a-f]{64}\.tar\.gz"#, options: .regularExpression) != nil, "\(command)")
        #expect(!FileManager.default.fileExists(atPath: dist.appendingPathComponent(".wheelfarm").path), "the dry run changed the dist directory")

        let skip = try TestProcess.wheelfarm(base + ["--skip-build"])
        #expect(skip.status == 1, "no wheel in an empty dist directory: \(skip.stdout)")
        #expect(skip.stdout.contains("--skip-build: nothing would be built") && !skip.stdout.contains("Would run on"), "\(skip.stdout)")
        #expect(skip.stdout.contains("no wheel for it in '\(dist.path)' (--skip-build builds nothing)"), "\(skip.stdout)")
        let readme = try TestProcess.wheelfarm(base + ["--update-readme", "--readme", "README.md"])
        #expect(readme.stdout.contains("--update-readme: nothing would be built") && readme.stdout.contains("nothing would be uploaded"), "\(readme.stdout)")
    }

    @Test func anEmptySelectionIsAUsageError() throws {
        let r = try TestProcess.wheelfarm(["release", "--inventory", "inventory/example-farm.yaml", "--variant=avx512vnni",
                                           "--platform=linux/arm64", "--versions", "0.11.0", "--dry-run"])
        #expect(r.status == 2, "\(r.stdout)\n\(r.stderr)")
        #expect(r.stderr.contains("the selection builds nothing") && r.stderr.contains("avx512vnni (linux/amd64)"), "\(r.stderr)")
    }

    @Test func aFullDiskWhilePublishingEndsWithExitOneTheSummaryAndTheReport() throws {
        let dist = try TestEnvironment.makeTemporaryDirectory("wf-enospc")
        defer { try? FileManager.default.removeItem(at: dist) }
        let index = dist.appendingPathComponent("index")
        try FileManager.default.createDirectory(at: index, withIntermediateDirectories: true)
        let args = ["release", "--recipe", "sample", "--inventory", "inventory/local.yaml", "--variant", "noavx512", "--platform", "linux/amd64",
                    "--dist-dir", dist.path]
        // The local index on a file system of its own that is full (in a mount namespace of the
        // release's own, so nothing outlives it).
        let full = "mount -t tmpfs -o size=64k tmpfs \"$0\" && (cat /dev/zero > \"$0/filler\" 2>/dev/null; true) && exec \"$@\""
        let r = try TestProcess.run("/usr/bin/unshare", ["-m", "sh", "-c", full, index.path, TestProcess.wheelfarmBinary] + args,
                                    environment: ProcessInfo.processInfo.environment.merging(["CI": "true"]) { $1 },
                                    currentDirectory: TestEnvironment.repositoryRoot)
        #expect(r.status == 1, "\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("No space left on device"), "\(r.stdout)")
        #expect(r.stdout.contains("=== Summary ===") && r.stdout.contains("finished with failures"), "\(r.stdout)")
        let job = try #require(try ReleaseReportFile(dist: dist).jobs.first)
        #expect(job.state == "failed" && job.wheel != nil, "\(job)")

        // With space again the same command publishes the verified wheel (not rebuilt).
        let again = try TestProcess.wheelfarm(args)
        #expect(again.status == 0, "\(again.stdout)")
        #expect(again.stdout.contains("0 to build · 1 already built and verified") && again.stdout.contains(": uploaded"), "\(again.stdout)")
        // Root pages a stopped run left missing are rewritten by the next run, even one that
        // publishes nothing new.
        for page in ["index.html", "index.json"] { try FileManager.default.removeItem(at: index.appendingPathComponent("simple/\(page)")) }
        let third = try TestProcess.wheelfarm(args)
        #expect(third.status == 0, "\(third.stdout)")
        #expect(third.stdout.contains("root pages were missing or stale and were rewritten"), "\(third.stdout)")
        let root = try String(contentsOf: index.appendingPathComponent("simple/index.html"), encoding: .utf8)
        #expect(root.contains("wfsample-cpu/"), "\(root)")
    }

    @Test func aJournalThatCannotBeWrittenFailsTheRunWithTheSQLiteErrorAndExitOne() throws {
        let dist = try TestEnvironment.makeTemporaryDirectory("wf-locked")
        defer { try? FileManager.default.removeItem(at: dist) }
        _ = try Journal(distDir: dist)
        // Another process holds the journal's write lock for the whole run.
        let ready = dist.appendingPathComponent("locked").path
        let holder = try ServerProcess("/usr/bin/env", ["python3", "-c", """
            import sqlite3, sys, time
            db = sqlite3.connect(sys.argv[1], isolation_level=None)
            db.execute('BEGIN EXCLUSIVE')
            open(sys.argv[2], 'w').close()
            time.sleep(600)
            """, dist.appendingPathComponent(".wheelfarm/journal.sqlite").path, ready], logFile: dist.appendingPathComponent("holder.log"))
        defer { holder.stop() }
        for _ in 0..<600 where !FileManager.default.fileExists(atPath: ready) { Thread.sleep(forTimeInterval: 0.05) }
        let r = try TestProcess.wheelfarm(["release", "--recipe", "sample", "--inventory", "inventory/local.yaml", "--variant", "noavx512",
                                           "--platform", "linux/amd64", "--dist-dir", dist.path])
        #expect(r.status == 1, "\(r.stdout)\n\(r.stderr)")
        #expect(r.stderr.contains("database is locked"), "\(r.stderr)")
    }
}

/// A journal write that fails before an attempt starts fails the attempt with the SQLite error,
/// and nothing is started on the host.
@Suite("journal writes resume depends on")
struct JournalWriteTests {
    @Test func aFailedBeginAttemptFailsTheAttemptBeforeTheBuildStarts() async throws {
        let dist = try TestEnvironment.makeTemporaryDirectory("wf-begin")
        defer { try? FileManager.default.removeItem(at: dist) }
        let journal = try Journal(distDir: dist)
        let run = try journal.beginRun(recipe: "sample", inventory: "-", arguments: [])
        let ready = dist.appendingPathComponent("locked").path
        let holder = try ServerProcess("/usr/bin/env", ["python3", "-c", """
            import sqlite3, sys, time
            db = sqlite3.connect(sys.argv[1], isolation_level=None)
            db.execute('BEGIN EXCLUSIVE')
            open(sys.argv[2], 'w').close()
            time.sleep(600)
            """, journal.path, ready], logFile: dist.appendingPathComponent("holder.log"))
        defer { holder.stop() }
        for _ in 0..<600 where !FileManager.default.fileExists(atPath: ready) { try await Task.sleep(for: .milliseconds(50)) }
        let job = LedgerTests.job("1.0.0")
        let host = Host(name: "nowhere", address: "127.0.0.1", port: 1, arch: .amd64, workDir: dist.appendingPathComponent("work").path)
        let logger = Logger(label: "test")
        let recipe = try RecipeCatalog.load("sample")
        let config = ReleaseConfiguration(recipe: recipe, jobs: [job], inventory: Inventory(hosts: [host]), inventoryPath: nil, distDir: dist)
        let inFlight = InFlightBuilds()
        let runner = ReleaseJobRunner(configuration: config, layout: DistLayout(root: dist), runID: run, journal: journal,
                                      pool: TransportPool(ssh: SSHSettings(), logger: logger),
                                      buildRunner: BuildRunner(bundle: try ReleasePipeline.agentBundle(), logger: logger),
                                      verifier: WheelVerifier(), source: nil, display: ProgressDisplay(mode: .plain, sink: { _ in }),
                                      ledger: SharedLedger(JobLedger(jobs: [job])), inFlight: inFlight, logger: logger)
        let outcome = try await runner.run(job: job, on: host, attempt: 1)
        guard case let .buildFailed(message) = outcome else { Issue.record("expected a build failure, got \(outcome)"); return }
        #expect(message.contains("could not be recorded in the journal, so it was not started") && message.contains("database is locked"), "\(message)")
        #expect(inFlight.current.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: dist.appendingPathComponent("logs").path), "a log was created for an attempt that never started")
    }
}
