import Agents
import FarmCore
import FarmTestSupport
import Recipes
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// One work directory for the whole test process: its shared caches (the build venv) are prepared
/// once, as on a real host, and removed when the process exits.
let sharedWorkPath = FileManager.default.temporaryDirectory.appendingPathComponent("wf-agents-\(getpid())").path
let sharedWork: URL = {
    try? FileManager.default.createDirectory(atPath: sharedWorkPath, withIntermediateDirectories: true)
    atexit { try? FileManager.default.removeItem(atPath: sharedWorkPath) }
    return URL(fileURLWithPath: sharedWorkPath)
}()

/// The sample's five variants: flags a build host needs, flags it must not have, and instructions
/// the wheel must and must not contain.
struct SampleVariant: Sendable, CustomStringConvertible {
    let package: String
    let hostFlags: [String]
    let forbids: [String]
    let mustContain: [String]
    let mustNotContain: [String]
    var description: String { package }

    static let avx512 = ["avx2", "fma", "avx512f", "avx512vl", "avx512bw", "avx512dq"]
    static let all: [SampleVariant] = [
        .init(package: "wfsample-cpu", hostFlags: ["avx2", "fma"], forbids: [],
              mustContain: ["vfmadd231ps"], mustNotContain: ["<zmm>", "vpdpbusd", "vdpbf16ps", "tdpbf16ps"]),
        .init(package: "wfsample-cpu-avx512", hostFlags: avx512, forbids: ["avx512_vnni", "avx512_bf16", "amx_bf16"],
              mustContain: ["<zmm>"], mustNotContain: ["vpdpbusd", "vdpbf16ps", "tdpbf16ps"]),
        .init(package: "wfsample-cpu-avx512vnni", hostFlags: avx512 + ["avx512_vnni"], forbids: ["avx512_bf16", "amx_bf16"],
              mustContain: ["<zmm>", "vpdpbusd"], mustNotContain: ["vdpbf16ps", "tdpbf16ps"]),
        .init(package: "wfsample-cpu-avx512bf16", hostFlags: avx512 + ["avx512_vnni", "avx512_bf16"], forbids: ["amx_bf16"],
              mustContain: ["<zmm>", "vpdpbusd", "vdpbf16ps", "vcvtne2ps2bf16"], mustNotContain: ["tdpbf16ps"]),
        .init(package: "wfsample-cpu-amxbf16", hostFlags: avx512 + ["avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile"], forbids: [],
              mustContain: ["<zmm>", "vpdpbusd", "vdpbf16ps", "tdpbf16ps", "ldtilecfg"], mustNotContain: []),
    ]
}

@Suite("build.sh builds the sample recipe for real", .serialized)
struct BuildScriptTests {
    let work = sharedWork
    let scratch: URL
    let python: PythonVersion
    let tarball: URL

    init() throws {
        scratch = try TestEnvironment.makeTemporaryDirectory("wf-build")
        python = try Scripts.buildPython(try Scripts.localProbe(workDir: sharedWork)).version
        tarball = try Scripts.sampleTarball(in: scratch)
    }

    func args(job: String, package: String, version: String = "1.2.3", extra: [String] = []) -> [String] {
        ["--work-dir", work.path, "--job-id", job, "--recipe", "sample", "--package", package, "--version", version,
         "--python", python.description, "--source", tarball.path] + extra
    }

    func jobID(_ label: String) -> String { "\(label)-\(UUID().uuidString.prefix(8))" }

    @Test("the variant this CPU can build natively builds, imports and computes")
    func nativeBuild() throws {
        defer { try? FileManager.default.removeItem(at: scratch) }
        let flags = try Scripts.hostFlags()
        let arch = try TestProcess.run("uname", ["-m"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try #require(arch == "x86_64", "the sample's native test expects an x86-64 machine")
        let variant = try #require(SampleVariant.all.last { Set($0.hostFlags).isSubset(of: flags) && Set($0.forbids).isDisjoint(with: flags) })
        let job = jobID("native")
        let run = try Scripts.build(args(job: job, package: variant.package, extra: ["--version-suffix", ".post1"]
            + variant.hostFlags.flatMap { ["--require", $0] } + variant.forbids.flatMap { ["--forbid", $0] }))
        #expect(run.status == 0, "\(run.stderr.suffix(3000))")
        #expect(run.finished?.status == .succeeded)
        #expect(run.phases == ["check", "source", "python", "configure", "compile", "package", "report"])
        let artifact = try #require(run.artifacts.first)
        #expect(run.artifacts.count == 1)
        let dist = Variant.normalizeForFile(variant.package)
        // Tagged by auditwheel with what the content allows (plain C: an old glibc), and auditwheel agrees.
        #expect(artifact.file.hasPrefix("\(dist)-1.2.3.post1-\(python.cpythonTag)-\(python.cpythonTag)-manylinux"))
        let verdict = try PlatformFixtures.show(URL(fileURLWithPath: artifact.path))
        #expect(artifact.file.dropLast(4).split(separator: "-").last!.split(separator: ".").contains { $0 == verdict.overall_tag }, "\(artifact.file): \(verdict)")
        let (digest, size) = try StreamingDigest.file(at: artifact.path)
        #expect(digest == artifact.sha256 && size == artifact.size)
        #expect(artifact.path == work.appendingPathComponent("jobs/\(job)/dist/\(artifact.file)").path)

        // The log is on disk and was streamed on stderr.
        let log = try String(contentsOfFile: work.appendingPathComponent("jobs/\(job)/build.log").path, encoding: .utf8)
        #expect(log.contains("==> phase compile") && run.stderr.contains("==> phase compile"))

        // Import the wheel with the interpreter it was built for and compute with it.
        let unpacked = scratch.appendingPathComponent("site")
        #expect(try TestProcess.run("unzip", ["-q", artifact.path, "-d", unpacked.path]).status == 0)
        let py = work.appendingPathComponent("cache/venvs/py\(python)/bin/python").path
        let script = """
        import sys, random
        sys.path.insert(0, sys.argv[1])
        import wfsample
        a = [random.uniform(-1, 1) for _ in range(1000)]; b = [random.uniform(-1, 1) for _ in range(1000)]
        exact = sum(x * y for x, y in zip(a, b))
        assert abs(wfsample.dot(a, b) - exact) < 1e-3, (wfsample.dot(a, b), exact)
        assert abs(wfsample.dot(a, b, path="scalar") - exact) < 1e-3
        ua = bytes(random.randrange(256) for _ in range(300)); sb = bytes(random.randrange(256) for _ in range(300))
        ref = sum(x * (y - 256 if y > 127 else y) for x, y in zip(ua, sb))
        assert wfsample.dot_u8s8(ua, sb) == ref
        print(" ".join(wfsample.isa()))
        """
        let r = try TestProcess.run(py, ["-c", script, unpacked.path])
        #expect(r.status == 0, "\(r.stderr)")
        let paths = Set(r.stdout.split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) })
        #expect(paths.contains("avx2") && paths.contains("scalar"))
        let metadata = try String(contentsOfFile: unpacked.appendingPathComponent("\(dist)-1.2.3.post1.dist-info/METADATA").path, encoding: .utf8)
        #expect(metadata.contains("Name: \(variant.package)") && metadata.contains("Version: 1.2.3.post1"))
    }

    @Test("a build host with more CPU than the variant leaks it, unless the agent refuses the host")
    func leakAndRefusal() throws {
        defer { try? FileManager.default.removeItem(at: scratch) }
        let cpu = try Scripts.fakeCPUInfo(adding: SampleVariant.avx512 + ["avx512_vnni"], in: scratch)
        // Without --forbid the build goes ahead and VNNI leaks, exactly like vLLM's CMake.
        let leaked = try Scripts.build(args(job: jobID("leak"), package: "wfsample-cpu-avx512"), cpuinfo: cpu)
        #expect(leaked.status == 0, "\(leaked.stderr.suffix(2000))")
        let artifact = try #require(leaked.artifacts.first)
        #expect(try Scripts.mnemonics(inWheel: artifact.path, scratch: scratch)["vpdpbusd", default: 0] > 0)
        #expect(leaked.stderr.contains("enabling avx512vnni (build host has avx512_vnni)"))
        // With the variant's forbidden flags passed, the agent refuses the host: a host problem.
        let refused = try Scripts.build(args(job: jobID("refuse"), package: "wfsample-cpu-avx512", extra: ["--forbid", "avx512_vnni"]), cpuinfo: cpu)
        #expect(refused.status == 3)
        #expect(refused.finished?.status == .hostProblem)
        #expect(refused.finished?.message?.contains("avx512_vnni") == true)
        #expect(refused.artifacts.isEmpty)
    }

    @Test("a compile error is a build failure, with a pointer into the log")
    func failingBuild() throws {
        defer { try? FileManager.default.removeItem(at: scratch) }
        let broken = scratch.appendingPathComponent("broken")
        #expect(try TestProcess.run("cp", ["-R", Scripts.sample.path, broken.path]).status == 0)
        let file = broken.appendingPathComponent("csrc/scalar.c")
        try (try String(contentsOf: file, encoding: .utf8) + "\n#error broken on purpose\n").write(to: file, atomically: true, encoding: .utf8)
        let job = jobID("fail")
        let run = try Scripts.build(args(job: job, package: "wfsample-cpu") + ["--source", try Scripts.sampleTarball(in: scratch, from: broken).path])
        #expect(run.status == 1)
        #expect(run.finished?.status == .failed && run.finished?.phase == "compile")
        let pointer = try #require(run.events.compactMap { if case let .logPointer(path, line, _, _) = $0 { (path, line) } else { nil } }.first)
        let log = try String(contentsOfFile: pointer.0, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        #expect(log.dropFirst(pointer.1 - 1).first?.hasPrefix("+ ") == true)
        #expect(log.dropFirst(pointer.1 - 1).contains { $0.contains("broken on purpose") })
        let status = try String(contentsOfFile: work.appendingPathComponent("jobs/\(job)/status.json").path, encoding: .utf8)
        #expect(status.contains("\"failed\""))
    }

    @Test("a missing, unwritable or full work directory is a host problem")
    func hostProblems() throws {
        defer { try? FileManager.default.removeItem(at: scratch) }
        // Work directory below a regular file: cannot exist.
        let file = scratch.appendingPathComponent("a-file")
        try Data().write(to: file)
        var a = args(job: jobID("nowork"), package: "wfsample-cpu")
        a[1] = file.appendingPathComponent("work").path
        let missing = try Scripts.build(a)
        #expect(missing.status == 3 && missing.finished?.status == .hostProblem)
        #expect(missing.finished?.message?.contains("not writable") == true)

        // A really full disk: a 2 MiB tmpfs as the work directory (in a private mount namespace).
        let tiny = scratch.appendingPathComponent("tiny")
        try FileManager.default.createDirectory(at: tiny, withIntermediateDirectories: true)
        var t = args(job: jobID("full"), package: "wfsample-cpu", extra: ["--min-free-mb", "0"])
        t[1] = tiny.path
        let script = Scripts.agents.appendingPathComponent("build.sh").path
        let full = try TestProcess.run("/usr/bin/unshare", ["-m", "--propagation", "private", "/bin/sh", "-c",
            "mount -t tmpfs -o size=2m tmpfs \"$0\" && head -c 1900k /dev/zero > \"$0/filler\"; exec \"$@\"", tiny.path, script] + t)
        let fullEvents = try full.stdout.split(separator: "\n").compactMap { try BuildEvent.parse(line: $0) }
        #expect(full.status == 3, "\(full.stdout)\n\(full.stderr.suffix(2000))")
        #expect(fullEvents.contains { if case let .finished(f) = $0 { f.status == .hostProblem } else { false } })

        // Less free space than the build asks for.
        let greedy = try Scripts.build(args(job: jobID("greedy"), package: "wfsample-cpu", extra: ["--min-free-mb", "999999999"]))
        #expect(greedy.status == 3 && greedy.finished?.message?.contains("MiB free") == true)

        // A Python the host does not have.
        var p = args(job: jobID("nopy"), package: "wfsample-cpu")
        p[p.firstIndex(of: "--python")! + 1] = "3.99"
        let nopy = try Scripts.build(p)
        #expect(nopy.status == 3 && nopy.finished?.message?.contains("Python 3.99") == true)
    }

    @Test("cancelling stops the build and everything it started")
    func cancel() throws {
        defer { try? FileManager.default.removeItem(at: scratch) }
        let job = jobID("cancel")
        // The compiler is held (HostTools), so the build is still compiling when cancel.sh runs.
        let tools = try HostTools.make(in: scratch.appendingPathComponent("tools"))
        try HostTools.hold(tools)
        defer { HostTools.release(tools) }
        let process = Process()
        process.executableURL = Scripts.agents.appendingPathComponent("build.sh")
        process.arguments = args(job: job, package: "wfsample-cpu")
        process.environment = ProcessInfo.processInfo.environment.merging(HostTools.environment(tools)) { $1 }
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Wait for the compile phase, as seen in the job's event file.
        let events = work.appendingPathComponent("jobs/\(job)/events.jsonl").path
        var compiling = false
        for _ in 0..<1200 where !compiling {
            Thread.sleep(forTimeInterval: 0.05)
            compiling = (try? String(contentsOfFile: events, encoding: .utf8))?.contains("\"phase\":\"compile\"") == true
        }
        try #require(compiling, "the build never reached its compile phase")
        let pid = Int32(try String(contentsOfFile: work.appendingPathComponent("jobs/\(job)/pid").path, encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines))!
        let c = try TestProcess.run(Scripts.agents.appendingPathComponent("cancel.sh").path, ["--work-dir", work.path, "--job-id", job])
        #expect(c.status == 0 && c.stdout.contains("\"running\":true"))
        process.waitUntilExit()
        #expect(process.terminationStatus == 4)
        let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let finished = try stdout.split(separator: "\n").compactMap { try BuildEvent.parse(line: $0) }.compactMap {
            if case let .finished(f) = $0 { f } else { nil }
        }.first
        #expect(finished?.status == .cancelled)
        // Nothing of the build's process group is left running (zombies wait for their reaper).
        var left = Self.liveMembers(ofGroup: pid)
        for _ in 0..<50 where !left.isEmpty {
            Thread.sleep(forTimeInterval: 0.1)
            left = Self.liveMembers(ofGroup: pid)
        }
        #expect(left.isEmpty, "still running: \(left)")
        let again = try TestProcess.run(Scripts.agents.appendingPathComponent("cancel.sh").path, ["--work-dir", work.path, "--job-id", job])
        #expect(again.status == 0 && again.stdout.contains("\"running\":false"))
    }

    /// Processes of process group `pgid` that are not zombies, from /proc.
    static func liveMembers(ofGroup pgid: Int32) -> [String] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.filter { $0.allSatisfy(\.isNumber) }.compactMap { pid in
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return nil }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 2, fields[0] != "Z", Int32(fields[2]) == pgid else { return nil }
            return "\(pid) \(stat[..<close])"
        }
    }

    @Test("bad arguments and contradictory environments are usage errors")
    func usage() throws {
        defer { try? FileManager.default.removeItem(at: scratch) }
        let noPackage = try Scripts.build(["--work-dir", work.path, "--job-id", "x", "--recipe", "sample", "--version", "1", "--python", "3.11"])
        #expect(noPackage.status == 2 && noPackage.finished?.message == "missing --package")
        let contradiction = try Scripts.build(args(job: jobID("contra"), package: "wfsample-cpu-avx512",
                                                   extra: ["--env", "WFSAMPLE_CPU_DISABLE_AVX512=true", "--dry-run"]))
        #expect(contradiction.status == 2)
        #expect(contradiction.finished?.message?.contains("WFSAMPLE_CPU_DISABLE_AVX512") == true)
        let recipe = try Scripts.build(["--work-dir", work.path, "--job-id", "x", "--recipe", "nope", "--package", "p",
                                        "--version", "1", "--python", "3.11"])
        #expect(recipe.status == 2 && recipe.finished?.message?.contains("unknown build step 'nope'") == true, "\(recipe.finished?.message ?? "")")
    }
}

typealias BuildRun = Scripts.BuildRun

extension Variant {
    /// The distribution name as it appears in wheel file names (`wfsample_cpu_avx512`).
    static func normalizeForFile(_ package: String) -> String { normalize(package).replacingOccurrences(of: "-", with: "_") }
}
