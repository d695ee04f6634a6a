import FarmCore

/// What a probe of a build host found, as far as scheduling cares.
///
/// The caller (the release pipeline, after `hosts probe`) provides these; the scheduler never
/// probes anything itself.
public struct HostFacts: Sendable, Hashable, Codable {
    /// The CPython versions installed on the host.
    public var pythons: Set<PythonVersion>
    /// True when the host can install a missing Python (for example with uv).
    public var canProvisionPython: Bool
    /// The version of the host's GCC, or `nil` when none was found.
    public var gccVersion: PEP440Version?
    /// The version of the host's C++ compiler (`$CXX`, else g++), or `nil` when unknown.
    public var cxxVersion: PEP440Version?
    /// Headers and tools the probe found and did not find (others are unknown: they rule nothing out).
    public var headersFound: Set<String> = []
    public var headersMissing: Set<String> = []
    public var toolsFound: Set<String> = []
    public var toolsMissing: Set<String> = []

    /// Creates probe facts.
    public init(pythons: Set<PythonVersion> = [], canProvisionPython: Bool = false, gccVersion: PEP440Version? = nil) {
        self.pythons = pythons; self.canProvisionPython = canProvisionPython; self.gccVersion = gccVersion
    }
}
