import FarmCore
import Foundation
import Wheels

/// The ``PublicationVerifier`` backed by the `Wheels` verifier: the only producer of
/// ``PublishableWheel`` values in wheelfarm.
///
/// The file is hashed before and after verification; the stamp is issued only when both digests
/// agree, so it certifies exactly the bytes the verifier read. The upload form's metadata comes
/// from the METADATA the verifier parsed (the body is sent as `Description`).
public struct VerifyingGate: PublicationVerifier {
    /// What a wheel at a path is expected to be (name, version, arch, required files, ISA).
    public let expectation: @Sendable (String) -> WheelExpectation
    let verifier: WheelVerifier

    /// Creates a gate; `expectation` defaults to the checks every wheel must pass.
    public init(verifier: WheelVerifier = WheelVerifier(),
                expectation: @escaping @Sendable (String) -> WheelExpectation = { _ in WheelExpectation() }) {
        self.verifier = verifier; self.expectation = expectation
    }

    /// Verifies the wheel and returns it ready to publish, or throws ``NotVerified``.
    public func verifiedForPublishing(wheelAt path: String) async throws -> PublishableWheel {
        let before: (digest: SHA256Digest, size: Int64)
        do { before = try StreamingDigest.file(at: path) } catch {
            throw PublishingError.fileAccess(path: path, problem: "\(error)")
        }
        let report = await verifier.verify(path: path, expectation: expectation(path))
        guard report.passed else {
            throw NotVerified(path: path, failures: report.failures.map { "\($0.id.rawValue): \($0.message)" })
        }
        guard let metadata = report.metadata, let name = metadata.value("Name"), let version = metadata.value("Version"),
              let filename = report.filename else {
            throw NotVerified(path: path, failures: ["metadata.parse: no usable METADATA"])
        }
        let after = try StreamingDigest.file(at: path)
        guard after.digest == before.digest, after.size == before.size else {
            throw PublishingError.wheelChangedSinceVerification(filename: URL(fileURLWithPath: path).lastPathComponent,
                                                                stamped: before.digest, found: after.digest)
        }
        var fields = metadata.fields.map { MetadataField($0.name, $0.value) }
        if !metadata.body.isEmpty { fields.append(MetadataField("Description", metadata.body)) }
        return PublishableWheel(path: path, name: name, version: version, metadata: fields,
                                pythonTag: filename.pythonTags.joined(separator: "."),
                                stamp: VerificationStamp(verifier: "wheelfarm verify", sha256: before.digest, size: before.size))
    }

    /// A wheel failed verification and must not be published.
    public struct NotVerified: Error, Sendable, CustomStringConvertible {
        public let path: String
        public let failures: [String]
        public var description: String {
            "'\(URL(fileURLWithPath: path).lastPathComponent)' failed verification and is not published: \(failures.joined(separator: "; "))"
        }
    }
}
