import Recipes

/// What happened to every job of a scheduler run.
public struct ScheduleReport: Sendable, Codable {
    /// How a job ended.
    public enum Status: String, Sendable, Codable, Hashable {
        /// The wheel was built.
        case succeeded
        /// The job failed for good (see the reason).
        case failed
        /// The run was cancelled before the job finished.
        case cancelled
    }

    /// One attempt at a job.
    public struct Attempt: Sendable, Codable, Hashable {
        /// The host it ran on.
        public var host: String
        /// 1-based attempt number over all attempts at the job.
        public var number: Int
        /// Seconds since the start of the run.
        public var start: Double
        /// Seconds since the start of the run.
        public var end: Double
        /// How it ended.
        public var outcome: JobOutcome
    }

    /// The fate of one job.
    public struct JobResult: Sendable, Codable, Hashable {
        /// The job.
        public var job: BuildJob
        /// How it ended.
        public var status: Status
        /// Why it failed or was cancelled; `nil` when it succeeded.
        public var reason: String?
        /// Every attempt, in order.
        public var attempts: [Attempt]
        /// The host that built it, when it succeeded.
        public var builtOn: String? { status == .succeeded ? attempts.last?.host : nil }
    }

    /// Every job, in the order given to the scheduler.
    public var results: [JobResult]
    /// Seconds from the start until the last attempt ended.
    public var makespan: Double
    /// Seconds each host spent building (over all its slots), by host name.
    public var busySeconds: [String: Double]
    /// True when the run was cancelled.
    public var cancelled: Bool
    /// The durations of the successful builds, to keep as history for the next run's ``DurationModel``.
    public var observedDurations: [DurationSample]

    /// Jobs that succeeded.
    public var succeeded: [JobResult] { results.filter { $0.status == .succeeded } }
    /// Jobs that failed.
    public var failed: [JobResult] { results.filter { $0.status == .failed } }
    /// Jobs that were cancelled.
    public var cancelledJobs: [JobResult] { results.filter { $0.status == .cancelled } }
}

