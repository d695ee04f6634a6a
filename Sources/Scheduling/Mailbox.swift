import Synchronization

/// An unbounded single-consumer queue whose `next()` keeps working in a cancelled task.
///
/// The scheduler's event loop must go on receiving "build ended" messages after its task was
/// cancelled, to record how the interrupted builds ended; `AsyncStream` finishes as soon as its
/// consumer is cancelled, so it cannot serve here. This is the few lines that can.
final class Mailbox<Message: Sendable>: Sendable {
    private struct State {
        var buffer: [Message] = []
        var head = 0
        var waiter: CheckedContinuation<Message, Never>?
    }
    private let state = Mutex(State())

    init() {}

    /// Delivers a message; never blocks.
    func post(_ message: Message) {
        let waiter: CheckedContinuation<Message, Never>? = state.withLock { s in
            if let w = s.waiter { s.waiter = nil; return w }
            s.buffer.append(message)
            return nil
        }
        waiter?.resume(returning: message)
    }

    /// The next message, waiting for one if need be. Only one task may wait at a time.
    func next() async -> Message {
        await withCheckedContinuation { (c: CheckedContinuation<Message, Never>) in
            let message: Message? = state.withLock { s in
                if s.head < s.buffer.count {
                    let m = s.buffer[s.head]
                    s.head += 1
                    if s.head > 64, s.head * 2 > s.buffer.count {
                        s.buffer.removeFirst(s.head); s.head = 0
                    }
                    return m
                }
                s.waiter = c
                return nil
            }
            if let message { c.resume(returning: message) }
        }
    }
}
