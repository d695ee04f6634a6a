import Agents
import FarmCore
import FarmTestSupport
import Foundation
import Recipes
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// build.sh tags each wheel with what its content allows (auditwheel repair on the host), and a
/// required platform tag it cannot reach is a host problem, before building or after.
@Suite("build.sh tags wheels honestly", .serialized)
struct PlatformTaggingTests {
    let work = sharedWork
    let python: PythonVersion

    init() throws {
        python = try Scripts.buildPython(try Scripts.localProbe(workDir: sharedWork)).version
    }

    /// A project directory whose `wfsample` package has the threaded C++/OpenMP extension (the
    /// sample recipe builds whatever setup.py its --source holds).
    func threadedProject(in dir: URL) throws -> URL {
        let project = dir.appendingPathComponent("threaded")
        let pkg = project.appendingPathComponent("wfsample")
        try FileManager.default.createDirectory(at: pkg, withIntermediateDirectories: true)
        try "".write(to: pkg.appendingPathComponent("__init__.py"), atomically: true, encoding: .utf8)
        try PlatformFixtures.threadedCXX.write(to: pkg.appendingPathComponent("_C.cpp"), atomically: true, encoding: .utf8)
        try """
            import os
            from setuptools import setup, Extension
            setup(name=os.environ.get('WFSAMPLE_DIST_NAME', 'wfsample'), version=os.environ.get('WFSAMPLE_VERSION', '0'), packages=['wfsample'],
                  ext_modules=[Extension('wfsample._C', ['wfsample/_C.cpp'], language='c++',
                                         extra_compile_args=['-std=c++17', '-fopenmp'], extra_link_args=['-fopenmp'])])
            """.write(to: project.appendingPathComponent("setup.py"), atomically: true, encoding: .utf8)
        return project
    }

    func args(job: String, source: URL, extra: [String]) -> [String] {
        ["--work-dir", work.path, "--job-id", job, "--recipe", "sample", "--package", "wfsample-cpu", "--version", "1.0.0",
         "--python", python.description, "--source", source.path] + extra
    }

    /// Runs build.sh with `PATH` starting at `pathPrefix` (to simulate another host's tools).
    func build(_ arguments: [String], pathPrefix: URL? = nil) throws -> Scripts.BuildRun {
        var env = ProcessInfo.processInfo.environment
        if let pathPrefix { env["PATH"] = pathPrefix.path + ":" + (env["PATH"] ?? "/usr/bin:/bin") }
        let r = try TestProcess.run(Scripts.agents.appendingPathComponent("build.sh").path, arguments, environment: env)
        let events = try r.stdout.split(separator: "\n").compactMap { try BuildEvent.parse(line: $0) }
        return Scripts.BuildRun(status: r.status, events: events, stdout: r.stdout, stderr: r.stderr)
    }

    @Test("a C++/OpenMP build is repaired: libgomp vendored under .libs, tagged with what glibc requires, as auditwheel says")
    func repaired() throws {
        let dir = try TestEnvironment.makeTemporaryDirectory("wf-tagging")
        defer { try? FileManager.default.removeItem(at: dir) }
        let run = try build(args(job: "tag-\(UUID().uuidString.prefix(6))", source: try threadedProject(in: dir), extra: []))
        #expect(run.status == 0, "\(run.stderr.suffix(3000))")
        let artifact = try #require(run.artifacts.first)
        let listing = try TestProcess.run("unzip", ["-l", artifact.path]).stdout
        #expect(listing.contains("wfsample_cpu.libs/libgomp-"), "\(listing)")  // auditwheel names it after the distribution
        let verdict = try PlatformFixtures.show(URL(fileURLWithPath: artifact.path))
        #expect(artifact.file.contains(verdict.overall_tag), "\(artifact.file) vs \(verdict.overall_tag)")
        #expect(!artifact.file.contains("manylinux_2_28"), "a glibc 2.36 host's C++ build is not manylinux_2_28: \(artifact.file)")
    }

    @Test("a required tag newer builds cannot meet: refused before building on this host's glibc")
    func refusedBeforeBuilding() throws {
        let glibc = try TestProcess.run("getconf", ["GNU_LIBC_VERSION"]).stdout.split(separator: " ").last.map { String($0).trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
        let version = try #require(LibcVersion(.glibc, parsing: glibc))
        try #require(version > LibcVersion(.glibc, 2, 17), "this machine's glibc \(glibc) is old enough to build manylinux2014")
        let dir = try TestEnvironment.makeTemporaryDirectory("wf-tagging")
        defer { try? FileManager.default.removeItem(at: dir) }
        let run = try build(args(job: "old-\(UUID().uuidString.prefix(6))", source: try threadedProject(in: dir), extra: ["--platform", "manylinux_2_17"]))
        #expect(run.status == 3)
        #expect(run.finished?.status == .hostProblem)
        #expect(run.finished?.phase == "check")
        #expect(run.finished?.message?.contains("glibc \(glibc) is newer than manylinux_2_17 allows (2.17)") == true, "\(run.finished?.message ?? "")")
        #expect(run.finished?.message?.contains("--builder docker") == true)
    }

    @Test("a build that misses the required tag anyway (a host whose glibc looks old enough) ends as a host problem with auditwheel's reason")
    func missesAnyway() throws {
        let dir = try TestEnvironment.makeTemporaryDirectory("wf-tagging")
        defer { try? FileManager.default.removeItem(at: dir) }
        // A host that reports glibc 2.28 but links against this machine's newer libraries (as a
        // host with a newer toolchain than its system would).
        let tools = dir.appendingPathComponent("tools")
        try FileManager.default.createDirectory(at: tools, withIntermediateDirectories: true)
        let getconf = tools.appendingPathComponent("getconf")
        try "#!/bin/sh\nif [ \"$1\" = GNU_LIBC_VERSION ]; then echo 'glibc 2.28'; else exec /usr/bin/getconf \"$@\"; fi\n"
            .write(to: getconf, atomically: true, encoding: .utf8)
        #expect(chmod(getconf.path, 0o755) == 0)
        let run = try build(args(job: "miss-\(UUID().uuidString.prefix(6))", source: try threadedProject(in: dir), extra: ["--platform", "manylinux_2_28"]),
                            pathPrefix: tools)
        #expect(run.status == 3, "\(run.stderr.suffix(2000))")
        #expect(run.finished?.status == .hostProblem)
        #expect(run.finished?.phase == "package")
        let message = run.finished?.message ?? ""
        #expect(message.contains("cannot be tagged manylinux_2_28") && message.contains("too-recent versioned symbols"), "\(message)")
        #expect(message.contains("--builder docker"))
        #expect(run.artifacts.isEmpty)
    }

    /// A project whose extension links against a library auditwheel cannot find (built beside it,
    /// not on the loader's path), so no portable tag is possible.
    func unvendorableProject(in dir: URL) throws -> URL {
        let lib = try PlatformFixtures.providerLibrary(in: dir)
        let project = dir.appendingPathComponent("unvendorable")
        let pkg = project.appendingPathComponent("wfsample")
        try FileManager.default.createDirectory(at: pkg, withIntermediateDirectories: true)
        try "".write(to: pkg.appendingPathComponent("__init__.py"), atomically: true, encoding: .utf8)
        try PlatformFixtures.usesProvider.write(to: pkg.appendingPathComponent("_C.c"), atomically: true, encoding: .utf8)
        try """
            import os
            from setuptools import setup, Extension
            setup(name=os.environ.get('WFSAMPLE_DIST_NAME', 'wfsample'), version=os.environ.get('WFSAMPLE_VERSION', '0'), packages=['wfsample'],
                  ext_modules=[Extension('wfsample._C', ['wfsample/_C.c'], libraries=['wfprov'], library_dirs=['\(lib.path)'])])
            """.write(to: project.appendingPathComponent("setup.py"), atomically: true, encoding: .utf8)
        return project
    }

    @Test("a wheel no portable tag fits fails the build naming the fix, unless --platform linux keeps its linux_* tag")
    func linuxOnlyWhenAsked() throws {
        let dir = try TestEnvironment.makeTemporaryDirectory("wf-tagging")
        defer { try? FileManager.default.removeItem(at: dir) }
        let source = try unvendorableProject(in: dir)
        let strict = try build(args(job: "strict-\(UUID().uuidString.prefix(6))", source: source, extra: []))
        #expect(strict.status == 1 && strict.finished?.status == .failed, "\(strict.stderr.suffix(2000))")
        let message = strict.finished?.message ?? ""
        #expect(message.contains("libwfprov.so") && message.contains("declare it as provided by a dependency"), "\(message)")
        let kept = try build(args(job: "linux-\(UUID().uuidString.prefix(6))", source: source, extra: ["--platform", "linux"]))
        #expect(kept.status == 0, "\(kept.stderr.suffix(2000))")
        #expect(kept.artifacts.first?.file.hasSuffix("-linux_x86_64.whl") == true, "\(kept.artifacts)")
        // Declared as provided (the recipe's provided_libraries), it is not vendored and the tag is portable.
        let provided = try build(args(job: "provided-\(UUID().uuidString.prefix(6))", source: source, extra: ["--exclude-lib", "libwfprov.so"]))
        #expect(provided.status == 0, "\(provided.stderr.suffix(2000))")
        #expect(provided.artifacts.first?.file.contains("-manylinux") == true, "\(provided.artifacts)")
    }

    @Test("the build request passes the recipe's platform and provided libraries to build.sh")
    func request() throws {
        let recipe = try RecipeCatalog.load(TestEnvironment.repositoryRoot.appendingPathComponent("recipes/vllm-cpu.yaml").path)
        let job = try #require(try JobMatrix.expand(recipe: recipe, selection: .init(variant: "avx512", versions: "0.16.0", pythons: "3.12")).first)
        let host = InventoryHost(name: "h", arch: .amd64, capabilities: [])
        let args = BuildRequest(job: job, recipe: recipe, host: host, source: nil).arguments(workDir: "/w")
        #expect(args.joined(separator: " ").contains("--platform manylinux_2_28"))
        for lib in ["libtorch.so", "libtorch_cpu.so", "libc10.so"] { #expect(args.joined(separator: " ").contains("--exclude-lib \(lib)")) }
    }
}
