import Agents
import ArgumentParser
import Foundation
import Publishing

/// A duration on the command line: a number with a unit (`90s`, `45m`, `2h`, `1.5h`), or a bare
/// number in the option's default unit.
struct DurationArgument: Sendable, Hashable {
    let duration: Duration

    /// Parses `text`; `unit` (seconds per unit) applies to a bare number.
    init?(_ text: String, defaultUnitSeconds unit: Double) {
        let t = text.trimmingCharacters(in: .whitespaces).lowercased()
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        var number = t, scale = unit
        for (suffix, seconds) in units where t.hasSuffix(suffix) {
            number = String(t.dropLast(suffix.count)); scale = seconds; break
        }
        guard let value = Double(number), value.isFinite, value > 0 else { return nil }
        duration = .seconds(value * scale)
    }
}

/// How long builds may take: `--build-timeout`, `--build-timeout-factor`, `--build-silence-limit`.
struct BuildLimitOptions: ParsableArguments {
    @Option(name: .customLong("build-timeout"), help: ArgumentHelp(
        "The longest one build attempt may run (e.g. 90m, 2h; a bare number is minutes).",
        discussion: "Default: the recipe's estimated_minutes for the variant, divided by the host's speed, times --build-timeout-factor, at least 30 minutes. A build past it is stopped through cancel.sh and retried elsewhere as a host problem.",
        valueName: "duration"))
    var buildTimeout: String?

    @Option(name: .customLong("build-timeout-factor"), help: ArgumentHelp(
        "How many times the recipe's estimate a build attempt may take (default 4).", valueName: "x"))
    var buildTimeoutFactor: Double = 4

    @Option(name: .customLong("build-silence-limit"), help: ArgumentHelp(
        "The longest a build may print nothing before it is stopped (e.g. 30m, 600s; a bare number is minutes; 0 for no limit). Default: 30m.",
        valueName: "duration"))
    var buildSilenceLimit: String = "30m"

    func validate() throws {
        if let buildTimeout, DurationArgument(buildTimeout, defaultUnitSeconds: 60) == nil {
            throw ValidationError("--build-timeout '\(buildTimeout)' is not a duration; write e.g. 90m, 2h or 5400s")
        }
        guard buildTimeoutFactor.isFinite, buildTimeoutFactor > 0 else {
            throw ValidationError("--build-timeout-factor must be a number above 0, found \(buildTimeoutFactor)")
        }
        if buildSilenceLimit != "0", DurationArgument(buildSilenceLimit, defaultUnitSeconds: 60) == nil {
            throw ValidationError("--build-silence-limit '\(buildSilenceLimit)' is not a duration; write e.g. 30m or 600s (0 for no limit)")
        }
    }

    /// The limits these options describe.
    var limits: BuildLimits {
        BuildLimits(timeLimit: buildTimeout.flatMap { DurationArgument($0, defaultUnitSeconds: 60)?.duration },
                    factor: buildTimeoutFactor,
                    silenceLimit: buildSilenceLimit == "0" ? nil : DurationArgument(buildSilenceLimit, defaultUnitSeconds: 60)?.duration)
    }
}

/// Deadlines of network reads while publishing: `--http-timeout`, `--min-transfer-rate`.
struct NetworkLimitOptions: ParsableArguments {
    @Option(name: .customLong("http-timeout"), help: ArgumentHelp(
        "The longest a listing, metadata or API request may take, answer included (e.g. 120s, 2m; a bare number is seconds). Default: 120s.",
        discussion: "A request past it is cancelled and retried like a dropped connection.",
        valueName: "duration"))
    var httpTimeout: String = "120s"

    @Option(name: .customLong("min-transfer-rate"), help: ArgumentHelp(
        "The slowest average rate, in KiB/s, of an upload or download after its first 30 seconds (or --http-timeout, when shorter); default 32.",
        valueName: "KiB/s"))
    var minTransferRate: Int = 32

    func validate() throws {
        guard DurationArgument(httpTimeout, defaultUnitSeconds: 1) != nil else {
            throw ValidationError("--http-timeout '\(httpTimeout)' is not a duration; write e.g. 120s or 2m")
        }
        guard minTransferRate >= 1 else { throw ValidationError("--min-transfer-rate must be at least 1 KiB/s, found \(minTransferRate)") }
    }

    /// The limits these options describe.
    var limits: HTTPLimits {
        var limits = HTTPLimits(minimumRate: minTransferRate << 10)
        if let timeout = DurationArgument(httpTimeout, defaultUnitSeconds: 1)?.duration {
            limits.requestDeadline = timeout
            // A transfer's rate counts after the same time a whole small request may take (at most 30 s).
            limits.grace = min(limits.grace, timeout)
            // A connection silent for longer than a whole request may take is dead.
            limits.idleTimeout = min(limits.idleTimeout, max(timeout, .seconds(5)))
        }
        return limits
    }
}
