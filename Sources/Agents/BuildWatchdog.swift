import FarmCore
import Foundation

/// What one build attempt may take and print before the coordinator stops it.
///
/// A host is untrusted: a build that hangs, or closes its output and keeps running, must not hold
/// a release for ever, and an agent that floods its protocol stream must not fill the
/// coordinator's memory. When a limit is passed ``BuildRunner`` stops the build through
/// `cancel.sh` and the attempt ends as a host problem naming the limit.
public struct BuildWatchdog: Sendable, Hashable {
    /// The longest an attempt's `build.sh` may run; nil for no limit.
    public var timeLimit: Duration?
    /// The longest the build may print nothing at all (stdout and stderr); nil for no limit.
    public var silenceLimit: Duration?
    /// The longest event line on stdout.
    public var maxEventLineBytes: Int
    /// How many events are kept (a build prints a few dozen).
    public var maxRetainedEvents: Int
    /// The largest artifact a build may declare (the local disk must hold it, too).
    public var maxArtifactBytes: Int64
    /// The slowest average rate an artifact download may run at, in bytes per second (after a
    /// two-minute allowance).
    public var minimumDownloadRate: Int

    /// Creates limits; the defaults have no time limits (``BuildLimits`` derives them per attempt).
    public init(timeLimit: Duration? = nil, silenceLimit: Duration? = nil, maxEventLineBytes: Int = 1 << 20,
                maxRetainedEvents: Int = 10_000, maxArtifactBytes: Int64 = 16 << 30, minimumDownloadRate: Int = 256 << 10) {
        self.timeLimit = timeLimit; self.silenceLimit = silenceLimit; self.maxEventLineBytes = maxEventLineBytes
        self.maxRetainedEvents = maxRetainedEvents; self.maxArtifactBytes = maxArtifactBytes
        self.minimumDownloadRate = max(1, minimumDownloadRate)
    }

    /// How long downloading `bytes` may take: two minutes plus the bytes at the minimum rate.
    public func downloadLimit(bytes: Int64) -> Duration {
        .seconds(120) + .seconds(Double(max(0, bytes)) / Double(minimumDownloadRate))
    }

    /// Why a build that has run `elapsed` and been silent for `silent` must stop, or nil.
    func expired(elapsed: Duration, silent: Duration) -> String? {
        if let timeLimit, elapsed > timeLimit {
            return "the build ran longer than its limit of \(timeLimit.minutesText) (stopped through cancel.sh)"
        }
        if let silenceLimit, silent > silenceLimit {
            return "the build printed nothing for \(silenceLimit.minutesText), its silence limit (stopped through cancel.sh)"
        }
        return nil
    }
}

/// How the per-attempt limits of a release are chosen: the recipe's estimate for the variant,
/// scaled by the host's speed, times ``factor`` (at least ``minimumLimit``) — or ``timeLimit``
/// when given — and the ``silenceLimit``.
public struct BuildLimits: Sendable, Hashable {
    /// A fixed per-attempt limit, replacing the estimate (`--build-timeout`).
    public var timeLimit: Duration?
    /// How many times the estimate an attempt may take (`--build-timeout-factor`).
    public var factor: Double
    /// The shortest limit derived from an estimate (a loaded machine, a cold cache).
    public var minimumLimit: Duration
    /// The longest a build may print nothing (`--build-silence-limit`); nil for none.
    public var silenceLimit: Duration?

    /// Four times the estimate, at least 30 minutes; 30 minutes of silence.
    public init(timeLimit: Duration? = nil, factor: Double = 4, minimumLimit: Duration = .seconds(30 * 60),
                silenceLimit: Duration? = .seconds(30 * 60)) {
        self.timeLimit = timeLimit; self.factor = factor; self.minimumLimit = minimumLimit; self.silenceLimit = silenceLimit
    }

    /// The watchdog of one attempt whose variant is estimated at `estimatedMinutes` (at speed 1)
    /// on a host of relative `speed`.
    public func watchdog(estimatedMinutes: Double, speed: Double) -> BuildWatchdog {
        let limit = timeLimit ?? {
            let seconds = estimatedMinutes * 60 / max(speed, 0.01) * factor
            let derived = Duration.seconds(seconds.isFinite ? min(seconds, 30 * 24 * 3600) : 30 * 24 * 3600)
            return max(derived, minimumLimit)
        }()
        return BuildWatchdog(timeLimit: limit, silenceLimit: silenceLimit)
    }
}

extension Duration {
    /// `45 min`, `90 s`, `2.5 h`, for messages.
    var minutesText: String {
        let s = seconds
        if s < 120 { return s == s.rounded() ? "\(Int(s)) s" : String(format: "%.1f s", s) }
        if s < 7200 { let m = s / 60; return m == m.rounded() ? "\(Int(m)) min" : String(format: "%.1f min", m) }
        return String(format: "%.1f h", s / 3600)
    }
}
