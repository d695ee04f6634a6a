#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
internal import CZlib

/// Writes a ZIP archive front to back: members copied raw from another archive (no inflate or
/// deflate) or deflated from memory, then the central directory (Zip64 records when needed).
///
/// Hand-written for the same reasons as ``ZipArchive``: raw member copies are what make a rewrite
/// of a 250 MB wheel cost about a file copy, and no kept package offers them.
final class ZipWriter {
    private struct Central {
        var name: [UInt8]
        var versionMadeBy: UInt16
        var flags: UInt16
        var method: UInt16
        var modTime: UInt16
        var modDate: UInt16
        var crc: UInt32
        var compressed: Int64
        var uncompressed: Int64
        var internalAttributes: UInt16
        var externalAttributes: UInt32
        var offset: Int64
    }

    let path: String
    private var descriptor: Int32
    private var position: Int64 = 0
    private var central: [Central] = []
    /// Set once `sendfile` was refused for this file: later members use the buffer straight away.
    private var sendfileRefused = false
    private var copyBuffer: UnsafeMutableRawBufferPointer?

    /// Creates `path` exclusively (mode 0644). Without `kernelCopy`, raw copies always go
    /// through the buffer (the tests cover that path this way).
    init(path: String, kernelCopy: Bool = true) throws(WheelError) {
        descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw WheelError.io(path: path, operation: "create", errno: errno) }
        self.path = path
        sendfileRefused = !kernelCopy
    }

    deinit {
        if descriptor >= 0 { close(descriptor) }
        copyBuffer?.deallocate()
    }

    private func write(_ bytes: UnsafeRawBufferPointer) throws(WheelError) {
        try writeAll(descriptor, bytes, path: path)
        position += Int64(bytes.count)
    }

    private func write(_ bytes: [UInt8]) throws(WheelError) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, bytes.count), alignment: 1)
        defer { buffer.deallocate() }
        buffer.copyBytes(from: bytes)
        try write(UnsafeRawBufferPointer(rebasing: buffer[0..<bytes.count]))
    }

    private static func localHeader(_ c: Central) -> [UInt8] {
        let zip64 = c.compressed >= 0xFFFF_FFFF || c.uncompressed >= 0xFFFF_FFFF
        var h = [UInt8]()
        h.put32(0x04034b50); h.put16(zip64 ? 45 : 20); h.put16(c.flags); h.put16(c.method)
        h.put16(c.modTime); h.put16(c.modDate); h.put32(c.crc)
        h.put32(zip64 ? 0xFFFF_FFFF : UInt32(c.compressed)); h.put32(zip64 ? 0xFFFF_FFFF : UInt32(c.uncompressed))
        h.put16(UInt16(c.name.count)); h.put16(zip64 ? 20 : 0)
        h += c.name
        if zip64 { h.put16(1); h.put16(16); h.put64(UInt64(c.uncompressed)); h.put64(UInt64(c.compressed)) }
        return h
    }

    /// Copies a member's compressed bytes from `archive` unchanged, under `name`.
    func copyRaw(_ entry: ZipEntry, data: ZipMemberData, from archive: ZipArchive, name: [UInt8]) throws(WheelError) {
        let c = Central(name: name, versionMadeBy: entry.versionMadeBy, flags: entry.flags & ~0x0008, method: entry.method,
                        modTime: entry.modTime, modDate: entry.modDate, crc: entry.crc32, compressed: entry.compressedSize,
                        uncompressed: entry.uncompressedSize, internalAttributes: entry.internalAttributes,
                        externalAttributes: entry.externalAttributes, offset: position)
        try write(Self.localHeader(c))
        try copy(from: archive.file, at: data.offset, count: data.count, member: entry.name)
        central.append(c)
    }

    /// Copies `count` bytes of `source` at `offset` to the end of the archive.
    ///
    /// `sendfile` copies inside the kernel, page cache to page cache, as `cp` does (Swift's Glibc
    /// module does not expose `copy_file_range`; for file-to-file copies the kernel runs both
    /// through the same splice path). Where the kernel refuses (`EINVAL`, `ENOSYS`: an unusual
    /// filesystem), the rest goes through one 1 MiB buffer with `pread`/`write`.
    private func copy(from source: ReadOnlyFile, at offset: Int64, count: Int64, member: String) throws(WheelError) {
        var inOffset = off_t(offset)
        var remaining = count
        while remaining > 0, !sendfileRefused {
            let n = sendfile(descriptor, source.descriptor, &inOffset, Int(min(remaining, 1 << 30)))
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                if errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP { sendfileRefused = true; break }
                throw WheelError.io(path: path, operation: "write", errno: errno)
            }
            guard n > 0 else { throw WheelError.malformed(check: "zip.crc", message: "'\(member)': archive ends inside the member's data") }
            position += Int64(n); remaining -= Int64(n)
        }
        guard remaining > 0 else { return }
        if copyBuffer == nil { copyBuffer = .allocate(byteCount: 1 << 20, alignment: 16) }
        let buffer = copyBuffer!
        while remaining > 0 {
            let want = Int(min(remaining, Int64(buffer.count)))
            let n = try source.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<want]), at: Int64(inOffset))
            guard n == want else { throw WheelError.malformed(check: "zip.crc", message: "'\(member)': archive ends inside the member's data") }
            try write(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            inOffset += off_t(n); remaining -= Int64(n)
        }
    }

    /// Deflates `bytes` and adds them as a member.
    func addDeflated(name: [UInt8], bytes: [UInt8], like entry: ZipEntry?) throws(WheelError) {
        var stream = z_stream()
        guard wf_deflate_init_raw(&stream, 6) == Z_OK else { throw WheelError.invalidInput("zlib deflate could not be initialised") }
        defer { deflateEnd(&stream) }
        var out = [UInt8](repeating: 0, count: Int(deflateBound(&stream, uLong(bytes.count))) + 64)
        let written: Int = bytes.withUnsafeBufferPointer { input in
            out.withUnsafeMutableBufferPointer { output in
                stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress)
                stream.avail_in = uInt(input.count)
                stream.next_out = output.baseAddress
                stream.avail_out = uInt(output.count)
                let status = deflate(&stream, Z_FINISH)
                return status == Z_STREAM_END ? output.count - Int(stream.avail_out) : -1
            }
        }
        guard written >= 0 else { throw WheelError.invalidInput("zlib deflate failed") }
        let crc = bytes.withUnsafeBufferPointer { UInt32(truncatingIfNeeded: crc32(0, $0.baseAddress, uInt($0.count))) }
        let c = Central(name: name, versionMadeBy: entry?.versionMadeBy ?? 0x0314, flags: (entry?.flags ?? 0) & 0x0800, method: 8,
                        modTime: entry?.modTime ?? 0, modDate: entry?.modDate ?? 0x2821, crc: crc, compressed: Int64(written),
                        uncompressed: Int64(bytes.count), internalAttributes: 0,
                        externalAttributes: entry?.externalAttributes ?? (0o100644 << 16), offset: position)
        try write(Self.localHeader(c))
        try write(Array(out[0..<written]))
        central.append(c)
    }

    /// Writes the central directory and end records and closes the file. It is not flushed to
    /// disk here: the rewriter syncs it while it verifies it (see ``WheelRewriter``).
    func finish() throws(WheelError) {
        let cdOffset = position
        var cd = [UInt8]()
        for c in central {
            let bigSizes = c.compressed >= 0xFFFF_FFFF || c.uncompressed >= 0xFFFF_FFFF
            let bigOffset = c.offset >= 0xFFFF_FFFF
            var extra = [UInt8]()
            if bigSizes || bigOffset {
                var payload = [UInt8]()
                if bigSizes { payload.put64(UInt64(c.uncompressed)); payload.put64(UInt64(c.compressed)) }
                if bigOffset { payload.put64(UInt64(c.offset)) }
                extra.put16(1); extra.put16(UInt16(payload.count)); extra += payload
            }
            cd.put32(0x02014b50); cd.put16(c.versionMadeBy); cd.put16(extra.isEmpty ? 20 : 45); cd.put16(c.flags); cd.put16(c.method)
            cd.put16(c.modTime); cd.put16(c.modDate); cd.put32(c.crc)
            cd.put32(bigSizes ? 0xFFFF_FFFF : UInt32(c.compressed)); cd.put32(bigSizes ? 0xFFFF_FFFF : UInt32(c.uncompressed))
            cd.put16(UInt16(c.name.count)); cd.put16(UInt16(extra.count)); cd.put16(0); cd.put16(0)
            cd.put16(c.internalAttributes); cd.put32(c.externalAttributes); cd.put32(bigOffset ? 0xFFFF_FFFF : UInt32(c.offset))
            cd += c.name; cd += extra
        }
        try write(cd)
        let cdSize = Int64(cd.count)
        let needZip64 = central.count >= 0xFFFF || cdOffset >= 0xFFFF_FFFF || cdSize >= 0xFFFF_FFFF
        var end = [UInt8]()
        if needZip64 {
            let recordOffset = position
            end.put32(0x06064b50); end.put64(44); end.put16(45); end.put16(45); end.put32(0); end.put32(0)
            end.put64(UInt64(central.count)); end.put64(UInt64(central.count)); end.put64(UInt64(cdSize)); end.put64(UInt64(cdOffset))
            end.put32(0x07064b50); end.put32(0); end.put64(UInt64(recordOffset)); end.put32(1)
        }
        let count16 = needZip64 ? 0xFFFF : UInt16(central.count)
        end.put32(0x06054b50); end.put16(0); end.put16(0); end.put16(count16); end.put16(count16)
        end.put32(needZip64 ? 0xFFFF_FFFF : UInt32(cdSize)); end.put32(needZip64 ? 0xFFFF_FFFF : UInt32(cdOffset)); end.put16(0)
        try write(end)
        let closed = close(descriptor)
        descriptor = -1
        guard closed == 0 else { throw WheelError.io(path: path, operation: "close", errno: errno) }
    }
}

extension Array where Element == UInt8 {
    mutating func put16(_ v: UInt16) { append(UInt8(v & 0xff)); append(UInt8(v >> 8)) }
    mutating func put32(_ v: UInt32) { put16(UInt16(v & 0xffff)); put16(UInt16(v >> 16)) }
    mutating func put64(_ v: UInt64) { put32(UInt32(v & 0xffff_ffff)); put32(UInt32(v >> 32)) }
}
