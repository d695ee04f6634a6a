import FarmCore
import FarmTestSupport
import Inventory
import Recipes
import Scheduling
import Synchronization
import Testing

/// Small builders for hosts, variants and jobs.
enum Fixture {
    static func flags(_ names: [String]) -> Set<Capability> { Set(names.map(Capability.init)) }

    static func variant(_ name: String, requires: [String] = ["avx2"], forbids: [String] = [], minutes: Double = 30,
                        arch: Arch = .amd64, gcc: String? = nil) -> Variant {
        Variant(package: "pkg-\(name)", shortName: name,
                arches: [arch: .init(requires: flags(requires), forbids: flags(forbids))],
                minimumGCC: gcc.flatMap(PEP440Version.init), estimatedMinutes: minutes)
    }

    static func job(_ v: Variant, python: String = "3.12", version: String = "1.0", arch: Arch = .amd64) -> BuildJob {
        BuildJob(recipe: "test", variant: v, arch: arch, python: PythonVersion(python)!, version: PEP440Version(version)!)
    }

    /// `count` jobs of one variant, distinguished by upstream version.
    static func jobs(_ v: Variant, count: Int) -> [BuildJob] {
        (0..<count).map { job(v, version: "1.\($0)") }
    }

    static func host(_ name: String, _ caps: [String] = ["avx2"], arch: Arch = .amd64, slots: Int = 1, speed: Double = 1,
                     reserved: [String] = [], drain: Bool = false) -> Host {
        Host(name: name, arch: arch, capabilities: flags(caps), reserved: flags(reserved), slots: slots, speed: speed, drain: drain)
    }

    static var vllmRecipe: Recipe {
        get throws { try RecipeLoader.load(path: TestEnvironment.repositoryRoot.appendingPathComponent("recipes/vllm-cpu.yaml").path) }
    }

    static var exampleFarm: Inventory {
        get throws { try InventoryLoader.load(path: TestEnvironment.repositoryRoot.appendingPathComponent("inventory/example-farm.yaml").path) }
    }

    /// The benchmark release: every vLLM variant, Pythons 3.10–3.13, three upstream versions.
    /// Twelve vLLM versions, every variant: 72 builds (the wheels are abi3, so the four Pythons
    /// asked for are one build each).
    static func vllmRelease() throws -> [BuildJob] {
        try JobMatrix.expand(recipe: vllmRecipe, selection: JobSelection(
            variant: "all", versions: "0.9.0,0.9.1,0.9.2,0.10.0,0.10.1,0.10.2,0.11.0,0.11.1,0.11.2,0.12.0,0.12.1,0.13.0", pythons: "3.10-3.13", platform: "auto"))
    }
}

/// A runner whose builds end when the test says so (or at once, through `auto`).
final class GateRunner: JobRunner {
    struct Call: Sendable, Hashable, CustomStringConvertible {
        let id: Int
        let job: BuildJob
        let host: String
        let attempt: Int
        var description: String { "\(job) on \(host) #\(attempt)" }
    }
    private struct State {
        var nextID = 0
        var waiting: [Int: CheckedContinuation<JobOutcome, Never>] = [:]
        var early: [Int: JobOutcome] = [:]
        var calls: [Call] = []
        var outcomes: [Int: JobOutcome] = [:]
        var healthy: [String: Bool] = [:]
        var healthChecks: [String] = []
    }
    private let state = Mutex(State())
    private let auto: @Sendable (Call) -> JobOutcome?
    let calls: AsyncStream<Call>
    private let callSink: AsyncStream<Call>.Continuation

    /// `auto` answers calls at once when it returns an outcome; others wait for ``resolve(_:_:)``.
    init(auto: @escaping @Sendable (Call) -> JobOutcome? = { _ in nil }) {
        self.auto = auto
        (calls, callSink) = AsyncStream.makeStream(of: Call.self)
    }

    func run(job: BuildJob, on host: Host, attempt: Int) async throws -> JobOutcome {
        let call = state.withLock { s in
            defer { s.nextID += 1 }
            let c = Call(id: s.nextID, job: job, host: host.name, attempt: attempt)
            s.calls.append(c)
            return c
        }
        if let outcome = auto(call) { record(call.id, outcome); return outcome }
        let outcome = await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<JobOutcome, Never>) in
                let ready: JobOutcome? = state.withLock { s in
                    if let o = s.early.removeValue(forKey: call.id) { return o }
                    s.waiting[call.id] = c
                    return nil
                }
                if let ready { c.resume(returning: ready) }
                callSink.yield(call)
            }
        } onCancel: {
            resolve(call, .cancelled)
        }
        record(call.id, outcome)
        return outcome
    }

    private func record(_ id: Int, _ outcome: JobOutcome) { state.withLock { $0.outcomes[id] = outcome } }

    /// Ends a waiting build with `outcome`.
    func resolve(_ call: Call, _ outcome: JobOutcome) {
        let c: CheckedContinuation<JobOutcome, Never>? = state.withLock { s in
            if let c = s.waiting.removeValue(forKey: call.id) { return c }
            if s.outcomes[call.id] == nil, s.early[call.id] == nil { s.early[call.id] = outcome }
            return nil
        }
        c?.resume(returning: outcome)
    }

    func setHealthy(_ host: String, _ healthy: Bool) { state.withLock { $0.healthy[host] = healthy } }

    func checkHealth(of host: Host) async -> Bool {
        state.withLock { s in
            s.healthChecks.append(host.name)
            return s.healthy[host.name] ?? true
        }
    }

    var allCalls: [Call] { state.withLock { $0.calls } }
    var healthChecks: [String] { state.withLock { $0.healthChecks } }
    func outcome(of call: Call) -> JobOutcome? { state.withLock { $0.outcomes[call.id] } }
    /// Calls for `job` that succeeded.
    func successes(of job: BuildJob) -> [Call] {
        state.withLock { s in s.calls.filter { $0.job == job && s.outcomes[$0.id] == .succeeded } }
    }
}

/// Reads a progress feed in order, waiting for particular updates.
struct EventReader {
    private var iterator: AsyncStream<ProgressUpdate>.Iterator
    private(set) var seen: [ProgressUpdate] = []

    init(_ feed: ProgressFeed) { iterator = feed.subscribe(replay: true).makeAsyncIterator() }

    /// The next update satisfying `predicate`; fails the test if the feed ends first.
    mutating func next(_ what: String, where predicate: (ProgressEvent) -> Bool,
                       sourceLocation: SourceLocation = #_sourceLocation) async throws -> ProgressUpdate {
        while let u = await iterator.next() {
            seen.append(u)
            if predicate(u.event) { return u }
        }
        Issue.record("the progress feed ended before \(what); saw:\n\(seen.map(\.description).joined(separator: "\n"))", sourceLocation: sourceLocation)
        throw CancellationError()
    }
}

extension AsyncStream {
    /// The next element; fails when the stream ends.
    func first(sourceLocation: SourceLocation = #_sourceLocation) async throws -> Element {
        var it = makeAsyncIterator()
        guard let e = await it.next() else {
            Issue.record("stream ended", sourceLocation: sourceLocation)
            throw CancellationError()
        }
        return e
    }
}

/// Runs `body`, failing the test instead of hanging if it does not finish within `seconds` of
/// real time (a guard against deadlocks, not a timing assertion: generous, because on a loaded
/// 2-core machine other suites' processes can hold the test's threads for minutes).
func withDeadlockGuard<T: Sendable>(seconds: Double = 600, _ body: @escaping @Sendable () async throws -> T,
                                    sourceLocation: SourceLocation = #_sourceLocation) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try? await Task.sleep(for: .seconds(seconds))
            return nil
        }
        guard let first = try await group.next(), let value = first else {
            group.cancelAll()
            Issue.record("the test did not finish within \(Int(seconds)) s: deadlock?", sourceLocation: sourceLocation)
            throw CancellationError()
        }
        group.cancelAll()
        return value
    }
}

/// Waits (in real time, briefly yielding) until `condition` holds.
func eventually(_ condition: @Sendable () -> Bool) async throws {
    while !condition() { try await Task.sleep(for: .milliseconds(2)) }
}
