import Foundation

/// A real pypiserver from the test venv, on a free loopback port, with htpasswd authentication
/// for uploads. Stop it with ``stop()`` (by PID) in a `defer`.
public final class PyPIServerHarness: Sendable {
    /// The base URL (`http://127.0.0.1:PORT/`), which is also the upload URL.
    public let url: String
    /// The directory where the server stores packages.
    public let packagesDirectory: URL
    /// The upload username.
    public let username: String
    /// The upload password.
    public let password: String
    private let server: ServerProcess
    private let workDirectory: URL

    /// The environment that gives `wheelfarm` (or twine) the upload credentials.
    public var credentialsEnvironment: [String: String] { ["TWINE_USERNAME": username, "TWINE_PASSWORD": password] }

    /// Starts the server; `username`/`password` are written to an htpasswd file with passlib.
    public init(username: String = "uploader", password: String = "s3cret-\(UUID().uuidString.prefix(8))") throws {
        workDirectory = try TestEnvironment.makeTemporaryDirectory("pypiserver")
        packagesDirectory = workDirectory.appendingPathComponent("packages")
        try FileManager.default.createDirectory(at: packagesDirectory, withIntermediateDirectories: true)
        self.username = username; self.password = password
        let htpasswd = workDirectory.appendingPathComponent("htpasswd")
        let made = try TestProcess.run(TestEnvironment.python, [
            "-c", "import sys; from passlib.apache import HtpasswdFile; h = HtpasswdFile(sys.argv[1], new=True); "
                + "h.set_password(sys.argv[2], sys.stdin.read()); h.save()",
            htpasswd.path, username,
        ], stdin: Data(password.utf8))
        guard made.status == 0 else { throw HarnessError("cannot write htpasswd: \(made.stderr)") }
        let port = try LoopbackPort.free()
        url = "http://127.0.0.1:\(port)/"
        server = try ServerProcess(TestEnvironment.venvTool("pypi-server"), [
            "run", "--host", "127.0.0.1", "--port", String(port), "--authenticate", "update",
            "--passwords", htpasswd.path, "--hash-algo", "sha256", "--server", "wsgiref",
            packagesDirectory.path,
        ], logFile: workDirectory.appendingPathComponent("server.log"))
        try server.waitForPort(port: port)
    }

    /// The simple API base URL.
    public var simpleURL: String { url + "simple/" }

    /// The server's process id.
    public var pid: Int32 { server.pid }

    /// The server's log.
    public var log: String { server.log }

    /// The names of the files the server stores.
    public func storedFiles() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: packagesDirectory.path).sorted()
    }

    /// Stops the server by PID and removes its directory.
    public func stop() {
        server.stop()
        try? FileManager.default.removeItem(at: workDirectory)
    }

    deinit { server.stop() }
}
