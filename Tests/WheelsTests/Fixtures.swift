import FarmCore
import FarmTestSupport
import Foundation
import Recipes
@testable import Wheels

/// Wheels and objects built once per test run and shared by the suites (pip builds take seconds).
actor SharedFixtures {
    static let shared = SharedFixtures()

    struct Built: Sendable {
        let dir: URL
        /// A real wheel with an AVX2 `_C` extension, retagged manylinux_2_28_x86_64.
        let extensionWheel: URL
        /// A real pure-Python wheel.
        let pureWheel: URL
        /// ISA level → compiled shared object.
        let objects: [String: URL]
        /// An aarch64 object (cross-compiled).
        let arm64Object: URL
        /// check id (or "valid") → derived wheel.
        let corpus: [String: URL]
    }

    private var task: Task<Built, Error>?

    func built() async throws -> Built {
        if let task { return try await task.value }
        let t = Task { try Self.build() }
        task = t
        return try await t.value
    }

    static let distribution = "wfdemo-cpu"
    static let version = "0.1.0"

    /// The expectation the valid extension wheel meets: the `noavx512`-like variant.
    static var expectation: WheelExpectation {
        WheelExpectation(name: distribution, version: version, arch: .amd64,
                         requiredFiles: ["wfdemo/__init__.py", "wfdemo/_C*.so"],
                         isa: .init(expect: [Capability("avx2")],
                                    exclude: [Capability("avx512f"), Capability("avx512_vnni"), Capability("avx512_bf16"),
                                              Capability("amx_tile"), Capability("amx_bf16")]))
    }

    private static func build() throws -> Built {
        let dir = try TestEnvironment.makeTemporaryDirectory("wheelfarm-wheels")
        var objects: [String: URL] = [:]
        for (level, src) in WheelFixtures.isaSources {
            objects[level] = try WheelFixtures.compileSharedObject(src.source, flags: src.flags, name: level, in: dir)
        }
        let arm = try WheelFixtures.compileSharedObject("int add(int a, int b) { return a + b; }\n", flags: [], name: "arm64",
                                                        in: dir, compiler: "aarch64-linux-gnu-gcc")
        let ext = try WheelFixtures.buildWheel(distribution: distribution, version: version, module: "wfdemo",
                                               extensionSource: WheelFixtures.isaSources["avx2"]!.source,
                                               compileFlags: WheelFixtures.isaSources["avx2"]!.flags, in: dir)
        let pure = try WheelFixtures.buildWheel(distribution: "wfpure", version: "1.2.3", module: "wfpure", in: dir)
        // An object that calls into libc, for the platform audit's corpus cases (gcc links
        // libc only when a libc function is used).
        let libc = try WheelFixtures.compileSharedObject("#include <stdlib.h>\nvoid *grab(size_t n) { return malloc(n); }\n",
                                                         flags: [], name: "libc-user", in: dir)
        let corpus = try WheelFixtures.makeCorpus(base: ext, avx512Object: objects["avx512f"]!, arm64Object: arm, libcObject: libc, in: dir)
        return Built(dir: dir, extensionWheel: ext, pureWheel: pure, objects: objects, arm64Object: arm, corpus: corpus)
    }
}
