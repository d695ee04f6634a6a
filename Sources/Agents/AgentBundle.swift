import FarmCore
import Foundation

/// The agent scripts as the coordinator uploads them: files with modes and one content hash.
///
/// A host keeps each bundle it received in `<work_dir>/agents/<hash>/`, so a build always runs the
/// scripts it started with, concurrent installs of the same bundle are harmless, and the coordinator
/// uploads only when the hash directory lacks its completion marker.
public struct AgentBundle: Sendable, Hashable {
    /// One file of the bundle.
    public struct File: Sendable, Hashable {
        /// Path relative to the bundle's root, with `/` separators (`recipes/sample.sh`).
        public var path: String
        public var contents: Data
        /// Uploaded with mode 0755 when true, 0644 otherwise.
        public var executable: Bool
        public init(path: String, contents: Data, executable: Bool) {
            self.path = path; self.contents = contents; self.executable = executable
        }
        /// The file's POSIX mode on the host.
        public var mode: Int { executable ? 0o755 : 0o644 }
    }

    /// The files, sorted by path.
    public let files: [File]
    /// SHA-256 over every file's path, mode and contents.
    public let digest: SHA256Digest

    /// The marker written last by an install; its presence means the bundle is complete on the host.
    public static let completionMarker = ".complete"

    public init(files: [File]) {
        self.files = files.sorted { $0.path < $1.path }
        var hasher = StreamingDigest()
        for f in self.files {
            hasher.update(Data("\(f.path)\u{0}\(String(f.mode, radix: 8))\u{0}\(f.contents.count)\u{0}".utf8))
            hasher.update(f.contents)
        }
        digest = hasher.finalize()
    }

    /// Reads every regular, non-hidden file below `directory`.
    public static func load(from directory: URL) throws(AgentError) -> AgentBundle {
        let fm = FileManager.default
        let root = directory.standardizedFileURL.resolvingSymlinksInPath()
        guard let walker = fm.enumerator(at: root, includingPropertiesForKeys: [.isRegularFileKey],
                                         options: [.skipsHiddenFiles]) else {
            throw .bundleUnreadable(path: directory.path, detail: "not a directory")
        }
        var files: [File] = []
        for case let url as URL in walker {
            let path = url.resolvingSymlinksInPath().path
            guard (try? url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true else { continue }
            guard path.hasPrefix(root.path + "/") else { continue }
            let relative = String(path.dropFirst(root.path.count + 1))
            guard let data = fm.contents(atPath: path) else {
                throw .bundleUnreadable(path: path, detail: "cannot read the file")
            }
            files.append(File(path: relative, contents: data, executable: fm.isExecutableFile(atPath: path)))
        }
        guard files.contains(where: { $0.path == "build.sh" }) else {
            throw .bundleUnreadable(path: directory.path, detail: "no build.sh in it")
        }
        return AgentBundle(files: files)
    }

    /// Finds the `agents/` directory: `$WHEELFARM_AGENTS_DIR`, then where wheelfarm finds its other
    /// folders (`ResourceLocator`: `$WHEELFARM_HOME`, the current directory, `share/wheelfarm` next to
    /// the executable, the executable's parents), then the source checkout this module was built from.
    public static func locate(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL? {
        var candidates: [URL] = []
        if let dir = environment["WHEELFARM_AGENTS_DIR"], !dir.isEmpty { candidates.append(URL(fileURLWithPath: dir)) }
        candidates += ResourceLocator.candidates("agents", environment: environment)
        var source = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { source.deleteLastPathComponent() }
        candidates.append(source.appendingPathComponent("agents"))
        return candidates.first {
            FileManager.default.fileExists(atPath: $0.appendingPathComponent("build.sh").path)
                && FileManager.default.fileExists(atPath: $0.appendingPathComponent("lib.sh").path)
        }
    }

    /// Where this bundle lives on a host with work directory `workDir`.
    public func installDirectory(workDir: String) -> String {
        "\(workDir.hasSuffix("/") ? String(workDir.dropLast()) : workDir)/agents/\(digest.hex)"
    }
}
