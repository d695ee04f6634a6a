import Agents
import FarmCore
import Recipes
import Scheduling

extension HostFacts {
    /// What scheduling needs from a probe report: Pythons, compilers and recipe prerequisites.
    public init(report: ProbeReport) {
        self.init(pythons: report.pythonVersions, canProvisionPython: report.canProvisionPython, gccVersion: report.gccVersion)
        cxxVersion = report.cxx?.parsedVersion
        if let p = report.prerequisites {
            headersFound = Set(p.headersFound); headersMissing = Set(p.headersMissing)
            toolsFound = Set(p.toolsFound); toolsMissing = Set(p.toolsMissing)
        }
    }
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
