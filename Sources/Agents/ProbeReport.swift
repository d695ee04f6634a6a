import FarmCore
import Foundation

/// What a build host says it is: the JSON document `agents/probe.sh` prints.
///
/// Field names follow the script's snake_case keys (see `agents/README.md`, "Probe"). Facts the
/// script could not find are `nil`.
public struct ProbeReport: Sendable, Hashable, Codable {
    /// Operating system identity from `/etc/os-release`.
    public struct OperatingSystem: Sendable, Hashable, Codable {
        public var id: String?
        public var version: String?
        public var name: String?
        public init(id: String? = nil, version: String? = nil, name: String? = nil) {
            self.id = id; self.version = version; self.name = name
        }
    }

    /// The C compiler that builds for the host's arch.
    public struct Compiler: Sendable, Hashable, Codable {
        public var path: String
        /// `12.2.0`.
        public var version: String
        /// The compiler's target triplet (`x86_64-linux-gnu`).
        public var target: String?
        /// True when it is a cross compiler (the host poses as another arch than its toolchain's).
        public var cross: Bool
        public init(path: String, version: String, target: String? = nil, cross: Bool = false) {
            self.path = path; self.version = version; self.target = target; self.cross = cross
        }
        /// The version as a comparable value.
        public var parsedVersion: PEP440Version? { PEP440Version(version) }
    }

    /// A Python interpreter found on the host.
    public struct Interpreter: Sendable, Hashable, Codable {
        public var path: String
        /// `3.11.2`.
        public var version: String
        public var implementation: String?
        /// It can create virtual environments (venv and ensurepip are present).
        public var venv: Bool
        /// Its headers are installed (`Python.h`), so it can build extensions.
        public var headers: Bool
        public init(path: String, version: String, implementation: String? = "cpython", venv: Bool = true, headers: Bool = true) {
            self.path = path; self.version = version; self.implementation = implementation
            self.venv = venv; self.headers = headers
        }
        /// The feature version (`3.11`).
        public var pythonVersion: PythonVersion? {
            let parts = version.split(separator: ".")
            guard parts.count >= 2 else { return nil }
            return PythonVersion("\(parts[0]).\(parts[1])")
        }
        /// True when wheels can be built with it.
        public var canBuild: Bool { venv && headers }
    }

    /// A tool with a version (uv).
    public struct Tool: Sendable, Hashable, Codable {
        public var path: String
        public var version: String?
        public init(path: String, version: String? = nil) { self.path = path; self.version = version }
    }

    /// The libstdc++ the host's compiler links C++ code against.
    public struct LibStdCxx: Sendable, Hashable, Codable {
        public var path: String
        /// The file's version (`6.0.30`), when its name carries one.
        public var version: String?
        /// The newest `GLIBCXX` symbol version it defines (`3.4.30`): what C++ code built here may need.
        public var glibcxx: String?
        public init(path: String, version: String? = nil, glibcxx: String? = nil) {
            self.path = path; self.version = version; self.glibcxx = glibcxx
        }
    }

    /// Docker on the host.
    public struct Docker: Sendable, Hashable, Codable {
        public var present: Bool
        /// A daemon answered `docker info`.
        public var usable: Bool
        public var version: String?
        public init(present: Bool, usable: Bool, version: String? = nil) {
            self.present = present; self.usable = usable; self.version = version
        }
    }

    public var probeVersion: Int
    /// When the host produced the report (RFC 3339, host clock).
    public var time: String?
    public var hostname: String?
    /// `uname -m` (`x86_64`, `aarch64`).
    public var arch: String
    public var kernel: String?
    public var cpuModel: String?
    /// Every flag of the first CPU in `/proc/cpuinfo`.
    public var cpuFlags: [String]
    public var cores: Int?
    public var memoryBytes: Int64?
    public var memoryAvailableBytes: Int64?
    public var workDir: String
    public var workDirExists: Bool
    public var workDirWritable: Bool
    /// Free bytes in the work directory's file system (or its nearest existing parent's).
    public var workDirFreeBytes: Int64?
    public var os: OperatingSystem?
    /// glibc version (`2.36`).
    public var glibc: String?
    /// musl version (`1.2.4`) on musl hosts.
    public var musl: String?
    /// The libstdc++ C++ code is linked against.
    public var libstdcxx: LibStdCxx?
    public var gcc: Compiler?
    public var pythons: [Interpreter]
    public var uv: Tool?
    public var docker: Docker?
    public var git: String?
    public var tools: [String]?
    /// The C++ compiler builds use (`$CXX`, else g++), when there is one.
    public var cxx: Compiler?
    /// The recipe prerequisites the probe was asked about (``Prerequisites``).
    public var prerequisites: Prerequisites?

    /// Which headers asked about the C++ compiler finds, and which tools are on PATH.
    public struct Prerequisites: Sendable, Hashable, Codable {
        public var headersFound: [String] = []
        public var headersMissing: [String] = []
        public var toolsFound: [String] = []
        public var toolsMissing: [String] = []
        public init() {}
    }

    public init(probeVersion: Int = 1, time: String? = nil, hostname: String? = nil, arch: String, kernel: String? = nil,
                cpuModel: String? = nil, cpuFlags: [String], cores: Int? = nil, memoryBytes: Int64? = nil,
                memoryAvailableBytes: Int64? = nil, workDir: String, workDirExists: Bool = true,
                workDirWritable: Bool = true, workDirFreeBytes: Int64? = nil, os: OperatingSystem? = nil,
                glibc: String? = nil, gcc: Compiler? = nil, pythons: [Interpreter] = [], uv: Tool? = nil,
                docker: Docker? = nil, git: String? = nil, tools: [String]? = nil, musl: String? = nil, libstdcxx: LibStdCxx? = nil) {
        self.probeVersion = probeVersion; self.time = time; self.hostname = hostname; self.arch = arch
        self.kernel = kernel; self.cpuModel = cpuModel; self.cpuFlags = cpuFlags; self.cores = cores
        self.memoryBytes = memoryBytes; self.memoryAvailableBytes = memoryAvailableBytes; self.workDir = workDir
        self.workDirExists = workDirExists; self.workDirWritable = workDirWritable
        self.workDirFreeBytes = workDirFreeBytes; self.os = os; self.glibc = glibc; self.gcc = gcc
        self.pythons = pythons; self.uv = uv; self.docker = docker; self.git = git; self.tools = tools
        self.musl = musl; self.libstdcxx = libstdcxx
    }

    /// Parses the output of `probe.sh`.
    public static func parse(_ data: Data) throws(AgentError) -> ProbeReport {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        do {
            return try decoder.decode(ProbeReport.self, from: data)
        } catch {
            let head = String(decoding: data.prefix(200), as: UTF8.self)
            throw .malformedOutput(what: "probe report", detail: "\(Self.describe(error)) in '\(head)'")
        }
    }

    /// Encodes the report as `probe.sh` writes it (snake_case keys).
    public func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys]
        return try encoder.encode(self)
    }

    static func describe(_ error: any Error) -> String {
        switch error as? DecodingError {
        case let .keyNotFound(key, _)?: "missing key '\(key.stringValue)'"
        case let .typeMismatch(_, context)?, let .valueNotFound(_, context)?:
            "wrong type at '\(context.codingPath.map(\.stringValue).joined(separator: "."))'"
        case let .dataCorrupted(context)?: context.debugDescription
        default: String(describing: error)
        }
    }

    /// The arch, if wheelfarm knows it.
    public var parsedArch: Arch? { Arch(parsing: arch) }

    /// The host's C library and its version (`glibc 2.36`), when the probe found it.
    public var libc: LibcVersion? {
        if let glibc, let v = LibcVersion(.glibc, parsing: glibc) { return v }
        if let musl, let v = LibcVersion(.musl, parsing: musl) { return v }
        return nil
    }

    /// The CPU flags as capabilities (every flag, known to wheelfarm or not).
    public var capabilities: Set<Capability> { Set(cpuFlags.map { Capability($0.lowercased()) }) }

    /// The CPython feature versions the host can build wheels with.
    public var pythonVersions: Set<PythonVersion> { Set(buildPythons.keys) }

    /// True when the host can fetch a missing Python (uv is installed).
    public var canProvisionPython: Bool { uv != nil }

    /// The version of the compiler that builds for the host's arch, if there is one.
    public var gccVersion: PEP440Version? { gcc?.parsedVersion }

    /// The interpreters able to build wheels, by feature version (the first found wins).
    public var buildPythons: [PythonVersion: Interpreter] {
        var out: [PythonVersion: Interpreter] = [:]
        for p in pythons where p.canBuild {
            if let v = p.pythonVersion, out[v] == nil { out[v] = p }
        }
        return out
    }
}
