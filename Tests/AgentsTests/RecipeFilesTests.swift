import Agents
import FarmCore
import FarmTestSupport
import Foundation
import Recipes
import Testing

/// The shipped recipe files and the agent's recipe steps agree on every variant's environment.
@Suite("shipped recipes drive the agent")
struct RecipeFilesTests {
    @Test("every variant of every shipped recipe dry-runs without contradiction", arguments: ["sample", "vllm-cpu"])
    func dryRun(_ name: String) throws {
        let recipe = try RecipeLoader.load(path: TestEnvironment.repositoryRoot.appendingPathComponent("recipes/\(name).yaml").path)
        #expect(recipe.buildStep == name)
        for variant in recipe.variants {
            for arch in variant.arches.keys.sorted() {
                let job = BuildJob(recipe: recipe.name, variant: variant, arch: arch, python: PythonVersion(major: 3, minor: 12),
                                   version: PEP440Version("1.0.0")!)
                let host = InventoryHost(name: "h", arch: arch, maxJobs: 4)
                let request = BuildRequest(job: job, recipe: recipe, host: host, source: "/nonexistent/source.tar.gz", dryRun: true)
                let work = "/nonexistent/wf-\(UUID().uuidString.prefix(8))"
                let run = try Scripts.build(request.arguments(workDir: work))
                #expect(run.status == 0, "\(variant.package) \(arch): \(run.finished?.message ?? run.stderr)")
                let build = try #require(run.commands.first { $0.argv.contains("--no-build-isolation") }, "\(variant.package)")
                for (key, value) in recipe.env.merging(variant.env, uniquingKeysWith: { $1 }) {
                    #expect(build.env[key] == value, "\(variant.package): \(key)")
                }
            }
        }
    }
}
