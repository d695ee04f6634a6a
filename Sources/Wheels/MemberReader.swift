internal import CZlib

/// Inflates members of a ``ZipArchive`` in fixed-size chunks, checking CRC-32 and size as the
/// bytes pass; never holds a whole member in memory.
///
/// One reader owns its buffers and zlib stream and is reused member after member; it is not
/// shared between tasks (each verification task makes its own).
final class MemberReader {
    static let chunkSize = 256 << 10
    private let input: UnsafeMutableRawBufferPointer
    private let output: UnsafeMutableRawBufferPointer
    private var stream = z_stream()
    private var streamReady = false

    init() {
        input = .allocate(byteCount: Self.chunkSize, alignment: 16)
        output = .allocate(byteCount: Self.chunkSize, alignment: 16)
    }

    deinit {
        if streamReady { inflateEnd(&stream) }
        input.deallocate()
        output.deallocate()
    }

    /// Streams the uncompressed bytes of `entry` to `body` and checks them.
    ///
    /// Throws ``WheelError/malformed(check:message:)`` with check `zip.crc` when the data does not
    /// inflate, inflates to another size than declared (inflating stops at the declared size plus
    /// one byte, so a lying header cannot make it run long), or has another CRC-32. Errors thrown
    /// by `body` propagate.
    func stream(_ archive: ZipArchive, _ entry: ZipEntry, data: ZipMemberData,
                _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        func bad(_ message: String) -> WheelError { .malformed(check: "zip.crc", message: "'\(entry.name)': \(message)") }
        var crc: UInt = crc32(0, nil, 0)
        var produced: Int64 = 0
        var position = data.offset
        let inputEnd = data.offset + data.count
        switch entry.method {
        case 0:
            guard data.count == entry.uncompressedSize else {
                throw bad("stored member has \(data.count) bytes of data but declares \(entry.uncompressedSize) uncompressed")
            }
            while position < inputEnd {
                let want = Int(min(Int64(Self.chunkSize), inputEnd - position))
                let n = try archive.readRaw(into: UnsafeMutableRawBufferPointer(rebasing: output[0..<want]), at: position)
                guard n == want else { throw bad("archive ends inside the member's data") }
                let chunk = UnsafeRawBufferPointer(rebasing: output[0..<n])
                crc = crc32(crc, chunk.baseAddress!.assumingMemoryBound(to: Bytef.self), uInt(n))
                try body(chunk)
                position += Int64(n)
                produced += Int64(n)
            }
        case 8:
            if streamReady {
                inflateReset(&stream)
            } else {
                guard wf_inflate_init_raw(&stream) == Z_OK else { throw bad("zlib could not be initialised") }
                streamReady = true
            }
            var finished = false
            while !finished {
                if stream.avail_in == 0 && position < inputEnd {
                    let want = Int(min(Int64(Self.chunkSize), inputEnd - position))
                    let n = try archive.readRaw(into: UnsafeMutableRawBufferPointer(rebasing: input[0..<want]), at: position)
                    guard n == want else { throw bad("archive ends inside the member's data") }
                    position += Int64(n)
                    stream.next_in = input.baseAddress!.assumingMemoryBound(to: Bytef.self)
                    stream.avail_in = uInt(n)
                }
                let inputLeft = stream.avail_in
                stream.next_out = output.baseAddress!.assumingMemoryBound(to: Bytef.self)
                stream.avail_out = uInt(Self.chunkSize)
                let status = inflate(&stream, Z_NO_FLUSH)
                let n = Self.chunkSize - Int(stream.avail_out)
                if n > 0 {
                    produced += Int64(n)
                    guard produced <= entry.uncompressedSize else {
                        throw bad("inflates to more than the declared \(entry.uncompressedSize) bytes")
                    }
                    let chunk = UnsafeRawBufferPointer(rebasing: output[0..<n])
                    crc = crc32(crc, chunk.baseAddress!.assumingMemoryBound(to: Bytef.self), uInt(n))
                    try body(chunk)
                }
                switch status {
                case Z_STREAM_END:
                    finished = true
                case Z_OK:
                    break
                case Z_BUF_ERROR where position >= inputEnd && stream.avail_in == 0:
                    throw bad("deflate data ends before the end of the stream (truncated member)")
                case Z_BUF_ERROR:
                    break
                default:
                    let reason = stream.msg.map { String(cString: $0) } ?? "status \(status)"
                    throw bad("deflate data is corrupt (\(reason))")
                }
                if !finished, n == 0, stream.avail_in == inputLeft, position >= inputEnd {
                    throw bad("deflate data ends before the end of the stream (truncated member)")
                }
            }
            guard stream.avail_in == 0, position == inputEnd else {
                throw bad("\(Int64(stream.avail_in) + inputEnd - position) bytes of compressed data follow the end of the deflate stream")
            }
        default:
            throw bad("compression method \(entry.method) is not supported (wheels use 0 stored or 8 deflate)")
        }
        guard produced == entry.uncompressedSize else {
            throw bad("inflates to \(produced) bytes but declares \(entry.uncompressedSize)")
        }
        guard UInt32(truncatingIfNeeded: crc) == entry.crc32 else {
            throw bad("CRC-32 is \(hex32(UInt32(truncatingIfNeeded: crc))) but the archive declares \(hex32(entry.crc32))")
        }
    }

    /// Reads a whole (small) member into memory, at most `limit` bytes.
    func readAll(_ archive: ZipArchive, _ entry: ZipEntry, limit: Int) throws -> [UInt8] {
        guard entry.uncompressedSize <= Int64(limit) else {
            throw WheelError.malformed(check: "zip.limits", message: "'\(entry.name)' declares \(entry.uncompressedSize) bytes; metadata files are limited to \(limit)")
        }
        let data = try archive.memberData(entry)
        var out: [UInt8] = []
        out.reserveCapacity(Int(entry.uncompressedSize))
        try stream(archive, entry, data: data) { out.append(contentsOf: $0) }
        return out
    }
}
