import Foundation

/// Finds wheelfarm's data folders (`recipes`, `agents`, `inventory`, `examples`) at run time.
///
/// Search order: `$WHEELFARM_HOME/<name>`; `./<name>` in the current directory;
/// `<prefix>/share/wheelfarm/<name>` beside an installed binary; then the folders above the
/// binary (a development build in `.build/…/wheelfarm` finds the checkout it was built from).
public enum ResourceLocator {
    /// The first existing folder called `name`, or nil.
    public static func directory(_ name: String, environment: [String: String] = ProcessInfo.processInfo.environment) -> URL? {
        candidates(name, environment: environment).first { isDirectory($0) }
    }

    /// Every place searched for `name`, in order (for error messages).
    public static func candidates(_ name: String, environment: [String: String] = ProcessInfo.processInfo.environment) -> [URL] {
        var out: [URL] = []
        if let home = environment["WHEELFARM_HOME"], !home.isEmpty {
            out.append(URL(fileURLWithPath: home).appendingPathComponent(name))
        }
        out.append(URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(name))
        let exe = URL(fileURLWithPath: CommandLine.arguments.first ?? "").resolvingSymlinksInPath()
        var dir = exe.deletingLastPathComponent()
        out.append(dir.deletingLastPathComponent().appendingPathComponent("share/wheelfarm/\(name)"))
        for _ in 0..<5 {
            out.append(dir.appendingPathComponent(name))
            dir.deleteLastPathComponent()
            if dir.path == "/" { break }
        }
        return out
    }

    private static func isDirectory(_ url: URL) -> Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) && isDir.boolValue
    }
}
