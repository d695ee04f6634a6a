import Inventory
import Recipes

/// How one attempt at a job ended.
public enum JobOutcome: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The wheel was built.
    case succeeded
    /// The build itself failed in a way that may not recur (a wheel damaged on its way back):
    /// retried up to a limit, preferably on another host.
    case buildFailed(String)
    /// The build failed in a way that would fail again on the same host (a failing command of the
    /// build step such as a compile error, a wheel whose labels are wrong): retried up to a limit,
    /// and only on a host the job has not failed on; when there is none the job fails at once.
    case buildFailedOnHost(String)
    /// The host could not be reached or the connection was lost: the job goes elsewhere and the
    /// host is quarantined.
    case hostFailed(String)
    /// The host refused the coordinator for a reason retrying cannot fix (a host key that
    /// differs from known_hosts, a revoked key, keys the server refuses, a bad SSH
    /// configuration): the job goes elsewhere and the host is taken out of the run at once.
    case hostRefused(String)
    /// The attempt was stopped because the run was cancelled.
    case cancelled

    /// A lowercase, human-readable description.

    public var description: String {
        switch self {
        case .succeeded: "succeeded"
        case let .buildFailed(m), let .buildFailedOnHost(m): "build failed: \(m)"
        case let .hostFailed(m): "host failure: \(m)"
        case let .hostRefused(m): "host refused: \(m)"
        case .cancelled: "cancelled"
        }
    }
}

/// Errors a ``JobRunner`` may throw instead of returning a failed ``JobOutcome``.
///
/// Any other error thrown by a runner counts as a build failure (so that an unclassified error
/// is retried a bounded number of times, never forever); `CancellationError` counts as cancelled.
public enum JobRunnerError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The host did not answer (connect refused, timeout, authentication impossible).
    case hostUnreachable(String)
    /// The connection broke during the build.
    case connectionLost(String)
    /// The build ran and failed.
    case buildFailed(String)
    /// The build ran and failed in a way that would recur on the same host.
    case buildFailedOnHost(String)
    /// The host refused the connection for good (see ``JobOutcome/hostRefused(_:)``).
    case hostRefused(String)

    /// A lowercase, human-readable description.

    public var description: String {
        switch self {
        case let .hostUnreachable(m): "host unreachable: \(m)"
        case let .connectionLost(m): "connection lost: \(m)"
        case let .buildFailed(m), let .buildFailedOnHost(m): "build failed: \(m)"
        case let .hostRefused(m): "host refused: \(m)"
        }
    }

    /// The outcome this error stands for.
    public var outcome: JobOutcome {
        switch self {
        case let .hostUnreachable(m): .hostFailed("unreachable: \(m)")
        case let .connectionLost(m): .hostFailed("connection lost: \(m)")
        case let .buildFailed(m): .buildFailed(m)
        case let .buildFailedOnHost(m): .buildFailedOnHost(m)
        case let .hostRefused(m): .hostRefused(m)
        }
    }
}

/// Runs builds on hosts: the scheduler's only way to act on the world.
///
/// The release pipeline implements it over SSH; tests and `simulate` implement it with fakes.
/// Implementations must honour task cancellation: when the task running ``run(job:on:attempt:)``
/// is cancelled, stop the build on the host and return ``JobOutcome/cancelled`` (or throw
/// `CancellationError`).
public protocol JobRunner: Sendable {
    /// Builds `job` on `host`; `attempt` counts from 1 over every attempt at this job.
    func run(job: BuildJob, on host: Host, attempt: Int) async throws -> JobOutcome

    /// Checks whether a quarantined host is reachable again (for example: connect and run `true`).
    ///
    /// The default says yes, so that the host is retried with its next job.
    func checkHealth(of host: Host) async -> Bool

    /// Like ``checkHealth(of:)``, and can also say that the host refuses the coordinator for a
    /// reason retrying cannot fix (the scheduler then takes it out of the run). The default asks
    /// ``checkHealth(of:)``.
    func healthCheck(of host: Host) async -> HealthCheckResult
}

/// What a health check of a quarantined host found.
public enum HealthCheckResult: Sendable, Hashable {
    /// Reachable again.
    case healthy
    /// Still not usable; try again later.
    case unhealthy
    /// Refuses the coordinator for good (host key, authentication): take it out of the run.
    case refused(String)
}

extension JobRunner {
    /// Says the host is healthy: it is then retried with real work.
    public func checkHealth(of host: Host) async -> Bool { true }

    /// ``checkHealth(of:)`` as a ``HealthCheckResult``.
    public func healthCheck(of host: Host) async -> HealthCheckResult { await checkHealth(of: host) ? .healthy : .unhealthy }
}

extension JobOutcome {
    /// Classifies an error thrown by a ``JobRunner``.
    public init(classifying error: any Error) {
        if error is CancellationError { self = .cancelled }
        else if let e = error as? JobRunnerError { self = e.outcome }
        else { self = .buildFailed(String(describing: error)) }
    }
}
