// A streaming ZIP reader over `pread`.
//
// Written by hand rather than with ZIPFoundation because verification needs what that library
// does not offer: the local headers compared with the central directory, data descriptors
// checked, overlapping members detected, members' raw compressed bytes (for copying unchanged
// members when rewriting), explicit hostile-input bounds, and inflation in fixed-size chunks with
// the CRC and the RECORD hash computed as the bytes pass. The format parts used are small:
// end of central directory (+ Zip64 locator and record), central directory entries (+ Zip64
// extra field), local headers and data descriptors. zlib does the inflating.

/// Limits that keep reading a hostile archive bounded in time and memory.
public struct ZipLimits: Sendable, Hashable, Codable {
    /// Most members an archive may have.
    public var maxMembers: Int = 200_000
    /// Longest member name, in bytes.
    public var maxNameLength: Int = 1024
    /// Largest central directory read into memory.
    public var maxCentralDirectoryBytes: Int64 = 64 << 20
    /// Largest uncompressed size of one member.
    public var maxMemberBytes: Int64 = 8 << 30
    /// Largest sum of the members' uncompressed sizes.
    public var maxTotalBytes: Int64 = 32 << 30
    /// Largest uncompressed/compressed ratio of a member larger than ``ratioThreshold``.
    ///
    /// Deflate itself never exceeds about 1032:1 (a member of zeros), so a limit must lie well
    /// below that to catch anything; real wheels' large members (shared objects, data) compress
    /// 2–20:1. 200:1 passes them and stops a 1 GiB member of zeros (about 1 MiB compressed).
    public var maxRatio: Int64 = 200
    /// Members smaller than this are exempt from the ratio limit.
    public var ratioThreshold: Int64 = 1 << 20
    /// Largest metadata file (METADATA, WHEEL, RECORD) read into memory.
    public var maxMetadataBytes: Int = 32 << 20

    /// The default limits: generous for real wheels (vLLM's are ~120 MB uncompressed).
    public init() {}
}

/// One member as the central directory describes it.
public struct ZipEntry: Sendable, Hashable {
    /// Position in the central directory.
    public var index: Int
    /// The name as stored (UTF-8 when valid, else lossily decoded).
    public var name: String
    /// The name's raw bytes.
    public var rawName: [UInt8]
    /// Whether ``rawName`` is valid UTF-8.
    public var nameIsUTF8: Bool
    /// "Version made by" (high byte: host system, 3 = Unix).
    public var versionMadeBy: UInt16
    /// "Version needed to extract".
    public var versionNeeded: UInt16
    /// General purpose flags (bit 0 encrypted, bit 3 data descriptor, bit 11 UTF-8).
    public var flags: UInt16
    /// Compression method (0 stored, 8 deflate).
    public var method: UInt16
    /// DOS time and date.
    public var modTime: UInt16
    public var modDate: UInt16
    /// Declared CRC-32 of the uncompressed bytes.
    public var crc32: UInt32
    /// Declared sizes.
    public var compressedSize: Int64
    public var uncompressedSize: Int64
    /// Offset of the local header.
    public var localHeaderOffset: Int64
    /// External attributes (Unix mode in the high 16 bits when made on Unix).
    public var externalAttributes: UInt32
    /// Internal attributes.
    public var internalAttributes: UInt16
    /// Whether a Zip64 extra field supplied sizes or offset.
    public var usesZip64: Bool
    /// The central directory extra field (kept for rewriting).
    public var extra: [UInt8]

    /// Whether the name ends in `/` (a directory entry).
    public var isDirectory: Bool { name.hasSuffix("/") }
    /// Whether the member is encrypted.
    public var isEncrypted: Bool { flags & 1 != 0 }
    /// Whether a data descriptor follows the data.
    public var hasDataDescriptor: Bool { flags & 8 != 0 }
    /// The Unix file mode, when the member was made on Unix and carries one.
    public var unixMode: UInt32? {
        let mode = externalAttributes >> 16
        return (versionMadeBy >> 8) == 3 && mode != 0 ? mode : nil
    }
}

/// Where a member's compressed bytes lie, from its local header.
public struct ZipMemberData: Sendable, Hashable {
    /// Offset of the first compressed byte.
    public var offset: Int64
    /// Number of compressed bytes.
    public var count: Int64
    /// Offset just past the data descriptor (or the data when there is none).
    public var end: Int64
}

/// An open ZIP archive: its central directory, read into memory within ``ZipLimits``.
public final class ZipArchive: Sendable {
    /// The members in central-directory order.
    public let entries: [ZipEntry]
    /// Offset of the central directory.
    public let centralDirectoryOffset: Int64
    /// Size of the archive file.
    public let fileSize: Int64
    /// The archive comment.
    public let comment: [UInt8]
    /// Whether the end of central directory came from a Zip64 record.
    public let isZip64: Bool
    let file: ReadOnlyFile
    /// The limits in force.
    public let limits: ZipLimits

    /// The path the archive was opened from.
    public var path: String { file.path }

    /// Opens `path` and reads its central directory.
    ///
    /// Throws ``WheelError/malformed(check:message:)`` with check `zip.archive` when the end of
    /// central directory or the directory itself cannot be read, or `zip.limits` when the archive
    /// exceeds the member count or directory size limit; ``WheelError/io(path:operation:errno:)``
    /// when the file cannot be read.
    public init(path: String, limits: ZipLimits = ZipLimits()) throws(WheelError) {
        let file = try ReadOnlyFile(path: path)
        self.file = file
        self.limits = limits
        fileSize = file.size
        func bad(_ message: String, _ check: String = "zip.archive") -> WheelError { .malformed(check: check, message: message) }

        // End of central directory: within the last 22 + 65535 bytes.
        guard fileSize >= 22 else { throw bad("file of \(fileSize) bytes is too short to be a zip archive (at least 22 bytes)") }
        let tailCount = Int(min(fileSize, 22 + 65535))
        guard let tail = try file.bytes(at: fileSize - Int64(tailCount), count: tailCount) else { throw bad("cannot read the end of the file") }
        var eocdAt = -1
        var i = tailCount - 22
        while i >= 0 {
            if tail[i] == 0x50, tail[i + 1] == 0x4b, tail[i + 2] == 5, tail[i + 3] == 6,
               i + 22 + Int(tail.le16(i + 20)) == tailCount {
                eocdAt = i; break
            }
            i -= 1
        }
        guard eocdAt >= 0 else { throw bad("no end-of-central-directory record found: not a zip archive, or truncated") }
        let eocdOffset = fileSize - Int64(tailCount) + Int64(eocdAt)
        comment = Array(tail[(eocdAt + 22)...])
        var disk = Int64(tail.le16(eocdAt + 4)), cdDisk = Int64(tail.le16(eocdAt + 6))
        var countOnDisk = Int64(tail.le16(eocdAt + 8)), count = Int64(tail.le16(eocdAt + 10))
        var cdSize = Int64(tail.le32(eocdAt + 12)), cdOffset = Int64(tail.le32(eocdAt + 16))
        var cdEnd = eocdOffset
        var zip64 = false
        // Zip64: a locator sits just before the EOCD and points at the Zip64 EOCD record.
        if eocdOffset >= 20, let locator = try file.bytes(at: eocdOffset - 20, count: 20), locator.le32(0) == 0x07064b50 {
            let recordOffset = Int64(bitPattern: locator.le64(8))
            guard recordOffset >= 0, recordOffset <= eocdOffset - 20 - 56,
                  let record = try file.bytes(at: recordOffset, count: 56), record.le32(0) == 0x06064b50 else {
                throw bad("the Zip64 end-of-central-directory locator points at offset \(recordOffset), where no Zip64 record is")
            }
            let recordSize = Int64(bitPattern: record.le64(4))
            guard recordSize >= 44, recordOffset + 12 + recordSize == eocdOffset - 20 else {
                throw bad("the Zip64 end-of-central-directory record's size \(recordSize) does not reach the locator")
            }
            zip64 = true
            disk = Int64(record.le32(16)); cdDisk = Int64(record.le32(20))
            countOnDisk = Int64(bitPattern: record.le64(24)); count = Int64(bitPattern: record.le64(32))
            cdSize = Int64(bitPattern: record.le64(40)); cdOffset = Int64(bitPattern: record.le64(48))
            cdEnd = recordOffset
        } else if count == 0xFFFF || cdSize == 0xFFFF_FFFF || cdOffset == 0xFFFF_FFFF {
            throw bad("the end-of-central-directory record asks for Zip64 but there is no Zip64 locator")
        }
        isZip64 = zip64
        guard disk == 0, cdDisk == 0, countOnDisk == count else {
            throw bad("multi-disk archives are not supported (disk \(disk), central directory disk \(cdDisk))")
        }
        guard count >= 0, count <= Int64(limits.maxMembers) else {
            throw bad("archive declares \(count) members; the limit is \(limits.maxMembers)", "zip.limits")
        }
        guard cdSize >= 0, cdSize <= limits.maxCentralDirectoryBytes else {
            throw bad("central directory of \(cdSize) bytes exceeds the limit of \(limits.maxCentralDirectoryBytes) bytes", "zip.limits")
        }
        guard cdOffset >= 0, cdOffset + cdSize == cdEnd else {
            throw bad("central directory at offset \(cdOffset) with \(cdSize) bytes does not end where the end-of-central-directory record starts (\(cdEnd)): truncated or data prepended")
        }
        centralDirectoryOffset = cdOffset
        guard let cd = try file.bytes(at: cdOffset, count: Int(cdSize)) else { throw bad("cannot read the central directory") }

        var entries: [ZipEntry] = []
        entries.reserveCapacity(Int(count))
        var p = 0
        for index in 0..<Int(count) {
            guard p + 46 <= cd.count, cd.le32(p) == 0x02014b50 else {
                throw bad("central directory entry \(index) at offset \(cdOffset + Int64(p)) has no valid signature")
            }
            let nameLength = Int(cd.le16(p + 28)), extraLength = Int(cd.le16(p + 30)), commentLength = Int(cd.le16(p + 32))
            guard p + 46 + nameLength + extraLength + commentLength <= cd.count else {
                throw bad("central directory entry \(index) runs past the end of the central directory")
            }
            guard nameLength <= limits.maxNameLength else {
                throw bad("member \(index) has a name of \(nameLength) bytes; the limit is \(limits.maxNameLength)", "zip.limits")
            }
            let rawName = Array(cd[(p + 46)..<(p + 46 + nameLength)])
            let extra = Array(cd[(p + 46 + nameLength)..<(p + 46 + nameLength + extraLength)])
            var compressed = Int64(cd.le32(p + 20)), uncompressed = Int64(cd.le32(p + 24))
            var offset = Int64(cd.le32(p + 42))
            let diskStart = cd.le16(p + 34)
            var usesZip64 = false
            if compressed == 0xFFFF_FFFF || uncompressed == 0xFFFF_FFFF || offset == 0xFFFF_FFFF {
                guard let z = Self.zip64Extra(extra) else {
                    throw bad("member \(index) needs a Zip64 extra field for its sizes or offset and has none")
                }
                var q = 0
                func next() -> Int64? {
                    guard q + 8 <= z.count else { return nil }
                    defer { q += 8 }
                    return Int64(bitPattern: z.le64(q))
                }
                if uncompressed == 0xFFFF_FFFF { guard let v = next() else { throw bad("member \(index): Zip64 extra field too short") }; uncompressed = v }
                if compressed == 0xFFFF_FFFF { guard let v = next() else { throw bad("member \(index): Zip64 extra field too short") }; compressed = v }
                if offset == 0xFFFF_FFFF { guard let v = next() else { throw bad("member \(index): Zip64 extra field too short") }; offset = v }
                usesZip64 = true
            }
            guard diskStart == 0 || diskStart == 0xFFFF, compressed >= 0, uncompressed >= 0, offset >= 0 else {
                throw bad("member \(index) has negative sizes or offset, or lives on another disk")
            }
            let utf8 = String(validating: rawName, as: UTF8.self)
            entries.append(ZipEntry(
                index: index, name: utf8 ?? String(decoding: rawName, as: UTF8.self), rawName: rawName,
                nameIsUTF8: utf8 != nil, versionMadeBy: cd.le16(p + 4), versionNeeded: cd.le16(p + 6),
                flags: cd.le16(p + 8), method: cd.le16(p + 10), modTime: cd.le16(p + 12), modDate: cd.le16(p + 14),
                crc32: cd.le32(p + 16), compressedSize: compressed, uncompressedSize: uncompressed,
                localHeaderOffset: offset, externalAttributes: cd.le32(p + 38), internalAttributes: cd.le16(p + 36),
                usesZip64: usesZip64, extra: extra))
            p += 46 + nameLength + extraLength + commentLength
        }
        guard p == cd.count else {
            throw bad("central directory holds \(cd.count - p) bytes after its \(count) declared entries")
        }
        self.entries = entries
    }

    /// The payload of the Zip64 extended information extra field (id 0x0001), if present.
    static func zip64Extra(_ extra: [UInt8]) -> [UInt8]? {
        var q = 0
        while q + 4 <= extra.count {
            let id = extra.le16(q), size = Int(extra.le16(q + 2))
            guard q + 4 + size <= extra.count else { return nil }
            if id == 1 { return Array(extra[(q + 4)..<(q + 4 + size)]) }
            q += 4 + size
        }
        return nil
    }

    /// Reads the local header of `entry` and compares it with the central directory.
    ///
    /// Returns where the compressed data lies; throws ``WheelError/malformed(check:message:)``
    /// with check `zip.local-headers` on any disagreement.
    public func memberData(_ entry: ZipEntry) throws(WheelError) -> ZipMemberData {
        func bad(_ message: String) -> WheelError { .malformed(check: "zip.local-headers", message: "'\(entry.name)': \(message)") }
        guard let header = try file.bytes(at: entry.localHeaderOffset, count: 30), header.le32(0) == 0x04034b50 else {
            throw bad("no local header at offset \(entry.localHeaderOffset)")
        }
        let nameLength = Int(header.le16(26)), extraLength = Int(header.le16(28))
        guard let rest = try file.bytes(at: entry.localHeaderOffset + 30, count: nameLength + extraLength) else {
            throw bad("local header runs past the end of the file")
        }
        guard Array(rest[0..<nameLength]) == entry.rawName else {
            throw bad("local header names the member '\(String(decoding: rest[0..<nameLength], as: UTF8.self))'")
        }
        let flags = header.le16(6), method = header.le16(8)
        guard method == entry.method else { throw bad("local header says compression method \(method), central directory \(entry.method)") }
        guard flags & 0x0009 == entry.flags & 0x0009 else {
            throw bad("local header flags \(flags) disagree with the central directory's \(entry.flags)")
        }
        let dataOffset = entry.localHeaderOffset + 30 + Int64(nameLength + extraLength)
        var end = dataOffset + entry.compressedSize
        guard end <= centralDirectoryOffset, end >= dataOffset else {
            throw bad("data of \(entry.compressedSize) bytes at offset \(dataOffset) runs into the central directory at \(centralDirectoryOffset)")
        }
        let localExtra = Array(rest[nameLength...])
        let localZip64 = Self.zip64Extra(localExtra)
        if flags & 8 == 0 {
            var csize = Int64(header.le32(18)), usize = Int64(header.le32(22))
            if csize == 0xFFFF_FFFF || usize == 0xFFFF_FFFF {
                guard let z = localZip64, z.count >= 16 else { throw bad("local header needs a Zip64 extra field and has none") }
                usize = Int64(bitPattern: z.le64(0)); csize = Int64(bitPattern: z.le64(8))
            }
            guard header.le32(14) == entry.crc32, csize == entry.compressedSize, usize == entry.uncompressedSize else {
                throw bad("local header declares CRC \(hex32(header.le32(14))), \(csize) compressed and \(usize) uncompressed bytes; the central directory declares \(hex32(entry.crc32)), \(entry.compressedSize) and \(entry.uncompressedSize)")
            }
        } else {
            // Data descriptor: optional signature, CRC, then 4- or 8-byte sizes (8 when Zip64).
            let wide = localZip64 != nil || entry.usesZip64
            let length = wide ? 20 : 12
            guard let d = try file.bytes(at: end, count: min(length + 4, Int(max(0, centralDirectoryOffset - end)))),
                  d.count >= length else {
                throw bad("data descriptor missing after the data")
            }
            let base = d.le32(0) == 0x08074b50 && d.count >= length + 4 ? 4 : 0
            let crc = d.le32(base)
            let csize = wide ? Int64(bitPattern: d.le64(base + 4)) : Int64(d.le32(base + 4))
            let usize = wide ? Int64(bitPattern: d.le64(base + 12)) : Int64(d.le32(base + 8))
            guard crc == entry.crc32, csize == entry.compressedSize, usize == entry.uncompressedSize else {
                throw bad("data descriptor declares CRC \(hex32(crc)), \(csize) compressed and \(usize) uncompressed bytes; the central directory declares \(hex32(entry.crc32)), \(entry.compressedSize) and \(entry.uncompressedSize)")
            }
            end += Int64(base + length)
        }
        return ZipMemberData(offset: dataOffset, count: entry.compressedSize, end: end)
    }

    /// Reads raw (still compressed) bytes of the archive, for copying members unchanged.
    func readRaw(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(WheelError) -> Int {
        try file.read(into: buffer, at: offset)
    }
}

func hex32(_ v: UInt32) -> String {
    let s = String(v, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, 8 - s.count)) + s
}
