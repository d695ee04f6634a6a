import Agents
import FarmCore
import FarmTestSupport
import Foundation
import Recipes
import Testing

/// The shipped recipe files and the agent's recipe steps agree on every variant's environment.
@Suite("shipped recipes drive the agent")
struct RecipeFilesTests {
    @Test("every variant of every shipped recipe dry-runs without contradiction",
          arguments: [("sample", "1.0.0"), ("vllm-cpu", "0.16.0"), ("vllm-cpu", "0.20.0"), ("vllm-cpu", "0.9.2"), ("llama-cpp-python", "0.3.36")])
    func dryRun(_ name: String, _ version: String) throws {
        let recipe = try RecipeLoader.load(path: TestEnvironment.repositoryRoot.appendingPathComponent("recipes/\(name).yaml").path)
        let bundle = try VLLMDryRunTests.bundle(recipe)
        defer { try? FileManager.default.removeItem(at: bundle) }
        let resolved = recipe.resolved(for: PEP440Version(version)!)
        for job in try JobMatrix.expand(recipe: recipe, selection: JobSelection(variant: "all", versions: version, pythons: "3.12")) {
            let host = InventoryHost(name: "h", arch: job.arch, maxJobs: 4)
            let request = BuildRequest(job: job, recipe: recipe, host: host, source: "/nonexistent/source.tar.gz", dryRun: true)
            let work = "/nonexistent/wf-\(UUID().uuidString.prefix(8))"
            let run = try Scripts.run(bundle.appendingPathComponent("build.sh").path, request.arguments(workDir: work))
            #expect(run.status == 0, "\(job.id): \(run.stderr)")
            let events = try run.stdout.split(separator: "\n").compactMap { try BuildEvent.parse(line: $0) }
            let commands = events.compactMap { e -> (argv: [String], env: [String: String])? in
                if case let .command(argv, _, env) = e { return (argv, env) } else { return nil }
            }
            let build = try #require(commands.first { $0.argv.contains("--no-build-isolation") }, "\(job.id)")
            let values = ["version": version, "package": job.variant.package, "python": "3.12", "arch": job.arch.kernelName, "max_jobs": "4", "project": recipe.project]
            for (key, value) in resolved.env.merging(job.variant.env, uniquingKeysWith: { $1 }) {
                #expect(build.env[key] == RecipeTemplate.expand(value, values), "\(job.id): \(key)")
            }
        }
    }
}
