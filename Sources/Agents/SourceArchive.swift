import FarmCore
import Foundation
import Remote

/// A recipe's local source tree packed for upload (the sample recipe's `examples/wfsample`).
///
/// The archive is named on the host by the digest of its contents, in `<work_dir>/cache/src/`, so
/// it is uploaded once per host and shared by every job that builds it.
public struct SourceArchive: Sendable, Hashable {
    /// The local `.tar.gz`.
    public let path: URL
    public let digest: SHA256Digest
    public let size: Int64

    /// Packs `directory` into `scratch`: a git repository as a git bundle of all its refs (its
    /// tags select the versions, and the host mirrors it like a git URL), any other folder with
    /// `tar` (without build outputs, VCS metadata and caches).
    public static func make(from directory: URL, in scratch: URL) throws(AgentError) -> SourceArchive {
        let isRepository = FileManager.default.fileExists(atPath: directory.appendingPathComponent(".git").path)
        let out = scratch.appendingPathComponent("source-\(UUID().uuidString.prefix(8)).\(isRepository ? "bundle" : "tar.gz")")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = isRepository
            ? ["git", "-C", directory.path, "bundle", "create", out.path, "--all"]
            : ["tar", "-czf", out.path, "--exclude=./build", "--exclude=./dist", "--exclude=*.egg-info",
               "--exclude=__pycache__", "--exclude=.git", "-C", directory.path, "."]
        process.environment = ChildEnvironment.sanitized()   // no credential reaches tar or git
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        do {
            try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
            try process.run()
        } catch {
            throw .bundleUnreadable(path: directory.path, detail: "cannot run tar: \(error)")
        }
        let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw .bundleUnreadable(path: directory.path, detail: "\(isRepository ? "git bundle" : "tar") failed: \(message)")
        }
        do {
            let (digest, size) = try StreamingDigest.file(at: out.path)
            return SourceArchive(path: out, digest: digest, size: size)
        } catch {
            throw .bundleUnreadable(path: out.path, detail: String(describing: error))
        }
    }

    /// Where the archive lives on a host.
    public func remotePath(workDir: String, recipe: String) -> String {
        "\(workDir)/cache/src/\(recipe)/\(digest.hex).\(path.pathExtension == "bundle" ? "bundle" : "tar.gz")"
    }

    /// Uploads the archive unless the host has it already; returns its path on the host.
    public func ensureUploaded(on transport: any Transport, workDir: String, recipe: String) async throws -> String {
        let remote = remotePath(workDir: workDir, recipe: recipe)
        if try await transport.run(ExecRequest("test -f \(shellQuote(remote))")).status.isSuccess { return remote }
        let mkdir = try await transport.run(ExecRequest("mkdir -p \(shellQuote((remote as NSString).deletingLastPathComponent))"))
        guard mkdir.status.isSuccess else {
            throw AgentError.hostUnusable(host: transport.host.name, detail: "cannot create the source cache in '\(workDir)': "
                + mkdir.stderrText.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        try await transport.upload(.file(path.path), to: remote, mode: 0o644)
        return remote
    }
}
