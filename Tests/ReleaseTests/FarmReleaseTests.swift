import FarmCore
import FarmTestSupport
import Foundation
import Testing

/// `wheelfarm release` across real sshd build hosts with different CPUs, a real pypiserver and
/// the local fake of GitHub's release API: every sample variant, for two upstream versions and two
/// Python versions (the machine's CPython 3.11 and the 3.13 `scripts/second-python.sh` builds), is
/// built on a host that can build it natively, pulled back, verified (ISA audit included),
/// uploaded once and attached to its GitHub release.
@Suite("release on an sshd farm (built binary)", .serialized)
struct FarmReleaseTests {
    @Test func everyVariantIsBuiltNativelyVerifiedUploadedOnceAndAttachedToItsRelease() async throws {
        let scratch = try TestEnvironment.makeTemporaryDirectory("wheelfarm-farm-release")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let server = try PyPIServerHarness()
        defer { server.stop() }
        let token = "ghp_farmtest\(UUID().uuidString.prefix(12))"
        let github = try FakeGitHub(token: token, directory: scratch)
        defer { github.stop() }
        let second = TestEnvironment.secondPythonVersion
        _ = try TestEnvironment.secondPython()
        try await SSHTestFarm.withFarm(SampleFarm.hostsWithTwoPythons) { farm in
            let inventory = farm.directory.appendingPathComponent("inventory.yaml")
            try farm.writeInventory(to: inventory)
            let dist = farm.directory.appendingPathComponent("dist")
            let args = ["release", "--recipe", "sample", "--variant", "all", "--versions", "1.0.0,1.1.0", "--python-versions", "3.11,\(second)",
                        "--inventory", inventory.path, "--dist-dir", dist.path,
                        "--repository-url", server.url, "--github-repository", "wheelfarm-test/wfsample", "--github-api-url", github.apiURL]
            let env = ProcessInfo.processInfo.environment.merging(server.credentialsEnvironment.merging(["CI": "true", "GITHUB_TOKEN": token]) { $1 }) { $1 }
            let r = try await TestProcess.wheelfarmInBackground(args, environment: env)
            #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
            for secret in [token, server.password] { #expect(!r.stdout.contains(secret) && !r.stderr.contains(secret)) }

            let report = try #require(try FileManager.default.contentsOfDirectory(atPath: dist.appendingPathComponent("reports").path)
                .first { $0.hasSuffix(".json") })
            let doc = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: dist.appendingPathComponent("reports/\(report)"))) as? [String: Any])
            let jobs = try #require(doc["jobs"] as? [[String: Any]])
            #expect(jobs.count == 24)   // 5 amd64 variants and the arm64 build of wfsample-cpu, for 2 versions and 2 Pythons
            let expectedHost = ["wfsample-cpu-avx512": "skylake", "wfsample-cpu-avx512vnni": "cascadelake",
                                "wfsample-cpu-avx512bf16": "cooperlake", "wfsample-cpu-amxbf16": "sapphire"]
            var wheels: [String: String] = [:]   // file → sha256
            var byRelease: [String: Set<String>] = [:]
            var pythonTags: [String: Set<String>] = [:]   // package, version, arch → the wheels' Python tags
            for job in jobs {
                let package = job["package"] as? String ?? "?"
                #expect(job["state"] as? String == "published", "\(job)")
                let attempts = job["attempts"] as? [[String: Any]] ?? []
                #expect(attempts.count == 1, "\(job)")
                let host = attempts.last?["host"] as? String
                if let want = expectedHost[package] { #expect(host == want, "\(package) built on \(host ?? "-")") }
                if package == "wfsample-cpu" {
                    #expect(job["arch"] as? String == "arm64" ? host == "graviton" : host != "graviton")
                }
                let checks = job["checks"] as? [[String: Any]] ?? []
                #expect(checks.contains { $0["id"] as? String == "isa.excluded" && $0["outcome"] as? String == "pass" } || job["arch"] as? String == "arm64")
                if let wheel = job["wheel"] as? String, let sha = job["sha256"] as? String {
                    wheels[wheel] = sha
                    pythonTags["\(package) \(job["version"] as? String ?? "?") \(job["arch"] as? String ?? "?")", default: []]
                        .insert(wheel.split(separator: "-").dropFirst(2).first.map(String.init) ?? "?")
                    byRelease["v\(job["version"] as? String ?? "?")-\(package)", default: []].insert(wheel)
                }
            }

            // The index holds exactly these wheels, byte for byte.
            #expect(try server.storedFiles() == wheels.keys.sorted())
            for (file, sha) in wheels { #expect(try sha256Hex(server.packagesDirectory.appendingPathComponent(file)) == sha, "\(file)") }
            #expect(wheels.keys.contains { $0.hasSuffix("_aarch64.whl") })
            // The build hosts are Debian 12 (glibc 2.36): every wheel's tags are what its content
            // allows. auditwheel, run here on each, agrees: its most compatible tag is the
            // wheel's most compatible tag, and wheelfarm's audit finds the same one.
            let paths = wheels.keys.sorted().map { server.packagesDirectory.appendingPathComponent($0) }
            let audited = try TestProcess.wheelfarm(["verify", "--json"] + paths.map(\.path))
            let ours = try #require(try JSONSerialization.jsonObject(with: Data(audited.stdout.utf8)) as? [[String: Any]])
            #expect(ours.count == paths.count && audited.status == 0, "\(audited.stdout.suffix(2000))")
            for (path, report) in zip(paths, ours) {
                let verdict = try PlatformFixtures.show(path)
                let tags = path.deletingPathExtension().lastPathComponent.split(separator: "-").last!.split(separator: ".").map(String.init)
                let mostCompatible = tags.compactMap(LinuxPlatformTag.init).filter { $0.libc != nil }.min { $0.libc! < $1.libc! }
                #expect(mostCompatible?.canonical == verdict.overall_tag, "\(path.lastPathComponent): auditwheel says \(verdict.overall_tag)")
                #expect((report["platform"] as? [String: Any])?["mostCompatibleTag"] as? String == verdict.overall_tag, "\(path.lastPathComponent)")
                #expect(tags.allSatisfy { !$0.hasPrefix("linux_") }, "\(tags)")
            }
            // Every package, version and arch has a wheel for each Python.
            #expect(pythonTags.count == 12 && pythonTags.values.allSatisfy { $0 == ["cp311", "cp313"] }, "\(pythonTags)")

            // One published GitHub release per package and version, each with its wheels attached.
            let releases = try github.state()
            #expect(Set(releases.map(\.tag_name)) == Set(byRelease.keys))
            for release in releases {
                #expect(!release.draft, "\(release.tag_name) is still a draft")
                #expect(Set(release.assets.map(\.name)) == byRelease[release.tag_name] ?? [], "\(release.tag_name)")
                for asset in release.assets {
                    #expect(asset.state == "uploaded" && asset.sha256 == wheels[asset.name], "\(release.tag_name)/\(asset.name)")
                }
            }

            // Run again: nothing is built, uploaded or attached a second time.
            let requestsBefore = github.requests.count
            let again = try await TestProcess.wheelfarmInBackground(args, environment: env)
            #expect(again.status == 0, "\(again.stdout)")
            #expect(again.stdout.contains("0 to build · 24 already built and verified"), "\(again.stdout)")
            #expect(!again.stdout.contains(": uploaded"))
            #expect(!github.requests.dropFirst(requestsBefore).contains { $0.hasPrefix("POST") || $0.hasPrefix("PATCH") || $0.hasPrefix("DELETE") },
                    "\(github.requests.dropFirst(requestsBefore))")
            #expect(try server.storedFiles() == wheels.keys.sorted())

            // A Python no host has (and none can fetch: no uv here): every host's probe says it has
            // no 3.12 and cannot provision one, so the 3.12 jobs are refused at placement with that
            // finding; the 3.11 ones stay done.
            var otherArgs = args
            otherArgs[otherArgs.firstIndex(of: "3.11,\(second)")!] = "3.11,3.12"
            let twoPythons = try await TestProcess.wheelfarmInBackground(otherArgs, environment: env)
            #expect(twoPythons.status == 1, "\(twoPythons.stdout)")
            #expect(twoPythons.stdout.contains("12 to build · 12 already built and verified"), "\(twoPythons.stdout)")
            let refused = lines(twoPythons.stdout, containing: "failed wfsample")
            #expect(refused.count == 12 && refused.allSatisfy { $0.contains("cp312") && $0.contains("has no Python 3.12 and cannot provision one (has 3.11, \(second))") },
                    "\(twoPythons.stdout)")
            #expect(!twoPythons.stdout.contains(": uploaded"))
            #expect(try server.storedFiles() == wheels.keys.sorted())
        }
    }

    /// A recipe whose wheels use the stable ABI (the sample built with `WFSAMPLE_ABI3`, as vLLM's
    /// are): asked for two Pythons, the release builds one `cp311-abi3` wheel, which both Pythons
    /// install from the index and run; asked later for the other Python alone, it builds nothing.
    @Test func anABI3RecipeBuildsOneWheelThatBothPythonsInstall() async throws {
        let second = TestEnvironment.secondPythonVersion
        let secondPython = try TestEnvironment.secondPython()
        let scratch = try TestEnvironment.makeTemporaryDirectory("wheelfarm-abi3")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let server = try PyPIServerHarness()
        defer { server.stop() }
        let recipe = scratch.appendingPathComponent("sample-abi3.yaml")
        try (try String(contentsOf: TestEnvironment.repositoryRoot.appendingPathComponent("recipes/sample.yaml"), encoding: .utf8)
             + "\nabi3: true\nenv:\n  WFSAMPLE_ABI3: \"1\"\n").write(to: recipe, atomically: true, encoding: .utf8)
        try await SSHTestFarm.withFarm([SampleFarm.hostsWithTwoPythons[0]]) { farm in
            let inventory = farm.directory.appendingPathComponent("inventory.yaml")
            try farm.writeInventory(to: inventory)
            func release(pythons: String, dist: String) async throws -> ProcessResult {
                try await TestProcess.wheelfarmInBackground(
                    ["release", "--recipe", recipe.path, "--variant", "noavx512", "--platform", "linux/amd64", "--versions", "1.0.0",
                     "--python-versions", pythons, "--inventory", inventory.path, "--dist-dir", farm.directory.appendingPathComponent(dist).path,
                     "--repository-url", server.url, "--skip-github"],
                    environment: ProcessInfo.processInfo.environment.merging(server.credentialsEnvironment.merging(["CI": "true"]) { $1 }) { $1 })
            }
            let r = try await release(pythons: "3.11,\(second)", dist: "dist")
            #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
            let wheel = try #require(try server.storedFiles().first, "\(r.stdout)")
            #expect(wheel.hasPrefix("wfsample_cpu-1.0.0-cp311-abi3-manylinux") && wheel.hasSuffix("_x86_64.whl"), "\(wheel)")
            #expect(r.stdout.contains("sample wheels use the stable ABI (abi3): each is built once, with Python 3.11, and serves Python \(second) too"), "\(r.stdout)")
            #expect(r.stdout.contains("1 to build"), "\(r.stdout)")
            #expect(try server.storedFiles() == [wheel])

            // Each Python installs it from the index and runs its compiled kernels.
            for (i, python) in ["/usr/bin/python3", secondPython].enumerated() {
                let venv = scratch.appendingPathComponent("venv\(i)")
                #expect(try TestProcess.run(python, ["-m", "venv", venv.path]).status == 0)
                let pip = try TestProcess.run(venv.appendingPathComponent("bin/pip").path, [
                    "install", "--no-deps", "--no-cache-dir", "--disable-pip-version-check", "--index-url", server.simpleURL, "wfsample-cpu==1.0.0"])
                #expect(pip.status == 0 && pip.stdout.contains(wheel), "\(python): \(pip.stdout)\n\(pip.stderr)")
                let run = try TestProcess.run(venv.appendingPathComponent("bin/python").path, [
                    "-c", "import sys, wfsample; print('%d.%d' % sys.version_info[:2], wfsample.dot([1, 2], [3, 4]), wfsample.isa())"])
                #expect(run.status == 0, "\(python): \(run.stderr)")
                #expect(run.stdout.hasSuffix(" 11.0 ('avx2', 'scalar')\n") && run.stdout.hasPrefix(i == 0 ? "3.11 " : "\(second) "), "\(run.stdout)")
            }

            // The other Python alone, from a fresh dist directory: the abi3 wheel on the index serves it.
            let again = try await release(pythons: second, dist: "dist-fresh")
            #expect(again.status == 0, "\(again.stdout)")
            #expect(again.stdout.contains("0 to build") && again.stdout.contains("already published as \(wheel)"), "\(again.stdout)")
            #expect(try server.storedFiles() == [wheel])
        }
    }
}
