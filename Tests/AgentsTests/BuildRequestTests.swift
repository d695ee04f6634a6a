import Agents
import FarmCore
import Recipes
import Testing

@Suite("build requests")
struct BuildRequestTests {
    @Test("a job on a host becomes build.sh arguments")
    func arguments() throws {
        let variant = Variant(package: "wfsample-cpu-avx512vnni", shortName: "avx512vnni",
                              arches: [.amd64: .init(requires: [Capability("avx512f"), Capability("avx512_vnni")], forbids: [Capability("amx_bf16")])],
                              env: ["WFSAMPLE_CPU_AVX512VNNI": "1"], compilerFlags: ["-mavx512vnni"], minimumGCC: PEP440Version("12.3"))
        let recipe = Recipe(name: "sample", source: "examples/wfsample", buildStep: "sample", module: "wfsample",
                            env: ["COMMON": "x", "WFSAMPLE_CPU_AVX512VNNI": "0"], variants: [variant], defaultVariant: "avx512vnni")
        let job = BuildJob(recipe: "sample", variant: variant, arch: .amd64, python: PythonVersion(major: 3, minor: 12),
                           version: PEP440Version("1.2.3")!, suffix: ".post1")
        let host = InventoryHost(name: "h", arch: .amd64, maxJobs: 6)
        let request = BuildRequest(job: job, recipe: recipe, host: host, source: "/w/cache/src/s.tar.gz", attempt: 2)
        #expect(request.jobID == "wfsample-cpu-avx512vnni-1.2.3.post1-cp312-amd64-a2")
        let args = request.arguments(workDir: "/w")
        let expected: [String] = [
            "--work-dir", "/w", "--job-id", request.jobID, "--recipe", "sample", "--package", "wfsample-cpu-avx512vnni",
            "--version", "1.2.3", "--python", "3.12", "--builder", "native", "--version-suffix", ".post1", "--max-jobs", "6",
            "--source", "/w/cache/src/s.tar.gz", "--env", "COMMON=x", "--env", "WFSAMPLE_CPU_AVX512VNNI=1",
            "--cflag=-mavx512vnni", "--require", "avx512_vnni", "--require", "avx512f", "--forbid", "amx_bf16", "--min-gcc", "12.3",
            "--project", "wfsample",
        ]
        #expect(args == expected)
    }
}
