import Foundation

/// `Servers/fake_trusted_publishing.py`: a local fake of PyPI's Trusted Publishing endpoints
/// (`/_/oidc/audience`, `/_/oidc/mint-token`), an upload API that accepts only the tokens it
/// minted (scoped to a publisher's projects), and GitHub Actions' OIDC token endpoint, written to
/// their documented behaviour (neither service can be reached from tests). Stop it with ``stop()``.
public final class FakeTrustedPublishing: Sendable {
    /// One trusted publisher registered on the fake index.
    public struct Publisher: Sendable, Encodable {
        public var repository: String
        public var workflow: String
        public var projects: [String]
        public init(repository: String, workflow: String = "release.yml", projects: [String]) {
            self.repository = repository; self.workflow = workflow; self.projects = projects
        }
    }

    /// What the fake saw (test only).
    public struct State: Decodable, Sendable {
        public struct Minted: Decodable, Sendable { public let projects: [String]; public let repository: String }
        public struct Upload: Decodable, Sendable { public let project: String; public let filename: String; public let sha256: String }
        public let minted: [Minted]
        public let uploads: [Upload]
        public let oidc_requests: Int
        public let mint_requests: Int
    }

    /// `http://127.0.0.1:PORT` (`https://` with a certificate).
    public let baseURL: String
    /// The bearer token the Actions endpoint accepts.
    public let requestToken: String
    private let process: ServerProcess

    /// The upload URL.
    public var uploadURL: String { baseURL + "/legacy/" }
    /// The simple API.
    public var simpleURL: String { baseURL + "/simple/" }
    /// The value of `ACTIONS_ID_TOKEN_REQUEST_URL` for a workflow run against this fake.
    public var actionsRequestURL: String { baseURL + "/actions/token?api-version=2.0" }
    /// The GitHub Actions variables that enable Trusted Publishing.
    public var actionsEnvironment: [String: String] {
        ["ACTIONS_ID_TOKEN_REQUEST_URL": actionsRequestURL, "ACTIONS_ID_TOKEN_REQUEST_TOKEN": requestToken]
    }

    /// Starts the fake. The workflow run it issues OIDC tokens for is `repository`'s `workflow`;
    /// `publishers` are the trusted publishers the index knows. With `tls`, it serves HTTPS with
    /// that certificate and key.
    public init(repository: String, workflow: String = "release.yml", publishers: [Publisher], directory: URL,
                tls: (certificate: String, key: String)? = nil) throws {
        let tag = UUID().uuidString.prefix(6)
        let config = directory.appendingPathComponent("tp-\(tag).json")
        struct Config: Encodable { let repository: String; let workflow: String; let audience: String; let publishers: [Publisher] }
        try JSONEncoder().encode(Config(repository: repository, workflow: workflow, audience: "pypi", publishers: publishers)).write(to: config)
        let store = directory.appendingPathComponent("tp-\(tag)-store")
        try FileManager.default.createDirectory(at: store, withIntermediateDirectories: true)
        let portFile = directory.appendingPathComponent("tp-\(tag).port")
        requestToken = "actions-request-" + UUID().uuidString
        var env = ProcessInfo.processInfo.environment
        env["FAKE_ACTIONS_REQUEST_TOKEN"] = requestToken
        var args = [TestServers.script("fake_trusted_publishing.py"), portFile.path, config.path, store.path]
        if let tls { args += [tls.certificate, tls.key] }
        process = try ServerProcess(TestEnvironment.python, args, logFile: directory.appendingPathComponent("tp-\(tag).log"), environment: env)
        let port = try process.waitForPortFile(portFile)
        baseURL = (tls == nil ? "http" : "https") + "://127.0.0.1:\(port)"
    }

    /// What the fake saw.
    public func state() throws -> State {
        let r = try TestProcess.run(TestEnvironment.python, ["-c", """
            import ssl, sys, urllib.request
            ctx = ssl._create_unverified_context()
            sys.stdout.write(urllib.request.urlopen(sys.argv[1], context=ctx).read().decode())
            """, baseURL + "/_state"])
        guard r.status == 0 else { throw HarnessError("cannot read the fake's state: \(r.stderr)") }
        return try JSONDecoder().decode(State.self, from: Data(r.stdout.utf8))
    }

    /// Stops the server by PID.
    public func stop() { process.stop() }
}

/// A certificate authority and a server certificate for `127.0.0.1` signed by it (openssl), for
/// testing an index behind a private CA.
public struct TestCertificates: Sendable {
    /// The CA's certificate (PEM), what `--cert` names.
    public let caCertificate: String
    /// The server's certificate and key (PEM).
    public let serverCertificate: String
    public let serverKey: String

    /// Creates them in `directory`.
    public static func make(in directory: URL) throws -> TestCertificates {
        let d = directory.path
        let steps: [[String]] = [
            ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
             "-subj", "/CN=wheelfarm test CA", "-keyout", "\(d)/ca.key", "-out", "\(d)/ca.pem"],
            ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=127.0.0.1",
             "-keyout", "\(d)/server.key", "-out", "\(d)/server.csr"],
        ]
        for args in steps {
            let r = try TestProcess.run("/usr/bin/openssl", args)
            guard r.status == 0 else { throw HarnessError("openssl \(args[0]) failed: \(r.stderr)") }
        }
        try "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n".write(toFile: "\(d)/ext.cnf", atomically: true, encoding: .utf8)
        let sign = try TestProcess.run("/usr/bin/openssl", ["x509", "-req", "-in", "\(d)/server.csr", "-CA", "\(d)/ca.pem", "-CAkey", "\(d)/ca.key",
                                                            "-CAcreateserial", "-days", "2", "-extfile", "\(d)/ext.cnf", "-out", "\(d)/server.pem"])
        guard sign.status == 0 else { throw HarnessError("openssl x509 -req failed: \(sign.stderr)") }
        return TestCertificates(caCertificate: "\(d)/ca.pem", serverCertificate: "\(d)/server.pem", serverKey: "\(d)/server.key")
    }
}
