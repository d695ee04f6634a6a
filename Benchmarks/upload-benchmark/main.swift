// Upload benchmark: wheelfarm's upload-API client vs `twine upload`, same wheel, same server
// (a fresh pypiserver on loopback for each tool), measured in the same run.
//
//   swift run -c release upload-benchmark [SIZE_MB]        (default 250)
//
// Each tool runs as its own process under GNU time, which reports wall time and peak RSS.
// The password reaches wheelfarm's child on stdin, twine through TWINE_PASSWORD (its usual way).
import FarmCore
import FarmTestSupport
import Foundation
import Logging
import Publishing

@main
struct UploadBenchmark {
    static func main() async throws {
        let args = CommandLine.arguments
        if args.count == 5, args[1] == "upload" {
            try await uploadOne(url: args[2], username: args[3], wheelPath: args[4])
            return
        }
        let sizeMB = args.count > 1 ? Int(args[1]) ?? 250 : 250
        try await compare(sizeMB: sizeMB)
    }

    /// Child mode: publish one wheel with wheelfarm's client; the password comes on stdin.
    static func uploadOne(url: String, username: String, wheelPath: String) async throws {
        let password = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
        let wheel = try readWheel(wheelPath)
        let transport = HTTPTransport()
        let publisher = UploadAPIPublisher(index: try PackageIndex(uploadURL: url),
                                           credentials: IndexCredentials(username: username, password: Secret(password), source: "stdin"),
                                           transport: transport, logger: Logger(label: "bench"))
        let outcome = try await publisher.publish(wheel, dryRun: false)
        try await transport.shutdown()
        print("wheelfarm: \(outcome)")
        if !outcome.isSuccess { exit(1) }
    }

    /// Stand-in for the `Wheels` verifier: METADATA read with Python (benchmark only).
    static func readWheel(_ path: String) throws -> PublishableWheel {
        let script = """
        import email.parser, json, sys, zipfile
        z = zipfile.ZipFile(sys.argv[1])
        name = next(n for n in z.namelist() if n.endswith('.dist-info/METADATA'))
        msg = email.parser.BytesParser().parsebytes(z.read(name))
        fields = [[k, str(v)] for k, v in msg.items()]
        if msg.get_payload():
            fields.append(['Description', msg.get_payload()])
        print(json.dumps(fields))
        """
        let r = try TestProcess.run(TestEnvironment.python, ["-c", script, path])
        let fields = try JSONDecoder().decode([[String]].self, from: Data(r.stdout.utf8)).map { MetadataField($0[0], $0[1]) }
        let (digest, size) = try StreamingDigest.file(at: path)
        let parts = URL(fileURLWithPath: path).lastPathComponent.dropLast(4).split(separator: "-")
        return PublishableWheel(path: path, name: fields.first { $0.name == "Name" }!.value,
                                version: fields.first { $0.name == "Version" }!.value, metadata: fields,
                                pythonTag: String(parts[parts.count - 3]),
                                stamp: VerificationStamp(verifier: "benchmark METADATA reader", sha256: digest, size: size))
    }

    struct Measured { let seconds: Double; let peakKB: Int }

    /// Runs a command under GNU time; returns wall seconds and peak RSS.
    static func timed(_ command: [String], environment: [String: String], stdin: Data?, scratch: URL, label: String) throws -> Measured {
        let timeFile = scratch.appendingPathComponent("\(label).time")
        let r = try TestProcess.run("/usr/bin/time", ["-f", "%e %M", "-o", timeFile.path] + command, environment: environment, stdin: stdin)
        guard r.status == 0 else { throw HarnessError("\(label) failed (\(r.status)): \(r.stdout)\n\(r.stderr)") }
        let fields = try String(contentsOf: timeFile, encoding: .utf8).split(whereSeparator: \.isWhitespace)
        return Measured(seconds: Double(fields[fields.count - 2])!, peakKB: Int(fields[fields.count - 1])!)
    }

    static func compare(sizeMB: Int) async throws {
        let scratch = try TestEnvironment.makeTemporaryDirectory("upload-benchmark")
        defer { try? FileManager.default.removeItem(at: scratch) }
        print("building a \(sizeMB) MB wheel with pip …")
        let wheel = try PipWheelBuilder.build(name: "wf-bench-big", version: "1.0.0", into: scratch.appendingPathComponent("dist"),
                                              payloadBytes: sizeMB << 20)
        let (digest, size) = try StreamingDigest.file(at: wheel.path)
        print("wheel: \(wheel.lastPathComponent), \(size / 1_000_000) MB, sha256 \(digest.hex.prefix(16))…")
        let env = ["PATH": "/usr/bin:/bin", "HOME": scratch.path]

        // wheelfarm
        let a = try PyPIServerHarness()
        defer { a.stop() }
        let wf = try timed([CommandLine.arguments[0], "upload", a.url, a.username, wheel.path], environment: env,
                           stdin: Data(a.password.utf8), scratch: scratch, label: "wheelfarm")
        guard try StreamingDigest.file(at: a.packagesDirectory.appendingPathComponent(wheel.lastPathComponent).path).digest == digest else {
            throw HarnessError("wheelfarm's upload is not byte-identical")
        }
        a.stop()

        // twine
        let b = try PyPIServerHarness()
        defer { b.stop() }
        var twineEnv = env
        twineEnv["TWINE_PASSWORD"] = b.password
        let tw = try timed([TestEnvironment.venvTool("twine"), "upload", "--non-interactive", "--disable-progress-bar",
                            "--repository-url", b.url, "-u", b.username, wheel.path],
                           environment: twineEnv, stdin: nil, scratch: scratch, label: "twine")
        guard try StreamingDigest.file(at: b.packagesDirectory.appendingPathComponent(wheel.lastPathComponent).path).digest == digest else {
            throw HarnessError("twine's upload is not byte-identical")
        }

        func mb(_ kb: Int) -> String { String(format: "%.0f MB", Double(kb) / 1024) }
        print("")
        print("upload of \(size / 1_000_000) MB to pypiserver on loopback (each tool a fresh server, process wall time):")
        print(String(format: "  wheelfarm  %6.2f s   peak RSS %@", wf.seconds, mb(wf.peakKB)))
        print(String(format: "  twine      %6.2f s   peak RSS %@", tw.seconds, mb(tw.peakKB)))
        print(String(format: "  time ratio wheelfarm/twine: %.2f", wf.seconds / tw.seconds))
        print(String(format: "  wheelfarm peak RSS / file size: %.2f", Double(wf.peakKB) * 1024 / Double(size)))
    }
}
