import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Cancellation and deadline of one blocking operation, shared between the task that awaits it and
/// the thread that performs it.
///
/// Cancelling writes a byte into a pipe that the performing thread includes in every `poll()`, so a
/// thread waiting on a socket wakes up at once instead of noticing at its next timeout.
final class OperationControl: Sendable {
    private let cancelled = Atomic<Bool>(false)
    /// The read end of the wake-up pipe (non-blocking); include it in `poll()` with `POLLIN`.
    let wakeFD: Int32
    private let wakeWriteFD: Int32
    /// When the operation must end; `nil` for no limit.
    let deadline: ContinuousClock.Instant?

    init(timeout: Duration?) {
        let fds = makePipe(nonBlocking: true)
        wakeFD = fds[0]; wakeWriteFD = fds[1]
        deadline = timeout.map { ContinuousClock.now + $0 }
    }

    deinit {
        if wakeFD >= 0 { close(wakeFD) }
        if wakeWriteFD >= 0 { close(wakeWriteFD) }
    }

    /// Marks the operation cancelled and wakes its thread.
    func cancel() {
        cancelled.store(true, ordering: .sequentiallyConsistent)
        var byte: UInt8 = 1
        _ = write(wakeWriteFD, &byte, 1)
    }

    /// True once ``cancel()`` was called.
    var isCancelled: Bool { cancelled.load(ordering: .sequentiallyConsistent) }

    /// True once the deadline has passed.
    var isPastDeadline: Bool { deadline.map { ContinuousClock.now >= $0 } ?? false }

    /// Empties the wake-up pipe after `poll()` reported it readable.
    func drainWake() {
        var buffer = [UInt8](repeating: 0, count: 64)
        while read(wakeFD, &buffer, 64) > 0 {}
    }

    /// Milliseconds until the deadline for `poll()`, capped at `cap` (−1 for no limit at all).
    func pollTimeout(cap: Int32 = -1) -> Int32 {
        guard let deadline else { return cap }
        let left = ContinuousClock.now.duration(to: deadline)
        let ms = max(0, left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000 + 1)
        let bounded = Int32(clamping: ms)
        return cap < 0 ? bounded : min(bounded, cap)
    }
}

/// Why a blocking wait stopped early.
enum Interruption: Error {
    case cancelled
    case timedOut
}

/// Collects output pieces from a transport thread, up to `limit` bytes in all; the first piece
/// past the limit is dropped and calls the overflow handler (which stops the command).
final class OutputCollector: Sendable {
    private struct State {
        var out = Data(), err = Data()
        var overflowed = false
        var handler: (@Sendable () -> Void)?
    }
    private let state = Mutex(State())
    private let limit: Int

    init(limit: Int = .max) { self.limit = limit }

    func append(_ piece: ExecOutput) {
        let handler: (@Sendable () -> Void)? = state.withLock { s in
            guard !s.overflowed else { return nil }
            let data: Data
            switch piece { case .stdout(let d): data = d; case .stderr(let d): data = d }
            if s.out.count + s.err.count + data.count > limit {
                s.overflowed = true
                return s.handler
            }
            switch piece {
            case .stdout(let d): s.out.append(d)
            case .stderr(let d): s.err.append(d)
            }
            return nil
        }
        handler?()
    }

    /// Calls `handler` once the limit is passed (at once when it already is).
    func onOverflow(_ handler: @escaping @Sendable () -> Void) {
        let now = state.withLock { s -> Bool in
            s.handler = handler
            return s.overflowed
        }
        if now { handler() }
    }

    /// True once more than `limit` bytes arrived.
    var overflowed: Bool { state.withLock { $0.overflowed } }

    func take() -> (Data, Data) { state.withLock { ($0.out, $0.err) } }
}

/// A pipe with close-on-exec set on both ends (and non-blocking if asked); `[-1, -1]` on failure.
/// (`pipe2` is not visible through the Glibc module, hence `pipe` + `fcntl`.)
func makePipe(nonBlocking: Bool) -> [Int32] {
    var fds: [Int32] = [-1, -1]
    guard pipe(&fds) == 0 else { return [-1, -1] }
    for fd in fds {
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        if nonBlocking { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
    }
    return fds
}
