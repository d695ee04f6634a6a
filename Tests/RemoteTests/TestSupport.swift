import struct Inventory.Host
import FarmCore
import FarmTestSupport
import Foundation
import Inventory
import Logging
import Synchronization
import Testing
@testable import Remote

/// Which transport a behavioural test runs against.
enum TransportKind: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case ssh, local
    var testDescription: String { rawValue }
}

let testLogger = Logger(label: "wheelfarm.remote.tests")

/// Client options that ignore the developer's own agent and environment.
func isolatedOptions(agentSocket: String? = nil, environment: [String: String] = [:]) -> SSHClientOptions {
    var env = environment
    env["HOME"] = ProcessInfo.processInfo.environment["HOME"] ?? "/root"
    return SSHClientOptions(environment: env, agentSocket: .some(agentSocket), defaultUser: "root")
}

/// Runs `body` with a transport of `kind` and a scratch directory the transport's host can use.
func withTransport(_ kind: TransportKind, _ body: (any Transport, URL) async throws -> Void) async throws {
    switch kind {
    case .local:
        let dir = try TestEnvironment.makeTemporaryDirectory("wheelfarm-local")
        defer { try? FileManager.default.removeItem(at: dir) }
        let transport = Transports.make(for: Host(name: "coordinator", connection: .local, arch: .amd64),
                                        ssh: SSHSettings(), logger: testLogger)
        try await body(transport, dir)
    case .ssh:
        try await SSHTestFarm.withFarm([SimulatedHost(name: "builder")]) { farm in
            let transport = SSHTransport(host: farm.inventoryHost("builder"), settings: farm.sshSettings(),
                                         options: isolatedOptions(), logger: testLogger)
            let dir = farm.directory.appendingPathComponent("scratch")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            do {
                try await body(transport, dir)
                await transport.close()
            } catch {
                await transport.close()
                throw error
            }
        }
    }
}

/// Expects `body` to throw a ``TransportError`` and returns it.
func transportError(_ body: () async throws -> Void) async -> TransportError? {
    do {
        try await body()
        return nil
    } catch let error as TransportError {
        return error
    } catch {
        return TransportError(.localIO, host: "?", "unexpected error type: \(error)")
    }
}

/// Writes `count` random bytes to a new file.
func randomFile(_ path: String, megabytes: Int) throws {
    let result = try TestProcess.run("/bin/dd", ["if=/dev/urandom", "of=\(path)", "bs=1M", "count=\(megabytes)", "status=none"])
    precondition(result.status == 0, result.stderr)
}

/// True while a process with `pid` exists (seen from the host where `transport` runs commands).
func remoteProcessExists(_ transport: any Transport, pid: String) async throws -> Bool {
    // A zombie (exited, not yet reaped by init) counts as gone.
    let result = try await transport.run("s=$(awk '{print $3}' /proc/\(pid)/stat 2>/dev/null); [ -n \"$s\" ] && [ \"$s\" != Z ] && echo alive || echo gone")
    return result.stdoutText.contains("alive")
}

/// Counts output pieces per stream.
final class ChunkCounter: Sendable {
    private let state = Mutex((stdout: 0, stderr: 0))
    func count(_ piece: ExecOutput) {
        state.withLock { c in if case .stdout = piece { c.stdout += 1 } else { c.stderr += 1 } }
    }
    var counts: (stdout: Int, stderr: Int) { state.withLock { $0 } }
}
