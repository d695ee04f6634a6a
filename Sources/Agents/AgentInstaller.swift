import struct Inventory.Host
import FarmCore
import Foundation
import Logging
import Remote

/// Quotes a word for a POSIX shell (the agents' command lines are built here, not by the transport).
func shellQuote(_ word: String) -> String {
    if !word.isEmpty, word.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_./=:,+@%".contains($0)) }) { return word }
    return "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
}

/// A command line from words.
func shellCommand(_ words: [String]) -> String { words.map(shellQuote).joined(separator: " ") }

/// Puts the agent bundle on a host, once per content hash.
///
/// The bundle goes to `<work_dir>/agents/<hash>/`; each file is uploaded atomically with its mode and
/// the completion marker is written last, so an interrupted install is simply redone and a running
/// build never sees its scripts change.
public struct AgentInstaller: Sendable {
    public let bundle: AgentBundle
    let logger: Logger

    public init(bundle: AgentBundle, logger: Logger) { self.bundle = bundle; self.logger = logger }

    /// Installs the bundle unless the host already has it; returns the directory holding `build.sh`.
    ///
    /// Throws ``AgentError/hostUnusable(host:detail:)`` when the work directory cannot be created or
    /// written, and transport errors as they come.
    public func ensureInstalled(on transport: any Transport, workDir: String) async throws -> String {
        let host = transport.host.name
        let dir = bundle.installDirectory(workDir: workDir)
        let marker = "\(dir)/\(AgentBundle.completionMarker)"
        if try await transport.run(ExecRequest("test -f \(shellQuote(marker))")).status.isSuccess {
            return dir
        }
        let dirs = Set(bundle.files.map { ($0.path as NSString).deletingLastPathComponent }.filter { !$0.isEmpty })
        let mkdir = try await transport.run(ExecRequest(shellCommand(["mkdir", "-p", dir] + dirs.sorted().map { "\(dir)/\($0)" })))
        guard mkdir.status.isSuccess else {
            throw AgentError.hostUnusable(host: host, detail: "cannot create '\(dir)' in work directory '\(workDir)': "
                + mkdir.stderrText.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        logger.info("installing agents", metadata: ["host": "\(host)", "bundle": "\(bundle.digest.hex.prefix(12))"])
        do {
            for file in bundle.files {
                try await transport.upload(.bytes(file.contents), to: "\(dir)/\(file.path)", mode: file.mode)
            }
            try await transport.upload(.bytes(Data(bundle.digest.hex.utf8)), to: marker, mode: 0o644)
        } catch let error as TransportError where error.kind == .commandFailed || error.kind == .localIO {
            throw AgentError.hostUnusable(host: host, detail: "cannot write the agents to '\(dir)': \(error.message)")
        }
        return dir
    }
}
