import FarmCore
import FarmTestSupport
import Foundation
import Testing
@testable import Wheels

@Suite("Rewriting wheels without rebuilding")
struct RewriteTests {
    static let changesPost1 = WheelRewriter.Changes(versionSuffix: VersionSuffix(".post1"), versionFile: "wfdemo/_version.py")

    func rewriter() -> WheelRewriter {
        var e = SharedFixtures.expectation
        e.version = nil
        return WheelRewriter(expectation: e)
    }

    /// Installs a wheel into a fresh venv with pip and returns what importlib.metadata and the
    /// package's own version file (both names of the string, both of the tuple) say.
    func installedVersion(_ wheel: URL, dir: URL) throws -> String {
        let venv = dir.appendingPathComponent("venv-\(UUID().uuidString.prefix(6))")
        try WheelFixtures.check("venv", TestEnvironment.python, ["-m", "venv", "--without-pip", venv.path])
        try WheelFixtures.check("pip install", TestEnvironment.python, ["-m", "pip", "--python", venv.appendingPathComponent("bin/python").path,
                                                                         "install", "-q", "--no-deps", "--disable-pip-version-check", wheel.path])
        let r = try WheelFixtures.check("metadata", venv.appendingPathComponent("bin/python").path,
                                        ["-c", "import importlib.metadata as m, wfdemo._version as v; print(m.version('wfdemo-cpu'), v.__version__, v.version, repr(v.__version_tuple__), repr(v.version_tuple))"])
        return r.stdout.trimmingWhitespace()
    }

    @Test("a .post1 rewrite is consistent for wheelfarm, twine, wheel unpack and pip")
    func postSuffix() async throws {
        let f = try await SharedFixtures.shared.built()
        let out = try TestEnvironment.makeTemporaryDirectory("wheelfarm-rewrite")
        defer { try? FileManager.default.removeItem(at: out) }
        let result = try await rewriter().rewrite(path: f.extensionWheel.path, changes: Self.changesPost1, outputDirectory: out.path)
        #expect(result.filename.version == "0.1.0.post1")
        #expect(result.path.hasSuffix("wfdemo_cpu-0.1.0.post1-cp311-cp311-manylinux_2_28_x86_64.whl") || result.path.contains("wfdemo_cpu-0.1.0.post1-"))
        var e = SharedFixtures.expectation
        e.version = "0.1.0.post1"
        let report = await WheelVerifier().verify(path: result.path, expectation: e)
        #expect(report.passed, "\(report.failures)")
        try WheelFixtures.check("twine check", TestEnvironment.venvTool("twine"), ["check", "--strict", result.path])
        try WheelFixtures.check("wheel unpack", TestEnvironment.python, ["-m", "wheel", "unpack", "-d", out.appendingPathComponent("unpacked").path, result.path])
        #expect(try installedVersion(URL(fileURLWithPath: result.path), dir: out) == "0.1.0.post1 0.1.0.post1 0.1.0.post1 (0, 1, 0, 'post1') (0, 1, 0, 'post1')")
        // Unchanged members were copied raw: same compressed bytes.
        let old = try ZipArchive(path: f.extensionWheel.path), new = try ZipArchive(path: result.path)
        let so = try #require(old.entries.first { $0.name.hasSuffix(".so") })
        let copied = try #require(new.entries.first { $0.name == so.name })
        #expect(copied.compressedSize == so.compressedSize && copied.crc32 == so.crc32)
        #expect(result.rewritten == 3)  // METADATA, _version.py, RECORD
        #expect(!new.entries.contains { $0.name.contains("0.1.0.dist-info") })
        #expect(try FileManager.default.contentsOfDirectory(atPath: out.path).filter { $0.hasPrefix(".") }.isEmpty)
    }

    /// The text of a member of a wheel.
    func memberText(_ wheel: String, _ name: String) throws -> String {
        let archive = try ZipArchive(path: wheel)
        let entry = try #require(archive.entries.first { $0.name == name })
        return String(decoding: try MemberReader().readAll(archive, entry, limit: 1 << 20), as: UTF8.self)
    }

    @Test("the version file's string and tuple follow the new version; every other byte is kept")
    func versionFile() async throws {
        let f = try await SharedFixtures.shared.built()
        let out = try TestEnvironment.makeTemporaryDirectory("wheelfarm-rewrite")
        defer { try? FileManager.default.removeItem(at: out) }
        let original = try memberText(f.extensionWheel.path, "wfdemo/_version.py")
        #expect(original.contains("\n__version__ = version = '0.1.0'\n__version_tuple__ = version_tuple = (0, 1, 0)\n"))
        let one = try await rewriter().rewrite(path: f.extensionWheel.path, changes: Self.changesPost1, outputDirectory: out.path)
        let expected = original
            .replacingOccurrences(of: "version = '0.1.0'\n", with: "version = '0.1.0.post1'\n")
            .replacingOccurrences(of: "version_tuple = (0, 1, 0)\n", with: "version_tuple = (0, 1, 0, 'post1')\n")
        #expect(expected != original)
        #expect(try memberText(one.path, "wfdemo/_version.py") == expected)
        // From the .post1 wheel on: the tuple is rebuilt from the version, not appended to.
        let two = try await rewriter().rewrite(path: one.path, changes: .init(versionSuffix: VersionSuffix(".post2"), versionFile: "wfdemo/_version.py"),
                                               outputDirectory: out.appendingPathComponent("2").path)
        let text = try memberText(two.path, "wfdemo/_version.py")
        #expect(text.contains("\n__version__ = version = '0.1.0.post2'\n__version_tuple__ = version_tuple = (0, 1, 0, 'post2')\n"))
        #expect(text.utf8.count == expected.utf8.count)
    }

    @Test("version tuples as setuptools-scm writes them")
    func versionTuples() {
        let cases: [(String, String)] = [
            ("0.11.0", "(0, 11, 0)"), ("0.11.0.post1", "(0, 11, 0, 'post1')"), ("1.0.0.dev3+g1234", "(1, 0, 0, 'dev3', 'g1234')"),
            ("2!1.0rc1.post2", "('2!', 1, 0, 'rc1', 'post2')"), ("7", "(7,)"), ("1.2.3+g1234.d20250101", "(1, 2, 3, 'g1234.d20250101')"),
        ]
        for (version, tuple) in cases {
            #expect(WheelRewriter.versionTuple(PEP440Version(version)!) == tuple, "\(version)")
        }
    }

    @Test("only the version string and the version tuple change in a version file")
    func replaceVersionText() {
        let text = "x = (0, 11, 0)\r\n__version__ = version = '1.0.0.dev3+g1234'\r\n"
            + "__version_tuple__ = version_tuple = (1, 0, 0, 'dev3', 'g1234')  # generated\r\n"
            + "version_tuple: VERSION_TUPLE\r\n  version_tuple: VERSION_TUPLE = (1, 0, 0)\r\n"
            + "if version_tuple == (1, 0): pass\r\nmy_version_tuple = (1, 0, 0)\r\n"
        let want = "x = (0, 11, 0)\r\n__version__ = version = '1.0.0.dev4+g1234'\r\n"
            + "__version_tuple__ = version_tuple = (1, 0, 0, 'dev4', 'g1234')  # generated\r\n"
            + "version_tuple: VERSION_TUPLE\r\n  version_tuple: VERSION_TUPLE = (1, 0, 0, 'dev4', 'g1234')\r\n"
            + "if version_tuple == (1, 0): pass\r\nmy_version_tuple = (1, 0, 0)\r\n"
        #expect(WheelRewriter.replaceVersion(in: text, old: "1.0.0.dev3+g1234", new: PEP440Version("1.0.0.dev4+g1234")!) == want)
    }

    @Test("raw copies through sendfile and through the buffer give the same, valid archive")
    func rawCopies() async throws {
        let f = try await SharedFixtures.shared.built()
        let dir = try TestEnvironment.makeTemporaryDirectory("wheelfarm-rewrite")
        defer { try? FileManager.default.removeItem(at: dir) }
        let archive = try ZipArchive(path: f.extensionWheel.path)
        var copies: [Data] = []
        for kernelCopy in [true, false] {
            let out = dir.appendingPathComponent("\(kernelCopy)").appendingPathComponent(f.extensionWheel.lastPathComponent)
            try FileManager.default.createDirectory(at: out.deletingLastPathComponent(), withIntermediateDirectories: true)
            let writer = try ZipWriter(path: out.path, kernelCopy: kernelCopy)
            for entry in archive.entries { try writer.copyRaw(entry, data: try archive.memberData(entry), from: archive, name: entry.rawName) }
            try writer.finish()
            let report = await WheelVerifier().verify(path: out.path, expectation: SharedFixtures.expectation)
            #expect(report.passed, "kernelCopy \(kernelCopy): \(report.failures)")
            copies.append(try Data(contentsOf: out))
        }
        #expect(copies[0] == copies[1])
        #expect(copies[0].count > 1000)
    }

    @Test("rewriting twice from the original gives .post1 and .post2")
    func twice() async throws {
        let f = try await SharedFixtures.shared.built()
        let out = try TestEnvironment.makeTemporaryDirectory("wheelfarm-rewrite")
        defer { try? FileManager.default.removeItem(at: out) }
        let one = try await rewriter().rewrite(path: f.extensionWheel.path, changes: Self.changesPost1, outputDirectory: out.path)
        let two = try await rewriter().rewrite(path: f.extensionWheel.path, changes: .init(versionSuffix: VersionSuffix(".post2"), versionFile: "wfdemo/_version.py"), outputDirectory: out.path)
        #expect(one.filename.version == "0.1.0.post1" && two.filename.version == "0.1.0.post2")
        #expect(FileManager.default.fileExists(atPath: one.path) && FileManager.default.fileExists(atPath: two.path))
        // .post2 from the .post1 wheel replaces the post segment and still sorts higher.
        let three = try await rewriter().rewrite(path: one.path, changes: .init(versionSuffix: VersionSuffix(".post3")), outputDirectory: out.appendingPathComponent("3").path)
        #expect(three.filename.version == "0.1.0.post3")
        #expect(three.report.passed)
    }

    @Test("a suffix that would not sort higher, or is malformed, is refused with the allowed forms")
    func invalidSuffix() async throws {
        #expect(throws: WheelError.versionNotGreater(original: "0.1.0.post3", rewritten: "0.1.0.post2")) {
            try WheelRewriter.newVersion("0.1.0.post3", suffix: VersionSuffix(".post2")!)
        }
        #expect(throws: WheelError.versionNotGreater(original: "0.1.0", rewritten: "0.1.0.dev1")) {
            try WheelRewriter.newVersion("0.1.0", suffix: VersionSuffix(".dev1")!)
        }
        #expect(try WheelRewriter.newVersion("0.1.0.dev1", suffix: VersionSuffix(".dev2")!).description == "0.1.0.dev2")
        let f = try await SharedFixtures.shared.built()
        let r = try TestProcess.wheelfarm(["rewrite", f.extensionWheel.path, "--version-suffix", "post1"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("'.postN' or '.devN'"))
    }

    @Test("a wheel that fails verification is refused before rewriting")
    func refusesBrokenWheel() async throws {
        let f = try await SharedFixtures.shared.built()
        let out = try TestEnvironment.makeTemporaryDirectory("wheelfarm-rewrite")
        defer { try? FileManager.default.removeItem(at: out) }
        await #expect(throws: WheelError.self) {
            try await rewriter().rewrite(path: f.corpus["record.hashes"]!.path, changes: Self.changesPost1, outputDirectory: out.path)
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: out.path).isEmpty)
    }

    @Test("--readme replaces the description and its content type; twine check --strict passes")
    func readme() async throws {
        let f = try await SharedFixtures.shared.built()
        let out = try TestEnvironment.makeTemporaryDirectory("wheelfarm-rewrite")
        defer { try? FileManager.default.removeItem(at: out) }
        let text = "Release notes\n=============\n\nA \"quoted\", comma-separated, *reStructuredText* description.\n"
        let result = try await rewriter().rewrite(path: f.extensionWheel.path, changes: .init(readme: (text, "text/x-rst")), outputDirectory: out.path)
        #expect(result.filename.description == f.extensionWheel.lastPathComponent)
        let archive = try ZipArchive(path: result.path)
        let meta = try #require(archive.entries.first { $0.name.hasSuffix(".dist-info/METADATA") })
        let metadata = try CoreMetadata(bytes: try MemberReader().readAll(archive, meta, limit: 1 << 20))
        #expect(metadata.body == text)
        #expect(metadata.value("Description-Content-Type") == "text/x-rst")
        #expect(metadata.value("Version") == "0.1.0")
        try WheelFixtures.check("twine check", TestEnvironment.venvTool("twine"), ["check", "--strict", result.path])
        // Same name next to the original needs --in-place.
        await #expect(throws: WheelError.self) {
            try await rewriter().rewrite(path: result.path, changes: .init(readme: ("x", "text/plain")))
        }
    }

    @Test("--in-place replaces the original atomically through the CLI")
    func inPlace() async throws {
        let f = try await SharedFixtures.shared.built()
        let dir = try TestEnvironment.makeTemporaryDirectory("wheelfarm-rewrite")
        defer { try? FileManager.default.removeItem(at: dir) }
        let copy = dir.appendingPathComponent(f.extensionWheel.lastPathComponent)
        try FileManager.default.copyItem(at: f.extensionWheel, to: copy)
        let r = try TestProcess.wheelfarm(["rewrite", copy.path, "--version-suffix", ".post3", "--in-place", "--timings"])
        #expect(r.status == 0, "\(r.stderr)")
        // --timings names every phase on one stderr line.
        let line = try #require(r.stderr.split(separator: "\n").first { $0.hasPrefix("wheelfarm: timings ") })
        for key in ["verify_before=", "write=", "sync=", "verify_after=", "commit=", "total="] { #expect(line.contains(key), "\(line)") }
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        #expect(names == [f.extensionWheel.lastPathComponent.replacingOccurrences(of: "-0.1.0-", with: "-0.1.0.post3-")], "\(names)")
        let v = try TestProcess.wheelfarm(["verify", dir.appendingPathComponent(names[0]).path])
        #expect(v.status == 0, "\(v.stdout)")
    }
}

@Suite("The verify command")
struct VerifyCommandTests {
    @Test("exit 0 for a good wheel, 1 when any wheel fails, JSON per wheel")
    func exitCodesAndJSON() async throws {
        let f = try await SharedFixtures.shared.built()
        let good = try TestProcess.wheelfarm(["verify", f.extensionWheel.path])
        #expect(good.status == 0, "\(good.stdout)\(good.stderr)")
        #expect(good.stdout.contains("PASS"))
        let mixed = try TestProcess.wheelfarm(["verify", "--json", f.extensionWheel.path, f.corpus["zip.crc"]!.path])
        #expect(mixed.status == 1)
        let reports = try #require(try JSONSerialization.jsonObject(with: Data(mixed.stdout.utf8)) as? [[String: Any]])
        #expect(reports.map { $0["passed"] as? Bool } == [true, false])
        let text = try TestProcess.wheelfarm(["verify", f.corpus["zip.crc"]!.path])
        #expect(text.stdout.contains("FAIL zip.crc"))
    }

    @Test("--recipe and --variant apply the variant's ISA expectation; unknown variants exit 2")
    func variants() async throws {
        let f = try await SharedFixtures.shared.built()
        let r = try TestProcess.wheelfarm(["verify", "--recipe", "vllm-cpu", "--variant", "avx512", f.extensionWheel.path])
        #expect(r.status == 1)
        #expect(r.stdout.contains("isa.expected"))
        #expect(r.stdout.contains("content.required-files"))
        let bad = try TestProcess.wheelfarm(["verify", "--recipe", "vllm-cpu", "--variant", "avx513", f.extensionWheel.path])
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("avx512"))
    }
}
