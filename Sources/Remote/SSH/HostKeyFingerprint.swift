import Crypto
import Foundation

/// OpenSSH-style host key fingerprints and key-blob helpers.
enum SSHKeyBlob {
    /// `SHA256:` followed by unpadded base64 of the SHA-256 of the key blob, as `ssh-keygen -l` prints.
    static func fingerprint(_ blob: Data) -> String {
        let digest = Data(SHA256.hash(data: blob)).base64EncodedString()
        return "SHA256:" + digest.replacingOccurrences(of: "=", with: "")
    }

    /// The key type string at the start of an SSH public key blob (`ssh-ed25519`, `ssh-rsa`, …).
    static func type(of blob: Data) -> String? {
        guard blob.count >= 4 else { return nil }
        let bytes = [UInt8](blob.prefix(4))
        let length = Int(bytes[0]) << 24 | Int(bytes[1]) << 16 | Int(bytes[2]) << 8 | Int(bytes[3])
        guard length > 0, length < 64, blob.count >= 4 + length else { return nil }
        return String(decoding: blob.dropFirst(4).prefix(length), as: UTF8.self)
    }

    /// Parses `type base64 [comment]` (an authorized_keys / known_hosts key field).
    static func parse(_ text: String) -> (type: String, blob: Data)? {
        let fields = text.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard fields.count >= 2, let blob = Data(base64Encoded: String(fields[1])) else { return nil }
        return (String(fields[0]), blob)
    }

    /// True when the private key file holds an RSA key (PEM `RSA PRIVATE KEY`, or an OpenSSH-format
    /// key whose unencrypted public part is `ssh-rsa`).
    static func isRSAKeyFile(_ path: String) -> Bool {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return false }
        if text.contains("BEGIN RSA PRIVATE KEY") { return true }
        if FileManager.default.fileExists(atPath: path + ".pub"),
           let pub = try? String(contentsOfFile: path + ".pub", encoding: .utf8) {
            return pub.hasPrefix("ssh-rsa ")
        }
        guard text.contains("BEGIN OPENSSH PRIVATE KEY") else { return false }
        let body = text.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
        guard let data = Data(base64Encoded: body) else { return false }
        return data.range(of: Data("ssh-rsa".utf8)) != nil
    }

    /// The public key blob of a private key file: from `PATH.pub`, else from the unencrypted
    /// header of an OpenSSH-format key (`openssh-key-v1`), which holds the public key even when
    /// the private part is encrypted. `nil` when neither is readable.
    static func publicBlob(forPrivateKey path: String) -> Data? {
        if let pub = try? String(contentsOfFile: path + ".pub", encoding: .utf8), let parsed = parse(pub) { return parsed.blob }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8), text.contains("BEGIN OPENSSH PRIVATE KEY") else { return nil }
        let body = text.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
        guard let data = Data(base64Encoded: body) else { return nil }
        let magic = Data("openssh-key-v1\0".utf8)
        guard data.starts(with: magic) else { return nil }
        var offset = magic.count
        func string() -> Data? {
            guard data.count >= offset + 4 else { return nil }
            let b = [UInt8](data[data.startIndex + offset ..< data.startIndex + offset + 4])
            let length = Int(b[0]) << 24 | Int(b[1]) << 16 | Int(b[2]) << 8 | Int(b[3])
            offset += 4
            guard length >= 0, data.count >= offset + length else { return nil }
            defer { offset += length }
            return data[data.startIndex + offset ..< data.startIndex + offset + length]
        }
        // ciphername, kdfname, kdfoptions, then the number of keys and the first public key.
        guard string() != nil, string() != nil, string() != nil, data.count >= offset + 4 else { return nil }
        offset += 4
        return string().map { Data($0) }
    }
}
