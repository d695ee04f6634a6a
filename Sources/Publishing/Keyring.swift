import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Looks credentials up in the system keyring through the `keyring` command (the CLI of Python's
/// `keyring` package, which twine uses for the same purpose), as twine does: the service is the
/// upload URL, the user the configured username (`keyring get URL USER`), or, without one,
/// `keyring --mode creds get URL` for both.
///
/// This is the one process Publishing starts. Its arguments are the URL and the username (no
/// secret); its environment is this process's without any variable that may hold a credential
/// (`*TOKEN*`, `*PASSWORD*`, `*SECRET*`, `PYPI_*`); stdin is empty, so a keyring that would prompt
/// fails instead of hanging, and it gets 30 seconds. The answer is read from stdout, wrapped in
/// ``Secret`` and never logged.
public struct KeyringLookup: Sendable {
    /// The command to run; `nil` when no `keyring` is on `PATH` (then nothing is looked up).
    public let executable: String?
    private let environment: [String: String]

    /// Finds `keyring` on `PATH` in `environment`.
    public init(environment: [String: String]) {
        self.environment = environment.filter { name, _ in
            let upper = name.uppercased()
            return !(upper.contains("TOKEN") || upper.contains("PASSWORD") || upper.contains("SECRET") || upper.hasPrefix("PYPI_"))
        }
        let path = environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        executable = path.split(separator: ":").map { "\($0)/keyring" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// What a lookup found.
    public enum Result: Sendable {
        /// Credentials for the service.
        case found(IndexCredentials)
        /// Nothing stored (or no `keyring` command); `note` says which, for the list of places looked.
        case none(note: String)
    }

    /// The credentials stored for `service` (an upload URL) and `username`.
    public func lookup(service: String, username: String?) -> Result {
        guard let executable else { return .none(note: "keyring (no 'keyring' command on PATH)") }
        let arguments = username.map { ["get", service, $0] } ?? ["--mode", "creds", "get", service]
        let label = username.map { "keyring (service '\(service)', user '\($0)')" } ?? "keyring (service '\(service)')"
        guard let (status, output) = run(executable, arguments), status == 0 else {
            return .none(note: label)
        }
        var lines = output.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        while lines.last?.isEmpty == true { lines.removeLast() }
        let source = "the system keyring ('keyring get \(service)\(username.map { " \($0)" } ?? "")')"
        if let username {
            guard let password = lines.first, !password.isEmpty else { return .none(note: label) }
            return .found(IndexCredentials(username: username, password: Secret(password), source: source))
        }
        guard lines.count >= 2, !lines[0].isEmpty, !lines[1].isEmpty else { return .none(note: label) }
        return .found(IndexCredentials(username: lines[0], password: Secret(lines[1]), source: source))
    }

    /// Runs the command with a 30-second limit; `nil` when it could not start or ran too long.
    private func run(_ executable: String, _ arguments: [String]) -> (Int32, String)? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = environment
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        do { try process.run() } catch { return nil }
        let reader = output.fileHandleForReading
        let data = ReadBox()
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            data.set(reader.readDataToEndOfFile())
            done.signal()
        }
        if done.wait(timeout: .now() + 30) == .timedOut {
            kill(process.processIdentifier, SIGKILL)
            _ = done.wait(timeout: .now() + 5)
            while process.isRunning { usleep(5_000) }
            return nil
        }
        while process.isRunning { usleep(5_000) }
        return (process.terminationStatus, String(decoding: data.get(), as: UTF8.self))
    }
}

/// Hands bytes from the reading thread to the waiting one.
private final class ReadBox: Sendable {
    private let data = Mutex(Data())
    func set(_ value: Data) { data.withLock { $0 = value } }
    func get() -> Data { data.withLock { $0 } }
}
