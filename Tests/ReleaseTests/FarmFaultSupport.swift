import FarmTestSupport
import Foundation

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

    /// Waits (without holding a shared thread) until the output contains `text`.
    /// (A deadline to fail by, not a timing assertion: a build host first sets up its build venv
    /// from the index, which under the whole suite's load has taken minutes.)
    func waitFor(_ text: String, timeout: TimeInterval = 900) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        while !output.contains(text) {
            guard process.isRunning else {
                if output.contains(text) { return }
                throw HarnessError("wheelfarm release exited before printing '\(text)'; output:\n\(output)")
            }
            guard Date() < deadline else { throw HarnessError("'\(text)' did not appear within \(Int(timeout)) s; output:\n\(output)") }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// SIGKILL: the coordinator dies at once, mid-step, without cleaning up.
    func kill() {
        process.send(SIGKILL)
        _ = process.waitForExit(timeout: 30)
    }

    /// The exit status once it ends (nil when it does not end within `timeout`), waiting without
    /// holding a shared thread.
    func exitStatus(timeout: TimeInterval = 600) async -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { try? await Task.sleep(for: .milliseconds(100)) }
        return process.waitForExit(timeout: 0)
    }
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
