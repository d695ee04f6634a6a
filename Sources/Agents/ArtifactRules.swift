import FarmCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

extension BuildRequest {
    /// Why an `artifact` event naming `file` at `path` is not this request's own wheel, or nil.
    ///
    /// The agent is untrusted: the file must be a wheel of this request's package, version (with
    /// or without the suffix), Python (a `cpXY-abi3` wheel of an older or the same CPython counts)
    /// and `arch`, and its path must lie inside the job's own directory on the host and end in
    /// that file name — so an agent cannot name another job's wheel, nor point the coordinator at
    /// `/dev/zero` or at files outside its build.
    public func artifactProblem(file: String, path: String, size: Int64, arch: Arch, workDir: String,
                                maxBytes: Int64) -> String? {
        guard let name = WheelName(file) else { return "'\(file)' is not a wheel file name" }
        if WheelName.normalise(name.distribution) != WheelName.normalise(package) {
            return "'\(file)' is a wheel of '\(name.distribution)', this job builds '\(package)'"
        }
        let versions = [PEP440Version(version), PEP440Version(version + (versionSuffix ?? ""))].compactMap { $0 }
        guard let theirs = PEP440Version(name.version), versions.contains(theirs) else {
            return "'\(file)' has version '\(name.version)', this job builds \(version)\(versionSuffix ?? "")"
        }
        let servesPython = name.pythonTags.contains(python.cpythonTag) || (name.abiTags.contains("abi3") && name.pythonTags.contains {
            guard $0.hasPrefix("cp"), let v = PythonVersion($0) else { return false }
            return v <= python
        })
        guard servesPython else { return "'\(file)' is not a wheel for Python \(python) (tags '\(name.pythonTags.joined(separator: "."))')" }
        guard name.platformTags.contains(where: { $0.hasSuffix(arch.wheelTagSuffix) }) else {
            return "'\(file)' is not a wheel for \(arch.wheelTagSuffix) (platform '\(name.platformTags.joined(separator: "."))')"
        }
        let jobDir = Self.collapsingSlashes("\(workDir)/jobs/\(jobID)/")
        let normalised = Self.collapsingSlashes(path)
        guard normalised.hasPrefix(jobDir) else {
            return "its path '\(path)' is outside the job's directory '\(jobDir)'"
        }
        let parts = normalised.dropFirst(jobDir.count).split(separator: "/", omittingEmptySubsequences: false)
        guard !parts.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }), parts.last.map(String.init) == file else {
            return "its path '\(path)' is not a file named '\(file)' inside the job's directory '\(jobDir)'"
        }
        guard size > 0, size <= maxBytes else { return "it declares \(size) bytes (at most \(maxBytes) are accepted)" }
        return nil
    }

    static func collapsingSlashes(_ path: String) -> String {
        var out = ""
        for c in path where !(c == "/" && out.hasSuffix("/")) { out.append(c) }
        return out
    }
}

/// The parts of a wheel file name (PEP 427) the artifact check needs. The `Wheels` module has the
/// full parser; `Agents` may not import it, and these five fields are all this check reads.
struct WheelName {
    let distribution: String
    let version: String
    let pythonTags: [String]
    let abiTags: [String]
    let platformTags: [String]

    init?(_ file: String) {
        guard file.hasSuffix(".whl"), !file.contains("/"), !file.hasPrefix(".") else { return nil }
        let parts = file.dropLast(4).split(separator: "-", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 5 || parts.count == 6, !parts.contains(where: \.isEmpty) else { return nil }
        distribution = parts[0]; version = parts[1]
        pythonTags = parts[parts.count - 3].split(separator: ".").map(String.init)
        abiTags = parts[parts.count - 2].split(separator: ".").map(String.init)
        platformTags = parts[parts.count - 1].split(separator: ".").map(String.init)
    }

    /// PEP 503 normalisation with `_` as the separator (as wheel file names write it).
    static func normalise(_ name: String) -> String {
        var out = "", inRun = false
        for c in name.lowercased() {
            if c == "-" || c == "_" || c == "." { if !inRun { out.append("_") }; inRun = true } else { out.append(c); inRun = false }
        }
        return out
    }
}

/// Where one attempt's wheels land until they are verified, and how a verified one joins the
/// dist directory.
///
/// Each attempt downloads into a directory of its own, `<dist>/.wheelfarm/staging/<job id>-<random>/`,
/// so a failed or lying attempt can only ever delete its own files; a verified wheel is then moved
/// into `<dist>` under its name without replacing a verified file already there
/// (``promote(_:into:isVerified:)``).
public enum ArtifactStaging {
    /// The staging root inside `dist`.
    public static func root(dist: URL) -> URL { dist.appendingPathComponent(".wheelfarm/staging") }

    /// A new, empty directory for one attempt of `jobID`.
    public static func makeDirectory(dist: URL, jobID: String) throws -> URL {
        let dir = root(dist: dist).appendingPathComponent("\(jobID)-\(UUID().uuidString.prefix(8).lowercased())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Removes what interrupted runs left in the staging root (call under the coordinator lock,
    /// before any attempt starts).
    public static func removeLeftovers(dist: URL) {
        try? FileManager.default.removeItem(at: root(dist: dist))
    }

    /// Removes a staged wheel and its attempt's directory when that is then empty.
    public static func discard(_ wheel: BuiltWheel) {
        try? FileManager.default.removeItem(at: wheel.path)
        removeIfEmpty(wheel.path.deletingLastPathComponent())
    }

    /// Moves a verified staged wheel to `<dist>/<file>` and returns it there.
    ///
    /// A file of that name already in `dist` is never replaced when it is identical (the staged
    /// copy is dropped) or when `isVerified(name)` says it is a verified wheel (an
    /// ``AgentError/artifactConflict(file:detail:)`` is thrown and the staged copy dropped); only
    /// an unverified leftover is replaced.
    public static func promote(_ wheel: BuiltWheel, into dist: URL, isVerified: (String) -> Bool) throws -> BuiltWheel {
        let destination = dist.appendingPathComponent(wheel.file)
        var placed = wheel
        placed.path = destination
        defer { removeIfEmpty(wheel.path.deletingLastPathComponent()) }
        // link(2) fails with EEXIST instead of replacing: no window in which a verified file is gone.
        if link(wheel.path.path, destination.path) == 0 {
            unlink(wheel.path.path)
            return placed
        }
        let code = errno
        guard code == EEXIST else {
            discard(wheel)
            throw AgentError.artifactConflict(file: wheel.file, detail: "cannot move it into '\(dist.path)': \(String(cString: strerror(code)))")
        }
        if let existing = try? StreamingDigest.file(at: destination.path), existing.digest == wheel.sha256, existing.size == wheel.size {
            unlink(wheel.path.path)
            return placed
        }
        if isVerified(wheel.file) {
            discard(wheel)
            throw AgentError.artifactConflict(file: wheel.file, detail: "'\(destination.path)' is a verified wheel with other content and is kept")
        }
        guard rename(wheel.path.path, destination.path) == 0 else {
            let text = String(cString: strerror(errno))
            discard(wheel)
            throw AgentError.artifactConflict(file: wheel.file, detail: "cannot move it into '\(dist.path)': \(text)")
        }
        return placed
    }

    private static func removeIfEmpty(_ directory: URL) {
        _ = rmdir(directory.path)
    }
}
