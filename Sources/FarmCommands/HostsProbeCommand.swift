import Agents
import ArgumentParser
import FarmCore
import Foundation
import Inventory
import Logging
import Recipes
import Release
import Remote
import Wheels

/// `wheelfarm hosts probe`: ask every host what it is and compare with the inventory.
struct HostsProbeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe", abstract: "Probe every host (CPU, toolchain, Pythons, disk) and compare with the inventory.",
        discussion: """
        Runs the agent's probe.sh on every host in parallel. A capability the inventory declares but the
        host's CPU lacks is an error; flags the host has but the inventory does not declare are shown,
        and are an error when a variant the host may build must not be built with them (they would leak
        into the wheel); a GCC too old for a variant the host may build is an error for that variant.
        The host's glibc (or musl) and libstdc++ are shown; a C library newer than a recipe's platform
        requirement (platform: manylinux_2_28) allows is a warning: native builds there cannot produce
        that tag (use --builder docker). Reports are cached per host (--cache-dir) for planning. Exit status 1 on any error, 2 when the
        inventory or a recipe is invalid.
        """)

    @OptionGroup(title: "Inventory") var inventoryOptions: InventoryOptions
    @OptionGroup(title: "Output") var output: OutputOptions

    @Option(name: .long, help: ArgumentHelp("Probe only these hosts (comma list of names).", valueName: "names"))
    var hosts: String?

    @Option(name: .long, help: ArgumentHelp(
        "Recipes whose variants judge toolchains and leaks (comma list of names or files).", valueName: "names"))
    var recipes: String = "vllm-cpu,sample"

    @Option(name: .customLong("cache-dir"), help: ArgumentHelp(
        "Where probe reports are cached, one JSON file per host.",
        discussion: "Default: $WHEELFARM_PROBE_CACHE, else .wheelfarm/probes in the current directory.", valueName: "dir"))
    var cacheDir: String?

    @Option(name: .long, help: "Seconds to wait for one host's probe.")
    var timeout: Int = 120

    func validate() throws {
        guard timeout >= 1 else { throw ValidationError("--timeout must be at least 1 second, got \(timeout)") }
    }

    func run() async throws {
        let inventory = try inventoryOptions.load()
        let selected = try inventoryOptions.select(hosts, from: inventory)
        var recipeList: [Recipe] = []
        for name in recipes.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !name.isEmpty {
            do { recipeList.append(try RecipeCatalog.load(name)) } catch {
                printError("wheelfarm: \(error)")
                throw ExitCode(2)
            }
        }
        guard let agentsDir = AgentBundle.locate() else {
            printError("wheelfarm: cannot find the agent scripts ('agents' folder); run from the wheelfarm checkout or set WHEELFARM_AGENTS_DIR")
            throw ExitCode(2)
        }
        let bundle = try AgentBundle.load(from: agentsDir)
        let cachePath = cacheDir ?? ProcessInfo.processInfo.environment["WHEELFARM_PROBE_CACHE"].flatMap { $0.isEmpty ? nil : $0 }
            ?? ".wheelfarm/probes"
        var logger = Logger(label: "wheelfarm.hosts-probe")
        logger.logLevel = .warning
        let prober = HostProber(bundle: bundle, cache: ProbeCache(directory: URL(fileURLWithPath: cachePath)), logger: logger)
            .asking(about: recipeList.flatMap(\.allPrerequisites))
        let transports = selected.map { Transports.make(for: $0, ssh: inventory.ssh, logger: logger) }
        let results = await prober.probeAll(transports, timeout: .seconds(timeout))
        for t in transports { await t.close() }

        var documents: [HostProbeDocument] = []
        for host in selected {
            switch results[host.name] {
            case let .success(report)?:
                let cmp = ProbeComparison(host: host, report: report, recipes: recipeList,
                                          glibcxxCeiling: { PlatformPolicies.policy(for: $0, machine: $1.kernelName)?.newest("GLIBCXX") })
                documents.append(HostProbeDocument(host: host.name, ok: !cmp.hasErrors, error: nil, report: report,
                                                   findings: cmp.findings.map { .init(severity: $0.severity.rawValue, message: $0.description) }))
            case let .failure(error)?:
                documents.append(HostProbeDocument(host: host.name, ok: false, error: String(describing: error), report: nil, findings: []))
            case nil:
                documents.append(HostProbeDocument(host: host.name, ok: false, error: "not probed", report: nil, findings: []))
            }
        }
        let failed = documents.filter { !$0.ok }.count

        if output.json {
            try printJSON(HostsProbeDocument(inventory: inventoryOptions.inventoryPath, hosts: documents))
        } else {
            var table = TextTable("NAME", "ARCH", "CORES", "MEMORY", "FREE", "GCC", "LIBC", "LIBSTDC++", "PYTHONS", "DOCKER", "STATUS")
            for d in documents {
                guard let r = d.report else {
                    table.add(d.host, "-", "-", "-", "-", "-", "-", "-", "-", "-", "unreachable")
                    continue
                }
                let pythons = r.buildPythons.keys.sorted().map(\.description).joined(separator: ",")
                let worst = d.findings.contains { $0.severity == "error" } ? "error" : d.findings.contains { $0.severity == "warning" } ? "warning" : "ok"
                table.add(d.host, r.arch, r.cores.map(String.init) ?? "-", r.memoryBytes.map(ByteCount.format) ?? "-",
                          r.workDirFreeBytes.map(ByteCount.format) ?? "-",
                          r.gcc.map { $0.version + ($0.cross ? " (cross)" : "") } ?? "none",
                          r.libc?.description ?? "-", r.libstdcxx?.glibcxx.map { "GLIBCXX_\($0)" } ?? "-",
                          pythons.isEmpty ? (r.uv != nil ? "uv" : "none") : pythons + (r.uv != nil ? " +uv" : ""),
                          r.docker?.usable == true ? "yes" : "no", worst)
            }
            print(table.render())
            for d in documents {
                if let error = d.error { print("\n\(d.host): \(error)"); continue }
                let shown = d.findings
                if shown.isEmpty { continue }
                print("\n\(d.host):")
                for f in shown { print("  \(f.severity): \(f.message)") }
            }
            print("\n\(documents.count - failed) of \(documents.count) host\(documents.count == 1 ? "" : "s") match the inventory")
        }
        if failed > 0 { throw ExitCode(1) }
    }
}

/// One host in `hosts probe --json`.
struct HostProbeDocument: Encodable {
    struct Finding: Encodable { let severity: String; let message: String }
    let host: String
    let ok: Bool
    let error: String?
    let report: ProbeReport?
    let findings: [Finding]
}

/// The `hosts probe --json` document.
struct HostsProbeDocument: Encodable {
    let schema = "wheelfarm.hosts-probe/1"
    let inventory: String
    let hosts: [HostProbeDocument]
}
