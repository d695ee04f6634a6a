import Agents
import FarmCore
import Foundation
import struct Inventory.Host
import Recipes
import Remote
import Scheduling
import Wheels

extension ReleasePipeline {
    /// The test phase: after central verification and before publishing, each wheel's recipe test
    /// runs in a fresh venv on the weakest eligible host (``TestPlacement``). A failure (SIGILL
    /// reported with the ISA audit's findings) blocks publishing like a failed verification: the
    /// wheel is deleted and its verified record dropped, so the next run rebuilds it.
    func runTests(verified: inout [String: URL], failures: inout [String: String], book: JobRecordBook,
                  facts: [String: HostFacts], journal: Journal) async {
        let config = configuration
        guard let test = config.recipe.test else { return }
        out("\n=== Phase 1b: Test each wheel on the weakest eligible host ===")
        if config.skipTests {
            out("  tests skipped (--skip-tests): \(verified.count) wheel\(verified.count == 1 ? "" : "s") published untested")
            return
        }
        let jobs = Dictionary(config.jobs.map { (ReleaseConfiguration.buildJob($0).id, ReleaseConfiguration.buildJob($0)) }, uniquingKeysWith: { a, _ in a })
        let hosts = config.inventory.hosts
        let pool = TransportPool(ssh: config.inventory.ssh, logger: logger)
        defer { Task { await pool.closeAll() } }
        for (jobID, wheel) in verified.sorted(by: { $0.key < $1.key }) {
            guard let job = jobs[jobID] else { continue }
            if let arches = test.arches, !arches.contains(job.arch) {
                out("  - \(wheel.lastPathComponent): the recipe tests \(arches.sorted().map(\.rawValue).joined(separator: ", ")) wheels only (not tested)")
                continue
            }
            let placement = TestPlacement.weakest(for: job, hosts: hosts)
            guard let name = placement.host, let host = hosts.first(where: { $0.name == name }) else {
                failures[jobID] = "not tested: \(placement.note ?? "no host")"
                verified[jobID] = nil
                out("  ✗ \(wheel.lastPathComponent): \(placement.note ?? "no host to test on")")
                continue
            }
            if let note = placement.note { out("  ! \(note)") }
            let transport = await pool.transport(for: host)
            do {
                let result = try await WheelTestRunner(test: test).run(wheel: wheel, job: job, report: book.entry(jobID)?.report,
                                                                       on: transport, host: host)
                if result.passed {
                    out("  ✓ \(wheel.lastPathComponent): \(result.message)\(placement.stronger.isEmpty ? "" : " (a stronger host than the wheel claims)")")
                    continue
                }
                failures[jobID] = "test: \(result.message)"
                out("  ✗ \(wheel.lastPathComponent): \(result.message)\n\(result.outputTail.split(separator: "\n").suffix(8).map { "      \($0)" }.joined(separator: "\n"))")
            } catch {
                failures[jobID] = "test: could not run on \(host.name): \(error)"
                out("  ✗ \(wheel.lastPathComponent): the test could not run on \(host.name): \(error)")
            }
            try? journal.removeArtifact(filename: wheel.lastPathComponent)
            try? FileManager.default.removeItem(at: wheel)
            verified[jobID] = nil
        }
    }
}
