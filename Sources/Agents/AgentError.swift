import FarmCore

/// What went wrong talking to a build host's agent.
public enum AgentError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The agent printed something that is not the JSON it promises.
    case malformedOutput(what: String, detail: String)
    /// The agent scripts could not be found or read on the coordinator.
    case bundleUnreadable(path: String, detail: String)
    /// A probe cache file could not be read or written.
    case cacheUnusable(path: String, detail: String)
    /// The transport failed (connect, exec, upload, download).
    case transport(host: String, detail: String)
    /// An artifact's digest or size after download differs from what the agent reported.
    case artifactMismatch(file: String, expected: String, found: String)
    /// The host cannot take work: its work directory cannot be created or written.
    case hostUnusable(host: String, detail: String)
    /// The build ended without a `finished` event (the connection or agent died).
    case noFinish(host: String, job: String, exitStatus: Int32?)
    /// A verified wheel could not join the dist directory (a verified file of its name is there).
    case artifactConflict(file: String, detail: String)

    public var description: String {
        switch self {
        case let .malformedOutput(what, detail):
            "the agent's \(what) is not valid: \(detail); check that the host runs the current agents (bash 4+)"
        case let .bundleUnreadable(path, detail):
            "cannot read the agent scripts at '\(path)': \(detail); run from the repository or set WHEELFARM_AGENTS_DIR"
        case let .cacheUnusable(path, detail):
            "cannot use the probe cache '\(path)': \(detail)"
        case let .transport(host, detail):
            "host '\(host)': \(detail)"
        case let .artifactMismatch(file, expected, found):
            "artifact '\(file)' differs after download: expected \(expected), found \(found); the download is discarded"
        case let .hostUnusable(host, detail):
            "host '\(host)' cannot build: \(detail); fix its work directory or take it out of the inventory"
        case let .artifactConflict(file, detail):
            "wheel '\(file)' was not placed in the dist directory: \(detail)"
        case let .noFinish(host, job, status):
            "job '\(job)' on host '\(host)' ended without a result (exit status \(status.map(String.init) ?? "unknown")); see its log"
        }
    }
}
