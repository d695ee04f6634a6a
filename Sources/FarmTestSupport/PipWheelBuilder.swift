import Foundation

/// Builds real wheels with the venv's pip from a tiny generated setuptools project.
public enum PipWheelBuilder {
    /// Builds `name==version` as a pure-Python wheel into `outputDirectory` and returns its path.
    ///
    /// `payloadBytes` adds a data file of that many pseudo-random (incompressible) bytes, for
    /// large-file tests. `marker` changes the module's content without changing the filename, to
    /// make a second, different file of the same name.
    public static func build(name: String, version: String, into outputDirectory: URL, payloadBytes: Int = 0,
                             marker: String = "", requiresPython: String = ">=3.8") throws -> URL {
        let project = try TestEnvironment.makeTemporaryDirectory("wheelproject")
        defer { try? FileManager.default.removeItem(at: project) }
        let module = name.replacingOccurrences(of: "-", with: "_").replacingOccurrences(of: ".", with: "_").lowercased()
        let pkg = project.appendingPathComponent(module)
        try FileManager.default.createDirectory(at: pkg, withIntermediateDirectories: true)
        try "VALUE = \(String(reflecting: marker))\n".write(to: pkg.appendingPathComponent("__init__.py"), atomically: true, encoding: .utf8)
        if payloadBytes > 0 {
            // Incompressible bytes from a seeded generator, written in 1 MiB blocks.
            _ = FileManager.default.createFile(atPath: pkg.appendingPathComponent("payload.bin").path, contents: nil)
            let handle = try FileHandle(forWritingTo: pkg.appendingPathComponent("payload.bin"))
            var state: UInt64 = 0x9E37_79B9_7F4A_7C15 &+ UInt64(marker.utf8.count)
            var remaining = payloadBytes
            while remaining > 0 {
                let n = min(remaining, 1 << 20)
                var block = [UInt8](repeating: 0, count: n)
                block.withUnsafeMutableBytes { raw in
                    let words = raw.bindMemory(to: UInt64.self)
                    for i in 0..<words.count {
                        state ^= state << 13; state ^= state >> 7; state ^= state << 17
                        words[i] = state
                    }
                }
                try handle.write(contentsOf: block)
                remaining -= n
            }
            try handle.close()
        }
        let setup = """
        from setuptools import setup
        setup(
            name=\(String(reflecting: name)),
            version=\(String(reflecting: version)),
            description="A wheel built by wheelfarm tests",
            long_description="# \(name)\\n\\nBuilt for tests.",
            long_description_content_type="text/markdown",
            author="wheelfarm tests",
            license="MIT",
            packages=[\(String(reflecting: module))],
            package_data={\(String(reflecting: module)): ["payload.bin"]},
            python_requires=\(String(reflecting: requiresPython)),
            install_requires=[],
            classifiers=["Programming Language :: Python :: 3"],
        )
        """
        try setup.write(to: project.appendingPathComponent("setup.py"), atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(at: outputDirectory, withIntermediateDirectories: true)
        let result = try TestProcess.run(TestEnvironment.python, [
            "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "--disable-pip-version-check",
            "-q", "-w", outputDirectory.path, project.path,
        ], environment: ["PATH": "/usr/bin:/bin", "HOME": project.path, "PIP_NO_CACHE_DIR": "1"])
        guard result.status == 0 else { throw HarnessError("pip wheel failed: \(result.stderr)") }
        // setuptools versions differ in how they spell the name in the file name ('.' kept or '_').
        func fold(_ s: String) -> String { s.lowercased().replacingOccurrences(of: "-", with: "_").replacingOccurrences(of: ".", with: "_") }
        let prefix = fold(name) + "_" + fold(version) + "_"
        guard let file = try FileManager.default.contentsOfDirectory(atPath: outputDirectory.path)
            .first(where: { fold($0).hasPrefix(prefix) && $0.hasSuffix(".whl") }) else {
            throw HarnessError("pip wheel produced no '\(prefix)*.whl' in \(outputDirectory.path)")
        }
        return outputDirectory.appendingPathComponent(file)
    }
}
