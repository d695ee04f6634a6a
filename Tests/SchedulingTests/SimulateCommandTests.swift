import FarmTestSupport
import Foundation
import Testing

/// `wheelfarm simulate`, run as the built binary (build the `wheelfarm` product first).
@Suite("simulate command")
struct SimulateCommandTests {
    let release = ["simulate", "--inventory", "inventory/example-farm.yaml", "--variant", "all",
                   "--versions", "0.9.0,0.9.1,0.9.2,0.10.0,0.10.1,0.10.2,0.11.0,0.11.1,0.11.2,0.12.0,0.12.1,0.13.0", "--python-versions", "3.10-3.13"]   // 72 builds (abi3: one per variant, arch and version)

    struct Document: Decodable {
        struct Host: Decodable { var name: String; var utilisation: Double; var busySeconds: Double }
        var jobs: Int
        var succeeded: Int
        var makespanSeconds: Double
        var lowerBoundSeconds: Double
        var sequentialSeconds: Double
        var policy: String
        var hosts: [Host]
    }

    func document(_ extra: [String]) throws -> (Document, String) {
        let r = try TestProcess.wheelfarm(release + extra + ["--json"])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase   // the document's keys are snake_case
        return (try decoder.decode(Document.self, from: Data(r.stdout.utf8)), r.stdout)
    }

    @Test func jsonReportsMakespanBoundAndUtilisationDeterministically() throws {
        let (doc, text) = try document(["--jitter", "0.2", "--seed", "9"])
        #expect(doc.jobs == 72 && doc.succeeded == 72)
        #expect(doc.policy == "scarce-first")
        #expect(doc.makespanSeconds >= doc.lowerBoundSeconds * 0.8)
        #expect(doc.sequentialSeconds > doc.makespanSeconds)
        #expect(doc.hosts.map(\.name).count == 7)
        #expect(doc.hosts.allSatisfy { $0.utilisation > 0 && $0.utilisation <= 1 })
        let (_, again) = try document(["--jitter", "0.2", "--seed", "9"])
        #expect(again == text, "same seed, same output")
    }

    @Test func firstFitIsNoBetterOnTheExampleFarm() throws {
        let (ours, _) = try document([])
        let (naive, _) = try document(["--policy", "first-fit"])
        #expect(naive.policy == "first-fit")
        #expect(ours.makespanSeconds <= naive.makespanSeconds)
    }

    @Test func textOutputHasTheFiguresAndATimeline() throws {
        let r = try TestProcess.wheelfarm(release + ["--kill", "skylake-1@40-100"])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        for needle in ["makespan", "lower bound", "one host, in sequence", "timeline:", "legend:", "skylake-1 ", "UTILISATION"] {
            #expect(r.stdout.contains(needle), "missing '\(needle)' in:\n\(r.stdout)")
        }
    }

    @Test func aHostJoiningLaterGetsWorkFromThatMinute() throws {
        let (doc, _) = try document(["--join", "cascade-2@120"])
        let (all, _) = try document([])
        #expect(doc.succeeded == 72)
        #expect(doc.makespanSeconds >= all.makespanSeconds)
        let late = try #require(doc.hosts.first { $0.name == "cascade-2" })
        #expect(late.busySeconds > 0, "the host that joined at minute 120 built something")
    }

    @Test func badIncidentsAreUsageErrors() throws {
        let r = try TestProcess.wheelfarm(release + ["--kill", "skylak-1@40"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("unknown host 'skylak-1' in --kill"))
        #expect(r.stderr.contains("did you mean 'skylake-1'?"))
        let bad = try TestProcess.wheelfarm(release + ["--policy", "random"])
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("--policy"))
    }
}
