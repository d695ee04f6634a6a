import Recipes
import Synchronization

/// Something the scheduler did or noticed.
public enum ProgressEvent: Sendable, Hashable, CustomStringConvertible {
    /// The job entered the queue (at the start, or again after a failure).
    case jobQueued(BuildJob)
    /// The scheduler chose a host for the job.
    case jobPlaced(BuildJob, host: String, attempt: Int, expectedSeconds: Double)
    /// The runner was asked to build the job.
    case jobStarted(BuildJob, host: String, attempt: Int)
    /// The job's wheel was built.
    case jobFinished(BuildJob, host: String, attempt: Int, seconds: Double)
    /// The attempt failed and the job goes back to the queue.
    case jobRequeued(BuildJob, host: String, attempt: Int, reason: String)
    /// The job failed for good.
    case jobFailed(BuildJob, reason: String)
    /// The job was cancelled before it finished.
    case jobCancelled(BuildJob)
    /// A host appeared in the inventory.
    case hostJoined(String)
    /// A host left the inventory; its running builds finish.
    case hostLeft(String)
    /// A host was set to `drain: true`; its running builds finish.
    case hostDraining(String)
    /// A draining host takes work again.
    case hostResumed(String)
    /// A host's definition changed (capabilities, slots, speed…); new placements use it.
    case hostChanged(String)
    /// A host failed and takes no work until `until` (seconds since the start of the run).
    case hostQuarantined(String, until: Double, failures: Int, reason: String)
    /// A quarantined host passed its health check.
    case hostRecovered(String)
    /// The scheduler gave up on a host after repeated failed health checks.
    case hostLost(String, reason: String)
    /// The host refused the coordinator for a reason retrying cannot fix; it takes no more work.
    case hostRefused(String, reason: String)
    /// An inventory edit did not validate and was ignored; the last good inventory stays in force.
    case inventoryRejected(String)
    /// Every job reached a final state.
    case finished(succeeded: Int, failed: Int, cancelled: Int)

    /// A lowercase, human-readable description.

    public var description: String {
        switch self {
        case let .jobQueued(j): "queued \(j)"
        case let .jobPlaced(j, h, a, e): "placed \(j) on \(h) (attempt \(a), expected \(Timeline.format(seconds: e)))"
        case let .jobStarted(j, h, a): "started \(j) on \(h) (attempt \(a))"
        case let .jobFinished(j, h, a, s): "finished \(j) on \(h) (attempt \(a), \(Timeline.format(seconds: s)))"
        case let .jobRequeued(j, h, a, r): "requeued \(j) after attempt \(a) on \(h): \(r)"
        case let .jobFailed(j, r): "failed \(j): \(r)"
        case let .jobCancelled(j): "cancelled \(j)"
        case let .hostJoined(h): "host \(h) joined"
        case let .hostLeft(h): "host \(h) left the inventory"
        case let .hostDraining(h): "host \(h) is draining"
        case let .hostResumed(h): "host \(h) takes work again"
        case let .hostChanged(h): "host \(h) changed"
        case let .hostQuarantined(h, u, f, r): "host \(h) quarantined until \(Timeline.format(seconds: u)) (failure \(f)): \(r)"
        case let .hostRecovered(h): "host \(h) recovered"
        case let .hostLost(h, r): "host \(h) given up: \(r)"
        case let .hostRefused(h, r): "host \(h) taken out of the run: \(r)"
        case let .inventoryRejected(p): "warning: inventory edit ignored, the last good inventory stays in force: \(p)"
        case let .finished(s, f, c): "finished: \(s) succeeded, \(f) failed, \(c) cancelled"
        }
    }
}

/// A ``ProgressEvent`` with the time it happened.
public struct ProgressUpdate: Sendable, Hashable, CustomStringConvertible {
    /// Seconds since the scheduler started, on the scheduler's clock.
    public var time: Double
    /// What happened.
    public var event: ProgressEvent

    /// Creates an update.
    public init(time: Double, event: ProgressEvent) { self.time = time; self.event = event }

    /// A lowercase, human-readable description.

    public var description: String { "[\(Timeline.format(seconds: time))] \(event)" }
}

/// A concurrency-safe broadcast of scheduler progress to any number of subscribers.
///
/// Each subscriber gets its own `AsyncStream` and sees every update published after it
/// subscribed (or, with `replay`, every update so far first). Publishing never blocks: streams
/// buffer without bound, which is fine for the few thousand updates of a release. The feed keeps
/// the full history so that a display attaching late can catch up.
public final class ProgressFeed: Sendable {
    private struct State {
        var history: [ProgressUpdate] = []
        var subscribers: [Int: AsyncStream<ProgressUpdate>.Continuation] = [:]
        var nextID = 0
        var finished = false
    }
    private let state = Mutex(State())

    /// Creates an empty feed.
    public init() {}

    /// A stream of updates; with `replay`, the updates published so far come first.
    ///
    /// The stream ends when the feed is finished.
    public func subscribe(replay: Bool = false) -> AsyncStream<ProgressUpdate> {
        let (stream, continuation) = AsyncStream.makeStream(of: ProgressUpdate.self)
        let id: Int? = state.withLock { s in
            if replay { for u in s.history { continuation.yield(u) } }
            if s.finished { continuation.finish(); return nil }
            let id = s.nextID
            s.nextID += 1
            s.subscribers[id] = continuation
            return id
        }
        if let id {
            continuation.onTermination = { [weak self] _ in
                self?.state.withLock { _ = $0.subscribers.removeValue(forKey: id) }
            }
        }
        return stream
    }

    /// Sends an update to every subscriber.
    public func publish(_ update: ProgressUpdate) {
        state.withLock { s in
            guard !s.finished else { return }
            s.history.append(update)
            for c in s.subscribers.values { c.yield(update) }
        }
    }

    /// Ends every subscriber's stream; later updates are dropped.
    public func finish() {
        let subscribers = state.withLock { s in
            s.finished = true
            defer { s.subscribers = [:] }
            return Array(s.subscribers.values)
        }
        for c in subscribers { c.finish() }
    }

    /// Every update published so far.
    public var history: [ProgressUpdate] { state.withLock { $0.history } }
}
