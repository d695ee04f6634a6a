import FarmCore
import Testing

@Suite("PEP 440 versions")
struct PEP440VersionTests {
    @Test(arguments: [
        ("0.11.0", "0.11.0"), ("v1.0", "1.0"), ("1.0RC1", "1.0rc1"), ("1.0-alpha.2", "1.0a2"), ("1.0c3", "1.0rc3"),
        ("1.0.post1", "1.0.post1"), ("1.0-1", "1.0.post1"), ("1.0rev2", "1.0.post2"), ("1.0.dev", "1.0.dev0"),
        ("2!1.0", "2!1.0"), ("1.0+ubuntu.1", "1.0+ubuntu.1"), ("1.0.0rc1.post2.dev3", "1.0.0rc1.post2.dev3"),
    ])
    func normalises(input: String, expected: String) throws {
        let v = try #require(PEP440Version(input))
        #expect(v.description == expected)
    }

    @Test(arguments: ["", "abc", "1..0", "1.0.", "1.0-", "1.0+", "1.0+a_", "1.0 beta 2 x", "1.0post1dev1x"])
    func rejects(input: String) {
        #expect(PEP440Version(input) == nil)
    }

    @Test func ordersAsTheSpecificationSays() throws {
        let ordered = ["1.0.dev1", "1.0a1", "1.0a2.dev1", "1.0a2", "1.0b1", "1.0rc1", "1.0", "1.0+local", "1.0.post1.dev1", "1.0.post1", "1.1", "2!0.1"]
        let versions = try ordered.map { try #require(PEP440Version($0)) }
        for (a, b) in zip(versions, versions.dropFirst()) { #expect(a < b, "\(a) < \(b)") }
        #expect(PEP440Version("1.0") == PEP440Version("1.0.0"))
    }
}

@Suite("Version suffixes")
struct VersionSuffixTests {
    @Test func acceptsPostAndDev() throws {
        let post = try #require(VersionSuffix(".post1"))
        #expect(post.applied(to: PEP440Version("0.11.0")!)?.description == "0.11.0.post1")
        let dev = try #require(VersionSuffix(".dev2"))
        #expect(dev.applied(to: PEP440Version("0.11.0")!)?.description == "0.11.0.dev2")
    }

    @Test(arguments: ["post1", ".post", ".rc1", ".post1a", "1", ".post-1", ".a1"])
    func rejectsOtherForms(input: String) { #expect(VersionSuffix(input) == nil) }

    @Test func refusesASegmentTheVersionAlreadyHas() {
        #expect(VersionSuffix(".post2")!.applied(to: PEP440Version("1.0.post1")!) == nil)
    }
}

@Suite("Python versions")
struct PythonVersionTests {
    @Test func parsesSelections() throws {
        #expect(try PythonVersion.parseSelection("3.13").map(\.description) == ["3.13"])
        #expect(try PythonVersion.parseSelection("3.12,3.10,3.11").map(\.description) == ["3.10", "3.11", "3.12"])
        #expect(try PythonVersion.parseSelection("3.10-3.13").map(\.description) == ["3.10", "3.11", "3.12", "3.13"])
        #expect(try PythonVersion.parseSelection("3.9, 3.11-3.12,3.12").map(\.description) == ["3.9", "3.11", "3.12"])
        #expect(PythonVersion("cp312")?.description == "3.12")
    }

    @Test(arguments: ["", "3", "3.x", "3.13-3.10", "2.7-3.1", "3.10,,3.11", "three"])
    func rejectsBadSelections(input: String) {
        #expect(throws: SelectionError.self) { try PythonVersion.parseSelection(input) }
    }
}

@Suite("CPU vocabulary")
struct CapabilityTests {
    @Test func aliasesNormalise() {
        #expect(Capability.normalise("avx512")!.map(\.name).sorted() == ["avx512bw", "avx512dq", "avx512f", "avx512vl"])
        #expect(Capability.normalise("vnni")!.map(\.name) == ["avx512_vnni"])
        #expect(Capability.normalise("amx")!.map(\.name).sorted() == ["amx_bf16", "amx_tile"])
        #expect(Capability.normalise("bf16", arch: .amd64)!.map(\.name) == ["avx512_bf16"])
        #expect(Capability.normalise("bf16", arch: .arm64)!.map(\.name) == ["bf16"])
        #expect(Capability.normalise("AVX512_VNNI")!.map(\.name) == ["avx512_vnni"])
        #expect(Capability.normalise("avx1024") == nil)
    }

    @Test func archAliases() {
        #expect(Arch(parsing: "x86_64") == .amd64)
        #expect(Arch(parsing: "aarch64") == .arm64)
        #expect(Arch(parsing: "ppc64le") == nil)
    }

    @Test func suggestsCloseNames() {
        #expect(DidYouMean.suggestion(for: "avx512_vnnni", among: Capability.acceptedNames) == "avx512_vnni")
        #expect(DidYouMean.suggestion(for: "portt", among: ["port", "user"]) == "port")
        #expect(DidYouMean.suggestion(for: "zzzzzz", among: ["port", "user"]) == nil)
    }

    @Test func digestsRoundTrip() throws {
        let d = SHA256Digest.of(Array("abc".utf8))
        #expect(d.hex == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256Digest(hex: d.hex) == d)
        #expect(d.recordBase64 == "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0")
    }
}
