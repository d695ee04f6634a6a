import FarmCore
import Foundation
import Publishing
import Recipes
import Wheels

/// Helpers the command line shares with the pipeline.
public enum ReleasePipelineSupport {
    /// What a wheel of `job` must be; the version is the published one (with any suffix).
    public static func expectation(for job: BuildJob, recipe: Recipe) -> WheelExpectation {
        var e = WheelExpectation(job: ReleaseConfiguration.buildJob(job), recipe: recipe)
        e.version = job.publishedVersion
        return e
    }

    /// Whether `file` on an index is the wheel `job` publishes: name, the published version
    /// exactly (with any suffix), Python tag and arch.
    public static func isPublishedFile(_ file: String, of job: BuildJob) -> Bool {
        isWheel(file, of: job) { $0 == PEP440Version(job.publishedVersion) }
    }

    /// Whether a wheel file name is the one `job` produces (name, version with or without the
    /// suffix, Python tag, arch).
    public static func matches(file: String, job: BuildJob) -> Bool {
        isWheel(file, of: job) { $0 == job.version || $0 == PEP440Version(job.publishedVersion) }
    }

    private static func isWheel(_ file: String, of job: BuildJob, version accepts: (PEP440Version?) -> Bool) -> Bool {
        guard let name = WheelFilename(file) else { return false }
        return Variant.normalize(name.name) == job.variant.normalizedPackage
            && accepts(PEP440Version(name.version))
            && serves(name, python: job.python)
            && name.platformTags.contains { $0.hasSuffix(job.arch.wheelTagSuffix) }
    }

    /// Whether a wheel runs on CPython `python`: its Python tag names it, or it is a stable-ABI
    /// (`abi3`) wheel whose `cpXY` tag is that version or an older one (`cp38-abi3` serves 3.13).
    static func serves(_ name: WheelFilename, python: PythonVersion) -> Bool {
        if name.pythonTags.contains(python.cpythonTag) { return true }
        guard name.abiTags.contains("abi3") else { return false }
        return name.pythonTags.contains { tag in
            guard tag.hasPrefix("cp"), let version = PythonVersion(tag) else { return false }
            return version <= python
        }
    }
}

/// Makes the index publisher for one project (credentials can differ per package).
public struct PublisherFactory: Sendable {
    /// Where wheels go, for messages and the journal.
    public let destination: String
    /// The publisher for a distribution name; throws for missing or insecure credentials.
    public let make: @Sendable (_ package: String) throws -> any WheelPublisher
    public init(destination: String, make: @escaping @Sendable (_ package: String) throws -> any WheelPublisher) {
        self.destination = destination; self.make = make
    }
}
