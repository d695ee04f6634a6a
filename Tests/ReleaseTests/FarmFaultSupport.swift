import FarmTestSupport
import Foundation

/// Programs a simulated build host finds first on its `PATH`: real tools with a fault or a delay
/// in front, so the agents and the coordinator run unchanged while the host misbehaves.
enum HostTools {
    /// A directory for one host with a `gcc` and `cc` that wait `compileSeconds` before each
    /// compilation (`-c`) and then run the real compiler: a slow build host, so a test can act
    /// while a build is under way. With `corruptFirstWheel`, its `sha256sum` flips bytes in the
    /// middle of the first wheel it is asked to hash, before hashing it: a wheel damaged on the
    /// build host after the build wrote it (the digest then matches the damage, so only central
    /// verification can catch it).
    static func make(in directory: URL, compileSeconds: Double = 0, corruptFirstWheel: Bool = false) throws -> URL {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let compiler = """
            #!/bin/sh
            case " $* " in *" -c "*) sleep \(compileSeconds) ;; esac
            exec /usr/bin/gcc "$@"

            """
        try write(compiler, to: directory.appendingPathComponent("gcc"))
        try write(compiler, to: directory.appendingPathComponent("cc"))
        if corruptFirstWheel {
            try write("""
                #!/bin/sh
                mark="$(dirname "$0")/corrupted-once"
                for f in "$@"; do
                  case $f in
                    *.whl)
                      if [ ! -e "$mark" ]; then
                        : > "$mark"
                        size=$(stat -c %s "$f")
                        printf 'CORRUPTCORRUPT' | dd of="$f" bs=1 seek=$((size / 3)) conv=notrunc status=none
                      fi ;;
                  esac
                done
                exec /usr/bin/sha256sum "$@"

                """, to: directory.appendingPathComponent("sha256sum"))
        }
        return directory
    }

    /// The environment a simulated host needs to use the tools in `directory`.
    static func environment(_ directory: URL) -> [String: String] {
        ["PATH": "\(directory.path):/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    }

    private static func write(_ text: String, to url: URL) throws {
        try text.write(to: url, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: url.path)
    }
}

/// An amd64 build host at the AVX2 level (it can build only `wfsample-cpu`), with `tools` first on
/// its PATH.
func plainHost(_ name: String, tools: URL) -> SimulatedHost {
    SimulatedHost(name: name, cpuFlags: SampleFarm.base, environment: HostTools.environment(tools))
}

/// A `wheelfarm release` running in the background (so a test can act on the farm, the
/// inventory or the coordinator while it runs), with plain timestamped progress lines.
final class BackgroundRelease {
    let process: ServerProcess
    let logFile: URL

    init(_ arguments: [String], in directory: URL, environment: [String: String] = [:]) throws {
        logFile = directory.appendingPathComponent("release-\(UUID().uuidString.prefix(6)).log")
        var env = ProcessInfo.processInfo.environment
        env["CI"] = "true"
        env.merge(environment) { $1 }
        process = try ServerProcess(TestProcess.wheelfarmBinary, ["release"] + arguments, logFile: logFile, environment: env,
                                    currentDirectory: TestEnvironment.repositoryRoot)
    }

    var output: String { process.log }

    func waitFor(_ text: String, timeout: TimeInterval = 180) throws { try process.waitForLog(text, timeout: timeout) }

    /// SIGKILL: the coordinator dies at once, mid-step, without cleaning up.
    func kill() {
        process.send(SIGKILL)
        _ = process.waitForExit(timeout: 30)
    }

    /// The exit status once it ends (nil when it does not end within `timeout`).
    func exitStatus(timeout: TimeInterval = 600) -> Int32? { process.waitForExit(timeout: timeout) }
}

/// What a release's JSON report says (the newest report in `<dist>/reports`).
struct ReleaseReportFile {
    struct Attempt { let host: String; let outcome: String; let detail: String? }
    struct Job { let id: String; let package: String; let version: String; let state: String; let wheel: String?; let sha256: String?; let attempts: [Attempt]; let publications: [String] }
    let jobs: [Job]

    init(dist: URL) throws {
        let dir = dist.appendingPathComponent("reports")
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".json") }.sorted()
        guard let newest = names.last else { throw HarnessError("no JSON report in \(dir.path)") }
        let doc = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent(newest))) as? [String: Any] ?? [:]
        jobs = (doc["jobs"] as? [[String: Any]] ?? []).map { j in
            Job(id: j["id"] as? String ?? "", package: j["package"] as? String ?? "", version: j["version"] as? String ?? "",
                state: j["state"] as? String ?? "", wheel: j["wheel"] as? String, sha256: j["sha256"] as? String,
                attempts: (j["attempts"] as? [[String: Any]] ?? []).map {
                    Attempt(host: $0["host"] as? String ?? "", outcome: $0["outcome"] as? String ?? "", detail: $0["detail"] as? String)
                },
                publications: j["publications"] as? [String] ?? [])
        }
    }
}

/// The SHA-256 of a file, hex.
func sha256Hex(_ url: URL) throws -> String {
    let r = try TestProcess.run("/usr/bin/sha256sum", [url.path])
    guard r.status == 0, let hex = r.stdout.split(separator: " ").first else { throw HarnessError("sha256sum failed: \(r.stderr)") }
    return String(hex)
}

/// Lines of `text` that contain `needle`.
func lines(_ text: String, containing needle: String) -> [String] {
    text.split(separator: "\n").map(String.init).filter { $0.contains(needle) }
}
