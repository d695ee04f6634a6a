/// Quoting for POSIX shells.
enum Shell {
    /// `text` as one single-quoted shell word (`'` becomes `'\''`).
    static func quote(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    /// The script a transport runs for `request`: working directory, environment, then the command
    /// under `/bin/sh -c`, so that the command's syntax never depends on the login shell.
    static func script(for request: ExecRequest) -> String {
        var parts: [String] = []
        if let dir = request.workingDirectory { parts.append("cd \(quote(dir)) || exit 126") }
        for (name, value) in request.environment.sorted(by: { $0.key < $1.key }) {
            parts.append("export \(name)=\(quote(value))")
        }
        parts.append("exec /bin/sh -c \(quote(request.command))")
        return parts.joined(separator: "; ")
    }

    /// A script that stops process group `pgid`: SIGTERM, up to `grace` for it to go, then SIGKILL.
    static func killGroupScript(pgid: Int32, grace: Duration) -> String {
        let tenths = max(1, Int(grace.components.seconds * 10 + grace.components.attoseconds / 100_000_000_000_000_000))
        return """
        kill -TERM -- -\(pgid) 2>/dev/null; i=0; \
        while kill -0 -- -\(pgid) 2>/dev/null && [ $i -lt \(tenths) ]; do sleep 0.1; i=$((i+1)); done; \
        kill -KILL -- -\(pgid) 2>/dev/null; true
        """
    }
}
