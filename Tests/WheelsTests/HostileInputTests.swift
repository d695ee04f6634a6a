import FarmCore
import FarmTestSupport
import Foundation
import Testing
@testable import Wheels

@Suite("Hostile and unusual archives")
struct HostileInputTests {
    func temp() throws -> URL { try TestEnvironment.makeTemporaryDirectory("wheelfarm-hostile") }

    @Test("empty files, random bytes and truncations never crash and fail zip.archive")
    func garbage() async throws {
        let dir = try temp()
        defer { try? FileManager.default.removeItem(at: dir) }
        var generator = SystemRandomNumberGenerator()
        let inputs: [[UInt8]] = [[], [0x50, 0x4b, 5, 6], Array(repeating: 0, count: 100),
                                 (0..<5000).map { _ in UInt8.random(in: 0...255, using: &generator) },
                                 // an EOCD claiming a central directory beyond the file
                                 [0x50, 0x4b, 5, 6, 0, 0, 0, 0, 1, 0, 1, 0, 0xff, 0, 0, 0, 0, 0, 0, 0x10, 0, 0]]
        for (i, bytes) in inputs.enumerated() {
            let path = dir.appendingPathComponent("x_\(i)-1.0-py3-none-any.whl").path
            FileManager.default.createFile(atPath: path, contents: Data(bytes))
            let report = await WheelVerifier().verify(path: path)
            #expect(report.check(.zipArchive)?.outcome == .fail, "input \(i)")
        }
    }

    @Test("an archive declaring more members than the limit is refused before reading them")
    func memberLimit() async throws {
        let f = try await SharedFixtures.shared.built()
        var options = WheelVerifier.Options()
        options.limits.maxMembers = 3
        let report = await WheelVerifier(options: options).verify(path: f.extensionWheel.path)
        #expect(report.failures.map(\.id) == [.zipLimits])
    }

    @Test("Zip64 archives and data descriptors written by Info-ZIP zip are read")
    func zip64AndDataDescriptors() async throws {
        let f = try await SharedFixtures.shared.built()
        let dir = try temp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let unpacked = dir.appendingPathComponent("unpacked")
        try WheelFixtures.check("unzip", "unzip", ["-q", f.extensionWheel.path, "-d", unpacked.path])
        let files = try FileManager.default.subpathsOfDirectory(atPath: unpacked.path).filter {
            var isDir: ObjCBool = false
            FileManager.default.fileExists(atPath: unpacked.appendingPathComponent($0).path, isDirectory: &isDir)
            return !isDir.boolValue
        }.sorted()
        let name = f.extensionWheel.lastPathComponent
        // -fz forces Zip64 records; writing to a pipe makes zip use data descriptors.
        let zip64 = dir.appendingPathComponent("z64").appendingPathComponent(name)
        try FileManager.default.createDirectory(at: zip64.deletingLastPathComponent(), withIntermediateDirectories: true)
        try WheelFixtures.check("zip -fz", "zip", ["-q", "-X", "-fz", zip64.path] + files, in: unpacked)
        let streamed = dir.appendingPathComponent("stream").appendingPathComponent(name)
        try FileManager.default.createDirectory(at: streamed.deletingLastPathComponent(), withIntermediateDirectories: true)
        try WheelFixtures.check("zip -", "/bin/sh", ["-c", "zip -q -X - \(files.joined(separator: " ")) | cat > '\(streamed.path)'"], in: unpacked)
        #expect(try ZipArchive(path: zip64.path).isZip64)
        for path in [zip64, streamed] {
            let report = await WheelVerifier().verify(path: path.path, expectation: SharedFixtures.expectation)
            #expect(report.passed, "\(path.lastPathComponent): \(report.failures)")
        }
        let descriptors = try ZipArchive(path: streamed.path).entries.filter(\.hasDataDescriptor).count
        #expect(descriptors > 0)
        // Info-ZIP's streamed Zip64 output has no Zip64 end record (unzip -t rejects it too).
        let broken = dir.appendingPathComponent("broken").appendingPathComponent(name)
        try FileManager.default.createDirectory(at: broken.deletingLastPathComponent(), withIntermediateDirectories: true)
        try WheelFixtures.check("zip -fz -", "/bin/sh", ["-c", "zip -q -X -fz - \(files.joined(separator: " ")) | cat > '\(broken.path)'"], in: unpacked)
        let rejected = await WheelVerifier().verify(path: broken.path, expectation: SharedFixtures.expectation)
        #expect(rejected.failures.map(\.id) == [.zipArchive])
    }

    @Test("a lying uncompressed size cannot make inflation run past it")
    func lyingSize() async throws {
        let f = try await SharedFixtures.shared.built()
        let dir = try temp()
        defer { try? FileManager.default.removeItem(at: dir) }
        // Shrink the declared size of the first member in both headers.
        var data = [UInt8](try Data(contentsOf: f.extensionWheel))
        let archive = try ZipArchive(path: f.extensionWheel.path)
        let entry = try #require(archive.entries.first { $0.method == 8 && $0.uncompressedSize > 10 })
        let local = Int(entry.localHeaderOffset)
        var cd = Int(archive.centralDirectoryOffset)
        while Array(data[(cd + 46)..<(cd + 46 + entry.rawName.count)]) != entry.rawName { cd += 46 + Int(data[cd + 28]) + Int(data[cd + 29]) << 8 + Int(data[cd + 30]) + Int(data[cd + 31]) << 8 + Int(data[cd + 32]) + Int(data[cd + 33]) << 8 }
        for at in [local + 22, cd + 24] { data[at] = 5; data[at + 1] = 0; data[at + 2] = 0; data[at + 3] = 0 }
        let path = dir.appendingPathComponent(f.extensionWheel.lastPathComponent)
        try Data(data).write(to: path)
        let report = await WheelVerifier().verify(path: path.path, expectation: SharedFixtures.expectation)
        #expect(report.check(.zipCRC)?.outcome == .fail)
        #expect(report.check(.zipCRC)?.message.contains("more than the declared 5 bytes") == true)
    }

    @Test("parsers reject malformed METADATA and RECORD without crashing")
    func parsers() {
        #expect(throws: MetadataParseError.self) { try CoreMetadata(text: " leading continuation\n") }
        #expect(throws: MetadataParseError.self) { try CoreMetadata(bytes: [0xff, 0xfe]) }
        let m = try? CoreMetadata(text: "Name: a\nClassifier: x\n  continued\nClassifier: y\n\nbody\ntext")
        #expect(m?.values("classifier") == ["x\ncontinued", "y"])
        #expect(m?.body == "body\ntext")
        #expect(throws: MetadataParseError.self) { try RecordFile(bytes: Array("\"unterminated,x,1\n".utf8)) }
        let r = try? RecordFile(bytes: Array("\"a,\"\"b\",sha256=x,1\r\nc,,\n".utf8))
        #expect(r?.rows.map(\.path) == ["a,\"b", "c"])
        #expect(RecordFile.render([("a,\"b", "sha256=x", "1")]) == "\"a,\"\"b\",sha256=x,1\n")
    }

    @Test("nothing is left in the temporary directory after verifying a wheel with ELF objects")
    func noLeftovers() async throws {
        let f = try await SharedFixtures.shared.built()
        let dir = try temp()
        defer { try? FileManager.default.removeItem(at: dir) }
        var options = WheelVerifier.Options()
        options.temporaryDirectory = dir.path
        let report = await WheelVerifier(options: options).verify(path: f.extensionWheel.path, expectation: SharedFixtures.expectation)
        #expect(report.passed)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
    }
}
