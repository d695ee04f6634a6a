#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization

/// `Servers/hostile_index.py`: an index or GitHub API that misbehaves on purpose (`trickle`,
/// `echo`, `elsewhere`, `sink`; see the script's header). Stop it with ``stop()`` (by PID).
public final class HostileServer: Sendable {
    /// The base URL (`http://127.0.0.1:PORT`, no trailing slash).
    public let url: String
    /// The file the server appends `METHOD PATH AUTH` to for every request.
    public let events: URL
    private let process: ServerProcess

    /// Starts the server in `mode`; `other` is the origin `elsewhere` points at.
    public init(_ mode: String, other: String? = nil, directory: URL) throws {
        let tag = UUID().uuidString.prefix(6)
        let portFile = directory.appendingPathComponent("hostile-\(tag).port")
        events = directory.appendingPathComponent("hostile-\(tag).events")
        _ = FileManager.default.createFile(atPath: events.path, contents: nil)
        process = try ServerProcess(TestEnvironment.python, [TestServers.script("hostile_index.py"), mode, portFile.path, events.path]
                                    + (other.map { [$0] } ?? []),
                                    logFile: directory.appendingPathComponent("hostile-\(tag).log"))
        url = "http://127.0.0.1:\(try process.waitForPortFile(portFile))"
    }

    /// The requests seen so far, `METHOD PATH AUTH` each (`AUTH` is `auth` or `-`).
    public var requests: [String] {
        ((try? String(contentsOf: events, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    /// Stops the server by PID.
    public func stop() { process.stop() }
}

/// A run of the built binary measured from outside: exit status, output, the peak resident memory
/// of the process (and of the children it waited for: `wait4`'s `ru_maxrss`, an upper bound of
/// its own), and the environment of every descendant seen while it ran.
public struct MeasuredRun: Sendable {
    public let status: Int32
    public let stdout: String
    public let stderr: String
    /// Peak resident set size in bytes (`ru_maxrss` of `wait4`).
    public let peakResidentBytes: Int64
    /// `/proc/PID/environ` of each descendant process seen (NUL-separated entries as lines).
    public let childEnvironments: [String]
    /// How many distinct descendants were seen.
    public let childrenSeen: Int

    /// Runs the built `wheelfarm` with `arguments`; with `watchChildren`, samples `/proc` every
    /// 20 ms for its descendants and reads their environments.
    public static func wheelfarm(_ arguments: [String], environment: [String: String] = ProcessInfo.processInfo.environment,
                                 watchChildren: Bool = false) async throws -> MeasuredRun {
        try await withCheckedThrowingContinuation { continuation in
            Thread {
                continuation.resume(with: Result {
                    try run(TestProcess.wheelfarmBinary, arguments, environment: environment, watchChildren: watchChildren,
                            currentDirectory: TestEnvironment.repositoryRoot.path)
                })
            }.start()
        }
    }

    /// Runs `executable` to completion on the calling thread (see ``wheelfarm(_:environment:watchChildren:)``).
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String], watchChildren: Bool,
                           currentDirectory: String) throws -> MeasuredRun {
        let scratch = try TestEnvironment.makeTemporaryDirectory("wf-measured")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let outPath = scratch.appendingPathComponent("stdout").path, errPath = scratch.appendingPathComponent("stderr").path
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        // `sh` changes directory and execs the program in place: same PID, so wait4 measures it.
        let argv = ["/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", currentDirectory, executable] + arguments
        var cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        var cEnv: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { cEnv.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, "/bin/sh", &actions, nil, &cArgs, &cEnv)
        guard spawned == 0 else { throw HarnessError("cannot start \(executable): errno \(spawned)") }

        let seen = Mutex<[Int32: Set<String>]>([:])
        let done = Atomic<Bool>(false)
        var sampler: Thread?
        if watchChildren {
            let root = pid
            let thread = Thread {
                while !done.load(ordering: .relaxed) {
                    for child in descendants(of: root) {
                        guard let environ = FileManager.default.contents(atPath: "/proc/\(child)/environ") else { continue }
                        let text = String(decoding: environ, as: UTF8.self).replacingOccurrences(of: "\0", with: "\n")
                        seen.withLock { _ = $0[child, default: []].insert(text) }
                    }
                    usleep(20_000)
                }
            }
            thread.start()
            sampler = thread
        }
        var status: Int32 = 0
        var usage = rusage()
        while wait4(pid, &status, 0, &usage) < 0 && errno == EINTR {}
        done.store(true, ordering: .relaxed)
        _ = sampler
        usleep(50_000)
        let exit = (status & 0x7f) == 0 ? (status >> 8) & 0xff : -(status & 0x7f)
        let environments = seen.withLock { $0.values.flatMap { $0 } }
        return MeasuredRun(status: exit,
                           stdout: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
                           stderr: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "",
                           peakResidentBytes: Int64(usage.ru_maxrss) * 1024, childEnvironments: environments,
                           childrenSeen: seen.withLock { $0.count })
    }

    /// The PIDs of every process below `root` (from `/proc/*/stat`'s parent field).
    static func descendants(of root: Int32) -> [Int32] {
        var parent: [Int32: Int32] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(name), let stat = try? String(contentsOfFile: "/proc/\(name)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 1, let ppid = Int32(fields[1]) { parent[pid] = ppid }
        }
        return parent.keys.filter { pid in
            var p = parent[pid]
            var hops = 0
            while let q = p, hops < 64 {
                if q == root { return true }
                p = parent[q]; hops += 1
            }
            return false
        }
    }
}

/// An `agents/` directory whose `build.sh` misbehaves on a job's first attempt (its job id ends in
/// `-a1`) and, on later attempts, "builds" honestly by copying a real wheel built earlier (see
/// ``SampleWheels``) and reporting it as the protocol says. `probe.sh` and `cancel.sh` can be
/// replaced too. Point `WHEELFARM_AGENTS_DIR` at ``directory``.
///
/// The first-attempt script runs in the agent's own session (as `build.sh` does) with `$job`,
/// `$jobdir`, `$work`, `$version`, `$python`, `$package`, `$wheel_name` (the job's wheel), `$wheels`
/// (the real wheels' directory), `emit EVENT key value…` and `honest` (copy and report the real wheel) defined.
public struct HostileAgent: Sendable {
    /// The agents directory.
    public let directory: URL

    /// Makes the directory in `parent`.
    public static func make(in parent: URL, wheels: URL, firstAttempt: String, probe: String? = nil,
                            cancelAfter: String? = nil) throws -> HostileAgent {
        let dir = parent.appendingPathComponent("agents-\(UUID().uuidString.prefix(6))")
        let copy = try TestProcess.run("cp", ["-R", TestEnvironment.repositoryRoot.appendingPathComponent("agents").path, dir.path])
        guard copy.status == 0 else { throw HarnessError("cannot copy agents: \(copy.stderr)") }
        let build = """
            #!/usr/bin/env bash
            # A hostile test agent (FarmTestSupport's HostileAgent): misbehaves on attempt 1.
            set -uo pipefail
            here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
            . "$here/lib.sh"
            if [ -z "${WF_SESSION:-}" ]; then export WF_SESSION=1; exec setsid -w "$BASH" "$0" "$@"; fi
            work='' job='' version='' python='' package=''
            while [ $# -gt 0 ]; do
              case $1 in
                --work-dir) work=$2; shift 2 ;;
                --job-id) job=$2; shift 2 ;;
                --version) version=$2; shift 2 ;;
                --python) python=$2; shift 2 ;;
                --package) package=$2; shift 2 ;;
                --*=*|--dry-run) shift ;;
                --*) shift 2 ;;
                *) shift ;;
              esac
            done
            wheels='\(wheels.path)'
            jobdir=$work/jobs/$job
            rm -rf "$jobdir"; mkdir -p "$jobdir/dist"; echo $$ > "$jobdir/pid"
            emit() { wf_json_obj event "$1" job "$job" "${@:2}"; echo; }
            py=${python/./}
            # The real wheel's name: its platform tag is what auditwheel gave the build.
            wheel_name=$(cd "$wheels" && ls -1 "${package//-/_}-$version-cp$py-cp$py-"*.whl 2>/dev/null | head -1)
            honest() {
              cp "$wheels/$wheel_name" "$jobdir/dist/$wheel_name"
              emit artifact file "$wheel_name" path "$jobdir/dist/$wheel_name" size:raw "$(stat -c %s "$jobdir/dist/$wheel_name")" \\
                sha256 "$(sha256sum "$jobdir/dist/$wheel_name" | cut -d' ' -f1)"
              emit finished status succeeded exit:raw 0 phase report message "" log "$jobdir/build.log"
              rm -f "$jobdir/pid"
              exit 0
            }
            emit started protocol:raw 1 pid:raw $$ job_dir "$jobdir" log "$jobdir/build.log"
            emit phase phase compile log_line:raw 0
            case $job in
              *-a1|*-a1-*)
            \(firstAttempt)
                ;;
            esac
            honest

            """
        try write(build, to: dir.appendingPathComponent("build.sh"))
        if let probe { try write("#!/usr/bin/env bash\n\(probe)\n", to: dir.appendingPathComponent("probe.sh")) }
        if let cancelAfter {
            try FileManager.default.moveItem(at: dir.appendingPathComponent("cancel.sh"), to: dir.appendingPathComponent("cancel.real.sh"))
            try write("""
                #!/usr/bin/env bash
                here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
                bash "$here/cancel.real.sh" "$@"
                \(cancelAfter)

                """, to: dir.appendingPathComponent("cancel.sh"))
        }
        return HostileAgent(directory: dir)
    }

    private static func write(_ text: String, to url: URL) throws {
        try text.write(to: url, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: url.path)
    }
}

/// Real `wfsample-cpu` wheels (cp311, amd64, the AVX2 level), built once per test process by a
/// real `wheelfarm release` on this machine, for agents that "build" by copying them.
public actor SampleWheels {
    /// The process-wide cache.
    public static let shared = SampleWheels()
    private var built: [String: URL] = [:]
    /// Where the wheels are built; removed when the test process exits.
    private static let root = FileManager.default.temporaryDirectory.appendingPathComponent("wf-sample-wheels-\(getpid())")

    private init() {
        atexit { try? FileManager.default.removeItem(at: SampleWheels.root) }
    }

    /// The directory holding the wheels of `versions` (built on first use).
    public func directory(versions: [String] = ["1.0.0", "1.0.1"]) async throws -> URL {
        let key = versions.joined(separator: ",")
        if let dir = built[key] { return dir }
        let scratch = Self.root.appendingPathComponent(UUID().uuidString.prefix(8).lowercased())
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        let inventory = try LocalInventory.write(in: scratch, hosts: [("builder", 1.0)])
        let dist = scratch.appendingPathComponent("dist")
        var env = ProcessInfo.processInfo.environment
        env["CI"] = "true"
        let r = try await TestProcess.wheelfarmInBackground(["release", "--recipe", "sample", "--variant", "noavx512", "--platform", "linux/amd64",
                                                              "--versions", key, "--inventory", inventory.path, "--dist-dir", dist.path,
                                                              "--skip-github"], environment: env)
        guard r.status == 0 else { throw HarnessError("building the sample wheels failed:\n\(r.stdout)\n\(r.stderr)") }
        built[key] = dist
        Self.directories.withLock { $0.append(dist) }
        return dist
    }

    private static let directories = Mutex<[URL]>([])

    /// The file name of the real `wfsample-cpu` wheel of `version` built so far (its platform tag
    /// is the one auditwheel gave it on this machine), or a `manylinux_2_28` name when none is.
    public static func fileName(version: String) -> String {
        let prefix = "wfsample_cpu-\(version)-cp311-cp311-"
        for dir in directories.withLock({ $0 }) {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
            if let name = names.sorted().first(where: { $0.hasPrefix(prefix) && $0.hasSuffix(".whl") }) { return name }
        }
        return prefix + "manylinux_2_28_x86_64.whl"
    }
}

/// Inventories of `connection: local` hosts, each with a work directory of its own.
public enum LocalInventory {
    /// Writes `inventory.yaml` in `directory` for hosts (name, speed); their work directories are
    /// `directory/work-NAME`.
    public static func write(in directory: URL, hosts: [(name: String, speed: Double)]) throws -> URL {
        var yaml = "hosts:\n"
        for (name, speed) in hosts {
            yaml += "  \(name):\n    connection: local\n    capabilities: [auto]\n    slots: 1\n    speed: \(speed)\n"
            yaml += "    work_dir: \(directory.appendingPathComponent("work-\(name)").path)\n"
        }
        let url = directory.appendingPathComponent("inventory.yaml")
        try yaml.write(to: url, atomically: true, encoding: .utf8)
        return url
    }
}

/// The forms a credential takes in careless hands, for leak checks: raw, its first 8 characters,
/// base64 (alone and as HTTP Basic `username:secret`), and JSON-escaped (with and without `\/`).
public enum SecretForms {
    /// Every form of `secret` (and of `username:secret` when a username is given).
    public static func of(_ secret: String, username: String? = nil) -> [String] {
        var forms = [secret, String(secret.prefix(8)), Data(secret.utf8).base64EncodedString()]
        if let username { forms.append(Data("\(username):\(secret)".utf8).base64EncodedString()) }
        if let json = try? JSONEncoder().encode(secret), let text = String(data: json, encoding: .utf8) {
            let inner = String(text.dropFirst().dropLast())
            forms += [inner, inner.replacingOccurrences(of: "\\/", with: "/")]
        }
        return Array(Set(forms))
    }

    /// The forms found in `text` (empty when nothing leaked).
    public static func leaks(_ forms: [String], in text: String) -> [String] { forms.filter { text.contains($0) } }

    /// Every file under `directory` as text (journals and reports included), for leak checks.
    public static func filesText(_ directory: URL) -> String {
        var out = ""
        let files = FileManager.default.enumerator(at: directory, includingPropertiesForKeys: nil)
        while let url = files?.nextObject() as? URL {
            if let data = try? Data(contentsOf: url) { out += String(decoding: data, as: UTF8.self) + "\n" }
        }
        return out
    }
}
