import FarmCore
import FarmTestSupport
import Foundation
import Recipes
import Testing
@testable import Wheels

/// Wheels compiled here for the platform audit, built once per test run.
actor PlatformWheels {
    static let shared = PlatformWheels()

    struct Built: Sendable {
        let dir: URL
        /// The C++17/thread/OpenMP extension as pip built it (`linux_x86_64`).
        let threadedLinux: URL
        /// The same wheel retagged manylinux_2_28 without looking, as build.sh used to.
        let threadedBlindRetag: URL
        /// The same wheel after `auditwheel repair` (libgomp vendored, tag from the content).
        let threadedRepaired: URL
        /// A plain C extension retagged manylinux_2_17.
        let plainC217: URL
        /// A C extension needing libwfprov.so, requiring the `wfprov` distribution, tagged manylinux_2_17.
        let provided: URL
        /// The same without the Requires-Dist on wfprov.
        let providedUnrequired: URL
    }

    private var task: Task<Built, Error>?

    func built() async throws -> Built {
        if let task { return try await task.value }
        let t = Task { try Self.build() }
        task = t
        return try await t.value
    }

    private static func build() throws -> Built {
        let dir = try TestEnvironment.makeTemporaryDirectory("wheelfarm-platform")
        let linux = try PlatformFixtures.buildWheel(distribution: "wfthreads", module: "wfthreads", extension: .threaded, platformTag: nil, in: dir)
        let blind = dir.appendingPathComponent("blind")
        try FileManager.default.createDirectory(at: blind, withIntermediateDirectories: true)
        let blindWheel = blind.appendingPathComponent(linux.lastPathComponent)
        try FileManager.default.copyItem(at: linux, to: blindWheel)
        try WheelFixtures.check("wheel tags", TestEnvironment.python, ["-m", "wheel", "tags", "--remove", "--platform-tag", "manylinux_2_28_x86_64", blindWheel.path])
        let retagged = try FileManager.default.contentsOfDirectory(at: blind, includingPropertiesForKeys: nil).first { $0.pathExtension == "whl" }!
        let repaired = try PlatformFixtures.repair(linux, into: dir.appendingPathComponent("repaired"))
        let plain = try PlatformFixtures.buildWheel(distribution: "wfplain", module: "wfplain", extension: .init(source: PlatformFixtures.plainC),
                                                    platformTag: "manylinux_2_17_x86_64", in: dir)
        let lib = try PlatformFixtures.providerLibrary(in: dir)
        let ext = PlatformFixtures.Extension(source: PlatformFixtures.usesProvider, libraries: ["wfprov"], libraryDirs: [lib.path])
        let provided = try PlatformFixtures.buildWheel(distribution: "wfuser", module: "wfuser", extension: ext, requires: ["wfprov>=1"],
                                                       platformTag: "manylinux_2_17_x86_64", in: dir)
        let unrequired = try PlatformFixtures.buildWheel(distribution: "wfloner", module: "wfloner", extension: ext,
                                                         platformTag: "manylinux_2_17_x86_64", in: dir)
        return Built(dir: dir, threadedLinux: linux, threadedBlindRetag: retagged, threadedRepaired: repaired, plainC217: plain,
                     provided: provided, providedUnrequired: unrequired)
    }
}

@Suite("Platform audit of compiled extensions")
struct PlatformAuditTests {
    @Test("a C++/OpenMP extension retagged manylinux_2_28 fails, naming the symbol versions, a symbol and libgomp, with the tag it allows")
    func blindRetagFails() async throws {
        let f = try await PlatformWheels.shared.built()
        let report = await WheelVerifier().verify(path: f.threadedBlindRetag.path)
        let symbols = try #require(report.check(.platformSymbols))
        let libraries = try #require(report.check(.platformLibraries))
        #expect(symbols.outcome == .fail)
        #expect(libraries.outcome == .fail)
        let verdict = try PlatformFixtures.show(f.threadedBlindRetag)
        // auditwheel is the reference: it too finds the wheel needs more than manylinux_2_28.
        #expect(verdict.sym_tag != "manylinux_2_28_x86_64" && verdict.overall_tag == "linux_x86_64", "\(verdict)")
        #expect(report.platform?.mostCompatibleTag == verdict.overall_tag)
        #expect(report.platform?.symbolsAllow == verdict.sym_tag, "ours \(report.platform?.symbolsAllow ?? "-"), auditwheel \(verdict.sym_tag)")
        // The message names the versions above 2.28, a symbol that needs one, and what the content allows.
        let needed = try #require(report.platform?.highest["GLIBC"])
        #expect(symbols.message.contains("GLIBC_\(needed)"), "\(symbols.message)")
        #expect(["pthread_once", "__libc_single_threaded", "pthread_create"].contains { symbols.message.contains($0) }, "\(symbols.message)")
        #expect(symbols.message.contains("GLIBC up to 2.28"))
        #expect(symbols.message.contains("\(verdict.sym_tag) at best"), "\(symbols.message)")
        #expect(libraries.message.contains("libgomp.so.1"))
        #expect(libraries.message.contains("vendor it with auditwheel repair") && libraries.message.contains("provided by a dependency")
                && libraries.message.contains("link it statically"), "\(libraries.message)")
        #expect(report.platform?.libraries.first { $0.name == "libgomp.so.1" }?.resolution == "missing")
    }

    @Test("the same extension repaired by auditwheel (libgomp vendored under .libs, tag from the content) passes")
    func repairedPasses() async throws {
        let f = try await PlatformWheels.shared.built()
        let report = await WheelVerifier().verify(path: f.threadedRepaired.path)
        for id in [WheelCheckID.elfDynamic, .platformSymbols, .platformLibraries] {
            #expect(report.check(id)?.outcome == .pass, "\(id): \(report.check(id)?.message ?? "-")")
        }
        #expect(report.passed, "\(report.failures)")
        let gomp = try #require(report.platform?.libraries.first { $0.name.hasPrefix("libgomp") })
        #expect(gomp.resolution == "vendored")
        #expect(gomp.detail?.hasPrefix("wfthreads.libs/") == true)
        // The vendored library is itself audited.
        #expect(report.sharedObjects.contains { $0.path.hasPrefix("wfthreads.libs/libgomp") && $0.dependencies != nil })
        let verdict = try PlatformFixtures.show(f.threadedRepaired)
        #expect(report.platform?.mostCompatibleTag == verdict.overall_tag)
        #expect(report.filename?.platformTags.contains(verdict.overall_tag) == true)
        #expect(report.check(.platformLibraries)?.message.contains("vendored") == true)
    }

    @Test("a plain C extension needing only old symbols passes manylinux_2_17 and would allow more")
    func plainCPasses() async throws {
        let f = try await PlatformWheels.shared.built()
        let report = await WheelVerifier().verify(path: f.plainC217.path)
        #expect(report.passed, "\(report.failures)")
        #expect(report.check(.platformSymbols)?.outcome == .pass)
        let verdict = try PlatformFixtures.show(f.plainC217)
        #expect(report.platform?.mostCompatibleTag == verdict.overall_tag)
        #expect(report.check(.platformSymbols)?.message.contains("most compatible tag the content allows is \(verdict.overall_tag)") == true)
    }

    @Test("a library declared as provided by a dependency the wheel requires passes, and the report says so")
    func providedPasses() async throws {
        let f = try await PlatformWheels.shared.built()
        let expectation = WheelExpectation(providedLibraries: [ProvidedLibrary(pattern: "libwfprov.so", provider: "wfprov")])
        let report = await WheelVerifier().verify(path: f.provided.path, expectation: expectation)
        let libraries = try #require(report.check(.platformLibraries))
        #expect(libraries.outcome == .pass, "\(libraries.message)")
        #expect(libraries.message.contains("libwfprov.so provided by wfprov (declared by the recipe)"))
        #expect(report.platform?.libraries.first { $0.name == "libwfprov.so" }?.resolution == "provided")
        #expect(report.passed, "\(report.failures)")
    }

    @Test("an undeclared library fails with its name and the fix; a provider the wheel does not require fails too")
    func undeclaredFails() async throws {
        let f = try await PlatformWheels.shared.built()
        let report = await WheelVerifier().verify(path: f.provided.path)
        let libraries = try #require(report.check(.platformLibraries))
        #expect(libraries.outcome == .fail)
        #expect(libraries.message.contains("libwfprov.so (needed by 'wfuser/_C"))
        #expect(libraries.message.contains("vendor it with auditwheel repair, declare it as provided by a dependency"))
        #expect(report.platform?.mostCompatibleTag == "linux_x86_64")
        // auditwheel agrees the wheel is not portable as it is.
        let verdict = try PlatformFixtures.show(f.provided, extraLibraryPath: f.dir.appendingPathComponent("provider").path)
        #expect(verdict.overall_tag == "linux_x86_64")

        let expectation = WheelExpectation(providedLibraries: [ProvidedLibrary(pattern: "libwfprov*.so", provider: "wfprov")])
        let lonely = await WheelVerifier().verify(path: f.providedUnrequired.path, expectation: expectation)
        #expect(lonely.check(.platformLibraries)?.outcome == .fail)
        #expect(lonely.check(.platformLibraries)?.message.contains("does not require 'wfprov'") == true)
    }

    @Test("the recipe's platform requirement: a manylinux_2_17 wheel meets manylinux_2_28; a wheel needing glibc 2.34 does not")
    func requirement() async throws {
        let f = try await PlatformWheels.shared.built()
        let want = WheelExpectation(platform: PlatformRequirement("manylinux_2_28"))
        let plain = await WheelVerifier().verify(path: f.plainC217.path, expectation: want)
        #expect(plain.check(.platformRequirement)?.outcome == .pass)
        let repaired = await WheelVerifier().verify(path: f.threadedRepaired.path, expectation: want)
        let check = try #require(repaired.check(.platformRequirement))
        #expect(check.outcome == .fail)
        #expect(check.message.contains("requires manylinux_2_28") && check.message.contains("--builder docker"), "\(check.message)")
        #expect(await WheelVerifier().verify(path: f.plainC217.path).check(.platformRequirement)?.outcome == .skip)
    }

    @Test("a musllinux tag on glibc code fails: libc.so.6 is not musl's C library")
    func musllinuxOnGlibc() async throws {
        let f = try await PlatformWheels.shared.built()
        let dir = try TestEnvironment.makeTemporaryDirectory("wheelfarm-musl")
        defer { try? FileManager.default.removeItem(at: dir) }
        let copy = dir.appendingPathComponent(f.plainC217.lastPathComponent)
        try FileManager.default.copyItem(at: f.plainC217, to: copy)
        try WheelFixtures.check("wheel tags", TestEnvironment.python, ["-m", "wheel", "tags", "--remove", "--platform-tag", "musllinux_1_2_x86_64", copy.path])
        let musl = try FileManager.default.contentsOfDirectory(at: dir, includingPropertiesForKeys: nil).first { $0.pathExtension == "whl" }!
        let report = await WheelVerifier().verify(path: musl.path)
        #expect(report.check(.platformLibraries)?.outcome == .fail)
        #expect(report.check(.platformLibraries)?.message.contains("libc.so.6") == true)
    }

    @Test("a bare ELF object reports what it needs and the most compatible tag it allows")
    func bareObject() async throws {
        let f = try await PlatformWheels.shared.built()
        let dir = try TestEnvironment.makeTemporaryDirectory("wheelfarm-bare")
        defer { try? FileManager.default.removeItem(at: dir) }
        try WheelFixtures.check("unzip", "unzip", ["-q", f.threadedLinux.path, "-d", dir.path])
        let so = try FileManager.default.subpathsOfDirectory(atPath: dir.path).first { $0.hasSuffix(".so") }!
        let report = WheelVerifier().verifyObject(path: dir.appendingPathComponent(so).path)
        #expect(report.check(.elfDynamic)?.outcome == .pass)
        let deps = try #require(report.sharedObjects.first?.dependencies)
        #expect(deps.needed.contains("libgomp.so.1") && deps.needed.contains("libstdc++.so.6"))
        #expect(report.platform?.mostCompatibleTag == "linux_x86_64")
    }

    @Test("NEEDED, RUNPATH and version needs equal what objdump -p reads, for the extension and system libraries")
    func matchesObjdump() async throws {
        let f = try await PlatformWheels.shared.built()
        let dir = try TestEnvironment.makeTemporaryDirectory("wheelfarm-objdump")
        defer { try? FileManager.default.removeItem(at: dir) }
        try WheelFixtures.check("unzip", "unzip", ["-q", f.threadedRepaired.path, "-d", dir.path])
        var paths = try FileManager.default.subpathsOfDirectory(atPath: dir.path).filter { $0.contains(".so") }.map { dir.appendingPathComponent($0).path }
        let system = try WheelFixtures.check("gcc libstdc++", "gcc", ["-print-file-name=libstdc++.so.6"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        paths.append(URL(fileURLWithPath: system).resolvingSymlinksInPath().path)
        for path in paths {
            let file = try ReadOnlyFile(path: path)
            let deps = try ELFFile(file: file, name: path).dependencies(file: file, name: path)
            let listing = try WheelFixtures.check("objdump -p", "objdump", ["-p", path]).stdout
            var needed: [String] = [], runpath: [String] = [], versions = Set<String>()
            var library = ""
            for line in listing.split(separator: "\n") {
                let words = line.split(separator: " ", omittingEmptySubsequences: true)
                if words.first == "NEEDED", words.count == 2 { needed.append(String(words[1])) }
                if words.first == "RUNPATH" || words.first == "RPATH", words.count == 2 { runpath += words[1].split(separator: ":").map(String.init) }
                if line.hasPrefix("  required from "), let name = words.last { library = String(name.dropLast()) }
                if line.hasPrefix("    0x"), let v = words.last { versions.insert("\(library) \(v)") }
            }
            #expect(deps.needed == needed, "\(path)")
            #expect(deps.searchPath == runpath, "\(path)")
            #expect(Set(deps.versionNeeds.map { "\($0.library) \($0.version)" }) == versions, "\(path)")
        }
    }

    @Test("verify --json carries each object's dependencies and the platform report; the text names the tag the content allows")
    func cli() async throws {
        let f = try await PlatformWheels.shared.built()
        let json = try TestProcess.wheelfarm(["verify", "--json", f.threadedBlindRetag.path])
        #expect(json.status == 1)
        let reports = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
        let platform = try #require(reports.first?["platform"] as? [String: Any])
        #expect(platform["mostCompatibleTag"] as? String == "linux_x86_64")
        #expect((platform["symbolsAllow"] as? String)?.hasPrefix("manylinux_2_") == true)
        let objects = try #require(reports.first?["sharedObjects"] as? [[String: Any]])
        let deps = try #require(objects.first?["dependencies"] as? [String: Any])
        #expect((deps["needed"] as? [String])?.contains("libgomp.so.1") == true)
        let checks = try #require(reports.first?["checks"] as? [[String: Any]])
        #expect(checks.contains { $0["id"] as? String == "platform.symbols" && $0["outcome"] as? String == "fail" })
        let text = try TestProcess.wheelfarm(["verify", f.threadedBlindRetag.path])
        #expect(text.status == 1)
        #expect(text.stdout.contains("FAIL platform.symbols") && text.stdout.contains("FAIL platform.libraries"), "\(text.stdout)")
        #expect(text.stdout.contains("most compatible tag linux_x86_64"))
        let off = try TestProcess.wheelfarm(["verify", "--no-platform-audit", f.threadedBlindRetag.path])
        #expect(off.status == 0, "\(off.stdout)")
    }
}

@Suite("Platform tags and policies")
struct PlatformPolicyTests {
    @Test("PEP 600, legacy and musllinux tags parse; other tags do not",
          arguments: [("manylinux_2_28_x86_64", "manylinux_2_28_x86_64", "glibc 2.28"), ("manylinux2014_aarch64", "manylinux_2_17_aarch64", "glibc 2.17"),
                      ("manylinux2010_x86_64", "manylinux_2_12_x86_64", "glibc 2.12"), ("manylinux1_x86_64", "manylinux_2_5_x86_64", "glibc 2.5"),
                      ("musllinux_1_2_aarch64", "musllinux_1_2_aarch64", "musl 1.2"), ("linux_x86_64", "linux_x86_64", "-")])
    func tags(_ text: String, _ canonical: String, _ libc: String) throws {
        let tag = try #require(LinuxPlatformTag(text))
        #expect(tag.canonical == canonical)
        #expect((tag.libc?.description ?? "-") == libc)
    }

    @Test("malformed and non-Linux tags are not Linux platform tags", arguments: ["any", "macosx_11_0_arm64", "manylinux_2_x86_64", "manylinux_02_28_x86_64", "manylinux_2_28_", "musllinux1_x86_64", "win_amd64"])
    func notTags(_ text: String) { #expect(LinuxPlatformTag(text) == nil) }

    @Test("legacy aliases exist where auditwheel has them")
    func aliases() {
        #expect(LinuxPlatformTag("manylinux_2_17_aarch64")?.legacyAlias == "manylinux2014_aarch64")
        #expect(LinuxPlatformTag("manylinux_2_5_x86_64")?.legacyAlias == "manylinux1_x86_64")
        #expect(LinuxPlatformTag("manylinux_2_5_aarch64")?.legacyAlias == nil)
        #expect(LinuxPlatformTag("manylinux_2_28_x86_64")?.legacyAlias == nil)
    }

    @Test("recipe requirements parse and compare with tags")
    func requirements() throws {
        #expect(PlatformRequirement("manylinux2014") == .portable(LibcVersion(.glibc, 2, 17)))
        #expect(PlatformRequirement("musllinux_1_2") == .portable(LibcVersion(.musl, 1, 2)))
        #expect(PlatformRequirement("linux") == .linux)
        #expect(PlatformRequirement("manylinux_2_28_x86_64") == nil)
        #expect(PlatformRequirement("glibc2.28") == nil)
        let req = try #require(PlatformRequirement("manylinux_2_28"))
        let tags = ["manylinux1_x86_64", "manylinux_2_5_x86_64", "manylinux_2_28_x86_64"].compactMap(LinuxPlatformTag.init)
        #expect(req.isMet(by: tags))
        #expect(!req.isMet(by: [LinuxPlatformTag("manylinux_2_34_x86_64")!]))
        #expect(!req.isMet(by: [LinuxPlatformTag("musllinux_1_1_x86_64")!]))
        #expect(!req.isMet(by: [LinuxPlatformTag("linux_x86_64")!]))
    }

    @Test("a PEP 600 tag auditwheel has no policy for is audited with the policy before it plus its own glibc versions")
    func interpolated() throws {
        let p29 = try #require(PlatformPolicies.policy(for: LibcVersion(.glibc, 2, 29), machine: "x86_64"))
        #expect(p29.allows(namespace: "GLIBC", version: "2.29") && !p29.allows(namespace: "GLIBC", version: "2.30"))
        #expect(p29.newest("GLIBCXX") == "3.4.24")
        let p45 = try #require(PlatformPolicies.policy(for: LibcVersion(.glibc, 2, 45), machine: "aarch64"))
        #expect(p45.allows(namespace: "GLIBC", version: "2.45") && !p45.allows(namespace: "GLIBC", version: "2.46"))
        #expect(PlatformPolicies.policy(for: LibcVersion(.glibc, 2, 12), machine: "aarch64") == nil)
        #expect(PlatformPolicies.policy(for: LibcVersion(.glibc, 2, 17), machine: "ppc64le") == nil)
    }

    /// auditwheel's policy JSON for one family, as (name, machine) → policy.
    struct AuditwheelPolicy: Decodable {
        let name: String
        let aliases: [String]
        let symbol_versions: [String: [String: [String]]]
        let lib_whitelist: [String]
        let blacklist: [String: [String]]
    }

    @Test("the policy table equals the installed auditwheel's manylinux-policy.json and musllinux-policy.json for every policy and machine it covers",
          arguments: ["manylinux-policy.json", "musllinux-policy.json"])
    func matchesAuditwheel(_ file: String) throws {
        let url = try PlatformFixtures.auditwheelPackageDirectory().appendingPathComponent("policy/\(file)")
        let policies = try JSONDecoder().decode([AuditwheelPolicy].self, from: Data(contentsOf: url)).filter { $0.name != "linux" }
        #expect(!policies.isEmpty)
        var compared = 0
        for machine in PlatformPolicies.machines {
            let theirs = policies.filter { $0.symbol_versions[machine] != nil }
            let ours = PlatformPolicies.all(machine: machine).filter { ($0.libc.family == .glibc) == (file == "manylinux-policy.json") }
            #expect(Set(ours.map(\.name)) == Set(theirs.map(\.name)), "\(file) \(machine): policy names")
            for their in theirs {
                guard let tag = LinuxPlatformTag("\(their.name)_\(machine)"), let libc = tag.libc,
                      let mine = PlatformPolicies.exact(libc, machine: machine) else {
                    Issue.record("\(their.name) \(machine): not in wheelfarm's table")
                    continue
                }
                compared += 1
                let versions = their.symbol_versions[machine]!.mapValues(Set.init)
                #expect(mine.symbolVersions == versions, "\(their.name) \(machine): symbol versions")
                let libraries = Set(their.lib_whitelist.map { $0 == "libc.so" ? PlatformPolicies.muslLibc(machine: machine) : $0 })
                #expect(mine.libraries == libraries, "\(their.name) \(machine): libraries")
                #expect(mine.forbiddenSymbols == their.blacklist.mapValues(Set.init), "\(their.name) \(machine): forbidden symbols")
                let aliases = their.aliases.map { "\($0)_\(machine)" }
                #expect(aliases.isEmpty ? mine.tag.legacyAlias == nil : aliases == [mine.tag.legacyAlias ?? "-"], "\(their.name) \(machine): aliases")
            }
        }
        #expect(compared >= (file == "manylinux-policy.json" ? 30 : 4))
    }

    @Test("every policy allows everything the one before it allows")
    func nested() {
        for machine in PlatformPolicies.machines {
            let all = PlatformPolicies.all(machine: machine).filter { $0.libc.family == .glibc }
            for (a, b) in zip(all, all.dropFirst()) {
                for (ns, versions) in a.symbolVersions { #expect(versions.isSubset(of: b.symbolVersions[ns] ?? []), "\(machine) \(a.name) → \(b.name) \(ns)") }
                #expect(a.libraries.isSubset(of: b.libraries))
            }
        }
    }
}
