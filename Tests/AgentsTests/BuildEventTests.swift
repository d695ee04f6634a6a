import Agents
import FarmCore
import Testing

@Suite("build protocol events")
struct BuildEventTests {
    @Test("known events parse with their fields")
    func known() throws {
        let hex = String(repeating: "ab", count: 32)
        let artifact = try BuildEvent.parse(line: #"{"event":"artifact","job":"j","time":"t","file":"a.whl","path":"/w/a.whl","size":12,"sha256":"\#(hex)"}"#)
        #expect(artifact == .artifact(.init(file: "a.whl", path: "/w/a.whl", size: 12, sha256: SHA256Digest(hex: hex)!)))
        let phase = try BuildEvent.parse(line: #"{"event":"phase","job":"j","phase":"compile","log_line":41}"#)
        #expect(phase == .phase(name: "compile", logLine: 41))
        let finished = try BuildEvent.parse(line: #"{"event":"finished","status":"host-problem","exit":3,"phase":"check","message":"disk full","log":"/l"}"#)
        guard case let .finished(f)? = finished else { Issue.record("not finished: \(String(describing: finished))"); return }
        #expect(f.status == .hostProblem && f.exit == 3 && f.message == "disk full" && f.status.isRetryableElsewhere)
        let command = try BuildEvent.parse(line: #"{"event":"command","argv":["a","b c"],"cwd":"/","env":{"K":"v \"q\""}}"#)
        #expect(command == .command(argv: ["a", "b c"], cwd: "/", environment: ["K": "v \"q\""]))
        let started = try BuildEvent.parse(line: #"{"event":"started","protocol":1,"pid":7,"job_dir":"/w/jobs/j","dry_run":true}"#)
        guard case let .started(s)? = started else { Issue.record("not started"); return }
        #expect(s.pid == 7 && s.jobDirectory == "/w/jobs/j" && s.dryRun && s.protocolVersion == 1)
    }

    @Test("unknown events and keys are tolerated; non-JSON lines are skipped")
    func tolerant() throws {
        #expect(try BuildEvent.parse(line: #"{"event":"progress","percent":40}"#) == .unknown(name: "progress"))
        #expect(try BuildEvent.parse(line: #"{"event":"phase","phase":"x","new_key":[1,2]}"#) == .phase(name: "x", logLine: nil))
        #expect(try BuildEvent.parse(line: "Welcome to host!") == nil)
        #expect(try BuildEvent.parse(line: "{not json") == nil)
    }

    @Test("a known event without a required field is an error")
    func incomplete() {
        #expect(throws: AgentError.self) { try BuildEvent.parse(line: #"{"event":"artifact","file":"a.whl"}"#) }
        #expect(throws: AgentError.self) { try BuildEvent.parse(line: #"{"event":"artifact","file":"a","path":"/a","size":1,"sha256":"xyz"}"#) }
    }

    @Test("exit codes map to statuses and back", arguments: BuildStatus.allCases)
    func exitCodes(_ status: BuildStatus) {
        let back = BuildStatus(exitCode: status.exitCode)
        #expect(back == (status == .dryRun ? .succeeded : status))
    }
}
