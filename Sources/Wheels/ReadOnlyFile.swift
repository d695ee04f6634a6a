#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A file opened read-only and read with `pread`, so several readers can share one descriptor
/// without a shared file position.
///
/// Written on the C API directly: the ZIP reader needs positioned reads and nothing else, and
/// `FileHandle` has no positioned read.
final class ReadOnlyFile: Sendable {
    let descriptor: Int32
    /// The file size when it was opened.
    let size: Int64
    let path: String

    init(path: String) throws(WheelError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw WheelError.io(path: path, operation: "open", errno: errno) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let e = errno; close(fd)
            throw WheelError.io(path: path, operation: "stat", errno: e)
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw WheelError.notARegularFile(path: path)
        }
        descriptor = fd
        size = Int64(info.st_size)
        self.path = path
    }

    deinit { close(descriptor) }

    /// Reads up to `buffer.count` bytes at `offset`; returns the number read (short only at end of file).
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(WheelError) -> Int {
        var done = 0
        while done < buffer.count {
            let n = pread(descriptor, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw WheelError.io(path: path, operation: "read", errno: errno)
            }
            if n == 0 { break }
            done += n
        }
        return done
    }

    /// Reads exactly `count` bytes at `offset`, or `nil` when the file ends before.
    func bytes(at offset: Int64, count: Int) throws(WheelError) -> [UInt8]? {
        guard offset >= 0, count >= 0, offset <= size, Int64(count) <= size - offset else { return nil }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 1)
        defer { buffer.deallocate() }
        let n = try read(into: buffer, at: offset)
        return n == count ? Array(buffer.bindMemory(to: UInt8.self)) : nil
    }
}

/// Little-endian field access on a byte array, bounds-checked (returns 0 past the end).
extension Array where Element == UInt8 {
    func le16(_ at: Int) -> UInt16 {
        guard at >= 0, at + 2 <= count else { return 0 }
        return UInt16(self[at]) | UInt16(self[at + 1]) << 8
    }
    func le32(_ at: Int) -> UInt32 {
        guard at >= 0, at + 4 <= count else { return 0 }
        return UInt32(le16(at)) | UInt32(le16(at + 2)) << 16
    }
    func le64(_ at: Int) -> UInt64 {
        guard at >= 0, at + 8 <= count else { return 0 }
        return UInt64(le32(at)) | UInt64(le32(at + 4)) << 32
    }
}

/// Writes all of `bytes` to `descriptor`, continuing after short writes and `EINTR`.
func writeAll(_ descriptor: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws(WheelError) {
    var done = 0
    while done < bytes.count {
        let n = Glibc.write(descriptor, bytes.baseAddress! + done, bytes.count - done)
        if n < 0 {
            if errno == EINTR { continue }
            throw WheelError.io(path: path, operation: "write", errno: errno)
        }
        done += n
    }
}
