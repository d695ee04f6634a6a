import FarmCore
import FarmTestSupport
import Foundation
import Inventory
import Synchronization
import Testing
@testable import Remote

/// The behaviour every transport must have; each test runs against a real sshd and locally.
@Suite("Transport behaviour (SSH and local)")
struct TransportBehaviourTests {
    @Test("large interleaved stdout and stderr arrive complete and separate", arguments: TransportKind.allCases)
    func interleavedOutput(kind: TransportKind) async throws {
        try await withTransport(kind) { transport, dir in
            let blob = dir.appendingPathComponent("blob").path
            try await transport.checkedRun(ExecRequest("head -c 4000000 /dev/urandom > \(blob)"))
            let expected = try await transport.checkedRun(ExecRequest("sha256sum < \(blob)")).stdoutText.prefix(64)
            let chunks = ChunkCounter()
            let collected = OutputCollector()
            let status = try await transport.exec(ExecRequest("cat \(blob) & cat \(blob) >&2; cat \(blob) | head -c 1000 >&2; wait")) { piece in
                collected.append(piece)
                chunks.count(piece)
            }
            let (out, err) = collected.take()
            #expect(status == .exited(0))
            #expect(out.count == 4_000_000)
            #expect(err.count == 4_001_000)
            #expect(SHA256Digest.of(out).hex == expected)
            #expect(SHA256Digest.of(err.prefix(4_000_000)).hex == expected)
            #expect(err.suffix(1000) == out.prefix(1000))
            // Output was streamed in many pieces, not delivered once at the end.
            #expect(chunks.counts.stdout > 4)
            #expect(chunks.counts.stderr > 4)
        }
    }

    @Test("exit statuses and signals are reported", arguments: TransportKind.allCases)
    func exitStatusAndSignal(kind: TransportKind) async throws {
        try await withTransport(kind) { transport, _ in
            #expect(try await transport.run("true").status == .exited(0))
            #expect(try await transport.run("echo out; echo err >&2; exit 7").status == .exited(7))
            let both = try await transport.run("echo out; echo err >&2; exit 3")
            #expect(both.stdoutText == "out\n")
            #expect(both.stderrText == "err\n")
            #expect(try await transport.run("kill -KILL $$").status == .signaled("KILL"))
            #expect(try await transport.run("kill -TERM $$").status == .signaled("TERM"))
            let failed = await transportError { try await transport.checkedRun(ExecRequest("echo nope >&2; exit 4")) }
            #expect(failed?.kind == .commandFailed)
            #expect(failed?.message.contains("exit status 4") == true)
        }
    }

    @Test("stdin payload, working directory and environment reach the command", arguments: TransportKind.allCases)
    func stdinAndEnvironment(kind: TransportKind) async throws {
        try await withTransport(kind) { transport, dir in
            var payload = Data(count: 3_000_000)
            payload.withUnsafeMutableBytes { for i in 0..<$0.count { $0[i] = UInt8(truncatingIfNeeded: i &* 2654435761 >> 13) } }
            // The command writes a lot before reading stdin: feeding stdin must not deadlock.
            let result = try await transport.run(ExecRequest("head -c 2000000 /dev/zero; sha256sum", stdin: payload))
            #expect(result.status == .exited(0))
            #expect(result.stdout.count == 2_000_000 + 68)  // sha256sum prints '<64 hex>  -\n'
            #expect(String(decoding: result.stdout.suffix(68), as: UTF8.self).hasPrefix(SHA256Digest.of(payload).hex))
            let env = try await transport.run(ExecRequest("pwd; echo \"$GREETING\"", workingDirectory: dir.path,
                                                          environment: ["GREETING": "it's \"quoted\" $HOME"]))
            #expect(env.stdoutText == "\(dir.path)\nit's \"quoted\" $HOME\n")
        }
    }

    @Test("a timeout stops the whole process group", arguments: TransportKind.allCases)
    func timeoutKillsGroup(kind: TransportKind) async throws {
        try await withTransport(kind) { transport, dir in
            let pidFile = dir.appendingPathComponent("timeout.pid").path
            let error = await transportError {
                _ = try await transport.run(ExecRequest("sleep 600 & echo $! > \(pidFile); wait", timeout: .seconds(2)))
            }
            #expect(error?.kind == .timeout)
            let pid = try await transport.checkedRun(ExecRequest("cat \(pidFile)")).stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(!pid.isEmpty)
            #expect(try await remoteProcessExists(transport, pid: pid) == false)
        }
    }

    @Test("cancelling the task stops the process group, including children that ignore SIGTERM", arguments: TransportKind.allCases)
    func cancellationKillsGroup(kind: TransportKind) async throws {
        try await withTransport(kind) { transport, dir in
            let pidFile = dir.appendingPathComponent("cancel.pid").path
            let (ready, readyContinuation) = AsyncStream<Void>.makeStream()
            let task = Task {
                try await transport.exec(ExecRequest(
                    "sh -c 'trap \"\" TERM; echo $$ > \(pidFile); while :; do sleep 1; done' & sleep 1; echo ready; wait",
                    killGracePeriod: .seconds(1))) { piece in
                    if case .stdout(let d) = piece, String(decoding: d, as: UTF8.self).contains("ready") { readyContinuation.yield() }
                }
            }
            for await _ in ready { break }
            task.cancel()
            let result = await task.result
            var kind: TransportError.Kind?
            if case .failure(let error as TransportError) = result { kind = error.kind }
            #expect(kind == .cancelled)
            let pid = try await transport.checkedRun(ExecRequest("cat \(pidFile)")).stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(!pid.isEmpty)
            #expect(try await remoteProcessExists(transport, pid: pid) == false)
        }
    }

    @Test("upload writes atomically with the requested mode", arguments: TransportKind.allCases)
    func uploadScript(kind: TransportKind) async throws {
        try await withTransport(kind) { transport, dir in
            let target = dir.appendingPathComponent("agent.sh").path
            let script = "#!/bin/sh\necho \"agent says $1\"\n"
            try await transport.upload(.bytes(Data(script.utf8)), to: target, mode: 0o750)
            #expect(try await transport.run("\(target) hello").stdoutText == "agent says hello\n")
            #expect(try await transport.run("stat -c %a \(target)").stdoutText == "750\n")
            // Replacing it leaves no temporary files behind.
            try await transport.upload(.bytes(Data("#!/bin/sh\necho v2\n".utf8)), to: target, mode: 0o755)
            #expect(try await transport.run(target).stdoutText == "v2\n")
            #expect(try await transport.run("ls -A \(dir.path)").stdoutText == "agent.sh\n")
            let missing = await transportError {
                try await transport.upload(.bytes(Data("x".utf8)), to: dir.appendingPathComponent("no/such/dir/f").path, mode: 0o644)
            }
            #expect(missing?.kind == .commandFailed)
        }
    }

    @Test("a 100 MB file goes up and comes back with its digest checked", arguments: TransportKind.allCases)
    func largeRoundTrip(kind: TransportKind) async throws {
        try await withTransport(kind) { transport, dir in
            let local = try TestEnvironment.makeTemporaryDirectory("wheelfarm-transfer")
            defer { try? FileManager.default.removeItem(at: local) }
            let source = local.appendingPathComponent("source.bin").path
            try randomFile(source, megabytes: 100)
            let (digest, size) = try StreamingDigest.file(at: source)
            let remote = dir.appendingPathComponent("wheel.bin").path
            try await transport.upload(.file(source), to: remote, mode: 0o644)
            let remoteSum = try await transport.checkedRun(ExecRequest("sha256sum \(remote)")).stdoutText.prefix(64)
            #expect(remoteSum == digest.hex)
            let back = local.appendingPathComponent("back.bin").path
            let result = try await transport.download(remote, to: back, expected: ExpectedFile(digest: digest, size: size))
            #expect(result.size == size)
            #expect(result.digest == digest)
            #expect(try StreamingDigest.file(at: back).digest == digest)
        }
    }

    @Test("a corrupted or truncated download is detected and removed", arguments: TransportKind.allCases)
    func corruptDownload(kind: TransportKind) async throws {
        try await withTransport(kind) { transport, dir in
            let local = try TestEnvironment.makeTemporaryDirectory("wheelfarm-corrupt")
            defer { try? FileManager.default.removeItem(at: local) }
            let remote = dir.appendingPathComponent("built.whl").path
            try await transport.checkedRun(ExecRequest("head -c 3000000 /dev/urandom > \(remote)"))
            let good = try await transport.download(remote, to: local.appendingPathComponent("first").path, expected: .any)
            // The file changes on the host after its digest was recorded: 16 bytes overwritten (one
            // byte could already hold the new value: 1 run in 256 would then see no change).
            try await transport.checkedRun(ExecRequest("printf 'XXXXXXXXXXXXXXXX' | dd of=\(remote) bs=1 seek=1234 conv=notrunc status=none"))
            let dest = local.appendingPathComponent("wheel.whl").path
            let corrupt = await transportError {
                _ = try await transport.download(remote, to: dest, expected: ExpectedFile(digest: good.digest))
            }
            #expect(corrupt?.kind == .transferCorrupt)
            #expect(corrupt?.message.contains(good.digest.hex) == true)
            #expect(!FileManager.default.fileExists(atPath: dest))
            // The host's file is shorter than the size the build reported.
            try await transport.checkedRun(ExecRequest("truncate -s 2000000 \(remote)"))
            let truncated = await transportError {
                _ = try await transport.download(remote, to: dest, expected: ExpectedFile(size: good.size))
            }
            #expect(truncated?.kind == .transferCorrupt)
            #expect(!FileManager.default.fileExists(atPath: dest))
            #expect(try FileManager.default.contentsOfDirectory(atPath: local.path) == ["first"])
            let missing = await transportError {
                _ = try await transport.download(dir.appendingPathComponent("absent.whl").path, to: dest, expected: .any)
            }
            #expect(missing?.kind == .commandFailed)
        }
    }

    @Test("execStream delivers output then the exit status", arguments: TransportKind.allCases)
    func stream(kind: TransportKind) async throws {
        try await withTransport(kind) { transport, _ in
            var text = ""
            var status: ExecStatus?
            for try await event in transport.execStream(ExecRequest("for i in 1 2 3; do echo line $i; done; exit 5")) {
                switch event {
                case .stdout(let d): text += String(decoding: d, as: UTF8.self)
                case .stderr: break
                case .exit(let s): status = s
                }
            }
            #expect(text == "line 1\nline 2\nline 3\n")
            #expect(status == .exited(5))
        }
    }
}
