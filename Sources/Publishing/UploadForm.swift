import Foundation

/// The multipart form of the upload API (the "legacy" API PyPI, pypiserver, devpi, Artifactory and
/// Nexus accept), built as twine builds it.
///
/// Fields come from the wheel's METADATA under the form names twine uses; the file part is named
/// `content`. The form is encoded by hand because it is a few lines of RFC 7578 and must stream
/// the file part from disk, which no kept package offers for AsyncHTTPClient.
struct UploadForm: Sendable {
    /// Form fields in order (repeated names for multi-use fields).
    let fields: [(String, String)]
    /// The boundary string.
    let boundary: String

    /// METADATA header name (lowercased) → form field name.
    static let fieldNames: [String: String] = [
        "metadata-version": "metadata_version", "name": "name", "version": "version",
        "platform": "platform", "summary": "summary", "description": "description",
        "keywords": "keywords", "home-page": "home_page", "author": "author",
        "author-email": "author_email", "license": "license",
        "supported-platform": "supported_platform", "download-url": "download_url",
        "classifier": "classifiers", "requires": "requires", "provides": "provides",
        "obsoletes": "obsoletes", "maintainer": "maintainer", "maintainer-email": "maintainer_email",
        "requires-dist": "requires_dist", "provides-dist": "provides_dist",
        "obsoletes-dist": "obsoletes_dist", "requires-python": "requires_python",
        "requires-external": "requires_external", "project-url": "project_urls",
        "description-content-type": "description_content_type", "provides-extra": "provides_extra",
        "dynamic": "dynamic", "license-expression": "license_expression", "license-file": "license_file",
    ]

    /// The form for uploading `wheel`.
    init(wheel: PublishableWheel, boundary: String = "wheelfarm-" + UUID().uuidString) {
        var fields: [(String, String)] = [(":action", "file_upload"), ("protocol_version", "1")]
        for field in wheel.metadata {
            guard let name = Self.fieldNames[field.name.lowercased()], name != "name" else { continue }
            fields.append((name, field.value))
        }
        // twine sends the name in the form pkg_resources.safe_name gives it.
        fields.append(("name", Self.safeName(wheel.name)))
        if !fields.contains(where: { $0.0 == "version" }) { fields.append(("version", wheel.version)) }
        fields.append(("filetype", "bdist_wheel"))
        fields.append(("pyversion", wheel.pythonTag))
        fields.append(("sha256_digest", wheel.sha256.hex))
        self.fields = fields
        self.boundary = boundary
    }

    /// `pkg_resources.safe_name`: runs of characters other than letters, digits and `.` become `-`.
    static func safeName(_ name: String) -> String {
        var out = "", inRun = false
        for c in name {
            if c.isASCII && (c.isLetter || c.isNumber || c == ".") { out.append(c); inRun = false }
            else if !inRun { out.append("-"); inRun = true }
        }
        return out
    }

    /// The `Content-Type` header value.
    var contentType: String { "multipart/form-data; boundary=\(boundary)" }

    /// Everything before the file's bytes: all fields, then the `content` part's headers.
    func prefix(filename: String) -> [UInt8] {
        var out = ""
        for (name, value) in fields {
            out += "--\(boundary)\r\nContent-Disposition: form-data; name=\"\(Self.quote(name))\"\r\n\r\n\(value)\r\n"
        }
        out += "--\(boundary)\r\nContent-Disposition: form-data; name=\"content\"; filename=\"\(Self.quote(filename))\"\r\n"
        out += "Content-Type: application/octet-stream\r\n\r\n"
        return Array(out.utf8)
    }

    /// Everything after the file's bytes.
    var suffix: [UInt8] { Array("\r\n--\(boundary)--\r\n".utf8) }

    /// Quotes a name for a `Content-Disposition` parameter.
    static func quote(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "%22")
            .replacingOccurrences(of: "\r", with: "%0D").replacingOccurrences(of: "\n", with: "%0A")
    }
}
