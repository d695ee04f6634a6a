import FarmTestSupport
import Foundation
import Testing

/// The agent's sdist download (agents/fetch_sdist.py) against a real pypiserver: the file the
/// index lists, checked against the index's SHA-256; a tampered file and a missing version are
/// refused with their own messages.
@Suite("sdist from an index")
struct SourceFetchTests {
    @Test func theIndexDigestIsChecked() throws {
        let dir = try TestEnvironment.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let server = try PyPIServerHarness()
        defer { server.stop() }
        // A real sdist, stored in the server's package directory (pypiserver lists it with #sha256=).
        let project = dir.appendingPathComponent("demo_pkg-1.2.0")
        try FileManager.default.createDirectory(at: project, withIntermediateDirectories: true)
        try "[project]\nname = 'demo-pkg'\nversion = '1.2.0'\n".write(to: project.appendingPathComponent("pyproject.toml"), atomically: true, encoding: .utf8)
        let sdist = server.packagesDirectory.appendingPathComponent("demo_pkg-1.2.0.tar.gz")
        try WheelFixtures.check("tar", "tar", ["-czf", sdist.path, "-C", dir.path, "demo_pkg-1.2.0"])
        let script = TestEnvironment.repositoryRoot.appendingPathComponent("agents/fetch_sdist.py").path
        let dest = dir.appendingPathComponent("cache")
        try FileManager.default.createDirectory(at: dest, withIntermediateDirectories: true)
        func fetch(_ version: String) throws -> ProcessResult {
            try TestProcess.run(TestEnvironment.python, [script, "--index", server.simpleURL, "--project", "demo-pkg", "--version", version, "--dest", dest.path])
        }
        let ok = try fetch("1.2.0")
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(ok.stderr.contains("demo_pkg-1.2.0.tar.gz downloaded") && ok.stderr.contains("as the index says"))
        #expect(try Data(contentsOf: dest.appendingPathComponent("demo_pkg-1.2.0.tar.gz")) == Data(contentsOf: sdist))
        #expect(try String(contentsOf: dest.appendingPathComponent(".last"), encoding: .utf8) == "demo_pkg-1.2.0.tar.gz")
        // Kept: a second fetch downloads nothing.
        #expect(try fetch("1.2.0").stderr.contains("already downloaded"))
        // A cached copy that no longer matches is replaced; a missing version is refused.
        try Data("tampered".utf8).write(to: dest.appendingPathComponent("demo_pkg-1.2.0.tar.gz"))
        #expect(try fetch("1.2.0").stderr.contains("downloaded"))
        let missing = try fetch("9.9.9")
        #expect(missing.status != 0 && missing.stderr.contains("lists no sdist of demo-pkg 9.9.9"))
    }
}
