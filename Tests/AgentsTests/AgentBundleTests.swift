import Agents
import FarmTestSupport
import Foundation
import Testing

@Suite("agent bundle")
struct AgentBundleTests {
    @Test("the repository's agents load with modes and a stable hash")
    func load() throws {
        let a = try AgentBundle.load(from: Scripts.agents)
        let b = try AgentBundle.load(from: Scripts.agents)
        #expect(a.digest == b.digest)
        let paths = a.files.map(\.path)
        #expect(paths.contains("build.sh") && paths.contains("probe.sh") && paths.contains("recipes/sample.sh"))
        #expect(a.files.first { $0.path == "build.sh" }?.executable == true)
        #expect(a.files.first { $0.path == "lib.sh" }?.executable == false)
        #expect(a.installDirectory(workDir: "/srv/wf/") == "/srv/wf/agents/\(a.digest.hex)")
        #expect(AgentBundle.locate(environment: ["WHEELFARM_HOME": TestEnvironment.repositoryRoot.path])?.standardizedFileURL
                == Scripts.agents.standardizedFileURL)
    }

    @Test("any change of content, name or mode changes the hash")
    func changes() throws {
        let dir = try TestEnvironment.makeTemporaryDirectory("wf-bundle")
        defer { try? FileManager.default.removeItem(at: dir) }
        let copy = dir.appendingPathComponent("agents")
        #expect(try TestProcess.run("cp", ["-R", Scripts.agents.path, copy.path]).status == 0)
        let original = try AgentBundle.load(from: copy).digest
        #expect(original == (try AgentBundle.load(from: Scripts.agents).digest))

        let lib = copy.appendingPathComponent("lib.sh")
        try (try String(contentsOf: lib, encoding: .utf8) + "\n# changed\n").write(to: lib, atomically: true, encoding: .utf8)
        let edited = try AgentBundle.load(from: copy).digest
        #expect(edited != original)

        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: lib.path)
        let chmodded = try AgentBundle.load(from: copy).digest
        #expect(chmodded != edited)

        try FileManager.default.moveItem(at: lib, to: copy.appendingPathComponent("lib2.sh"))
        #expect(try AgentBundle.load(from: copy).digest != chmodded)
        // Hidden files are not part of the bundle.
        try Data("x".utf8).write(to: copy.appendingPathComponent(".hidden"))
        #expect(try AgentBundle.load(from: copy).files.allSatisfy { !$0.path.hasPrefix(".") })
    }

    @Test("a directory without build.sh is refused")
    func refused() throws {
        let dir = try TestEnvironment.makeTemporaryDirectory("wf-bundle")
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(throws: AgentError.self) { try AgentBundle.load(from: dir) }
    }
}
