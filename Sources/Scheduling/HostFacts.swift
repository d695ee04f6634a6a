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
    /// The host's C library (`glibc 2.36`), or `nil` when the probe could not tell. A native
    /// build links against it, so it bounds the platform tags the host's wheels can have.
    public var libc: LibcVersion?
    /// The newest `GLIBCXX` symbol version the host's libstdc++ defines (`3.4.30`), if known.
    public var libstdcxx: String?
    /// Whether builds run in a manylinux/musllinux container (`--builder docker`), whose C library
    /// is the image's, chosen for the required tag, rather than the host's.
    public var containerBuilds: Bool
    /// Set when the probe failed for a reason retrying cannot fix (host key mismatch, refused
    /// keys…): the scheduler takes the host out of the run with this reason and ignores the rest.
    public var refusal: String?
    /// The version of the host's C++ compiler (`$CXX`, else g++), or `nil` when unknown.
    public var cxxVersion: PEP440Version?
    /// Headers and tools the probe found and did not find (others are unknown: they rule nothing out).
    public var headersFound: Set<String> = []
    public var headersMissing: Set<String> = []
    public var toolsFound: Set<String> = []
    public var toolsMissing: Set<String> = []

    /// Creates probe facts.
    public init(pythons: Set<PythonVersion> = [], canProvisionPython: Bool = false, gccVersion: PEP440Version? = nil,
                libc: LibcVersion? = nil, libstdcxx: String? = nil, containerBuilds: Bool = false, refusal: String? = nil) {
        self.pythons = pythons; self.canProvisionPython = canProvisionPython; self.gccVersion = gccVersion
        self.libc = libc; self.libstdcxx = libstdcxx; self.containerBuilds = containerBuilds
        self.refusal = refusal
    }

    /// The oldest C library a container image for a required tag has (the pypa images:
    /// manylinux2014 = glibc 2.17, manylinux_2_28, manylinux_2_34, musllinux_1_2), chosen as
    /// `agents/build.sh` chooses it; `nil` when no image builds that tag.
    public static func containerLibc(for required: LibcVersion) -> LibcVersion? {
        switch required.family {
        case .glibc:
            guard required.major == 2, required.minor >= 17 else { return nil }
            return LibcVersion(.glibc, 2, required.minor >= 34 ? 34 : required.minor >= 28 ? 28 : 17)
        case .musl:
            guard required.major == 1, required.minor >= 2 else { return nil }
            return LibcVersion(.musl, 1, 2)
        }
    }

    /// Why builds on this host cannot produce wheels meeting `requirement`; nil when they can or
    /// when the facts cannot tell (the build step checks again).
    public func platformProblem(_ requirement: PlatformRequirement?) -> Ineligibility? {
        guard case let .portable(required)? = requirement else { return nil }
        if containerBuilds {
            return Self.containerLibc(for: required) == nil ? .platformUnreachable(required: requirement!, hostLibc: nil, container: true) : nil
        }
        guard let libc else { return nil }
        if libc.family != required.family || libc > required {
            return .platformUnreachable(required: requirement!, hostLibc: libc, container: false)
        }
        return nil
    }
}
