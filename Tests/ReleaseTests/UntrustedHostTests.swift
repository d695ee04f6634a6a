import FarmTestSupport
import Foundation
import Testing

/// `wheelfarm release` against build hosts that lie, flood and hang (issue: build hosts are
/// untrusted), run as the built binary on `connection: local` hosts whose agent is a
/// ``HostileAgent``: it misbehaves on a job's first attempt and "builds" honestly afterwards (by
/// copying a real wheel built once by a real release), so every test ends in a complete release
/// whose first attempt was stopped or refused with the documented reason — in bounded memory
/// (the coordinator's peak RSS), with nothing lost and nothing left behind.
@Suite("release on hostile build hosts (built binary)")
struct UntrustedHostTests {
    /// Far below what any of these attacks cost before they were bounded (a flooding probe took
    /// the coordinator to 16 GB; an 8 GiB artifact was read whole), far above a release's needs.
    static let memoryBound: Int64 = 400 << 20

    /// The test process's environment without credentials, with plain progress lines.
    static func environment(agents: HostileAgent?, _ extra: [String: String] = [:]) -> [String: String] {
        var env = ProcessInfo.processInfo.environment.filter { key, _ in
            !["PYPI_", "TWINE_", "GH_", "GITHUB_"].contains { key.hasPrefix($0) }
        }
        env["CI"] = "true"
        if let agents { env["WHEELFARM_AGENTS_DIR"] = agents.directory.path }
        env.merge(extra) { $1 }
        return env
    }

    static func arguments(inventory: URL, dist: URL, versions: String) -> [String] {
        ["release", "--recipe", "sample", "--variant", "noavx512", "--platform", "linux/amd64", "--versions", versions,
         "--inventory", inventory.path, "--dist-dir", dist.path, "--skip-github"]
    }

    /// A scratch directory, the real wheels, an inventory of `hosts` local hosts, and a dist path.
    static func withSetup(hosts: Int = 1, _ body: (URL, URL, URL, URL) async throws -> Void) async throws {
        let scratch = try TestEnvironment.makeTemporaryDirectory("wf-hostile")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let wheels = try await SampleWheels.shared.directory()
        let inventory = try LocalInventory.write(in: scratch, hosts: (1...hosts).map { ("farm\($0)", 1.0) })
        try await body(scratch, wheels, inventory, scratch.appendingPathComponent("dist"))
    }

    /// The real sample wheel's file name (its tag is auditwheel's verdict on this machine).
    static func wheel(_ version: String) -> String { SampleWheels.fileName(version: version) }

    /// The report's job for `version`.
    static func job(_ dist: URL, _ version: String) throws -> ReleaseReportFile.Job {
        try #require(try ReleaseReportFile(dist: dist).jobs.first { $0.version == version }, "no job for \(version)")
    }

    static func indexed(_ dist: URL) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dist.appendingPathComponent("index/packages/wfsample-cpu").path)) ?? []).sorted()
    }

    /// Nothing of any attempt is left in the staging area.
    static func stagingIsEmpty(_ dist: URL) -> Bool {
        let root = dist.appendingPathComponent(".wheelfarm/staging").path
        return ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).isEmpty
    }

    @Test func anAgentNamingAnotherJobsWheelCannotReplaceOrDeleteIt() async throws {
        try await Self.withSetup { scratch, wheels, inventory, dist in
            // Run 1: 1.0.0 is built, verified and published honestly.
            let honest = try HostileAgent.make(in: scratch, wheels: wheels, firstAttempt: "honest")
            let first = try await MeasuredRun.wheelfarm(Self.arguments(inventory: inventory, dist: dist, versions: "1.0.0"),
                                                        environment: Self.environment(agents: honest))
            #expect(first.status == 0, "\(first.stdout)\n\(first.stderr)")
            let verified = dist.appendingPathComponent(Self.wheel("1.0.0"))
            let digest = try sha256Hex(verified)

            // Run 2: the agent building 1.0.1 reports 1.0.0's wheel (same bytes) as its artifact.
            let liar = try HostileAgent.make(in: scratch, wheels: wheels, firstAttempt: """
                    other="${wheel_name/-$version-/-1.0.0-}"
                    cp "$wheels/$other" "$jobdir/dist/$other"
                    emit artifact file "$other" path "$jobdir/dist/$other" size:raw "$(stat -c %s "$jobdir/dist/$other")" sha256 "$(sha256sum "$jobdir/dist/$other" | cut -d' ' -f1)"
                    emit finished status succeeded exit:raw 0 phase report message "" log "$jobdir/build.log"
                    exit 0
                """)
            let second = try await MeasuredRun.wheelfarm(Self.arguments(inventory: inventory, dist: dist, versions: "1.0.0,1.0.1"),
                                                         environment: Self.environment(agents: liar))
            #expect(second.status == 0, "\(second.stdout)\n\(second.stderr)")
            let job = try Self.job(dist, "1.0.1")
            #expect(job.state == "published")
            #expect(job.attempts.map(\.outcome) == ["host-failed", "succeeded"], "\(job.attempts)")
            let refusal = job.attempts.first?.detail ?? ""
            #expect(refusal.contains("not this job's wheel") && refusal.contains("has version '1.0.0', this job builds 1.0.1"), "\(refusal)")
            // The verified wheel of the other job is untouched, and both are on the index.
            #expect(try sha256Hex(verified) == digest)
            #expect(Self.indexed(dist) == [Self.wheel("1.0.0"), Self.wheel("1.0.1")])
            #expect(Self.stagingIsEmpty(dist))
        }
    }

    @Test func artifactsOutsideTheJobDirectoryOrNotRegularFilesAreNeverRead() async throws {
        try await Self.withSetup(hosts: 2) { scratch, wheels, inventory, dist in
            // 1.0.0 points at /dev/zero through a link in its job directory; 1.0.1 names a real
            // copy of its wheel that lies in another job's directory.
            let liar = try HostileAgent.make(in: scratch, wheels: wheels, firstAttempt: """
                    if [ "$version" = 1.0.0 ]; then
                      ln -s /dev/zero "$jobdir/dist/$wheel_name"
                      emit artifact file "$wheel_name" path "$jobdir/dist/$wheel_name" size:raw 1000 sha256 "$(printf x | sha256sum | cut -d' ' -f1)"
                    else
                      mkdir -p "$work/jobs/someone-else/dist"
                      cp "$wheels/$wheel_name" "$work/jobs/someone-else/dist/$wheel_name"
                      f="$work/jobs/someone-else/dist/$wheel_name"
                      emit artifact file "$wheel_name" path "$f" size:raw "$(stat -c %s "$f")" sha256 "$(sha256sum "$f" | cut -d' ' -f1)"
                    fi
                    emit finished status succeeded exit:raw 0 phase report message "" log "$jobdir/build.log"
                    exit 0
                """)
            let run = try await MeasuredRun.wheelfarm(Self.arguments(inventory: inventory, dist: dist, versions: "1.0.0,1.0.1"),
                                                      environment: Self.environment(agents: liar))
            #expect(run.status == 0, "\(run.stdout)\n\(run.stderr)")
            let zero = try Self.job(dist, "1.0.0"), outside = try Self.job(dist, "1.0.1")
            #expect(zero.attempts.map(\.outcome) == ["host-failed", "succeeded"], "\(zero.attempts)")
            #expect(zero.attempts.first?.detail?.contains("is a symbolic link; only regular files are downloaded") == true, "\(zero.attempts)")
            #expect(outside.attempts.map(\.outcome) == ["host-failed", "succeeded"], "\(outside.attempts)")
            #expect(outside.attempts.first?.detail?.contains("is outside the job's directory") == true, "\(outside.attempts)")
            #expect(Self.indexed(dist) == [Self.wheel("1.0.0"), Self.wheel("1.0.1")])
            #expect(Self.stagingIsEmpty(dist))
            #expect(run.peakResidentBytes < Self.memoryBound, "peak RSS \(run.peakResidentBytes >> 20) MiB")
            print("measured: \(#function): coordinator peak RSS \(run.peakResidentBytes >> 20) MiB")
        }
    }

    @Test func aDownloadStopsAtTheDeclaredSizeAndAnImplausibleSizeIsRefused() async throws {
        try await Self.withSetup(hosts: 2) { scratch, wheels, inventory, dist in
            // 1.0.0: an 8 GiB file (sparse: it costs the host nothing) declared as 4096 bytes;
            // 1.0.1: a real wheel declared as 64 GiB.
            let liar = try HostileAgent.make(in: scratch, wheels: wheels, firstAttempt: """
                    if [ "$version" = 1.0.0 ]; then
                      truncate -s 8G "$jobdir/dist/$wheel_name"
                      emit artifact file "$wheel_name" path "$jobdir/dist/$wheel_name" size:raw 4096 sha256 "$(printf x | sha256sum | cut -d' ' -f1)"
                    else
                      cp "$wheels/$wheel_name" "$jobdir/dist/$wheel_name"
                      emit artifact file "$wheel_name" path "$jobdir/dist/$wheel_name" size:raw 68719476736 sha256 "$(sha256sum "$jobdir/dist/$wheel_name" | cut -d' ' -f1)"
                    fi
                    emit finished status succeeded exit:raw 0 phase report message "" log "$jobdir/build.log"
                    exit 0
                """)
            let run = try await MeasuredRun.wheelfarm(Self.arguments(inventory: inventory, dist: dist, versions: "1.0.0,1.0.1"),
                                                      environment: Self.environment(agents: liar))
            #expect(run.status == 0, "\(run.stdout)\n\(run.stderr)")
            let big = try Self.job(dist, "1.0.0"), implausible = try Self.job(dist, "1.0.1")
            #expect(big.attempts.map(\.outcome) == ["host-failed", "succeeded"], "\(big.attempts)")
            #expect(big.attempts.first?.detail?.contains("is larger than the 4096 bytes expected; the download was stopped") == true, "\(big.attempts)")
            #expect(implausible.attempts.map(\.outcome) == ["host-failed", "succeeded"], "\(implausible.attempts)")
            #expect(implausible.attempts.first?.detail?.contains("declares 68719476736 bytes") == true, "\(implausible.attempts)")
            #expect(Self.stagingIsEmpty(dist))
            #expect(Self.indexed(dist) == [Self.wheel("1.0.0"), Self.wheel("1.0.1")])
            #expect(run.peakResidentBytes < Self.memoryBound, "peak RSS \(run.peakResidentBytes >> 20) MiB")
            print("measured: \(#function): coordinator peak RSS \(run.peakResidentBytes >> 20) MiB")
        }
    }

    @Test func aBuildThatHangsOrNeverEndsIsStoppedByTheWatchdogThroughCancelSh() async throws {
        try await Self.withSetup(hosts: 2) { scratch, wheels, inventory, dist in
            // 1.0.0 closes its output and sleeps (silent, still running); 1.0.1 chatters for ever.
            // cancel.sh stops them, then floods its own output (read only up to a cap).
            let hanging = try HostileAgent.make(in: scratch, wheels: wheels, firstAttempt: """
                    if [ "$version" = 1.0.0 ]; then
                      exec 1>&- 2>&-
                      sleep 611
                    else
                      while :; do echo "still compiling" >&2; sleep 0.2; done
                    fi
                """, cancelAfter: "head -c 50000000 /dev/zero | tr '\\0' 'c'")
            let run = try await MeasuredRun.wheelfarm(Self.arguments(inventory: inventory, dist: dist, versions: "1.0.0,1.0.1")
                                                      + ["--build-silence-limit", "3s", "--build-timeout", "8s"],
                                                      environment: Self.environment(agents: hanging))
            #expect(run.status == 0, "\(run.stdout)\n\(run.stderr)")
            let silent = try Self.job(dist, "1.0.0"), endless = try Self.job(dist, "1.0.1")
            #expect(silent.attempts.map(\.outcome) == ["host-failed", "succeeded"], "\(silent.attempts)")
            #expect(silent.attempts.first?.detail?.contains("printed nothing for 3 s, its silence limit (stopped through cancel.sh)") == true,
                    "\(silent.attempts)")
            #expect(endless.attempts.map(\.outcome) == ["host-failed", "succeeded"], "\(endless.attempts)")
            #expect(endless.attempts.first?.detail?.contains("ran longer than its limit of 8 s (stopped through cancel.sh)") == true,
                    "\(endless.attempts)")
            // cancel.sh really stopped both builds: nothing of them runs any more.
            let left = try TestProcess.run("/bin/sh", ["-c", "ps -eo args | grep -c '^sleep 61[1]' || true"])
            #expect(left.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "0")
            let chatter = try TestProcess.run("/bin/sh", ["-c", "ps -eo pid,args | grep '\(scratch.lastPathComponent)' | grep -v grep || true"])
            #expect(chatter.stdout.isEmpty, "\(chatter.stdout)")
            #expect(run.peakResidentBytes < Self.memoryBound, "peak RSS \(run.peakResidentBytes >> 20) MiB")
            print("measured: \(#function): coordinator peak RSS \(run.peakResidentBytes >> 20) MiB")
        }
    }

    @Test func anEventFloodAndAnEndlessLineAreBoundedAndStopTheBuild() async throws {
        try await Self.withSetup { scratch, wheels, inventory, dist in
            // 200,000 events, then 48 MB without a newline.
            let flooding = try HostileAgent.make(in: scratch, wheels: wheels, firstAttempt: """
                    yes '{"event":"noise","job":"x"}' | head -n 200000
                    head -c 50331648 /dev/zero | tr '\\0' 'x'
                    sleep 612
                """)
            let run = try await MeasuredRun.wheelfarm(Self.arguments(inventory: inventory, dist: dist, versions: "1.0.0"),
                                                      environment: Self.environment(agents: flooding))
            #expect(run.status == 0, "\(run.stdout)\n\(run.stderr)")
            let job = try Self.job(dist, "1.0.0")
            #expect(job.attempts.map(\.outcome) == ["host-failed", "succeeded"], "\(job.attempts)")
            #expect(job.attempts.first?.detail?.contains("printed an event line longer than 1048576 bytes") == true, "\(job.attempts)")
            #expect(run.peakResidentBytes < Self.memoryBound, "peak RSS \(run.peakResidentBytes >> 20) MiB")
            print("measured: \(#function): coordinator peak RSS \(run.peakResidentBytes >> 20) MiB")
            let left = try TestProcess.run("/bin/sh", ["-c", "ps -eo args | grep -c '^sleep 61[2]' || true"])
            #expect(left.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "0")
        }
    }

    @Test func theIndexIsAskedOnResumeAndAnUploadThatDoesNotStickIsNotPublished() async throws {
        try await Self.withSetup { scratch, wheels, inventory, dist in
            let server = try PyPIServerHarness()
            defer { server.stop() }
            let proxy = try FaultProxy(upstreamPort: try #require(URLComponents(string: server.url)?.port),
                                       plan: Array(repeating: "forget", count: 5), directory: scratch)
            defer { proxy.stop() }
            let agent = try HostileAgent.make(in: scratch, wheels: wheels, firstAttempt: "honest")
            let env = Self.environment(agents: agent, server.credentialsEnvironment)
            let args = Self.arguments(inventory: inventory, dist: dist, versions: "1.0.0") + ["--repository-url", proxy.url, "--index-url", server.simpleURL]

            // The index answers 200 to every upload and keeps nothing: not published, exit 1.
            let forgotten = try await MeasuredRun.wheelfarm(args, environment: env)
            #expect(forgotten.status == 1, "\(forgotten.stdout)\n\(forgotten.stderr)")
            #expect(proxy.steps == Array(repeating: "POST:forget", count: 5))
            #expect(forgotten.stdout.contains("accepted '\(Self.wheel("1.0.0"))' 5 times but does not list it"), "\(forgotten.stdout)")
            #expect(try Self.job(dist, "1.0.0").state == "failed")
            #expect(try server.storedFiles().isEmpty)

            // Run again: the wheel verified in dist is uploaded, this time for real.
            let stored = try await MeasuredRun.wheelfarm(args, environment: env)
            #expect(stored.status == 0, "\(stored.stdout)\n\(stored.stderr)")
            #expect(try server.storedFiles() == [Self.wheel("1.0.0")])

            // The index loses the file: the journal says published, the index is asked and wins.
            try FileManager.default.removeItem(at: server.packagesDirectory.appendingPathComponent(Self.wheel("1.0.0")))
            let resumed = try await MeasuredRun.wheelfarm(args, environment: env)
            #expect(resumed.status == 0, "\(resumed.stdout)\n\(resumed.stderr)")
            #expect(resumed.stdout.contains("the journal recorded it as published, but"), "\(resumed.stdout)")
            #expect(try server.storedFiles() == [Self.wheel("1.0.0")])
            #expect(try sha256Hex(server.packagesDirectory.appendingPathComponent(Self.wheel("1.0.0")))
                    == (try sha256Hex(dist.appendingPathComponent(Self.wheel("1.0.0")))))
        }
    }

    @Test func noCredentialReachesALocalBuildOrAnyOutputOrFileOfTheRelease() async throws {
        try await Self.withSetup { scratch, wheels, inventory, dist in
            let server = try PyPIServerHarness()
            defer { server.stop() }
            let ghToken = "ghp_" + UUID().uuidString.replacingOccurrences(of: "-", with: "")
            let github = try FakeGitHub(token: ghToken, directory: scratch)
            defer { github.stop() }
            // The build prints its environment into the log and a file, and stays a moment so
            // that every process of it is seen.
            let agent = try HostileAgent.make(in: scratch, wheels: wheels, firstAttempt: """
                    env >&2
                    env > "$jobdir/env.txt"
                    sleep 2
                    honest
                """)
            let secrets = ["PYPI_API_TOKEN": "pypi-AgEIcHlwaS5vcmc" + UUID().uuidString.prefix(12), "GH_TOKEN": ghToken,
                           "DEPLOY_API_KEY": "key-\(UUID().uuidString.prefix(12))", "BUILD_KEY_PASSPHRASE": "phrase-\(UUID().uuidString.prefix(12))"]
            let env = Self.environment(agents: agent, server.credentialsEnvironment.merging(secrets) { $1 }
                .merging(["WF_VISIBLE_MARKER": "marker-visible"]) { $1 })
            let args = ["release", "--recipe", "sample", "--variant", "noavx512", "--platform", "linux/amd64", "--versions", "1.0.0",
                        "--inventory", inventory.path, "--dist-dir", dist.path, "--repository-url", server.url, "--index-url", server.simpleURL,
                        "--github-repository", "o/r", "--github-api-url", github.apiURL, "--verbose"]
            let run = try await MeasuredRun.wheelfarm(args, environment: env, watchChildren: true)
            #expect(run.status == 0, "\(run.stdout)\n\(run.stderr)")
            #expect(try server.storedFiles() == [Self.wheel("1.0.0")])
            #expect(try github.state().first?.assets.map(\.name) == [Self.wheel("1.0.0")])

            var forms = SecretForms.of(server.password, username: server.username)
            for value in secrets.values { forms += SecretForms.of(value) }
            let work = scratch.appendingPathComponent("work-farm1")
            let everything = [run.stdout, run.stderr, SecretForms.filesText(dist), SecretForms.filesText(work)]
                + run.childEnvironments
            #expect(SecretForms.leaks(forms, in: everything.joined(separator: "\n")).isEmpty,
                    "leaked: \(SecretForms.leaks(forms, in: everything.joined(separator: "\n")))")
            // The checks saw what they check: the build's environment dump and its processes.
            #expect(SecretForms.filesText(work).contains("WF_VISIBLE_MARKER=marker-visible"))
            #expect(run.childrenSeen > 0 && run.childEnvironments.contains { $0.contains("WF_VISIBLE_MARKER=marker-visible") },
                    "\(run.childrenSeen) children seen")
        }
    }
}
