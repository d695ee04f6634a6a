/// How the scheduler retries, quarantines and places.
public struct SchedulerConfiguration: Sendable, Hashable {
    /// The placement strategy.
    public var strategy: PlacementPolicy.Strategy
    /// Attempts in total that may end in a build failure before the job fails (the old pipeline: 2).
    public var maxBuildAttempts: Int
    /// Host failures (unreachable, connection lost) a job may suffer before it fails: a job that
    /// takes down every host it touches must not loop forever.
    public var maxHostFailuresPerJob: Int
    /// How failed hosts are kept out and retried.
    public var quarantine: QuarantinePolicy

    /// Creates a configuration; the defaults are what `wheelfarm release` uses.
    public init(strategy: PlacementPolicy.Strategy = .scarceFirst, maxBuildAttempts: Int = 2,
                maxHostFailuresPerJob: Int = 5, quarantine: QuarantinePolicy = QuarantinePolicy()) {
        self.strategy = strategy; self.maxBuildAttempts = max(1, maxBuildAttempts)
        self.maxHostFailuresPerJob = max(1, maxHostFailuresPerJob); self.quarantine = quarantine
    }
}

/// Exponential backoff for hosts that failed.
///
/// After its n-th consecutive failure a host waits `initialBackoff × multiplier^(n-1)` seconds
/// (at most `maxBackoff`), then gets a health check; passing it returns the host to service,
/// failing it counts as the next failure. A successful build resets the count. After
/// `giveUpAfter` consecutive failures the host is given up for the rest of the run (until an
/// inventory edit changes it), so that jobs only it could build fail instead of waiting forever.
public struct QuarantinePolicy: Sendable, Hashable {
    /// Seconds after the first failure.
    public var initialBackoff: Double
    /// Growth factor per further failure.
    public var multiplier: Double
    /// Upper limit of one backoff, in seconds.
    public var maxBackoff: Double
    /// Consecutive failures after which the host is given up; `nil` never gives up.
    public var giveUpAfter: Int?

    /// Creates a policy. The defaults add up to about four hours before giving up.
    public init(initialBackoff: Double = 30, multiplier: Double = 2, maxBackoff: Double = 1800, giveUpAfter: Int? = 12) {
        self.initialBackoff = initialBackoff; self.multiplier = multiplier; self.maxBackoff = maxBackoff
        self.giveUpAfter = giveUpAfter
    }

    /// The wait after the `failures`-th consecutive failure.
    public func backoff(failures: Int) -> Double {
        var b = initialBackoff
        for _ in 1..<max(1, failures) { b *= multiplier; if b >= maxBackoff { break } }
        return min(b, maxBackoff)
    }
}
