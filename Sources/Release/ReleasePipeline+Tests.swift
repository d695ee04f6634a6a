import Agents
import FarmCore
import Foundation
import struct Inventory.Host
import Recipes
import Remote
import Scheduling
import Wheels

extension ReleasePipeline {
    /// Phase 1b, the test phase: after central verification and before publishing, each wheel's
    /// recipe test runs in a fresh venv on the weakest eligible host (``TestPlacement``). A
    /// failure (SIGILL reported with the ISA audit's findings) blocks publishing like a failed
    /// verification: the wheel is deleted and its verified record dropped, so the next run
    /// rebuilds it.
    func test(_ run: ReleaseRun) async throws {
        let config = configuration
        guard let test = config.recipe.test, config.updateReadme == nil else { return }
        let ledger = run.ledger.snapshot
        let wheels = ledger.records.compactMap { r -> (record: JobLedger.Record, wheel: URL)? in
            switch r.state {
            case let .verified(u), let .reused(u): (r, u)
            default: nil
            }
        }
        guard !wheels.isEmpty else { return }
        out("\n=== Phase 1b: Test each wheel on the weakest eligible host ===")
        if config.skipTests {
            out("  tests skipped (--skip-tests): \(wheels.count) wheel\(wheels.count == 1 ? "" : "s") published untested")
            return
        }
        let hosts = config.inventory.hosts
        for (record, wheel) in wheels.sorted(by: { $0.record.id < $1.record.id }) {
            guard !Task.isCancelled else { return }
            let job = record.buildJob, jobID = record.id
            if let arches = test.arches, !arches.contains(job.arch) {
                out("  - \(wheel.lastPathComponent): the recipe tests \(arches.sorted().map(\.rawValue).joined(separator: ", ")) wheels only (not tested)")
                continue
            }
            // The weakest eligible host; one that cannot be reached (a host the build phase lost)
            // gives way to the next weakest, so an outage does not fail the wheel.
            var candidates = hosts
            var unreachable: [String] = []
            var failure: String?
            while failure == nil {
                let placement = TestPlacement.weakest(for: job, hosts: candidates)
                guard let name = placement.host, let host = candidates.first(where: { $0.name == name }) else {
                    let why = placement.note ?? "no host to test on"
                    failure = "not tested: \(why)" + (unreachable.isEmpty ? "" : " (unreachable: \(unreachable.joined(separator: "; ")))")
                    out("  ✗ \(wheel.lastPathComponent): \(failure!)")
                    break
                }
                if let note = placement.note { out("  ! \(note)") }
                let transport = await run.pool.transport(for: host)
                do {
                    let result = try await WheelTestRunner(test: test).run(wheel: wheel, job: job, report: record.verification,
                                                                           on: transport, host: host)
                    if result.passed {
                        out("  ✓ \(wheel.lastPathComponent): \(result.message) on \(host.name)\(placement.stronger.isEmpty ? "" : " (a stronger host than the wheel claims)")")
                        break
                    }
                    failure = "test: \(result.message)"
                    out("  ✗ \(wheel.lastPathComponent): \(result.message)\n\(result.outputTail.split(separator: "\n").suffix(8).map { "      \($0)" }.joined(separator: "\n"))")
                } catch let error as TransportError where [.unreachable, .connectionLost, .timeout, .authentication, .hostKey, .configuration].contains(error.kind) {
                    await run.pool.discard(host.name)
                    unreachable.append("\(host.name): \(error)")
                    out("  ! \(wheel.lastPathComponent): cannot test on \(host.name) (\(error)); trying the next weakest host")
                    candidates.removeAll { $0.name == host.name }
                } catch {
                    failure = "test: could not run on \(host.name): \(error)"
                    out("  ✗ \(wheel.lastPathComponent): the test could not run on \(host.name): \(error)")
                }
            }
            guard let failure else { continue }
            try run.journal.removeArtifact(filename: wheel.lastPathComponent)
            try? FileManager.default.removeItem(at: wheel)
            run.ledger.with { $0.fail(jobID, failure) }
        }
        try run.syncJournal(wheels.map(\.record.id))
    }
}
