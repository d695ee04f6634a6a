import Agents
import FarmCore
import FarmTestSupport
import Foundation
import Inventory
import Recipes
import Testing

@Suite("probe.sh reports the host as it is")
struct ProbeScriptTests {
    @Test("the report matches what this machine says about itself")
    func matchesMachine() throws {
        let work = try TestEnvironment.makeTemporaryDirectory("wf-probe")
        defer { try? FileManager.default.removeItem(at: work) }
        let report = try Scripts.localProbe(workDir: work)

        let uname = try TestProcess.run("uname", ["-m"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(report.arch == uname)
        #expect(report.parsedArch != nil)
        #expect(Set(report.cpuFlags) == (try Scripts.hostFlags()))
        #expect(report.cores == ProcessInfo.processInfo.activeProcessorCount)
        #expect((report.memoryBytes ?? 0) > 0 && (report.memoryBytes ?? 0) >= (report.memoryAvailableBytes ?? 0))
        #expect(report.workDir == work.path && report.workDirExists && report.workDirWritable)
        let free = try FileManager.default.attributesOfFileSystem(forPath: work.path)[.systemFreeSize] as? Int64
        #expect(free != nil && report.workDirFreeBytes != nil)
        if let free, let reported = report.workDirFreeBytes {
            // Other builders write to the same disk: allow 1 GiB of drift between the two looks.
            #expect(abs(free - reported) < 1 << 30)
        }

        let gcc = try TestProcess.run("gcc", ["-dumpfullversion"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(report.gcc?.version == gcc)
        #expect(report.gcc?.cross == false)
        let glibc = try TestProcess.run("getconf", ["GNU_LIBC_VERSION"]).stdout.split(separator: " ").last.map {
            $0.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        #expect(report.glibc == glibc)
        let osRelease = try String(contentsOfFile: "/etc/os-release", encoding: .utf8)
        #expect(report.os?.id.map { osRelease.contains("ID=\($0)") } == true)

        // Every interpreter listed reports its own version.
        #expect(!report.pythons.isEmpty)
        for p in report.pythons {
            let v = try TestProcess.run(p.path, ["-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"])
            #expect(v.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == p.version, "\(p.path)")
        }
        let dockerUsable = (try? TestProcess.run("docker", ["info"]))?.status == 0
        #expect(report.docker?.usable == dockerUsable)
    }

    @Test("a host with a different CPU reports that CPU's flags")
    func fakeFlags() throws {
        let work = try TestEnvironment.makeTemporaryDirectory("wf-probe")
        defer { try? FileManager.default.removeItem(at: work) }
        let cpu = try Scripts.fakeCPUInfo(adding: ["avx512f", "avx512_vnni", "amx_bf16"], removing: ["avx2"], in: work)
        let report = try Scripts.localProbe(workDir: work, cpuinfo: cpu)
        #expect(report.capabilities.isSuperset(of: [Capability("avx512f"), Capability("avx512_vnni"), Capability("amx_bf16")]))
        #expect(!report.capabilities.contains(Capability("avx2")))
    }

    @Test("a missing work directory is reported, not created")
    func missingWorkDir() throws {
        let parent = try TestEnvironment.makeTemporaryDirectory("wf-probe")
        defer { try? FileManager.default.removeItem(at: parent) }
        let work = parent.appendingPathComponent("not-there")
        let report = try Scripts.localProbe(workDir: work)
        #expect(!report.workDirExists && !report.workDirWritable)
        #expect(!FileManager.default.fileExists(atPath: work.path))
        #expect(report.workDirFreeBytes != nil)
    }
}

@Suite("inventory entries compared with probe reports")
struct ProbeComparisonTests {
    /// A recipe shaped like the sample's: five variants, the upper three needing a newer GCC than `gcc`.
    static func recipe(minimumGCC: PEP440Version?) -> Recipe {
        let base: Set<Capability> = [Capability("avx2")]
        let avx512: Set<Capability> = ["avx512f", "avx512vl", "avx512bw", "avx512dq"].reduce(into: []) { $0.insert(Capability($1)) }
        let vnni = Capability("avx512_vnni"), bf16 = Capability("avx512_bf16"), amx = Capability("amx_bf16")
        func v(_ pkg: String, _ short: String, requires: Set<Capability>, forbids: Set<Capability>, gcc: PEP440Version? = nil) -> Variant {
            Variant(package: pkg, shortName: short, arches: [.amd64: .init(requires: requires, forbids: forbids)], minimumGCC: gcc)
        }
        return Recipe(name: "sample", source: "examples/wfsample", buildStep: "sample", module: "wfsample", variants: [
            v("wfsample-cpu", "noavx512", requires: base, forbids: []),
            v("wfsample-cpu-avx512", "avx512", requires: base.union(avx512), forbids: [vnni, bf16, amx]),
            v("wfsample-cpu-avx512vnni", "avx512vnni", requires: base.union(avx512).union([vnni]), forbids: [bf16, amx], gcc: minimumGCC),
            v("wfsample-cpu-avx512bf16", "avx512bf16", requires: base.union(avx512).union([vnni, bf16]), forbids: [amx], gcc: minimumGCC),
            v("wfsample-cpu-amxbf16", "amxbf16", requires: base.union(avx512).union([vnni, bf16, amx]), forbids: [], gcc: minimumGCC),
        ], defaultVariant: "noavx512")
    }

    static let avx512Flags = ["avx2", "avx512f", "avx512vl", "avx512bw", "avx512dq"]

    func probe(adding: [String], removing: Set<String> = []) throws -> ProbeReport {
        let work = try TestEnvironment.makeTemporaryDirectory("wf-cmp")
        defer { try? FileManager.default.removeItem(at: work) }
        return try Scripts.localProbe(workDir: work, cpuinfo: try Scripts.fakeCPUInfo(adding: adding, removing: removing, in: work))
    }

    func host(_ flags: [String], arch: Arch = .amd64) -> InventoryHost {
        InventoryHost(name: "h", arch: arch, capabilities: Set(flags.flatMap { Capability.normalise($0, arch: arch)! }))
    }

    @Test("a declared flag the host lacks is an error")
    func missingDeclared() throws {
        let report = try probe(adding: ["avx2"], removing: ["avx512f", "avx512_vnni"])
        let cmp = ProbeComparison(host: host(["avx2", "avx512", "vnni"]), report: report)
        #expect(cmp.hasErrors)
        let missing = cmp.findings.compactMap { if case let .missingCapabilities(f) = $0.kind { f } else { nil } }.first
        #expect(missing?.contains(Capability("avx512f")) == true)
        #expect(missing?.contains(Capability("avx512_vnni")) == true)
    }

    @Test("an undeclared flag is shown, and is an error when an eligible variant forbids it")
    func undeclared() throws {
        let report = try probe(adding: Self.avx512Flags + ["avx512_vnni"], removing: ["avx512_bf16", "amx_bf16"])
        // Declared as a plain AVX-512 host: the avx512 variant may build here, and VNNI would leak.
        let cmp = ProbeComparison(host: host(Self.avx512Flags), report: report, recipes: [Self.recipe(minimumGCC: nil)])
        #expect(cmp.undeclaredCapabilities.contains(Capability("avx512_vnni")))
        #expect(cmp.findings.contains { $0.severity == .error && $0.kind == .leakingCapabilities(variant: "wfsample-cpu-avx512", flags: [Capability("avx512_vnni")]) })
        // Declared fully: nothing to complain about.
        let full = ProbeComparison(host: host(Self.avx512Flags + ["avx512_vnni"]), report: report, recipes: [Self.recipe(minimumGCC: nil)])
        #expect(!full.findings.contains { if case .leakingCapabilities = $0.kind { true } else { false } })
        #expect(!full.findings.contains { if case .missingCapabilities = $0.kind { true } else { false } })
        #expect(!full.undeclaredCapabilities.contains(Capability("avx512_vnni")))
    }

    @Test("a compiler older than a variant needs is reported for that variant only")
    func compilerTooOld() throws {
        let report = try probe(adding: Self.avx512Flags + ["avx512_vnni"], removing: ["avx512_bf16", "amx_bf16"])
        let gcc = try #require(report.gcc?.parsedVersion)
        var newer = gcc
        newer.release = [gcc.release[0] + 1]
        let cmp = ProbeComparison(host: host(Self.avx512Flags + ["avx512_vnni"]), report: report, recipes: [Self.recipe(minimumGCC: newer)])
        let tooOld = cmp.findings.compactMap { if case let .compilerTooOld(variant, _, needed) = $0.kind { (variant, needed) } else { nil } }
        // Only the VNNI variant is eligible on this host (bf16/amx need flags it lacks).
        #expect(tooOld.map(\.0) == ["wfsample-cpu-avx512vnni"])
        #expect(tooOld.first?.1 == newer.description)
        #expect(cmp.hasErrors)
        let ok = ProbeComparison(host: host(Self.avx512Flags + ["avx512_vnni"]), report: report, recipes: [Self.recipe(minimumGCC: gcc)])
        #expect(!ok.findings.contains { if case .compilerTooOld = $0.kind { true } else { false } })
    }

    @Test("an arch mismatch is an error")
    func archMismatch() throws {
        let report = try probe(adding: [])
        let other: Arch = report.parsedArch == .amd64 ? .arm64 : .amd64
        let cmp = ProbeComparison(host: host([], arch: other), report: report)
        #expect(cmp.findings.contains { $0.severity == .error && $0.kind == .archMismatch(declared: other, found: report.arch) })
    }

    @Test("a matching host has no errors")
    func matching() throws {
        let report = try probe(adding: [])
        let arch = try #require(report.parsedArch)
        let declared = report.cpuFlags.filter { Capability.known.contains($0) && $0 != "avx512_vnni" && $0 != "avx512_bf16" && $0 != "amx_bf16" }
        let cmp = ProbeComparison(host: host(declared, arch: arch), report: report, minimumFreeBytes: 0)
        #expect(!cmp.hasErrors, "\(cmp.findings)")
    }
}
