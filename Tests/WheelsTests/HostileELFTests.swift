import FarmCore
import FarmTestSupport
import Foundation
import Testing
@testable import Wheels

/// ELF objects with broken dependency tables: each must give a clear `elf.dynamic` (or
/// `elf.machine`) failure, never a crash, a hang or a pass.
@Suite("Hostile ELF dependency tables")
struct HostileELFTests {
    /// A small real shared object that needs libm (a NEEDED entry and versioned symbols).
    static func compiled(in dir: URL) throws -> [UInt8] {
        let src = dir.appendingPathComponent("hostile.c"), so = dir.appendingPathComponent("hostile-base.so")
        try "#include <math.h>\ndouble f(double x) { return cos(x) + sqrt(x); }\n".write(to: src, atomically: true, encoding: .utf8)
        try WheelFixtures.check("gcc hostile", "gcc", ["-O2", "-shared", "-fPIC", src.path, "-o", so.path, "-lm"])
        return [UInt8](try Data(contentsOf: so))
    }

    /// The section headers of `bytes`, with where each header sits in the file.
    static func sections(_ bytes: [UInt8], in dir: URL) throws -> (headers: [ELFFile.SectionHeader], tableOffset: Int) {
        let path = dir.appendingPathComponent("probe.so")
        try Data(bytes).write(to: path)
        let file = try ReadOnlyFile(path: path.path)
        return (try ELFFile(file: file, name: "probe").sectionHeaders, Int(bytes.le64(0x28)))
    }

    static func put64(_ bytes: inout [UInt8], _ at: Int, _ value: UInt64) {
        for i in 0..<8 { bytes[at + i] = UInt8((value >> (8 * UInt64(i))) & 0xff) }
    }
    static func put32(_ bytes: inout [UInt8], _ at: Int, _ value: UInt32) {
        for i in 0..<4 { bytes[at + i] = UInt8((value >> (8 * UInt32(i))) & 0xff) }
    }

    /// Verifies `bytes` as a bare object and as a member of a wheel; returns the bare report.
    static func verify(_ bytes: [UInt8], named name: String, in dir: URL) async throws -> WheelReport {
        let path = dir.appendingPathComponent("\(name).so")
        try Data(bytes).write(to: path)
        return WheelVerifier().verifyObject(path: path.path)
    }

    static func expectDynamicFailure(_ report: WheelReport, contains text: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let check = report.check(.elfDynamic)
        #expect(check?.outcome == .fail, "elf.dynamic: \(check?.message ?? "-")", sourceLocation: sourceLocation)
        #expect(check?.message.contains(text) == true, "\(check?.message ?? "-")", sourceLocation: sourceLocation)
    }

    @Test("the compiled object itself is read without a finding")
    func baseline() async throws {
        let dir = try TestEnvironment.makeTemporaryDirectory("wheelfarm-elf")
        defer { try? FileManager.default.removeItem(at: dir) }
        let report = try await Self.verify(try Self.compiled(in: dir), named: "ok", in: dir)
        #expect(report.check(.elfDynamic)?.outcome == .pass)
        #expect(report.sharedObjects.first?.dependencies?.needed.contains("libm.so.6") == true)
        #expect(report.sharedObjects.first?.dependencies?.versionNeeds.contains { $0.library == "libm.so.6" } == true)
    }

    @Test("a section placed past the end of the file")
    func outOfRange() async throws {
        let dir = try TestEnvironment.makeTemporaryDirectory("wheelfarm-elf")
        defer { try? FileManager.default.removeItem(at: dir) }
        var bytes = try Self.compiled(in: dir)
        let (headers, table) = try Self.sections(bytes, in: dir)
        let dynstr = try #require(headers.first { $0.index == Int(headers.first { $0.type == 6 }!.link) })
        Self.put64(&bytes, table + dynstr.index * 64 + 0x18, UInt64(bytes.count + 4096))
        Self.expectDynamicFailure(try await Self.verify(bytes, named: "range", in: dir), contains: "runs past the end of the file")
    }

    @Test("overlapping sections")
    func overlapping() async throws {
        let dir = try TestEnvironment.makeTemporaryDirectory("wheelfarm-elf")
        defer { try? FileManager.default.removeItem(at: dir) }
        var bytes = try Self.compiled(in: dir)
        let (headers, table) = try Self.sections(bytes, in: dir)
        let dynsym = try #require(headers.first { $0.type == 11 })
        let dynstr = headers[Int(dynsym.link)]
        Self.put64(&bytes, table + dynsym.index * 64 + 0x18, UInt64(dynstr.offset + 1))
        Self.expectDynamicFailure(try await Self.verify(bytes, named: "overlap", in: dir), contains: "overlap")
    }

    @Test("a version-needs table placed outside the file, and one whose entries point outside it")
    func verneedOutside() async throws {
        let dir = try TestEnvironment.makeTemporaryDirectory("wheelfarm-elf")
        defer { try? FileManager.default.removeItem(at: dir) }
        let original = try Self.compiled(in: dir)
        let (headers, table) = try Self.sections(original, in: dir)
        let verneed = try #require(headers.first { $0.type == 0x6fff_fffe })
        var outside = original
        Self.put64(&outside, table + verneed.index * 64 + 0x18, UInt64(original.count - 8))
        Self.expectDynamicFailure(try await Self.verify(outside, named: "verneed-file", in: dir), contains: "runs past the end of the file")
        var pointing = original
        Self.put32(&pointing, Int(verneed.offset) + 8, 0x00ff_fff0)  // vn_aux of the first entry
        Self.expectDynamicFailure(try await Self.verify(pointing, named: "verneed-aux", in: dir), contains: "outside the version-needs section")
        var looping = original
        Self.put32(&looping, Int(verneed.offset) + 12, 0x7fff_0000)  // vn_next far beyond
        Self.expectDynamicFailure(try await Self.verify(looping, named: "verneed-next", in: dir), contains: "outside its section")
    }

    @Test("a NEEDED string without a terminating NUL")
    func unterminatedNeeded() async throws {
        let dir = try TestEnvironment.makeTemporaryDirectory("wheelfarm-elf")
        defer { try? FileManager.default.removeItem(at: dir) }
        var bytes = try Self.compiled(in: dir)
        let (headers, _) = try Self.sections(bytes, in: dir)
        let dynamic = try #require(headers.first { $0.type == 6 })
        let dynstr = headers[Int(dynamic.link)]
        // The string table's last byte is its final NUL: make it a letter and point NEEDED at it.
        bytes[Int(dynstr.offset + dynstr.size - 1)] = 0x41
        var at = Int(dynamic.offset)
        var patched = false
        while at + 16 <= Int(dynamic.offset + dynamic.size) {
            if bytes.le64(at) == 1 { Self.put64(&bytes, at + 8, UInt64(dynstr.size - 1)); patched = true; break }
            at += 16
        }
        #expect(patched)
        Self.expectDynamicFailure(try await Self.verify(bytes, named: "needed", in: dir), contains: "no terminating NUL")
    }

    @Test("a section header table stripped from a shared object")
    func noSections() async throws {
        let dir = try TestEnvironment.makeTemporaryDirectory("wheelfarm-elf")
        defer { try? FileManager.default.removeItem(at: dir) }
        var bytes = try Self.compiled(in: dir)
        Self.put64(&bytes, 0x28, 0)
        Self.expectDynamicFailure(try await Self.verify(bytes, named: "stripped", in: dir), contains: "no section header table")
    }

    @Test("truncations at every 97 bytes and random corruption of the tables never crash or hang, and never pass silently")
    func truncatedAndRandom() async throws {
        let dir = try TestEnvironment.makeTemporaryDirectory("wheelfarm-elf")
        defer { try? FileManager.default.removeItem(at: dir) }
        let original = try Self.compiled(in: dir)
        for length in stride(from: 0, to: original.count, by: 97) {
            let report = try await Self.verify(Array(original.prefix(length)), named: "cut", in: dir)
            #expect(!report.failures.isEmpty, "truncated to \(length) bytes")
        }
        let (headers, table) = try Self.sections(original, in: dir)
        let interesting = headers.filter { [6, 11, 0x6fff_fffe, 0x6fff_ffff, 3].contains($0.type) }
        var rng = SplitMix64(seed: 14)
        for round in 0..<300 {
            var bytes = original
            for _ in 0..<4 {
                let h = interesting[Int(rng.next() % UInt64(interesting.count))]
                if rng.next() % 3 == 0 {
                    // A header field: offset, size or link.
                    let field = [0x18, 0x20, 0x28][Int(rng.next() % 3)]
                    Self.put32(&bytes, table + h.index * 64 + field, UInt32(truncatingIfNeeded: rng.next()))
                } else if h.size > 0 {
                    bytes[Int(h.offset) + Int(rng.next() % UInt64(h.size))] = UInt8(truncatingIfNeeded: rng.next())
                }
            }
            _ = try await Self.verify(bytes, named: "random-\(round)", in: dir)
        }
    }

    @Test("a hostile object inside a wheel fails the wheel with elf.dynamic")
    func insideWheel() async throws {
        let f = try await SharedFixtures.shared.built()
        let dir = try TestEnvironment.makeTemporaryDirectory("wheelfarm-elf")
        defer { try? FileManager.default.removeItem(at: dir) }
        var bytes = try Self.compiled(in: dir)
        Self.put64(&bytes, 0x28, 0)
        let evil = dir.appendingPathComponent("evil.so")
        try Data(bytes).write(to: evil)
        let script = """
            import base64, hashlib, shutil, sys, zipfile
            src, dst, evil = sys.argv[1:4]
            with zipfile.ZipFile(src) as z: items = [(i.filename, z.read(i.filename)) for i in z.infolist()]
            rec = next(n for n, _ in items if n.endswith("/RECORD"))
            items = [(n, b) for n, b in items if n != rec] + [("wfdemo/_evil.so", open(evil, "rb").read())]
            h = lambda b: "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(b).digest()).rstrip(b"=").decode()
            rows = "".join(f"{n},{h(b)},{len(b)}\\n" for n, b in items) + f"{rec},,\\n"
            with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as z:
                for n, b in items: z.writestr(n, b)
                z.writestr(rec, rows)
            """
        let out = dir.appendingPathComponent(f.extensionWheel.lastPathComponent)
        try WheelFixtures.check("evil wheel", TestEnvironment.python, ["-c", script, f.extensionWheel.path, out.path, evil.path])
        let report = await WheelVerifier().verify(path: out.path, expectation: SharedFixtures.expectation)
        #expect(report.check(.elfDynamic)?.outcome == .fail)
        #expect(report.check(.elfDynamic)?.message.contains("_evil.so") == true)
        #expect(!report.passed)
    }

    @Test("every shared library of this machine's libc and libstdc++ directories is read without a finding")
    func systemLibraries() throws {
        let dirs = ["/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/aarch64-linux-gnu/lib"]
        var read = 0
        for dir in dirs {
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { continue }
            for name in names.sorted() where name.contains(".so") && read < 400 {
                let path = "\(dir)/\(name)"
                guard let file = try? ReadOnlyFile(path: path), let head = try? file.bytes(at: 0, count: 4), head == [0x7f, 0x45, 0x4c, 0x46],
                      let elf = try? ELFFile(file: file, name: path) else { continue }
                do {
                    _ = try elf.dependencies(file: file, name: path)
                    read += 1
                } catch {
                    Issue.record("\(path): \(error)")
                }
            }
        }
        #expect(read > 50)
    }
}
