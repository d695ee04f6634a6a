import Crypto
import Foundation

/// A running hash with one of the algorithms RECORD may use.
struct RecordHasher {
    enum State {
        case sha256(SHA256)
        case sha384(SHA384)
        case sha512(SHA512)
    }
    var state: State
    let algorithm: String

    /// A hasher for `algorithm` (`sha256`, `sha384`, `sha512`); `nil` for others.
    init?(algorithm: String) {
        self.algorithm = algorithm
        switch algorithm {
        case "sha256": state = .sha256(SHA256())
        case "sha384": state = .sha384(SHA384())
        case "sha512": state = .sha512(SHA512())
        default: return nil
        }
    }

    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        switch state {
        case var .sha256(h): h.update(bufferPointer: bytes); state = .sha256(h)
        case var .sha384(h): h.update(bufferPointer: bytes); state = .sha384(h)
        case var .sha512(h): h.update(bufferPointer: bytes); state = .sha512(h)
        }
    }

    /// The RECORD field: `sha256=<urlsafe base64 without padding>`.
    func finalize() -> String {
        let digest: [UInt8]
        switch state {
        case let .sha256(h): digest = Array(h.finalize())
        case let .sha384(h): digest = Array(h.finalize())
        case let .sha512(h): digest = Array(h.finalize())
        }
        return algorithm + "=" + Self.urlsafeBase64(digest)
    }

    static func urlsafeBase64(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }
}
