import FarmCore
import FarmTestSupport
import Foundation
import Inventory
import Testing
@testable import Remote

/// What a host can make a transport read: bounded collected output, downloads that stop at the
/// expected size, and (locally) only regular files.
@Suite("bounded transports (SSH and local)")
struct BoundedTransportTests {
    @Test("collected output past its limit stops the command", arguments: TransportKind.allCases)
    func outputLimit(kind: TransportKind) async throws {
        try await withTransport(kind) { transport, _ in
            do {
                _ = try await transport.run(ExecRequest("yes bounded-flood-\(kind); sleep 616", outputLimit: 1 << 20))
                Issue.record("a flood must not be collected")
            } catch let error as TransportError {
                #expect(error.kind == .outputTooLarge, "\(error)")
                #expect(error.message.contains("printed more than 1048576 bytes"))
            }
            let left = try await transport.run(ExecRequest("ps -eo args | grep -c '^yes bounded-flood-\(kind)[ ]*$' || true"))
            #expect(left.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines) == "0", "the flood was stopped")
            // Within the limit nothing changes.
            #expect(try await transport.run(ExecRequest("head -c 1000000 /dev/zero", outputLimit: 1 << 20)).stdout.count == 1_000_000)
        }
    }

    @Test("a download stops at the expected size", arguments: TransportKind.allCases)
    func downloadStopsAtExpectedSize(kind: TransportKind) async throws {
        try await withTransport(kind) { transport, dir in
            let remote = dir.appendingPathComponent("huge.whl").path
            try await transport.checkedRun(ExecRequest("truncate -s 4G \(remote)"))
            let local = try TestEnvironment.makeTemporaryDirectory("wf-bounded-download")
            defer { try? FileManager.default.removeItem(at: local) }
            do {
                _ = try await transport.download(remote, to: local.appendingPathComponent("huge.whl").path, expected: ExpectedFile(size: 4096))
                Issue.record("a 4 GiB file must not be accepted as 4096 bytes")
            } catch let error as TransportError {
                #expect(error.kind == .transferCorrupt, "\(error)")
            }
            #expect(try FileManager.default.contentsOfDirectory(atPath: local.path).isEmpty, "nothing is left behind")
        }
    }

    @Test func aLocalDownloadReadsOnlyRegularFiles() async throws {
        try await withTransport(.local) { transport, dir in
            let fifo = dir.appendingPathComponent("fifo.whl").path
            #expect(mkfifo(fifo, 0o600) == 0)
            let link = dir.appendingPathComponent("zero.whl").path
            try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: "/dev/zero")
            for (source, why) in [(fifo, "is not a regular file"), (link, "is a symbolic link"), ("/dev/zero", "is not a regular file")] {
                do {
                    _ = try await transport.download(source, to: dir.appendingPathComponent("out.whl").path, expected: ExpectedFile(size: 10))
                    Issue.record("\(source) must be refused")
                } catch let error as TransportError {
                    #expect(error.kind == .transferCorrupt && error.message.contains(why), "\(error)")
                }
            }
        }
    }
}
