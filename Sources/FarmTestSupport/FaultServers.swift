import Foundation

/// The Python test servers shipped next to this module (`Servers/`).
enum TestServers {
    static func script(_ name: String) -> String {
        TestEnvironment.repositoryRoot.appendingPathComponent("Sources/FarmTestSupport/Servers/\(name)").path
    }
}

/// `Servers/fault_proxy.py` in front of an HTTP server on loopback: answers or breaks requests
/// following a plan (`500`, `drop-mid`, `drop-after`, `hold`, `GET:404`, …; see the script's header), then
/// passes everything through. Stop it with ``stop()`` (by PID).
public final class FaultProxy: Sendable {
    /// The proxy's base URL.
    public let url: String
    /// The file the proxy appends each planned step it took to.
    public let events: URL
    private let process: ServerProcess

    /// Starts the proxy for `127.0.0.1:upstreamPort` with `plan`; its files go in `directory`.
    public init(upstreamPort: Int, plan: [String], directory: URL) throws {
        let tag = UUID().uuidString.prefix(6)
        let portFile = directory.appendingPathComponent("proxy-\(tag).port")
        events = directory.appendingPathComponent("proxy-\(tag).events")
        _ = FileManager.default.createFile(atPath: events.path, contents: nil)
        process = try ServerProcess(TestEnvironment.python, [TestServers.script("fault_proxy.py"), String(upstreamPort), portFile.path,
                                                             events.path, plan.joined(separator: ",")],
                                    logFile: directory.appendingPathComponent("proxy-\(tag).log"))
        url = "http://127.0.0.1:\(try process.waitForPortFile(portFile))/"
    }

    /// The planned steps taken so far, `METHOD:STEP` each.
    public var steps: [String] {
        ((try? String(contentsOf: events, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    /// Lets requests a `hold` step keeps go on to the upstream.
    public func letHeldRequestsGo() {
        _ = FileManager.default.createFile(atPath: events.path + ".go", contents: nil)
    }

    /// Stops the proxy by PID.
    public func stop() { process.stop() }
}

/// `Servers/fake_github.py`: a local fake of the GitHub REST API's release endpoints, written to
/// the documented behaviour (GitHub's API cannot be reached from tests). Stop it with ``stop()``.
public final class FakeGitHub: Sendable {
    /// The API base URL (`http://127.0.0.1:PORT`).
    public let apiURL: String
    /// The file the server appends `METHOD PATH` to for every request.
    public let events: URL
    /// The token the server accepts.
    public let token: String
    private let process: ServerProcess

    /// Starts the server accepting `token`; `uploadPlan` breaks asset uploads (`drop-partial`,
    /// `502`) one step per upload. Its files go in `directory`.
    public init(token: String, uploadPlan: [String] = [], directory: URL) throws {
        self.token = token
        let tag = UUID().uuidString.prefix(6)
        let portFile = directory.appendingPathComponent("github-\(tag).port")
        events = directory.appendingPathComponent("github-\(tag).events")
        _ = FileManager.default.createFile(atPath: events.path, contents: nil)
        var env = ProcessInfo.processInfo.environment
        env["FAKE_GITHUB_TOKEN"] = token
        process = try ServerProcess(TestEnvironment.python, [TestServers.script("fake_github.py"), portFile.path, events.path,
                                                             uploadPlan.joined(separator: ",")],
                                    logFile: directory.appendingPathComponent("github-\(tag).log"), environment: env)
        apiURL = "http://127.0.0.1:\(try process.waitForPortFile(portFile))"
    }

    /// One release as the server holds it.
    public struct StateRelease: Decodable, Sendable {
        /// One asset, with the SHA-256 of the bytes stored.
        public struct Asset: Decodable, Sendable {
            public let name: String
            public let size: Int64
            public let state: String
            public let sha256: String
        }
        public let id: Int
        public let tag_name: String
        public let draft: Bool
        public let assets: [Asset]
    }

    /// The server's releases, with asset digests.
    public func state() throws -> [StateRelease] {
        let r = try TestProcess.run(TestEnvironment.python, ["-c", "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1]).read().decode())",
                                                             apiURL + "/_state"])
        guard r.status == 0 else { throw HarnessError("cannot read fake GitHub state: \(r.stderr)") }
        return try JSONDecoder().decode([StateRelease].self, from: Data(r.stdout.utf8))
    }

    /// Requests the server saw, `METHOD PATH` per line.
    public var requests: [String] {
        ((try? String(contentsOf: events, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    /// Stops the server by PID.
    public func stop() { process.stop() }
}
