import FarmTestSupport
import Foundation
import Testing

@Suite("Fuzz target")
struct FuzzTargetTests {
    @Test("the libFuzzer target builds and runs for a bounded time over the committed corpus without a crash")
    func boundedRun() throws {
        let script = TestEnvironment.repositoryRoot.appendingPathComponent("Fuzz/run.sh").path
        let r = try TestProcess.run("/bin/bash", [script, ProcessInfo.processInfo.environment["WHEELFARM_FUZZ_SECONDS"] ?? "20"])
        #expect(r.status == 0, "\(r.stderr.suffix(3000))")
        #expect(r.stderr.contains("Done") && r.stderr.contains("stat::number_of_executed_units"))
        #expect(!r.stderr.contains("ERROR: AddressSanitizer") && !r.stderr.contains("deadly signal"))
    }
}
