import FarmCore
import FarmTestSupport
import Foundation
import Inventory
import Recipes
import Scheduling
import Testing

@Suite("Hosts joining and leaving through inventory edits")
struct InventoryWatchTests {
    let common = Fixture.variant("common", minutes: 30)

    func yaml(_ hosts: [String], extra: String = "") -> String {
        "hosts:\n" + hosts.map { "  \($0):\n    address: 127.0.0.1\n    arch: amd64\n    capabilities: [avx2]\n" }.joined() + extra
    }

    /// A farm file in a fresh directory, the scheduler following it through a watcher on a virtual clock.
    struct Setup {
        let dir: URL
        let path: String
        let clock = VirtualClock()
        let runner = GateRunner()
        let scheduler: Scheduler<VirtualClock>
        let changes: AsyncStream<InventoryChange>

        init(initial: String, jobs: [BuildJob]) throws {
            dir = try TestEnvironment.makeTemporaryDirectory("wheelfarm-watch")
            path = dir.appendingPathComponent("farm.yaml").path
            try initial.write(toFile: path, atomically: true, encoding: .utf8)
            let inventory = try InventoryLoader.load(path: path)
            scheduler = Scheduler(jobs: jobs, inventory: inventory, runner: runner, clock: clock)
            changes = InventoryWatcher(path: path, interval: .seconds(2)).changes(clock: clock)
        }

        /// Writes the file and lets the watcher's next poll happen.
        func edit(_ text: String) async throws {
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            try await eventually { clock.sleeperCount >= 1 }
            clock.advance(by: .seconds(2))
        }
    }

    @Test func aHostAddedToTheInventoryFileMidRunReceivesWork() async throws {
        let jobs = Fixture.jobs(common, count: 2)
        let setup = try Setup(initial: yaml(["h1"]), jobs: jobs)
        defer { try? FileManager.default.removeItem(at: setup.dir) }
        try await withDeadlockGuard {
            var events = EventReader(setup.scheduler.progress)
            let run = Task { await setup.scheduler.run(inventoryChanges: setup.changes) }
            var calls = setup.runner.calls.makeAsyncIterator()
            let a = try #require(await calls.next())
            #expect(a.host == "h1")
            try await setup.edit(yaml(["h1", "h2"]))
            _ = try await events.next("join", where: { $0 == .hostJoined("h2") })
            let b = try #require(await calls.next())
            #expect(b.host == "h2", "the new host took the queued job while h1 was still busy")
            setup.runner.resolve(a, .succeeded)
            setup.runner.resolve(b, .succeeded)
            let report = await run.value
            #expect(report.results.map(\.builtOn) == ["h1", "h2"])
        }
    }

    @Test func anInvalidEditIsIgnoredWithAWarningAndTheLastGoodInventoryStays() async throws {
        let jobs = Fixture.jobs(common, count: 2)
        let setup = try Setup(initial: yaml(["h1"]), jobs: jobs)
        defer { try? FileManager.default.removeItem(at: setup.dir) }
        try await withDeadlockGuard {
            var events = EventReader(setup.scheduler.progress)
            let run = Task { await setup.scheduler.run(inventoryChanges: setup.changes) }
            var calls = setup.runner.calls.makeAsyncIterator()
            let a = try #require(await calls.next())

            // h2 with a slot count that is not a number: the whole edit is refused.
            try await setup.edit(yaml(["h1", "h2"]).replacingOccurrences(of: "  h2:\n", with: "  h2:\n    slots: many\n"))
            let warning = try await events.next("warning", where: { if case .inventoryRejected = $0 { true } else { false } })
            guard case let .inventoryRejected(problem) = warning.event else { return }
            #expect(problem.contains("slots"), "the warning names the key: \(problem)")
            #expect(problem.contains("farm.yaml"), "the warning names the file: \(problem)")
            #expect(!events.seen.contains { if case .hostJoined = $0.event { true } else { false } })

            // The fixed edit is taken.
            try await setup.edit(yaml(["h1", "h2"]))
            _ = try await events.next("join", where: { $0 == .hostJoined("h2") })
            let b = try #require(await calls.next())
            #expect(b.host == "h2")
            setup.runner.resolve(a, .succeeded)
            setup.runner.resolve(b, .succeeded)
            let report = await run.value
            #expect(report.succeeded.count == 2)
        }
    }

    @Test func aHostRemovedFromTheFileFinishesItsBuildAndGetsNoMoreWork() async throws {
        let jobs = Fixture.jobs(common, count: 3)
        let setup = try Setup(initial: yaml(["h1", "h2"]), jobs: jobs)
        defer { try? FileManager.default.removeItem(at: setup.dir) }
        try await withDeadlockGuard {
            var events = EventReader(setup.scheduler.progress)
            let run = Task { await setup.scheduler.run(inventoryChanges: setup.changes) }
            var calls = setup.runner.calls.makeAsyncIterator()
            let a = try #require(await calls.next()), b = try #require(await calls.next())
            let removed = a.host, kept = b.host
            try await setup.edit(yaml([kept]))
            _ = try await events.next("leave", where: { $0 == .hostLeft(removed) })
            setup.runner.resolve(a, .succeeded)
            _ = try await events.next("a finished", where: { if case let .jobFinished(j, _, _, _) = $0 { j == a.job } else { false } })
            setup.runner.resolve(b, .succeeded)
            let c = try #require(await calls.next())
            #expect(c.host == kept)
            setup.runner.resolve(c, .succeeded)
            let report = await run.value
            #expect(report.results.first { $0.job == a.job }?.builtOn == removed)
            #expect(report.succeeded.count == 3)
        }
    }
}
