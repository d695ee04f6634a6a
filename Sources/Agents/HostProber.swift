import struct Inventory.Host
import FarmCore
import Foundation
import Inventory
import Logging
import Recipes
import Remote

/// Probes build hosts: runs `probe.sh` over each host's transport and keeps the reports.
///
/// The probe runs from standard input (`lib.sh` then `probe.sh`, piped to `bash -s`), so it needs
/// nothing on the host — a host whose work directory is missing or unwritable is still probed,
/// and says so.
public struct HostProber: Sendable {
    public let bundle: AgentBundle
    /// Where reports are cached; `nil` keeps none.
    public let cache: ProbeCache?
    let logger: Logger

    public init(bundle: AgentBundle, cache: ProbeCache? = nil, logger: Logger) {
        self.bundle = bundle; self.cache = cache; self.logger = logger
    }

    /// Headers and tools the probe is asked about (the recipes' prerequisites).
    public var prerequisiteArguments: [String] = []

    /// A prober that also asks about `prerequisites` (headers, tools; the C++ compiler is always reported).
    public func asking(about prerequisites: [Prerequisite]) -> HostProber {
        var p = self
        var args: [String] = []
        for q in prerequisites {
            switch q.kind {
            case .header: args += ["--header", q.name]
            case .tool: args += ["--tool", q.name]
            case .cxx: break
            }
        }
        var seen = Set<String>()
        p.prerequisiteArguments = stride(from: 0, to: args.count, by: 2).compactMap { i in
            seen.insert(args[i] + args[i + 1]).inserted ? [args[i], args[i + 1]] : nil
        }.flatMap { $0 }
        return p
    }

    /// The script piped to `bash -s`.
    var script: Data {
        var data = Data()
        for name in ["lib.sh", "probe.sh"] {
            if let file = bundle.files.first(where: { $0.path == name }) { data.append(file.contents); data.append(0x0A) }
        }
        return data
    }

    /// Probes one host and caches the report.
    public func probe(_ transport: any Transport, timeout: Duration = .seconds(120)) async throws -> ProbeReport {
        let host = transport.host
        let result = try await transport.run(ExecRequest(shellCommand(["bash", "-s", "--", "--work-dir", host.workDir] + prerequisiteArguments),
                                                         stdin: script, timeout: timeout))
        guard result.status.isSuccess else {
            throw AgentError.malformedOutput(what: "probe on host '\(host.name)'",
                                             detail: "probe.sh ended with \(result.status): \(result.stderrText.suffix(400))")
        }
        let report = try ProbeReport.parse(result.stdout)
        if let cache { try cache.store(report, for: host.name) }
        logger.debug("probed", metadata: ["host": "\(host.name)", "arch": "\(report.arch)"])
        return report
    }

    /// Probes every host in parallel; each host's result is its report or the error that stopped it.
    public func probeAll(_ transports: [any Transport], timeout: Duration = .seconds(120)) async -> [String: Result<ProbeReport, any Error>] {
        await withTaskGroup(of: (String, Result<ProbeReport, any Error>).self) { group in
            for transport in transports {
                group.addTask {
                    // Not `do { return (name, .success(try await …)) }`: see Result(catching:).
                    let outcome = await Result { try await probe(transport, timeout: timeout) }
                    return (transport.host.name, outcome)
                }
            }
            var out: [String: Result<ProbeReport, any Error>] = [:]
            for await (name, result) in group { out[name] = result }
            return out
        }
    }

    /// The cached report of `host` when younger than `maxAge`, else a fresh probe.
    public func report(for transport: any Transport, maxAge: TimeInterval) async throws -> ProbeReport {
        if let cache, let entry = try cache.fresh(host: transport.host.name, maxAge: maxAge) { return entry.report }
        return try await probe(transport)
    }
}
