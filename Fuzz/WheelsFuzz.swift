// libFuzzer target for the wheel parsers: the ZIP reader (end of central directory, Zip64,
// central directory, local headers, data descriptors, inflating), METADATA/WHEEL and RECORD,
// and the ELF reader the audits use (header, section table, dynamic section, version needs,
// symbol versions: ELFFile and ELFDependencies).
// Built by Fuzz/run.sh with `swiftc -sanitize=fuzzer,address` together with the parser sources,
// which depend only on libc and zlib so they compile on their own.
#if canImport(Glibc)
import Glibc
#endif

/// Tight limits so one input stays cheap; the reader must respect them whatever the input says.
private let fuzzLimits: ZipLimits = {
    var l = ZipLimits()
    l.maxMembers = 1000
    l.maxCentralDirectoryBytes = 1 << 20
    l.maxMemberBytes = 4 << 20
    l.maxMetadataBytes = 1 << 20
    return l
}()

private let scratchPath: String = {
    var template = Array("/tmp/wheelfarm-fuzz-XXXXXX".utf8CString)
    let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
    precondition(fd >= 0)
    close(fd)
    return String(cString: template.withUnsafeBufferPointer { $0.baseAddress! })
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    _ = try? CoreMetadata(bytes: bytes)
    _ = try? RecordFile(bytes: bytes)
    // The ZIP reader works on files (pread): write the input to a scratch file.
    let fd = open(scratchPath, O_WRONLY | O_TRUNC)
    guard fd >= 0 else { return 0 }
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    close(fd)
    if size >= 4, bytes[0] == 0x7f, bytes[1] == 0x45, bytes[2] == 0x4c, bytes[3] == 0x46 {
        if let file = try? ReadOnlyFile(path: scratchPath), let elf = try? ELFFile(file: file, name: "fuzz") {
            if let deps = try? elf.dependencies(file: file, name: "fuzz") {
                precondition(deps.versionNeeds.allSatisfy { $0.symbols.count <= 3 && $0.symbolCount >= $0.symbols.count })
                _ = deps.highestByNamespace
            }
        }
        return 0
    }
    guard let archive = try? ZipArchive(path: scratchPath, limits: fuzzLimits) else { return 0 }
    let reader = MemberReader()
    var budget: Int64 = 16 << 20  // total inflated bytes per input
    for entry in archive.entries {
        guard budget > 0, entry.uncompressedSize <= budget else { break }
        guard let member = try? archive.memberData(entry) else { continue }
        var inflated: Int64 = 0
        try? reader.stream(archive, entry, data: member) { chunk in inflated += Int64(chunk.count) }
        precondition(inflated <= entry.uncompressedSize, "inflated past the declared size")
        budget -= max(1, entry.uncompressedSize)
        if entry.name.hasSuffix("METADATA") || entry.name.hasSuffix("RECORD"),
           let small = try? reader.readAll(archive, entry, limit: fuzzLimits.maxMetadataBytes) {
            _ = try? CoreMetadata(bytes: small)
            _ = try? RecordFile(bytes: small)
        }
    }
    return 0
}
