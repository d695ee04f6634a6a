import FarmCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An exclusive lock on a dist directory, held for the life of a coordinator.
///
/// Two coordinators on one dist directory would build and publish the same jobs twice, so the
/// second is refused. The lock is `flock(2)` on `<dist>/.wheelfarm/lock`: the kernel releases it
/// when the process dies, even by SIGKILL, so a crashed coordinator never leaves a stale lock.
public final class CoordinatorLock: Sendable {
    private let fd: Int32
    /// The lock file.
    public let path: String

    /// Takes the lock of `distDir` or throws, naming the process that holds it.
    public convenience init(distDir: URL) throws { try self.init(layout: DistLayout(root: distDir)) }

    /// Takes the lock of a dist directory or throws, naming the process that holds it.
    public init(layout: DistLayout) throws {
        let distDir = layout.root
        try FileManager.default.createDirectory(at: layout.stateDirectory, withIntermediateDirectories: true)
        path = layout.lockFile.path
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw FarmError(code: "lock.open", message: "cannot open the lock file '\(path)': \(String(cString: strerror(errno)))")
        }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingWhitespace() ?? "?"
            close(fd)
            throw FarmError(code: "lock.busy", message: "another wheelfarm coordinator (pid \(holder)) is using the dist directory '\(distDir.path)'; wait for it to finish or stop it, then run again")
        }
        ftruncate(fd, 0)
        let pid = "\(getpid())\n"
        _ = pid.withCString { write(fd, $0, strlen($0)) }
        self.fd = fd
    }

    deinit {
        flock(fd, LOCK_UN)
        close(fd)
    }
}
