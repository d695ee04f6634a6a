import Crypto
import Foundation

/// A SHA-256 digest, as a value that prints as lowercase hex.
public struct SHA256Digest: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The 32 raw bytes.
    public let bytes: [UInt8]

    public init(bytes: [UInt8]) { self.bytes = bytes }

    /// Parses 64 hex digits (either case); `nil` otherwise.
    public init?(hex: String) {
        guard hex.utf8.count == 64 else { return nil }
        var out = [UInt8](); out.reserveCapacity(32)
        var iterator = hex.utf8.makeIterator()
        while let hi = iterator.next(), let lo = iterator.next() {
            guard let h = Self.nibble(hi), let l = Self.nibble(lo) else { return nil }
            out.append(h << 4 | l)
        }
        bytes = out
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case 48...57: c - 48
        case 97...102: c - 87
        case 65...70: c - 55
        default: nil
        }
    }

    /// Lowercase hex, as `sha256sum` prints it.
    public var hex: String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8](); out.reserveCapacity(64)
        for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }

    /// URL-safe base64 without padding, as wheel RECORD files write it (`sha256=…`).
    public var recordBase64: String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    public var description: String { hex }

    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let d = SHA256Digest(hex: text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a SHA-256 hex digest"))
        }
        self = d
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(hex)
    }

    /// The digest of a byte buffer.
    public static func of(_ data: some DataProtocol) -> SHA256Digest {
        SHA256Digest(bytes: Array(SHA256.hash(data: data)))
    }
}

/// Incremental SHA-256 with a byte count, for hashing streams as they pass.
public struct StreamingDigest: @unchecked Sendable {  // SHA256 is a value type with no shared state
    private var hasher = SHA256()
    /// Bytes fed so far.
    public private(set) var byteCount: Int64 = 0

    public init() {}

    /// Feeds bytes.
    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        hasher.update(bufferPointer: bytes)
        byteCount += Int64(bytes.count)
    }

    /// Feeds bytes.
    public mutating func update(_ data: some DataProtocol) {
        hasher.update(data: data)
        byteCount += Int64(data.count)
    }

    /// The digest of everything fed.
    public func finalize() -> SHA256Digest { SHA256Digest(bytes: Array(hasher.finalize())) }

    /// Hashes a file in 1 MiB chunks (bounded memory).
    public static func file(at path: String) throws -> (digest: SHA256Digest, size: Int64) {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw FarmError(code: "file.unreadable", message: "cannot read '\(path)'")
        }
        defer { try? handle.close() }
        var digest = StreamingDigest()
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty { digest.update(chunk) }
        return (digest.finalize(), digest.byteCount)
    }
}
