import struct Inventory.Host
import Agents
import FarmCore
import FarmTestSupport
import Foundation
import Inventory
import Logging
import Recipes
import Remote
import Testing

let farmLogger = Logger(label: "wheelfarm.agents.tests")

/// The simulated hosts: one per sample variant (with exactly that variant's CPU), and an arm64 host.
enum FarmHosts {
    static let base = SampleFarm.base
    static let avx512 = SampleFarm.avx512
    static let all: [SimulatedHost] = SampleFarm.hosts
    /// Which host builds which package.
    static let placement: [(package: String, host: String)] = [
        ("wfsample-cpu", "plain"), ("wfsample-cpu-avx512", "skylake"), ("wfsample-cpu-avx512vnni", "cascadelake"),
        ("wfsample-cpu-avx512bf16", "cooperlake"), ("wfsample-cpu-amxbf16", "sapphire"), ("wfsample-cpu", "graviton"),
    ]
}

func farmTransport(_ farm: SSHTestFarm, _ name: String, workDir: String? = nil) -> any Transport {
    var env = ProcessInfo.processInfo.environment
    env["HOME"] = env["HOME"] ?? "/root"
    return Transports.make(for: farm.inventoryHost(name, workDir: workDir), ssh: farm.sshSettings(),
                           options: SSHClientOptions(environment: env, agentSocket: .some(nil), defaultUser: "root"),
                           logger: farmLogger)
}

/// A request for the sample recipe (variant env as the recipe file gives it).
func sampleRequest(_ package: String, python: PythonVersion, job: String, variant: SampleVariant? = nil) -> BuildRequest {
    let env: [String: String] = switch package {
    case "wfsample-cpu": ["WFSAMPLE_CPU_DISABLE_AVX512": "true"]
    case "wfsample-cpu-avx512vnni": ["WFSAMPLE_CPU_AVX512VNNI": "1"]
    case "wfsample-cpu-avx512bf16": ["WFSAMPLE_CPU_AVX512VNNI": "1", "WFSAMPLE_CPU_AVX512BF16": "1"]
    case "wfsample-cpu-amxbf16": ["WFSAMPLE_CPU_AVX512VNNI": "1", "WFSAMPLE_CPU_AVX512BF16": "1", "WFSAMPLE_CPU_AMXBF16": "1"]
    default: [:]
    }
    return BuildRequest(jobID: job, buildStep: "sample", package: package, version: "2.0.1", python: python, maxJobs: 2,
                        environment: env, forbids: Set((variant?.forbids ?? []).map(Capability.init)))
}

@Suite("agents on simulated build hosts over SSH", .serialized)
struct FarmTests {
    let bundle: AgentBundle
    let python: PythonVersion

    init() throws {
        bundle = try AgentBundle.load(from: Scripts.agents)
        let work = try TestEnvironment.makeTemporaryDirectory("wf-farm-probe")
        defer { try? FileManager.default.removeItem(at: work) }
        python = try Scripts.buildPython(try Scripts.localProbe(workDir: work)).version
    }

    @Test("probing the farm in parallel reports each host's arch and CPU; mismatches are found")
    func probe() async throws {
        try await SSHTestFarm.withFarm(FarmHosts.all) { farm in
            let cacheDir = farm.directory.appendingPathComponent("probes")
            let prober = HostProber(bundle: bundle, cache: ProbeCache(directory: cacheDir), logger: farmLogger)
            let transports = FarmHosts.all.map { farmTransport(farm, $0.name) }
            let results = await prober.probeAll(transports)
            for simulated in FarmHosts.all {
                let report = try #require(try results[simulated.name]?.get())
                #expect(report.parsedArch == simulated.arch, "\(simulated.name)")
                #expect(report.cpuFlags == simulated.cpuFlags, "\(simulated.name)")
                // The inventory entry as the farm writes it matches the host.
                let cmp = ProbeComparison(host: farm.inventoryHost(simulated.name), report: report, minimumFreeBytes: 0)
                #expect(!cmp.findings.contains { if case .missingCapabilities = $0.kind { true } else { false } })
                #expect(!cmp.findings.contains { if case .archMismatch = $0.kind { true } else { false } })
                #expect(try ProbeCache(directory: cacheDir).load(host: simulated.name)?.report == report)
            }
            // The arm64 host's toolchain is the cross compiler.
            let arm = try #require(try results["graviton"]?.get())
            #expect(arm.gcc?.cross == true && arm.gcc?.target?.hasPrefix("aarch64") == true)

            // A mislabelled inventory: "plain" declared as AVX-512, "skylake" declared without it.
            var wrong = farm.inventoryHost("plain")
            wrong.capabilities.formUnion(["avx512f", "avx512vl"].map(Capability.init))
            let lying = ProbeComparison(host: wrong, report: try #require(try results["plain"]?.get()))
            #expect(lying.hasErrors)
            #expect(lying.findings.contains { $0.kind == .missingCapabilities([Capability("avx512f"), Capability("avx512vl")]) })
            var modest = farm.inventoryHost("cascadelake")
            modest.capabilities.remove(Capability("avx512_vnni"))
            let recipe = ProbeComparisonTests.recipe(minimumGCC: nil)
            let leaky = ProbeComparison(host: modest, report: try #require(try results["cascadelake"]?.get()), recipes: [recipe])
            #expect(leaky.undeclaredCapabilities.contains(Capability("avx512_vnni")))
            #expect(leaky.findings.contains { $0.severity == .error && $0.kind == .leakingCapabilities(variant: "wfsample-cpu-avx512", flags: [Capability("avx512_vnni")]) })
        }
    }

    @Test("every sample variant builds on its host, in parallel, and comes back verified")
    func buildEachVariant() async throws {
        let scratch = try TestEnvironment.makeTemporaryDirectory("wf-farm-build")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let source = try SourceArchive.make(from: Scripts.sample, in: scratch)
        let dist = scratch.appendingPathComponent("dist")
        try await SSHTestFarm.withFarm(FarmHosts.all) { farm in
            let runner = BuildRunner(bundle: bundle, logger: farmLogger)
            let outcomes = try await withThrowingTaskGroup(of: (String, String, BuildOutcome).self) { group in
                for (package, host) in FarmHosts.placement {
                    let variant = SampleVariant.all.first { $0.package == package }
                    group.addTask {
                        let request = sampleRequest(package, python: python, job: "\(package)-\(host)", variant: host == "graviton" ? nil : variant)
                        let outcome = try await runner.run(request, on: farmTransport(farm, host), source: source,
                                                           dist: dist.appendingPathComponent(host))
                        return (package, host, outcome)
                    }
                }
                var all: [(String, String, BuildOutcome)] = []
                for try await r in group { all.append(r) }
                return all
            }
            #expect(outcomes.count == FarmHosts.placement.count)
            for (package, host, outcome) in outcomes {
                #expect(outcome.status == .succeeded, "\(package) on \(host): \(outcome.message ?? "") \(outcome.logTail.suffix(2000))")
                let wheel = try #require(outcome.wheels.first, "\(package) on \(host)")
                let (digest, size) = try StreamingDigest.file(at: wheel.path.path)
                #expect(digest == wheel.sha256 && size == wheel.size)
                if host == "graviton" {
                    #expect(wheel.file.hasSuffix("_aarch64.whl") && !wheel.file.contains("x86_64"), "\(wheel.file)")
                    // Tagged from its content (the cross-compiled aarch64 code), as auditwheel judges it.
                    let verdict = try PlatformFixtures.show(wheel.path)
                    #expect(wheel.file.contains(verdict.overall_tag), "\(wheel.file) vs \(verdict.overall_tag)")
                    let so = try TestProcess.run("/bin/sh", ["-c", "unzip -p \"$0\" 'wfsample/_kernels*.so' | head -c 20 | od -An -tx1", wheel.path.path])
                    // ELF e_machine at offset 18: 0xb7 = EM_AARCH64.
                    #expect(so.stdout.split(separator: " ").map(String.init).dropFirst(18).first == "b7", "\(so.stdout)")
                } else {
                    #expect(wheel.file.hasSuffix("_x86_64.whl") && wheel.file.contains("-manylinux"), "\(wheel.file)")
                    let verdict = try PlatformFixtures.show(wheel.path)
                    #expect(wheel.file.contains(verdict.overall_tag), "\(wheel.file) vs \(verdict.overall_tag)")
                    let variant = try #require(SampleVariant.all.first { $0.package == package })
                    let counts = try Scripts.mnemonics(inWheel: wheel.path.path, scratch: scratch)
                    for m in variant.mustContain { #expect(counts[m, default: 0] > 0, "\(package) lacks \(m)") }
                    for m in variant.mustNotContain { #expect(counts[m, default: 0] == 0, "\(package) contains \(m)") }
                }
            }
        }
    }

    @Test("two builds at once on one host, a failing build, a host problem and a cancelled build")
    func behaviours() async throws {
        let scratch = try TestEnvironment.makeTemporaryDirectory("wf-farm-behave")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let source = try SourceArchive.make(from: Scripts.sample, in: scratch)
        let broken = scratch.appendingPathComponent("broken")
        #expect(try TestProcess.run("cp", ["-R", Scripts.sample.path, broken.path]).status == 0)
        let file = broken.appendingPathComponent("csrc/module.c")
        try (try String(contentsOf: file, encoding: .utf8) + "\n#error broken on purpose\n").write(to: file, atomically: true, encoding: .utf8)
        let brokenSource = try SourceArchive.make(from: broken, in: scratch)
        let dist = scratch.appendingPathComponent("dist")

        // The host's compiler can be held (HostTools.hold): the build cancelled below stays in its
        // compile phase until the cancellation has landed, however loaded the machine is (a loaded
        // test process can take many seconds to react).
        var skylake = FarmHosts.all[1]
        let tools = try HostTools.make(in: scratch.appendingPathComponent("tools"))
        skylake.environment = HostTools.environment(tools)
        try await SSHTestFarm.withFarm([skylake]) { farm in
            let runner = BuildRunner(bundle: bundle, logger: farmLogger)
            let transport = farmTransport(farm, "skylake")

            // Two at once on one host.
            async let a = runner.run(sampleRequest("wfsample-cpu", python: python, job: "pair-a"), on: transport, source: source, dist: dist)
            async let b = runner.run(sampleRequest("wfsample-cpu-avx512", python: python, job: "pair-b"), on: transport, source: source, dist: dist)
            let (ra, rb) = try await (a, b)
            #expect(ra.status == .succeeded && rb.status == .succeeded, "\(ra.logTail.suffix(1000)) \(rb.logTail.suffix(1000))")
            let wa = try #require(ra.wheels.first), wb = try #require(rb.wheels.first)
            #expect(wa.file.hasPrefix("wfsample_cpu-2.0.1-") && wb.file.hasPrefix("wfsample_cpu_avx512-2.0.1-"))
            #expect(try Scripts.mnemonics(inWheel: wa.path.path, scratch: scratch)["<zmm>", default: 0] == 0)
            #expect(try Scripts.mnemonics(inWheel: wb.path.path, scratch: scratch)["<zmm>", default: 0] > 0)
            // The agent was installed once and the source uploaded once.
            let work = farm.inventoryHost("skylake").workDir
            let listing = try await transport.run(ExecRequest("ls \(work)/agents; ls \(work)/cache/src/sample"))
            #expect(listing.stdoutText.split(separator: "\n") == [Substring(bundle.digest.hex), Substring("\(source.digest.hex).tar.gz")])

            // A compile error: a build failure with its log.
            let failed = try await runner.run(sampleRequest("wfsample-cpu", python: python, job: "broken"), on: transport,
                                              source: brokenSource, dist: dist)
            #expect(failed.status == .failed && failed.exitCode == 1 && failed.phase == "compile")
            #expect(failed.logTail.contains("broken on purpose") && failed.wheels.isEmpty)
            let logPath = try #require(failed.remoteLog)
            let fetched = scratch.appendingPathComponent("broken.log")
            _ = try await transport.download(logPath, to: fetched.path, expected: .any)
            let log = try String(contentsOf: fetched, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
            let line = try #require(failed.failureLogLine)
            #expect(log.dropFirst(line - 1).contains { $0.contains("broken on purpose") })

            // Host problems: a work directory that cannot exist, and one with too little space.
            let blocked = farmTransport(farm, "skylake", workDir: "/proc/version/work")
            let unusable = try await runner.run(sampleRequest("wfsample-cpu", python: python, job: "nowhere"), on: blocked, source: source, dist: dist)
            #expect(unusable.status == .hostProblem && unusable.phase == "install")
            var greedy = sampleRequest("wfsample-cpu", python: python, job: "greedy")
            greedy.minimumFreeMB = 1 << 40
            let full = try await runner.run(greedy, on: transport, source: source, dist: dist)
            #expect(full.status == .hostProblem && full.exitCode == 3 && full.message?.contains("MiB free") == true)
            #expect(full.status.isRetryableElsewhere && !failed.status.isRetryableElsewhere)

            // Cancellation: stop the caller's task during the compile phase.
            let compiling = AsyncStream<Void>.makeStream()
            try HostTools.hold(tools)
            defer { HostTools.release(tools) }
            let task = Task {
                try await runner.run(sampleRequest("wfsample-cpu", python: python, job: "doomed"), on: transport, source: source, dist: dist,
                                     onEvent: { event in if case .phase("compile", _) = event { compiling.continuation.yield() } })
            }
            var iterator = compiling.stream.makeAsyncIterator()
            _ = await iterator.next()
            task.cancel()
            let cancelled = try await task.value
            #expect(cancelled.status == .cancelled)
            let status = try await transport.run(ExecRequest("cat \(work)/jobs/doomed/status.json"))
            #expect(status.stdoutText.contains("\"cancelled\""), "\(status.stdoutText)")
            // No process of the job is left (the pattern is written so that it does not match itself).
            let left = try await transport.run(ExecRequest("ps -eo pid,args | grep '[j]obs/doome[d]' || true"))
            #expect(left.stdoutText.isEmpty, "\(left.stdoutText)")
        }
    }
}
