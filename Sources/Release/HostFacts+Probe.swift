import Agents
import FarmCore
import Recipes
import Scheduling

extension HostFacts {
    /// What scheduling needs from a probe report: Pythons, compilers, the C library and recipe
    /// prerequisites, for builds run with `builder` (`docker` builds link against the container
    /// image's C library, not the host's).
    public init(probe report: ProbeReport, builder: BuildRequest.Builder) {
        self.init(pythons: Set(report.pythonVersions), canProvisionPython: report.canProvisionPython, gccVersion: report.gccVersion,
                  libc: report.libc, libstdcxx: report.libstdcxx?.glibcxx, containerBuilds: builder == .docker)
        cxxVersion = report.cxx?.parsedVersion
        if let p = report.prerequisites {
            headersFound = Set(p.headersFound); headersMissing = Set(p.headersMissing)
            toolsFound = Set(p.toolsFound); toolsMissing = Set(p.toolsMissing)
        }
    }

    /// The facts of a probe report for native builds.
    public init(report: ProbeReport) { self.init(probe: report, builder: .native) }
}

extension Recipe {
    /// Every prerequisite any version or variant of the recipe names (what a probe is asked about).
    public var allPrerequisites: [Prerequisite] {
        var out = prerequisites + when.flatMap(\.prerequisites)
        for v in variants { out += v.prerequisites + v.when.flatMap(\.prerequisites) }
        var seen = Set<Prerequisite>()
        return out.filter { seen.insert($0).inserted }
    }
}
