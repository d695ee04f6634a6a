import FarmCore
import FarmTestSupport
import Foundation
import Testing
@testable import Publishing

/// The upload-API client against a real pypiserver on loopback.
@Suite("Upload API against pypiserver", .serialized)
struct UploadAPITests {
    func credentials(_ server: PyPIServerHarness) -> IndexCredentials {
        IndexCredentials(username: server.username, password: Secret(server.password), source: "test")
    }

    func storedDigest(_ server: PyPIServerHarness, _ filename: String) throws -> SHA256Digest {
        try StreamingDigest.file(at: server.packagesDirectory.appendingPathComponent(filename).path).digest
    }

    @Test("upload, then the same file again is 'already there', and pip downloads it byte-identical")
    func uploadAndSkip() async throws {
        let server = try PyPIServerHarness()
        defer { server.stop() }
        let scratch = try Scratch()
        let wheel = try await publishableWheel("wf-upload-demo", "1.2.0", in: scratch.path("dist"))
        let log = LogCapture()
        try await withTransport { transport in
            let publisher = UploadAPIPublisher(index: try PackageIndex(uploadURL: server.url), credentials: credentials(server),
                                               transport: transport, retry: quickRetry, logger: log.logger())
            #expect(try await publisher.publish(wheel, dryRun: true) == .wouldUpload)
            #expect(try server.storedFiles().isEmpty)
            #expect(try await publisher.publish(wheel) == .uploaded(attempts: 1))
            #expect(try await publisher.publish(wheel) == .alreadyThere)
            #expect(try await publisher.publish(wheel, dryRun: true) == .alreadyThere)
        }
        #expect(try server.storedFiles() == [wheel.filename])
        let downloads = scratch.path("downloads")
        let pip = try TestProcess.run(TestEnvironment.python, [
            "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "--no-cache-dir",
            "--index-url", server.simpleURL, "-d", downloads.path, "wf-upload-demo==1.2.0",
        ])
        #expect(pip.status == 0, "\(pip.stderr)")
        let downloaded = try StreamingDigest.file(at: downloads.appendingPathComponent(wheel.filename).path)
        #expect(downloaded.digest == wheel.sha256)
        #expect(downloaded.size == wheel.size)
        #expect(!log.text.contains(server.password))
    }

    @Test("a listed file is fetched byte-identical; one whose bytes differ from the listed digest leaves nothing behind")
    func fetchListed() async throws {
        let server = try PyPIServerHarness()
        defer { server.stop() }
        let scratch = try Scratch()
        let wheel = try await publishableWheel("wf-fetch-demo", "1.0.0", in: scratch.path("dist"))
        try await withTransport { transport in
            let publisher = UploadAPIPublisher(index: try PackageIndex(uploadURL: server.url), credentials: credentials(server),
                                               transport: transport, retry: quickRetry, logger: LogCapture().logger())
            #expect(try await publisher.publish(wheel) == .uploaded(attempts: 1))
            let listed = try #require(try await publisher.listedFiles(project: "wf-fetch-demo").first)
            #expect(listed.filename == wheel.filename && listed.sha256 == wheel.sha256)
            let fetched = scratch.path("fetched.whl").path
            try await publisher.fetch(listed, to: fetched)
            #expect(try StreamingDigest.file(at: fetched) == (wheel.sha256, wheel.size))

            let wrong = IndexedFile(filename: listed.filename, sha256: SHA256Digest.of(Data("other".utf8)), url: listed.url)
            let again = scratch.path("again.whl").path
            await #expect(throws: PublishingError.self) { try await publisher.fetch(wrong, to: again) }
            #expect(!FileManager.default.fileExists(atPath: again))
            let missing = IndexedFile(filename: listed.filename, sha256: nil, url: (listed.url ?? "") + "-gone")
            await #expect(throws: PublishingError.self) { try await publisher.fetch(missing, to: again) }
            #expect(!FileManager.default.fileExists(atPath: again))
        }
    }

    @Test("a 409 or a 400 'already exists' after upload is resolved by the listing", arguments: ["wheelfarm/0.1", "wheelfarm (twine-compatible)"])
    func duplicateAfterUpload(userAgent: String) async throws {
        let server = try PyPIServerHarness()
        defer { server.stop() }
        let scratch = try Scratch()
        let wheel = try await publishableWheel("wf-dup-demo", "2.0.0", in: scratch.path("dist"))
        let other = try await publishableWheel("wf-dup-demo", "2.0.0", in: scratch.path("dist-other"), marker: "other content")
        #expect(other.filename == wheel.filename && other.sha256 != wheel.sha256)
        let log = LogCapture()
        try await withTransport { direct in
            let upload = UploadAPIPublisher(index: try PackageIndex(uploadURL: server.url), credentials: credentials(server),
                                            transport: direct, retry: quickRetry, logger: log.logger())
            #expect(try await upload.publish(wheel) == .uploaded(attempts: 1))
        }
        // The proxy hides the listing from the first check, so the upload itself meets the duplicate.
        let plan = ["GET:404", "GET:pass", "GET:404", "GET:pass"]
        let proxy = try FaultProxy(upstreamPort: URL(string: server.url)!.port!, plan: plan, scratch: scratch)
        defer { proxy.stop() }
        try await withTransport(userAgent: userAgent) { transport in
            let publisher = UploadAPIPublisher(index: try PackageIndex(uploadURL: proxy.url), credentials: credentials(server),
                                               transport: transport, retry: quickRetry, logger: log.logger())
            #expect(try await publisher.publish(wheel) == .alreadyThere)
            let outcome = try await publisher.publish(other)
            guard case .refused(.filenameBurnt(let filename, _, let existing, let ours, let suffix)) = outcome else {
                Issue.record("expected a burnt filename, got \(outcome)"); return
            }
            #expect(filename == wheel.filename)
            #expect(existing == wheel.sha256)
            #expect(ours == other.sha256)
            #expect(suffix.description == ".post1")
        }
        #expect(proxy.steps == plan)

        // Refused as existing but never listed (PyPI keeps the names of deleted files): burnt.
        let hidden = ["GET:404", "GET:404", "GET:404", "GET:404"]
        let hiding = try FaultProxy(upstreamPort: URL(string: server.url)!.port!, plan: hidden, scratch: scratch)
        defer { hiding.stop() }
        let outcome = try await withTransport(userAgent: userAgent) { transport in
            try await UploadAPIPublisher(index: try PackageIndex(uploadURL: hiding.url), credentials: credentials(server),
                                         transport: transport, retry: quickRetry, logger: log.logger()).publish(wheel)
        }
        guard case .refused(.filenameBurnt(_, _, nil, _, let suffix)) = outcome else {
            Issue.record("expected a burnt filename without a listed digest, got \(outcome)"); return
        }
        #expect(suffix.description == ".post1")
        #expect(outcome.description.contains("refuses it as already used"))
        #expect(hiding.steps == hidden)
        #expect(try server.storedFiles() == [wheel.filename])
        #expect(try storedDigest(server, wheel.filename) == wheel.sha256)
    }

    @Test("same filename with other content is refused before upload, naming the next free .postN")
    func burntFilename() async throws {
        let server = try PyPIServerHarness()
        defer { server.stop() }
        let scratch = try Scratch()
        let first = try await publishableWheel("wf-burnt-demo", "3.0.0", in: scratch.path("a"))
        let post1 = try await publishableWheel("wf-burnt-demo", "3.0.0.post1", in: scratch.path("b"))
        let rebuilt = try await publishableWheel("wf-burnt-demo", "3.0.0", in: scratch.path("c"), marker: "rebuilt")
        try await withTransport { transport in
            let publisher = UploadAPIPublisher(index: try PackageIndex(uploadURL: server.url), credentials: credentials(server),
                                               transport: transport, retry: quickRetry, logger: LogCapture().logger())
            #expect(try await publisher.publish(first) == .uploaded(attempts: 1))
            #expect(try await publisher.publish(post1) == .uploaded(attempts: 1))
            let outcome = try await publisher.publish(rebuilt)
            guard case .refused(let refusal) = outcome, case .filenameBurnt(_, _, let existing, _, let suffix) = refusal else {
                Issue.record("expected a refusal, got \(outcome)"); return
            }
            #expect(existing == first.sha256)
            #expect(suffix.description == ".post2")
            #expect(refusal.description.contains("--version-suffix .post2"))
            #expect(refusal.description.contains("is burnt"))
        }
        #expect(try storedDigest(server, first.filename) == first.sha256)
    }

    @Test("a wrong password is reported as a 403 without the password anywhere")
    func wrongPassword() async throws {
        let server = try PyPIServerHarness()
        defer { server.stop() }
        let scratch = try Scratch()
        let wheel = try await publishableWheel("wf-auth-demo", "1.0.0", in: scratch.path("dist"))
        let wrong = "wrong-password-\(UUID().uuidString)"
        let log = LogCapture()
        try await withTransport { transport in
            let publisher = UploadAPIPublisher(
                index: try PackageIndex(uploadURL: server.url),
                credentials: IndexCredentials(username: server.username, password: Secret(wrong), source: "environment variable TWINE_PASSWORD"),
                transport: transport, retry: quickRetry, logger: log.logger())
            do {
                _ = try await publisher.publish(wheel)
                Issue.record("upload with a wrong password succeeded")
            } catch let error as PublishingError {
                guard case .authenticationFailed(_, let status, let who, _) = error else {
                    Issue.record("expected an authentication failure, got \(error)"); return
                }
                #expect(status == 403)
                #expect(who.contains("TWINE_PASSWORD"))
                #expect(error.description.contains("403"))
                #expect(!error.description.contains(wrong))
                #expect(!String(reflecting: error).contains(wrong))
            }
        }
        #expect(!log.text.contains(wrong))
        #expect(try server.storedFiles().isEmpty)
    }

    @Test("500s and dropped connections are retried; exactly one copy ends up on the index",
          arguments: [["500"], ["drop-mid"], ["drop-after"], ["500", "drop-mid", "drop-after"]])
    func faults(plan: [String]) async throws {
        let server = try PyPIServerHarness()
        defer { server.stop() }
        let scratch = try Scratch()
        let wheel = try await publishableWheel("wf-fault-demo", "1.0.0", in: scratch.path("dist"), payloadBytes: 3 << 20)
        let proxy = try FaultProxy(upstreamPort: URL(string: server.url)!.port!, plan: plan, scratch: scratch)
        defer { proxy.stop() }
        let log = LogCapture()
        let outcome = try await withTransport { transport in
            let publisher = UploadAPIPublisher(index: try PackageIndex(uploadURL: proxy.url), credentials: credentials(server),
                                               transport: transport, retry: quickRetry, logger: log.logger())
            return try await publisher.publish(wheel)
        }
        // drop-after stores the file and loses the answer: the check before the retry finds it.
        let postsSent = plan.last == "drop-after" ? plan.count : plan.count + 1
        #expect(outcome == .uploaded(attempts: postsSent))
        #expect(proxy.steps == plan.map { "POST:\($0)" })
        #expect(try server.storedFiles() == [wheel.filename])
        #expect(try storedDigest(server, wheel.filename) == wheel.sha256)
        #expect(log.text.contains("retrying upload"))
        #expect(!log.text.contains(server.password))
    }

    @Test("when every attempt fails, it gives up and says the file is not on the index")
    func givesUp() async throws {
        let server = try PyPIServerHarness()
        defer { server.stop() }
        let scratch = try Scratch()
        let wheel = try await publishableWheel("wf-giveup-demo", "1.0.0", in: scratch.path("dist"))
        let proxy = try FaultProxy(upstreamPort: URL(string: server.url)!.port!, plan: ["500", "500", "500", "500"], scratch: scratch)
        defer { proxy.stop() }
        await #expect(throws: PublishingError.self) {
            try await withTransport { transport in
                let publisher = UploadAPIPublisher(index: try PackageIndex(uploadURL: proxy.url), credentials: credentials(server),
                                                   transport: transport, retry: quickRetry, logger: LogCapture().logger())
                _ = try await publisher.publish(wheel)
            }
        }
        #expect(proxy.steps.count == 4)
        #expect(try server.storedFiles().isEmpty)
    }

    @Test("the bytes are re-checked: a wheel changed after verification is refused")
    func changedAfterVerification() async throws {
        let server = try PyPIServerHarness()
        defer { server.stop() }
        let scratch = try Scratch()
        let wheel = try await publishableWheel("wf-changed-demo", "1.0.0", in: scratch.path("dist"))
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: wheel.path))
        try handle.seekToEnd(); try handle.write(contentsOf: Data("tampered".utf8)); try handle.close()
        await #expect(throws: PublishingError.self) {
            try await withTransport { transport in
                let publisher = UploadAPIPublisher(index: try PackageIndex(uploadURL: server.url), credentials: credentials(server),
                                                   transport: transport, retry: quickRetry, logger: LogCapture().logger())
                _ = try await publisher.publish(wheel)
            }
        }
        #expect(try server.storedFiles().isEmpty)
    }
}
