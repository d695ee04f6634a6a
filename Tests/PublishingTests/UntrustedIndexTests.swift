import FarmTestSupport
import Foundation
import Testing

/// `wheelfarm publish` and `release` against indexes and GitHub APIs that are slow, forgetful or
/// hostile, run as the built binary: uploads count only when confirmed, every read has a deadline,
/// and no form of a credential reaches any output, file or other origin.
@Suite("publishing to untrusted indexes (built binary)")
struct UntrustedIndexTests {
    static let memoryBound: Int64 = 400 << 20

    /// The test process's environment without credentials, plus `extra`.
    static func environment(_ extra: [String: String] = [:]) -> [String: String] {
        var env = ProcessInfo.processInfo.environment.filter { key, _ in
            !["PYPI_", "TWINE_", "GH_", "GITHUB_"].contains { key.hasPrefix($0) }
        }
        env["CI"] = "true"
        env.merge(extra) { $1 }
        return env
    }

    static func withWheel(_ body: (URL, URL) async throws -> Void) async throws {
        let dir = try TestEnvironment.makeTemporaryDirectory("wf-untrusted-index")
        defer { try? FileManager.default.removeItem(at: dir) }
        let wheel = try WheelFixtures.buildWheel(distribution: "wfhostile-demo", version: "2.0.0", module: "wfhostiledemo", in: dir)
        try await body(dir, wheel)
    }

    static func forms(of secret: String, username: String? = nil) -> [String] { SecretForms.of(secret, username: username) }
    static func leaks(_ secrets: [String], in text: String) -> [String] { SecretForms.leaks(secrets, in: text) }

    @Test func aListingThatTricklesHitsItsDeadlineAndIsRetriedAsTransient() async throws {
        try await Self.withWheel { dir, wheel in
            let trickle = try HostileServer("trickle", directory: dir)
            defer { trickle.stop() }
            let run = try await MeasuredRun.wheelfarm(["publish", wheel.path, "--repository-url", trickle.url + "/", "--skip-github",
                                                       "--http-timeout", "2s"],
                                                      environment: Self.environment(["TWINE_USERNAME": "u", "TWINE_PASSWORD": "trickle-pw-1"]))
            #expect(run.status == 1, "\(run.stdout)\n\(run.stderr)")
            #expect(run.stdout.contains("no complete answer within 2 s (after 3 attempts)"), "\(run.stdout)")
            #expect(trickle.requests.filter { $0.hasPrefix("GET /simple/") }.count == 3, "\(trickle.requests)")
            #expect(!trickle.requests.contains { $0.hasPrefix("POST") }, "nothing is uploaded when the listing cannot be read")
            #expect(run.peakResidentBytes < Self.memoryBound, "peak RSS \(run.peakResidentBytes >> 20) MiB")
            print("measured: \(#function): peak RSS \(run.peakResidentBytes >> 20) MiB")
        print("measured: \(#function): peak RSS \(run.peakResidentBytes >> 20) MiB")
        }
    }

    @Test func anUploadBelowTheMinimumRateIsCancelledAndRetried() async throws {
        let dir = try TestEnvironment.makeTemporaryDirectory("wf-slow-upload")
        defer { try? FileManager.default.removeItem(at: dir) }
        // 24 MB of incompressible payload: more than loopback's socket buffers take at once.
        let wheel = try PipWheelBuilder.build(name: "wfslow-demo", version: "1.0.0", into: dir.appendingPathComponent("w"),
                                              payloadBytes: 24 << 20)
        let slow = try HostileServer("slowread", directory: dir)
        defer { slow.stop() }
        let run = try await MeasuredRun.wheelfarm(["publish", wheel.path, "--repository-url", slow.url + "/", "--skip-github",
                                                   "--http-timeout", "2s", "--min-transfer-rate", "1024", "--attempts", "2"],
                                                  environment: Self.environment(["TWINE_USERNAME": "u", "TWINE_PASSWORD": "slow-pw-1"]))
        #expect(run.status == 1, "\(run.stdout)\n\(run.stderr)")
        #expect(run.stdout.contains("gave up uploading") && run.stdout.contains("slower than the minimum of 1024 KiB/s after 2 s"),
                "\(run.stdout)")
        #expect(slow.requests.filter { $0.hasPrefix("POST") }.count == 2, "\(slow.requests)")
        #expect(run.peakResidentBytes < Self.memoryBound, "peak RSS \(run.peakResidentBytes >> 20) MiB")
        print("measured: \(#function): peak RSS \(run.peakResidentBytes >> 20) MiB")
    }

    @Test func credentialsEchoedByAnIndexOrGitHubAreScrubbedInEveryForm() async throws {
        try await Self.withWheel { dir, wheel in
            let echo = try HostileServer("echo", directory: dir)
            defer { echo.stop() }
            let password = "s3cr3t/pa\\ss+\(UUID().uuidString.prefix(8))"
            let token = "ghp_" + UUID().uuidString.replacingOccurrences(of: "-", with: "")
            let env = Self.environment(["TWINE_USERNAME": "uploader", "TWINE_PASSWORD": password, "GH_TOKEN": token])
            let secrets = Self.forms(of: password, username: "uploader") + Self.forms(of: token)

            // The index quotes the Basic credentials back in its 400 answer.
            let upload = try await MeasuredRun.wheelfarm(["publish", wheel.path, "--repository-url", echo.url + "/", "--skip-github", "--verbose"],
                                                         environment: env)
            #expect(upload.status == 1, "\(upload.stdout)\n\(upload.stderr)")
            #expect(upload.stdout.contains("rejected") && upload.stdout.contains("<redacted>"), "\(upload.stdout)")
            #expect(Self.leaks(secrets, in: upload.stdout + upload.stderr).isEmpty, "\(upload.stdout)\n\(upload.stderr)")

            // GitHub quotes the token back in its 401 answer.
            let github = try await MeasuredRun.wheelfarm(["publish", wheel.path, "--local-index", dir.appendingPathComponent("index").path,
                                                          "--github-repository", "o/r", "--github-api-url", echo.url, "--verbose"],
                                                         environment: env)
            #expect(github.status == 1, "\(github.stdout)\n\(github.stderr)")
            #expect((github.stdout + github.stderr).contains("401"), "\(github.stdout)\n\(github.stderr)")
            #expect(Self.leaks(secrets, in: github.stdout + github.stderr).isEmpty, "\(github.stdout)\n\(github.stderr)")
            // The server did receive them (the test is not vacuous).
            #expect(echo.requests.contains { $0.hasPrefix("POST /") && $0.hasSuffix(" auth") })
            #expect(echo.requests.contains { $0.hasPrefix("GET /repos/o/r/") && $0.hasSuffix(" auth") })
        }
    }

    @Test func credentialsGoOnlyToTheOriginTheyWereConfiguredFor() async throws {
        try await Self.withWheel { dir, wheel in
            let sink = try HostileServer("sink", directory: dir)
            defer { sink.stop() }
            // Same host, another port: a listing redirected there, a release whose upload_url is there.
            let elsewhere = try HostileServer("elsewhere", other: sink.url, directory: dir)
            defer { elsewhere.stop() }
            let env = Self.environment(["TWINE_USERNAME": "u", "TWINE_PASSWORD": "origin-pw-\(UUID().uuidString.prefix(6))",
                                        "GH_TOKEN": "ghp_origin\(UUID().uuidString.prefix(8))"])
            let index = try await MeasuredRun.wheelfarm(["publish", wheel.path, "--repository-url", elsewhere.url + "/", "--skip-github"],
                                                        environment: env)
            #expect(index.status == 1, "\(index.stdout)\n\(index.stderr)")
            let github = try await MeasuredRun.wheelfarm(["publish", wheel.path, "--local-index", dir.appendingPathComponent("index").path,
                                                          "--github-repository", "o/r", "--github-api-url", elsewhere.url], environment: env)
            #expect(github.status == 1, "\(github.stdout)\n\(github.stderr)")
            #expect(github.stdout.contains("invalid release upload URL '\(sink.url)/uploads/repos/o/r/releases/7/assets'"), "\(github.stdout)")
            // The listing and the API were asked with credentials; the other origin never heard of them.
            #expect(elsewhere.requests.contains { $0.hasPrefix("GET /simple/") && $0.hasSuffix(" auth") }, "\(elsewhere.requests)")
            #expect(sink.requests.isEmpty, "\(sink.requests)")
        }
    }

    @Test func gitHubAssetsCountOnlyWhenTheAPIListsTheirSizeAndDigest() async throws {
        try await Self.withWheel { dir, wheel in
            let digest = try TestProcess.run("/usr/bin/sha256sum", [wheel.path]).stdout.split(separator: " ").first.map(String.init)
            // Stored with other bytes of the same size, then forgotten, then stored: the third upload counts.
            let github = try FakeGitHub(token: "ghp_confirm", uploadPlan: ["corrupt", "forget"], directory: dir)
            defer { github.stop() }
            let args = ["publish", wheel.path, "--local-index", dir.appendingPathComponent("index").path,
                        "--github-repository", "o/r", "--github-api-url", github.apiURL]
            let run = try await MeasuredRun.wheelfarm(args, environment: Self.environment(["GH_TOKEN": "ghp_confirm"]))
            #expect(run.status == 0, "\(run.stdout)\n\(run.stderr)")
            #expect(run.stdout.contains("(after 3 attempts)"), "\(run.stdout)")
            let release = try #require(try github.state().first)
            #expect(!release.draft)
            #expect(release.assets.map(\.sha256) == [digest], "\(release.assets)")

            // An API that forgets every upload: the release stays a draft, exit 1, and it says why.
            let forgetful = try FakeGitHub(token: "ghp_confirm", uploadPlan: Array(repeating: "forget", count: 5), directory: dir)
            defer { forgetful.stop() }
            let never = try await MeasuredRun.wheelfarm(["publish", wheel.path, "--local-index", dir.appendingPathComponent("index2").path,
                                                         "--github-repository", "o/r", "--github-api-url", forgetful.apiURL],
                                                        environment: Self.environment(["GH_TOKEN": "ghp_confirm"]))
            #expect(never.status == 1, "\(never.stdout)\n\(never.stderr)")
            #expect(never.stdout.contains("accepted '\(wheel.lastPathComponent)' 5 times but does not list it"), "\(never.stdout)")
            #expect(try forgetful.state().first?.draft == true)
        }
    }

    @Test func aTokenWithAControlCharacterIsRefusedWithoutShowingIt() async throws {
        let dir = try TestEnvironment.makeTemporaryDirectory("wf-token-newline")
        defer { try? FileManager.default.removeItem(at: dir) }
        let token = "ghp_newline\(UUID().uuidString.prefix(12))"
        let dist = dir.appendingPathComponent("dist")
        let run = try await MeasuredRun.wheelfarm(["release", "--recipe", "sample", "--inventory", "inventory/local.yaml", "--variant", "noavx512",
                                                   "--platform", "linux/amd64", "--dist-dir", dist.path, "--github-repository", "o/r",
                                                   "--github-api-url", "http://127.0.0.1:9"],
                                                  environment: Self.environment(["GH_TOKEN": token + "\n"]))
        #expect(run.status == 2, "\(run.stdout)\n\(run.stderr)")
        #expect(run.stderr.contains("the credential in environment variable GH_TOKEN cannot be used: it contains a line feed (\\n) at character \(token.count + 1) of \(token.count + 1)"),
                "\(run.stderr)")
        let everything = run.stdout + run.stderr + (try Self.filesText(dist))
        #expect(Self.leaks(Self.forms(of: token), in: everything).isEmpty, "\(everything)")
    }

    @Test func userinfoInURLOptionsIsRedactedInOutputAndTheJournal() async throws {
        let dir = try TestEnvironment.makeTemporaryDirectory("wf-userinfo")
        defer { try? FileManager.default.removeItem(at: dir) }
        let secret = "hunter2-\(UUID().uuidString.prefix(8))"
        let dist = dir.appendingPathComponent("dist")
        let run = try await MeasuredRun.wheelfarm(["release", "--recipe", "sample", "--inventory", "inventory/local.yaml", "--variant", "noavx512",
                                                   "--platform", "linux/amd64", "--dist-dir", dist.path, "--github-repository", "o/r",
                                                   "--github-api-url", "http://me:\(secret)@127.0.0.1:9/api"],
                                                  environment: Self.environment(["GH_TOKEN": "ghp_userinfo123"]))
        #expect(run.status == 2, "\(run.stdout)\n\(run.stderr)")
        #expect(run.stderr.contains("invalid GitHub API URL 'http://<redacted>@127.0.0.1:9/api'"), "\(run.stderr)")
        // A configuration error stops before the run is recorded; a run that gets as far as the
        // journal (GitHub skipped, nothing built) keeps its command line without the userinfo.
        let recorded = try await MeasuredRun.wheelfarm(["release", "--recipe", "sample", "--inventory", "inventory/local.yaml", "--variant", "noavx512",
                                                        "--platform", "linux/amd64", "--dist-dir", dist.path, "--github-repository", "o/r",
                                                        "--github-api-url", "http://me:\(secret)@127.0.0.1:9/api", "--skip-github", "--skip-build"],
                                                       environment: Self.environment(["GH_TOKEN": "ghp_userinfo123"]))
        let journal = try TestProcess.run(TestEnvironment.python, ["-c", "import sqlite3, sys; print([r for r in sqlite3.connect(sys.argv[1]).execute('select arguments from run')])",
                                                                   dist.appendingPathComponent(".wheelfarm/journal.sqlite").path])
        #expect(journal.stdout.contains("--github-api-url http://<redacted>@127.0.0.1:9/api"),
                "\(journal.stdout) \(journal.stderr)\nrun (exit \(recorded.status)):\n\(recorded.stdout)\n\(recorded.stderr)")
        let everything = run.stdout + run.stderr + recorded.stdout + recorded.stderr + (try Self.filesText(dist))
        #expect(!everything.contains(secret), "\(everything)")

        // The same for a publish --index-url.
        let wheelDir = dir.appendingPathComponent("w")
        try FileManager.default.createDirectory(at: wheelDir, withIntermediateDirectories: true)
        let wheel = try WheelFixtures.buildWheel(distribution: "wfuserinfo-demo", version: "1.0.0", module: "wfuserinfodemo", in: wheelDir)
        let publish = try await MeasuredRun.wheelfarm(["publish", wheel.path, "--repository-url", "http://127.0.0.1:9/",
                                                       "--index-url", "http://me:\(secret)@127.0.0.1:9/simple/", "--skip-github"],
                                                      environment: Self.environment(["TWINE_USERNAME": "u", "TWINE_PASSWORD": "p-userinfo"]))
        #expect(publish.status == 2, "\(publish.stdout)\n\(publish.stderr)")
        #expect(!(publish.stdout + publish.stderr).contains(secret), "\(publish.stdout)\n\(publish.stderr)")
        #expect(publish.stderr.contains("http://<redacted>@127.0.0.1:9/simple/"), "\(publish.stderr)")
    }

    static func filesText(_ dir: URL) throws -> String { SecretForms.filesText(dir) }
}
