import Agents
import FarmCore
import FarmTestSupport
import Foundation
import Testing

/// Helpers for running the agent scripts on this machine, as a build host would.
enum Scripts {
    static let agents = TestEnvironment.repositoryRoot.appendingPathComponent("agents")
    static let sample = TestEnvironment.repositoryRoot.appendingPathComponent("examples/wfsample")

    /// The result of one `build.sh` run: its exit status, parsed events and stderr (the live log).
    struct BuildRun {
        let status: Int32
        let events: [BuildEvent]
        let stdout: String
        let stderr: String

        var finished: BuildEvent.Finished? {
            for case let .finished(f) in events { return f }
            return nil
        }
        var artifacts: [BuildEvent.Artifact] { events.compactMap { if case let .artifact(a) = $0 { a } else { nil } } }
        var commands: [(argv: [String], env: [String: String])] {
            events.compactMap { if case let .command(argv, _, env) = $0 { (argv, env) } else { nil } }
        }
        var phases: [String] { events.compactMap { if case let .phase(name, _) = $0 { name } else { nil } } }
    }

    /// Runs `build.sh` with `arguments`, optionally under a fake /proc/cpuinfo.
    static func build(_ arguments: [String], cpuinfo: URL? = nil) throws -> BuildRun {
        let script = agents.appendingPathComponent("build.sh").path
        let result = try run(script, arguments, cpuinfo: cpuinfo)
        let events = try result.stdout.split(separator: "\n").compactMap { try BuildEvent.parse(line: $0) }
        return BuildRun(status: result.status, events: events, stdout: result.stdout, stderr: result.stderr)
    }

    /// Runs a program, optionally in a private mount namespace whose /proc/cpuinfo is `cpuinfo`.
    static func run(_ program: String, _ arguments: [String], cpuinfo: URL? = nil) throws -> ProcessResult {
        guard let cpuinfo else { return try TestProcess.run(program, arguments) }
        return try TestProcess.run("/usr/bin/unshare", [
            "-m", "--propagation", "private", "/bin/sh", "-c",
            "mount --bind \"$0\" /proc/cpuinfo && exec \"$@\"", cpuinfo.path, program,
        ] + arguments)
    }

    /// This machine's /proc/cpuinfo with `adding` appended to, and `removing` taken from, every
    /// `flags` line: what a host with that CPU would show.
    static func fakeCPUInfo(adding: [String] = [], removing: Set<String> = [], in directory: URL) throws -> URL {
        let real = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        let lines = real.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            guard line.hasPrefix("flags") || line.hasPrefix("Features"), let colon = line.firstIndex(of: ":") else { return String(line) }
            var flags = line[line.index(after: colon)...].split(separator: " ").map(String.init).filter { !removing.contains($0) }
            for f in adding where !flags.contains(f) { flags.append(f) }
            return line[...colon] + " " + flags.joined(separator: " ")
        }
        let url = directory.appendingPathComponent("cpuinfo-\(UUID().uuidString.prefix(8))")
        try lines.joined(separator: "\n").write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    /// The real CPU flags of this machine.
    static func hostFlags() throws -> Set<String> {
        let real = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        for line in real.split(separator: "\n") where line.hasPrefix("flags") || line.hasPrefix("Features") {
            return Set(line.split(separator: ":", maxSplits: 1).last!.split(separator: " ").map(String.init))
        }
        return []
    }

    /// A `.tar.gz` of the sample project (as the coordinator uploads it).
    static func sampleTarball(in directory: URL, from source: URL = sample) throws -> URL {
        let out = directory.appendingPathComponent("wfsample-\(UUID().uuidString.prefix(8)).tar.gz")
        let r = try TestProcess.run("tar", ["-czf", out.path, "--exclude=build", "--exclude=dist", "--exclude=*.egg-info",
                                            "--exclude=__pycache__", "-C", source.path, "."])
        try #require(r.status == 0, "tar failed: \(r.stderr)")
        return out
    }

    /// The probe report of this machine.
    static func localProbe(workDir: URL, cpuinfo: URL? = nil) throws -> ProbeReport {
        let r = try run(agents.appendingPathComponent("probe.sh").path, ["--work-dir", workDir.path], cpuinfo: cpuinfo)
        try #require(r.status == 0, "probe.sh failed: \(r.stderr)")
        return try ProbeReport.parse(Data(r.stdout.utf8))
    }

    /// A Python feature version this machine can build wheels with (the first interpreter the probe lists).
    static func buildPython(_ report: ProbeReport) throws -> (version: PythonVersion, interpreter: ProbeReport.Interpreter) {
        let p = try #require(report.pythons.first { $0.canBuild && $0.pythonVersion != nil },
                             "no Python with venv and headers on this machine")
        return (p.pythonVersion!, p)
    }

    /// The instruction mnemonics in the compiled extension of `wheel`, counted.
    static func mnemonics(inWheel wheel: String, scratch: URL) throws -> [String: Int] {
        let dir = scratch.appendingPathComponent("unpacked-\(UUID().uuidString.prefix(8))")
        let unzip = try TestProcess.run("unzip", ["-q", "-o", wheel, "-d", dir.path])
        try #require(unzip.status == 0, "unzip failed: \(unzip.stderr)")
        let pkg = dir.appendingPathComponent("wfsample")
        let so = try #require(try FileManager.default.contentsOfDirectory(atPath: pkg.path).first { $0.hasSuffix(".so") },
                              "no extension in \(wheel)")
        let dump = try TestProcess.run("objdump", ["-d", "--no-show-raw-insn", pkg.appendingPathComponent(so).path])
        try #require(dump.status == 0, "objdump failed: \(dump.stderr)")
        var counts: [String: Int] = [:]
        for line in dump.stdout.split(separator: "\n") {
            // "  1234:\tvpdpbusd %zmm1,%zmm2,%zmm0": the mnemonic is the first word after the tab.
            let columns = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard columns.count >= 2, columns[0].hasSuffix(":") else { continue }
            let instruction = columns[1]
            if let mnemonic = instruction.split(separator: " ").first { counts[String(mnemonic), default: 0] += 1 }
            if instruction.contains("%zmm") { counts["<zmm>", default: 0] += 1 }
            if instruction.contains("%ymm") { counts["<ymm>", default: 0] += 1 }
        }
        return counts
    }
}
