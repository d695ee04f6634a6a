/// The simulated build hosts used by farm tests: one per sample variant level (each with exactly
/// that variant's CPU flags, so a variant's forbidden flags rule the others out) and an arm64 host.
public enum SampleFarm {
    /// x86-64 flags every host has (AVX2 level).
    public static let base = ["sse", "sse2", "ssse3", "sse4_1", "sse4_2", "popcnt", "avx", "avx2", "fma", "f16c", "bmi1", "bmi2"]
    /// The AVX-512 foundation flags on top of ``base``.
    public static let avx512 = base + ["avx512f", "avx512vl", "avx512bw", "avx512dq", "avx512cd"]
    /// plain, skylake, cascadelake, cooperlake, sapphire (amd64) and graviton (arm64).
    public static let hosts: [SimulatedHost] = [
        SimulatedHost(name: "plain", cpuFlags: base),
        SimulatedHost(name: "skylake", cpuFlags: avx512),
        SimulatedHost(name: "cascadelake", cpuFlags: avx512 + ["avx512_vnni"]),
        SimulatedHost(name: "cooperlake", cpuFlags: avx512 + ["avx512_vnni", "avx512_bf16"]),
        SimulatedHost(name: "sapphire", cpuFlags: avx512 + ["avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile", "amx_int8"]),
        SimulatedHost(name: "graviton", arch: .arm64, cpuFlags: ["fp", "asimd", "aes", "pmull", "sha1", "sha2", "crc32", "atomics", "asimddp"]),
    ]

    /// ``hosts`` with the second CPython (``TestEnvironment/secondPythonBin``) first on their PATH,
    /// so each has Python 3.11 and 3.13.
    public static var hostsWithTwoPythons: [SimulatedHost] {
        hosts.map { var host = $0; host.environment.merge(HostTools.environment(TestEnvironment.secondPythonBin)) { $1 }; return host }
    }
}
