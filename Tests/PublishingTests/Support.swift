import FarmCore
import FarmTestSupport
import Foundation
import Logging
@testable import Publishing

/// Test-only stand-in for the `Wheels` verifier: reads METADATA with the venv's Python.
///
/// The real verifier (module `Wheels`) replaces this; it exists so publishing can be tested with
/// real wheels before that module lands.
struct PythonMetadataVerifier: PublicationVerifier {
    func verifiedForPublishing(wheelAt path: String) async throws -> PublishableWheel {
        let script = """
        import email.parser, json, sys, zipfile
        z = zipfile.ZipFile(sys.argv[1])
        name = next(n for n in z.namelist() if n.endswith('.dist-info/METADATA'))
        msg = email.parser.BytesParser().parsebytes(z.read(name))
        fields = [[k, str(v)] for k, v in msg.items()]
        body = msg.get_payload()
        if body:
            fields.append(['Description', body])
        print(json.dumps(fields))
        """
        let result = try TestProcess.run(TestEnvironment.python, ["-c", script, path])
        guard result.status == 0 else { throw HarnessError("cannot read METADATA of \(path): \(result.stderr)") }
        let pairs = try JSONDecoder().decode([[String]].self, from: Data(result.stdout.utf8))
        let fields = pairs.map { MetadataField($0[0], $0[1]) }
        let (digest, size) = try StreamingDigest.file(at: path)
        let parts = URL(fileURLWithPath: path).lastPathComponent.dropLast(4).split(separator: "-")
        return PublishableWheel(
            path: path, name: fields.first { $0.name == "Name" }!.value, version: fields.first { $0.name == "Version" }!.value,
            metadata: fields, pythonTag: String(parts[parts.count - 3]),
            stamp: VerificationStamp(verifier: "test METADATA reader", sha256: digest, size: size))
    }
}

/// Collects log records in memory so tests can search them.
final class LogCapture: @unchecked Sendable {  // all state behind `lock`
    private let lock = NSLock()
    private var lines: [String] = []

    func append(_ line: String) { lock.withLock { lines.append(line) } }
    var text: String { lock.withLock { lines.joined(separator: "\n") } }

    /// A logger at trace level writing here.
    func logger() -> Logger {
        var logger = Logger(label: "test") { _ in Handler(capture: self) }
        logger.logLevel = .trace
        return logger
    }

    struct Handler: LogHandler {
        let capture: LogCapture
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] } set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            let all = metadata.merging(event.metadata ?? [:]) { $1 }
            capture.append("\(event.level) \(event.message) \(all)")
        }
    }
}

/// A temporary directory removed at the end of a test.
final class Scratch {
    let url: URL
    init(_ label: String = "publishing") throws { url = try TestEnvironment.makeTemporaryDirectory(label) }
    deinit { try? FileManager.default.removeItem(at: url) }
    func path(_ name: String) -> URL { url.appendingPathComponent(name) }
}

extension FaultProxy {
    convenience init(upstreamPort: Int, plan: [String], scratch: Scratch) throws {
        try self.init(upstreamPort: upstreamPort, plan: plan, directory: scratch.url)
    }
}

extension FakeGitHub {
    convenience init(token: String, uploadPlan: [String] = [], scratch: Scratch) throws {
        try self.init(token: token, uploadPlan: uploadPlan, directory: scratch.url)
    }
}

/// Builds wheels and turns them into publishable ones with the test verifier.
///
/// Each distinct wheel is built with pip once per test run and copied into `dir`, so tests may
/// modify their copy.
func publishableWheel(_ name: String, _ version: String, in dir: URL, payloadBytes: Int = 0, marker: String = "") async throws -> PublishableWheel {
    let built = try WheelCache.shared.wheel(name: name, version: version, payloadBytes: payloadBytes, marker: marker)
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let copy = dir.appendingPathComponent(built.lastPathComponent)
    try? FileManager.default.removeItem(at: copy)
    try FileManager.default.copyItem(at: built, to: copy)
    return try await PythonMetadataVerifier().verifiedForPublishing(wheelAt: copy.path)
}

/// Wheels built by pip during this test run, by recipe.
final class WheelCache: @unchecked Sendable {  // `built` is only touched under `lock`
    static let shared = WheelCache()
    private let lock = NSLock()
    private var built: [String: URL] = [:]
    private static let root = FileManager.default.temporaryDirectory.appendingPathComponent("wheelfarm-publishing-wheels-\(getpid())")
    private var root: URL { Self.root }

    private init() {
        // The cache is removed when the test process exits.
        atexit { try? FileManager.default.removeItem(at: WheelCache.root) }
    }

    func wheel(name: String, version: String, payloadBytes: Int, marker: String) throws -> URL {
        try lock.withLock {
            let key = "\(name)|\(version)|\(payloadBytes)|\(marker)"
            if let url = built[key], FileManager.default.fileExists(atPath: url.path) { return url }
            let url = try PipWheelBuilder.build(name: name, version: version, into: root.appendingPathComponent(UUID().uuidString),
                                                payloadBytes: payloadBytes, marker: marker)
            built[key] = url
            return url
        }
    }
}

/// Runs `body` with a transport, shutting it down afterwards even when `body` throws.
func withTransport<T>(userAgent: String = "wheelfarm/0.1", _ body: (HTTPTransport) async throws -> T) async throws -> T {
    let transport = HTTPTransport(userAgent: userAgent)
    do {
        let result = try await body(transport)
        try await transport.shutdown()
        return result
    } catch {
        try? await transport.shutdown()
        throw error
    }
}

/// Fast retries for tests.
let quickRetry = RetryPolicy(maxAttempts: 4, initialDelay: .milliseconds(50), maxDelay: .milliseconds(200))
