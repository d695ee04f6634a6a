import Foundation

/// Programs a simulated build host finds first on its `PATH`: real tools with a fault or a delay
/// in front, so the agents and the coordinator run unchanged while the host misbehaves.
public enum HostTools {
    /// A directory for one host with a `gcc` and `cc` that run the real compiler, except that while
    /// the directory is ``hold(_:)``-ed each compilation (`-c`) first waits until it is
    /// ``release(_:)``-d (at most 15 minutes): a build that stays under way for as long as a test
    /// needs, however slowly the test itself is scheduled. With `corruptFirstWheel`, its `sha256sum` flips bytes
    /// in the middle of the first wheel it is asked to hash, before hashing it: a wheel damaged on
    /// the build host after the build wrote it (the digest then matches the damage, so only
    /// central verification can catch it).
    public static func make(in directory: URL, corruptFirstWheel: Bool = false) throws -> URL {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let compiler = """
            #!/bin/sh
            case " $* " in
              *" -c "*)
                waited=0
                while [ -e "$(dirname "$0")/hold" ] && [ "$waited" -lt 9000 ]; do sleep 0.1; waited=$((waited + 1)); done ;;
            esac
            exec /usr/bin/gcc "$@"

            """
        try write(compiler, to: directory.appendingPathComponent("gcc"))
        try write(compiler, to: directory.appendingPathComponent("cc"))
        if corruptFirstWheel {
            try write("""
                #!/bin/sh
                mark="$(dirname "$0")/corrupted-once"
                for f in "$@"; do
                  case $f in
                    *.whl)
                      if [ ! -e "$mark" ]; then
                        : > "$mark"
                        size=$(stat -c %s "$f")
                        printf 'CORRUPTCORRUPT' | dd of="$f" bs=1 seek=$((size / 3)) conv=notrunc status=none
                      fi ;;
                  esac
                done
                exec /usr/bin/sha256sum "$@"

                """, to: directory.appendingPathComponent("sha256sum"))
        }
        return directory
    }

    /// Makes every compilation on the host whose tools are in `directory` wait until
    /// ``release(_:)``.
    public static func hold(_ directory: URL) throws {
        try Data().write(to: directory.appendingPathComponent("hold"))
    }

    /// Lets the compilations ``hold(_:)`` stopped go on.
    public static func release(_ directory: URL) {
        try? FileManager.default.removeItem(at: directory.appendingPathComponent("hold"))
    }

    /// The environment of a simulated host whose sessions find the programs in `directories`
    /// (these tools, a second Python, …) before the system's.
    public static func environment(_ directories: URL...) -> [String: String] {
        ["PATH": (directories.map(\.path) + ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]).joined(separator: ":")]
    }

    private static func write(_ text: String, to url: URL) throws {
        try text.write(to: url, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: url.path)
    }
}

/// An amd64 build host at the AVX2 level (it can build only `wfsample-cpu`), with `tools` first on
/// its PATH.
public func plainHost(_ name: String, tools: URL) -> SimulatedHost {
    SimulatedHost(name: name, cpuFlags: SampleFarm.base, environment: HostTools.environment(tools))
}
