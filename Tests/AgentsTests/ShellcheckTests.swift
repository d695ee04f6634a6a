import FarmTestSupport
import Foundation
import Testing

@Suite("agent scripts pass shellcheck")
struct ShellcheckTests {
    @Test("shellcheck finds nothing in agents/")
    func shellcheckClean() throws {
        let dir = Scripts.agents
        let fm = FileManager.default
        var scripts = try fm.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".sh") }
        scripts += try fm.contentsOfDirectory(atPath: dir.appendingPathComponent("recipes").path)
            .filter { $0.hasSuffix(".sh") }.map { "recipes/\($0)" }
        #expect(scripts.contains("build.sh") && scripts.contains("probe.sh") && scripts.contains("recipes/pep517.sh"))
        // Steps in recipe directories travel with the agents too.
        let recipes = TestEnvironment.repositoryRoot.appendingPathComponent("recipes")
        for folder in try fm.contentsOfDirectory(atPath: recipes.path) {
            let d = recipes.appendingPathComponent(folder)
            guard let files = try? fm.contentsOfDirectory(atPath: d.path) else { continue }
            scripts += files.filter { $0.hasSuffix(".sh") }.map { d.appendingPathComponent($0).path }
        }
        #expect(scripts.contains { $0.hasSuffix("recipes/vllm-cpu/vllm-cpu.sh") })
        let r = try TestProcess.run("/usr/bin/env", ["sh", "-c", "cd \"$0\" && exec shellcheck -x -P . \"$@\"", dir.path] + scripts)
        #expect(r.status == 0, "shellcheck:\n\(r.stdout)\(r.stderr)")
    }
}
