import Foundation
import Synchronization

/// A dedicated thread that runs submitted jobs one after another.
///
/// Each SSH session owns one: libssh2 sessions are not thread-safe and their calls block (in
/// `poll()`), so they must not run on the Swift concurrency pool. Written by hand because the
/// packages we use offer no single-thread executor that runs blocking work outside that pool
/// (NIOThreadPool would bring all of swift-nio for ~50 lines).
final class BlockingThread: Sendable {
    private struct State {
        var jobs: [@Sendable () -> Void] = []
        var stopping = false
    }
    private let state = Mutex(State())
    private let condition = NSCondition()  // signals new jobs; `state` holds the data
    /// Called on the thread when it has been idle for ``idleInterval`` seconds (e.g. keepalive).
    private let idle: (@Sendable () -> Void)?
    private let idleInterval: TimeInterval

    /// Starts a thread named `name`.
    init(name: String, idleInterval: TimeInterval = 0, idle: (@Sendable () -> Void)? = nil) {
        self.idle = idle
        self.idleInterval = idleInterval
        let thread = Thread { [self] in self.loop() }
        thread.name = name
        thread.start()
    }

    private func loop() {
        while true {
            condition.lock()
            var next: (@Sendable () -> Void)?
            var stop = false
            var timedOut = false
            while true {
                (next, stop) = state.withLock { s in
                    s.jobs.isEmpty ? (nil, s.stopping) : (s.jobs.removeFirst(), false)
                }
                if next != nil || stop { break }
                if idle != nil && idleInterval > 0 {
                    if !condition.wait(until: Date(timeIntervalSinceNow: idleInterval)) { timedOut = true; break }
                } else {
                    condition.wait()
                }
            }
            condition.unlock()
            if let next { next() } else if stop { return } else if timedOut { idle?() }
        }
    }

    /// Queues `job`; it runs after the jobs queued before it.
    func submit(_ job: @escaping @Sendable () -> Void) {
        condition.lock()
        state.withLock { $0.jobs.append(job) }
        condition.signal()
        condition.unlock()
    }

    /// Runs `body` on the thread and returns its result to the awaiting task.
    func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            submit { continuation.resume(with: Result { try body() }) }
        }
    }

    /// Lets the queued jobs finish, then ends the thread.
    func stop() {
        condition.lock()
        state.withLock { $0.stopping = true }
        condition.signal()
        condition.unlock()
    }
}

/// Runs a blocking `body` on a new thread of its own (for one-off local operations), with
/// task cancellation forwarded to `control`.
func runOnOwnThread<T: Sendable>(name: String, control: OperationControl,
                                 _ body: @escaping @Sendable (OperationControl) throws -> T) async throws -> T {
    try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread { continuation.resume(with: Result { try body(control) }) }
            thread.name = name
            thread.start()
        }
    } onCancel: {
        control.cancel()
    }
}
