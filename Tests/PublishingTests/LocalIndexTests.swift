import FarmCore
import FarmTestSupport
import Foundation
import Testing
@testable import Publishing

/// The local static index.
@Suite("Local index", .serialized)
struct LocalIndexTests {
    @Test("pip installs from the index over file:// and over a static web server")
    func pipInstalls() async throws {
        let scratch = try Scratch()
        let root = scratch.path("index")
        let publisher = LocalIndexPublisher(root: root, logger: LogCapture().logger())
        let a = try await publishableWheel("wf-local-alpha", "1.0.0", in: scratch.path("dist"))
        let a2 = try await publishableWheel("wf-local-alpha", "1.1.0", in: scratch.path("dist"))
        let b = try await publishableWheel("wf_Local.Beta", "0.3.0", in: scratch.path("dist"))
        #expect(try await publisher.publish(a, dryRun: true) == .wouldUpload)
        #expect(!FileManager.default.fileExists(atPath: root.path))
        for w in [a, a2, b] { #expect(try await publisher.publish(w) == .uploaded(attempts: 1)) }
        #expect(try await publisher.publish(a) == .alreadyThere)

        // PEP 503 page with #sha256= and PEP 691 JSON beside it.
        let page = try String(contentsOf: root.appendingPathComponent("simple/wf-local-alpha/index.html"), encoding: .utf8)
        #expect(page.contains("\(a.filename)#sha256=\(a.sha256.hex)"))
        #expect(page.contains("data-requires-python=\"&gt;=3.8\""))
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: root.appendingPathComponent("simple/wf-local-alpha/index.json"))) as! [String: Any]
        let files = json["files"] as! [[String: Any]]
        #expect(files.map { $0["filename"] as! String } == [a.filename, a2.filename])
        #expect((files[0]["hashes"] as! [String: String])["sha256"] == a.sha256.hex)
        let rootPage = try String(contentsOf: root.appendingPathComponent("simple/index.html"), encoding: .utf8)
        #expect(rootPage.contains("wf-local-beta/"))

        // pip over file://
        let target = scratch.path("site")
        let pip = try TestProcess.run(TestEnvironment.python, [
            "-m", "pip", "install", "--no-deps", "--disable-pip-version-check", "--no-cache-dir", "--target", target.path,
            "--index-url", publisher.pipIndexURL, "wf-local-alpha", "wf-local-beta==0.3.0",
        ])
        #expect(pip.status == 0, "\(pip.stderr)")
        #expect(FileManager.default.fileExists(atPath: target.appendingPathComponent("wf_local_alpha-1.1.0.dist-info").path))
        #expect(FileManager.default.fileExists(atPath: target.appendingPathComponent("wf_local_beta/__init__.py").path))

        // pip over HTTP from a static server (python -m http.server).
        let port = try LoopbackPort.free()
        let web = try ServerProcess(TestEnvironment.python, ["-m", "http.server", "--bind", "127.0.0.1", String(port), "--directory", root.path],
                                    logFile: scratch.path("http.log"))
        defer { web.stop() }
        try web.waitForPort(port: port)
        let downloads = scratch.path("downloads")
        let download = try TestProcess.run(TestEnvironment.python, [
            "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "--no-cache-dir", "-d", downloads.path,
            "--index-url", "http://127.0.0.1:\(port)/simple/", "wf-local-alpha==1.0.0",
        ])
        #expect(download.status == 0, "\(download.stderr)")
        #expect(try StreamingDigest.file(at: downloads.appendingPathComponent(a.filename).path).digest == a.sha256)
    }

    @Test("a listed file is fetched byte-identical; a damaged one is refused and leaves nothing behind")
    func fetchListed() async throws {
        let scratch = try Scratch()
        let publisher = LocalIndexPublisher(root: scratch.path("index"), logger: LogCapture().logger())
        let wheel = try await publishableWheel("wf-local-fetch", "1.0.0", in: scratch.path("dist"))
        #expect(try await publisher.publish(wheel) == .uploaded(attempts: 1))
        let listed = try #require(try await publisher.listedFiles(project: "wf-local-fetch").first)
        let fetched = scratch.path("fetched.whl").path
        try await publisher.fetch(listed, to: fetched)
        #expect(try StreamingDigest.file(at: fetched) == (wheel.sha256, wheel.size))

        let stored = scratch.path("index/packages/wf-local-fetch").appendingPathComponent(wheel.filename)
        try Data("not the wheel".utf8).write(to: stored)
        let again = scratch.path("again.whl").path
        await #expect(throws: PublishingError.self) { try await publisher.fetch(listed, to: again) }
        #expect(!FileManager.default.fileExists(atPath: again))
    }

    @Test("a different file under a published name is refused with the next .postN")
    func burnt() async throws {
        let scratch = try Scratch()
        let publisher = LocalIndexPublisher(root: scratch.path("index"), logger: LogCapture().logger())
        let first = try await publishableWheel("wf-local-burnt", "2.0.0", in: scratch.path("a"))
        let rebuilt = try await publishableWheel("wf-local-burnt", "2.0.0", in: scratch.path("b"), marker: "rebuilt")
        #expect(try await publisher.publish(first) == .uploaded(attempts: 1))
        let outcome = try await publisher.publish(rebuilt)
        guard case .refused(.filenameBurnt(_, _, let existing, _, let suffix)) = outcome else {
            Issue.record("expected a refusal, got \(outcome)"); return
        }
        #expect(existing == first.sha256)
        #expect(suffix.description == ".post1")
        let stored = scratch.path("index/packages/wf-local-burnt").appendingPathComponent(first.filename)
        #expect(try StreamingDigest.file(at: stored.path).digest == first.sha256)
    }
}
