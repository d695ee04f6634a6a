import FarmTestSupport
import Foundation
import Testing

/// `wheelfarm publish` with Trusted Publishing, a private CA and `~/.pypirc` through the built
/// binary. The index and GitHub Actions' token service are a local fake of their documented
/// endpoints (`FakeTrustedPublishing`), since neither can be reached from tests.
@Suite("publish: Trusted Publishing, --cert and ~/.pypirc (built binary, fake index)", .serialized)
struct TrustedPublishingCLITests {
    /// An environment with only a HOME of the test's own and no credentials.
    static func environment(home: URL, _ extra: [String: String] = [:]) -> [String: String] {
        var env = ProcessInfo.processInfo.environment.filter {
            !$0.key.hasPrefix("TWINE_") && !$0.key.hasPrefix("PYPI_") && !$0.key.hasPrefix("GH_") && !$0.key.hasPrefix("ACTIONS_")
                && $0.key != "GITHUB_TOKEN" && $0.key != "GITHUB_REPOSITORY"
        }
        env["HOME"] = home.path
        return env.merging(extra) { $1 }
    }

    @Test func aWorkflowRunPublishesWithoutAStoredTokenOneMintedTokenPerPackage() throws {
        let dir = try TestEnvironment.makeTemporaryDirectory("wf-trusted-publishing")
        defer { try? FileManager.default.removeItem(at: dir) }
        let fake = try FakeTrustedPublishing(repository: "acme/wheels", publishers: [
            .init(repository: "acme/wheels", projects: ["wftp-alpha"]),
            .init(repository: "acme/wheels", projects: ["wftp-beta"]),
        ], directory: dir)
        defer { fake.stop() }
        let alpha = try WheelFixtures.buildWheel(distribution: "wftp-alpha", version: "1.0.0", module: "wftpalpha", in: dir)
        let beta = try WheelFixtures.buildWheel(distribution: "wftp-beta", version: "2.0.0", module: "wftpbeta", in: dir)
        let env = Self.environment(home: dir, fake.actionsEnvironment)
        let args = ["publish", alpha.path, beta.path, "--repository-url", fake.uploadURL, "--index-url", fake.simpleURL, "--skip-github"]

        // The dry run says where the credential comes from and mints nothing.
        let dry = try TestProcess.wheelfarm(args + ["--dry-run"], environment: env)
        #expect(dry.status == 0, "\(dry.stdout)\n\(dry.stderr)")
        #expect(dry.stdout.contains("credentials for wftp-alpha: Trusted Publishing: the GitHub Actions OIDC token (environment variable ACTIONS_ID_TOKEN_REQUEST_URL) exchanged at '\(fake.baseURL)/_/oidc/mint-token'"), "\(dry.stdout)")
        #expect(try fake.state().mint_requests == 0)

        let r = try TestProcess.wheelfarm(args, environment: env)
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        #expect(lines(r.stdout, "uploaded").count == 2, "\(r.stdout)")
        let state = try fake.state()
        #expect(Set(state.uploads.map(\.filename)) == [alpha.lastPathComponent, beta.lastPathComponent])
        // One OIDC token and one minted upload token per package (the publisher covers both projects).
        #expect(state.oidc_requests == 2 && state.minted.count == 2, "\(state)")
        #expect(state.minted.allSatisfy { Set($0.projects) == ["wftp-alpha", "wftp-beta"] && $0.repository == "acme/wheels" }, "\(state)")
        #expect(!r.stdout.contains(fake.requestToken) && !r.stderr.contains(fake.requestToken))

        // Again: both already there; nothing minted, since nothing is sent.
        let again = try TestProcess.wheelfarm(args, environment: env)
        #expect(again.status == 0 && lines(again.stdout, "already there").count == 2, "\(again.stdout)")
        #expect(try fake.state().mint_requests == 2)
    }

    @Test func aRefusedExchangeQuotesTheIndex() throws {
        let dir = try TestEnvironment.makeTemporaryDirectory("wf-trusted-publishing-refused")
        defer { try? FileManager.default.removeItem(at: dir) }
        let fake = try FakeTrustedPublishing(repository: "acme/wheels", publishers: [.init(repository: "someone/else", projects: ["wftp-gamma"])],
                                             directory: dir)
        defer { fake.stop() }
        let wheel = try WheelFixtures.buildWheel(distribution: "wftp-gamma", version: "1.0.0", module: "wftpgamma", in: dir)
        let args = ["publish", wheel.path, "--repository-url", fake.uploadURL, "--index-url", fake.simpleURL, "--skip-github"]
        let r = try TestProcess.wheelfarm(args, environment: Self.environment(home: dir, fake.actionsEnvironment))
        #expect(r.status == 1)
        #expect(r.stdout.contains("Trusted Publishing failed while minting an upload token for 'wftp-gamma'"), "\(r.stdout)")
        #expect(r.stdout.contains("Token request failed: invalid-publisher: valid token, but no corresponding publisher"), "\(r.stdout)")
        #expect(try fake.state().uploads.isEmpty)

        // A workflow without id-token permission: GitHub refuses the OIDC request; the error says what to grant.
        var env = Self.environment(home: dir, fake.actionsEnvironment)
        env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"] = "wrong"
        let denied = try TestProcess.wheelfarm(args, environment: env)
        #expect(denied.status == 1 && denied.stdout.contains("requesting the GitHub Actions OIDC token") && denied.stdout.contains("id-token: write"), "\(denied.stdout)")
    }

    @Test func anIndexBehindAPrivateCAIsReachedWithCertOrTWINE_CERT() throws {
        let dir = try TestEnvironment.makeTemporaryDirectory("wf-private-ca")
        defer { try? FileManager.default.removeItem(at: dir) }
        let certs = try TestCertificates.make(in: dir)
        let fake = try FakeTrustedPublishing(repository: "acme/wheels", publishers: [.init(repository: "acme/wheels", projects: ["wfca-demo"])],
                                             directory: dir, tls: (certs.serverCertificate, certs.serverKey))
        defer { fake.stop() }
        let wheel = try WheelFixtures.buildWheel(distribution: "wfca-demo", version: "1.0.0", module: "wfcademo", in: dir)
        let args = ["publish", wheel.path, "--repository-url", fake.uploadURL, "--index-url", fake.simpleURL, "--skip-github"]
        let env = Self.environment(home: dir, fake.actionsEnvironment)

        let untrusted = try TestProcess.wheelfarm(args, environment: env)
        #expect(untrusted.status != 0, "an unknown CA was trusted: \(untrusted.stdout)")
        #expect(try fake.state().uploads.isEmpty)

        let viaEnv = try TestProcess.wheelfarm(args + ["--dry-run"], environment: env.merging(["TWINE_CERT": certs.caCertificate]) { $1 })
        #expect(viaEnv.status == 0 && viaEnv.stdout.contains("CA bundle: '\(certs.caCertificate)' (environment variable TWINE_CERT)"), "\(viaEnv.stdout)\n\(viaEnv.stderr)")

        let r = try TestProcess.wheelfarm(args + ["--cert", certs.caCertificate], environment: env)
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        #expect(try fake.state().uploads.map(\.filename) == [wheel.lastPathComponent])
    }

    @Test func aPypircWithDuplicateSectionsStopsBeforeAnythingIsVerifiedOrSent() throws {
        let dir = try TestEnvironment.makeTemporaryDirectory("wf-pypirc-bad")
        defer { try? FileManager.default.removeItem(at: dir) }
        try "[distutils]\nindex-servers = local\n\n[local]\nrepository = http://127.0.0.1:9/\npassword = hunter2-secret\n\n[local]\npassword = other\n"
            .write(to: dir.appendingPathComponent(".pypirc"), atomically: true, encoding: .utf8)
        let wheel = try WheelFixtures.buildWheel(distribution: "wfbad-demo", version: "1.0.0", module: "wfbaddemo", in: dir)
        let r = try TestProcess.wheelfarm(["publish", wheel.path, "--repository", "local", "--skip-github"], environment: Self.environment(home: dir))
        #expect(r.status == 2, "\(r.stdout)\n\(r.stderr)")
        #expect(r.stderr.contains("'\(dir.path)/.pypirc' line 8: section [local] is defined twice (first on line 4)"), "\(r.stderr)")
        #expect(!r.stderr.contains("hunter2-secret") && !r.stdout.contains("hunter2-secret"))
        #expect(!r.stdout.contains("uploaded") && !r.stdout.contains("would upload"))
    }

    private func lines(_ text: String, _ needle: String) -> [Substring] { text.split(separator: "\n").filter { $0.contains(needle) } }
}
