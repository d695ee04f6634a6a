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
    /// Set when the probe failed for a reason retrying cannot fix (host key mismatch, refused
    /// keys…): the scheduler takes the host out of the run with this reason and ignores the rest.
    public var refusal: String?

    /// Creates probe facts.
    public init(pythons: Set<PythonVersion> = [], canProvisionPython: Bool = false, gccVersion: PEP440Version? = nil,
                refusal: String? = nil) {
        self.pythons = pythons; self.canProvisionPython = canProvisionPython; self.gccVersion = gccVersion
        self.refusal = refusal
    }
}
