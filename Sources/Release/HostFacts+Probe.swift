import Agents
import Scheduling

extension HostFacts {
    /// The scheduling facts of a probe report, for builds run with `builder` (`docker` builds link
    /// against the container image's C library, not the host's).
    public init(probe report: ProbeReport, builder: BuildRequest.Builder) {
        self.init(pythons: Set(report.pythonVersions), canProvisionPython: report.canProvisionPython, gccVersion: report.gccVersion,
                  libc: report.libc, libstdcxx: report.libstdcxx?.glibcxx, containerBuilds: builder == .docker)
    }
}
