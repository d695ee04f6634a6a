import Foundation

/// Where tests find the repository, the Python tool venv and scratch space.
///
/// The venv (pypiserver, twine, wheel, setuptools, build, passlib) is made by `scripts/setup.sh`
/// at `<repo>/.venv`; `WHEELFARM_VENV` overrides its location.
public enum TestEnvironment {
    /// The repository root (the folder holding `Package.swift`).
    public static let repositoryRoot: URL = {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url }
        }
        fatalError("Package.swift not found above \(#filePath)")
    }()

    /// The Python tool venv.
    public static var venv: URL {
        if let v = ProcessInfo.processInfo.environment["WHEELFARM_VENV"], !v.isEmpty { return URL(fileURLWithPath: v) }
        return repositoryRoot.appendingPathComponent(".venv")
    }

    /// The venv's Python interpreter (falls back to `python3` on PATH when there is no venv).
    public static var python: String {
        let p = venv.appendingPathComponent("bin/python").path
        return FileManager.default.isExecutableFile(atPath: p) ? p : "python3"
    }

    /// The `bin` directory of the second CPython (3.13) that `scripts/second-python.sh` installs
    /// (`make test` runs it); `WHEELFARM_TEST_PYTHON_PREFIX` overrides the prefix. Simulated build
    /// hosts that put it on their PATH can build for two Python versions.
    public static var secondPythonBin: URL {
        let prefix = ProcessInfo.processInfo.environment["WHEELFARM_TEST_PYTHON_PREFIX"].flatMap { $0.isEmpty ? nil : $0 } ?? "/opt/cpython-3.13"
        return URL(fileURLWithPath: prefix).appendingPathComponent("bin")
    }

    /// The second CPython's version (`3.13`).
    public static let secondPythonVersion = "3.13"

    /// The second CPython's interpreter; throws, saying how to install it, when it is missing.
    public static func secondPython() throws -> String {
        let path = secondPythonBin.appendingPathComponent("python\(secondPythonVersion)").path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw HarnessError("no Python \(secondPythonVersion) at \(path): run scripts/second-python.sh (make test does)")
        }
        return path
    }

    /// A program from the venv's `bin` (twine, pypi-server, …).
    public static func venvTool(_ name: String) -> String { venv.appendingPathComponent("bin/\(name)").path }

    /// A new empty directory under the system temp dir; removed by the caller with ``removeItem``.
    public static func makeTemporaryDirectory(_ label: String = "wheelfarm-test") throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("\(label)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

/// The result of running a program to completion.
public struct ProcessResult: Sendable {
    public let status: Int32
    public let stdout: String
    public let stderr: String
}

/// Runs test helper programs (gcc, pip, ssh-keygen, the built `wheelfarm` binary).
public enum TestProcess {
    /// Runs `executable` with `arguments` and waits; output is collected in full (test use only).
    @discardableResult
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                           currentDirectory: URL? = nil, stdin: Data? = nil) throws -> ProcessResult {
        let process = Process()
        if executable.contains("/") {
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
        } else {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = [executable] + arguments
        }
        if let environment { process.environment = environment }
        if let currentDirectory { process.currentDirectoryURL = currentDirectory }
        let out = Pipe(), err = Pipe(), input = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = stdin == nil ? FileHandle.nullDevice : input
        try process.run()
        if let stdin {
            input.fileHandleForWriting.write(stdin)
            try input.fileHandleForWriting.close()
        }
        // Drain both pipes concurrently so neither fills up and blocks the child.
        let group = DispatchGroup()
        nonisolated(unsafe) var outData = Data(), errData = Data()
        group.enter()
        DispatchQueue.global().async { outData = out.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        errData = err.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        return ProcessResult(status: process.terminationStatus,
                             stdout: String(decoding: outData, as: UTF8.self),
                             stderr: String(decoding: errData, as: UTF8.self))
    }

    /// The `wheelfarm` binary the tests run: `$WHEELFARM_BINARY` when set (`make test` sets it to
    /// the release build, the binary users run), else the debug build next to the test bundle.
    public static var wheelfarmBinary: String {
        if let path = ProcessInfo.processInfo.environment["WHEELFARM_BINARY"], !path.isEmpty {
            precondition(FileManager.default.isExecutableFile(atPath: path),
                         "WHEELFARM_BINARY is '\(path)', which is not an executable file: build it (swift build -c release --product wheelfarm)")
            return path
        }
        let bundle = Bundle.main.bundleURL
        var dir = bundle
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("wheelfarm").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir.deleteLastPathComponent()
        }
        return TestEnvironment.repositoryRoot.appendingPathComponent(".build/debug/wheelfarm").path
    }

    /// Runs the built `wheelfarm` binary, waiting for it on a thread of its own rather than on
    /// one of Swift concurrency's few shared threads (a release takes a minute; blocking a shared
    /// thread that long starves every other test running in parallel).
    public static func wheelfarmInBackground(_ arguments: [String], environment: [String: String]? = nil,
                                             currentDirectory: URL? = nil) async throws -> ProcessResult {
        try await withCheckedThrowingContinuation { continuation in
            Thread {
                continuation.resume(with: Result { try wheelfarm(arguments, environment: environment, currentDirectory: currentDirectory) })
            }.start()
        }
    }

    /// Runs the built `wheelfarm` binary.
    @discardableResult
    public static func wheelfarm(_ arguments: [String], environment: [String: String]? = nil,
                                 currentDirectory: URL? = nil) throws -> ProcessResult {
        try run(wheelfarmBinary, arguments, environment: environment, currentDirectory: currentDirectory ?? TestEnvironment.repositoryRoot)
    }
}

extension TestEnvironment {
    /// Convenience alias of ``TestEnvironment/repositoryRoot`` used by fixtures.
    public static var root: URL { repositoryRoot }
}
