#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Synchronization

/// A server program started by a test, logging to a file, stopped by its PID.
///
/// Call ``stop()`` in a `defer` right after starting it; `deinit` stops it too, so a failing test
/// does not leave it running.
public final class ServerProcess: Sendable {
    /// The process, only ever touched under its mutex.
    private let process: Mutex<Process>
    /// The file collecting the server's stdout and stderr.
    public let logFile: URL
    /// The server's process id.
    public let pid: Int32

    /// Starts `executable` with `arguments`; output goes to `logFile`.
    public init(_ executable: String, _ arguments: [String], logFile: URL, environment: [String: String]? = nil,
                currentDirectory: URL? = nil) throws {
        _ = FileManager.default.createFile(atPath: logFile.path, contents: nil)
        let log = try FileHandle(forWritingTo: logFile)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        if let currentDirectory { process.currentDirectoryURL = currentDirectory }
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        self.logFile = logFile
        try process.run()
        try? log.close()
        pid = process.processIdentifier
        self.process = Mutex(process)
    }

    /// The log so far.
    public var log: String { (try? String(contentsOf: logFile, encoding: .utf8)) ?? "" }

    /// True while the process runs.
    public var isRunning: Bool { process.withLock { $0.isRunning } }

    /// Sends SIGTERM to the PID, then SIGKILL if it has not exited within 5 seconds; waits for it.
    public func stop() {
        process.withLock { process in
            guard process.isRunning else { return }
            let pid = process.processIdentifier
            kill(pid, SIGTERM)
            let deadline = Date().addingTimeInterval(5)
            while process.isRunning && Date() < deadline { usleep(20_000) }
            if process.isRunning { kill(pid, SIGKILL) }
            process.waitUntilExit()
        }
    }

    /// Sends `signal` to the PID (SIGKILL: the process dies at once, without cleaning up).
    public func send(_ signal: Int32) {
        process.withLock { process in if process.isRunning { kill(process.processIdentifier, signal) } }
    }

    /// Waits up to `timeout` seconds for the process to exit; its exit status, or nil when it
    /// still runs (or died from a signal: -signal).
    public func waitForExit(timeout: TimeInterval) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while isRunning && Date() < deadline { usleep(50_000) }
        return process.withLock { process in
            guard !process.isRunning else { return nil }
            process.waitUntilExit()
            return process.terminationReason == .uncaughtSignal ? -process.terminationStatus : process.terminationStatus
        }
    }

    deinit { stop() }

    /// Waits until something accepts TCP connections on `host:port`, or throws after `timeout`
    /// seconds (or as soon as the process exits).
    public func waitForPort(host: String = "127.0.0.1", port: Int, timeout: TimeInterval = 30) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            guard isRunning else { throw HarnessError("server exited before listening on \(host):\(port); log:\n\(log)") }
            if LoopbackPort.accepts(host: host, port: port) { return }
            usleep(50_000)
        }
        throw HarnessError("server did not listen on \(host):\(port) within \(Int(timeout)) s; log:\n\(log)")
    }

    /// Waits until the process writes a port number into `file` (servers that bind port 0).
    public func waitForPortFile(_ file: URL, timeout: TimeInterval = 30) throws -> Int {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let text = try? String(contentsOf: file, encoding: .utf8), text.hasSuffix("\n"),
               let port = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) { return port }
            guard isRunning else { throw HarnessError("server exited before writing its port; log:\n\(log)") }
            usleep(50_000)
        }
        throw HarnessError("server did not write its port within \(Int(timeout)) s; log:\n\(log)")
    }
}

/// A failure of a test harness.
public struct HarnessError: Error, CustomStringConvertible {
    /// What went wrong.
    public let description: String
    /// Creates an error.
    public init(_ description: String) { self.description = description }
}

/// Loopback TCP ports for test servers.
public enum LoopbackPort {
    /// A port that was free a moment ago (bound to port 0 and released).
    public static func free(host: String = "127.0.0.1") throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HarnessError("socket() failed: errno \(errno)") }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        inet_pton(AF_INET, host, &addr.sin_addr)
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        guard bound == 0 else { throw HarnessError("bind() failed: errno \(errno)") }
        let named = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        guard named == 0 else { throw HarnessError("getsockname() failed: errno \(errno)") }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    /// True when a TCP connection to `host:port` succeeds.
    public static func accepts(host: String, port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, host, &addr.sin_addr)
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }
}
