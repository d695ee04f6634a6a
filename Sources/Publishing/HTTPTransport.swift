import FarmCore
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL

/// A response whose body has been read (up to a limit).
struct HTTPReply: Sendable {
    /// The status code.
    let status: Int
    /// The response headers.
    let headers: HTTPHeaders
    /// The body bytes.
    let body: [UInt8]

    /// The body as UTF-8 text.
    var text: String { String(decoding: body, as: UTF8.self) }

    /// The first line-ish part of the body, for error messages (at most 300 characters).
    var excerpt: String {
        let t = text.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "\n", with: " ")
        return t.count > 300 ? String(t.prefix(300)) + "…" : t
    }

    /// The `Content-Type` header without parameters, lowercased.
    var contentType: String {
        (headers.first(name: "content-type") ?? "").split(separator: ";").first
            .map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
    }
}

/// What a request sends.
enum RequestBody: Sendable {
    /// Bytes held in memory (small JSON or form bodies).
    case bytes([UInt8])
    /// `prefix`, then the file at `path` (exactly `fileSize` bytes) streamed from disk, then `suffix`.
    case file(prefix: [UInt8], path: String, fileSize: Int64, suffix: [UInt8])

    var length: Int64 {
        switch self {
        case .bytes(let b): Int64(b.count)
        case let .file(prefix, _, size, suffix): Int64(prefix.count) + size + Int64(suffix.count)
        }
    }
}

/// The HTTP client every publisher uses: one connection pool, no automatic redirects, request
/// bodies streamed from disk in bounded memory.
///
/// Wraps AsyncHTTPClient. Call ``shutdown()`` when done.
public final class HTTPTransport: Sendable {
    private let client: HTTPClient
    private let userAgent: String
    private let requestTimeout: TimeAmount

    /// Creates a transport; `requestTimeout` bounds each whole request (uploads of large wheels
    /// need minutes on slow links).
    public convenience init(requestTimeout: Duration = .seconds(3600), userAgent: String = "wheelfarm/0.1") {
        self.init(requestTimeout: requestTimeout, userAgent: userAgent, trustRoots: nil)
    }

    /// Creates a transport that trusts only the certificate authorities in the PEM bundle at
    /// `caBundle` (twine's `--cert`), e.g. a private index's own CA.
    public convenience init(caBundle: String, requestTimeout: Duration = .seconds(3600), userAgent: String = "wheelfarm/0.1") throws(PublishingError) {
        let certificates: [NIOSSLCertificate]
        do {
            certificates = try NIOSSLCertificate.fromPEMFile(caBundle)
        } catch {
            throw .fileAccess(path: caBundle, problem: "cannot read it as a PEM bundle of CA certificates (\(error))")
        }
        guard !certificates.isEmpty else { throw .fileAccess(path: caBundle, problem: "it holds no PEM certificate") }
        self.init(requestTimeout: requestTimeout, userAgent: userAgent, trustRoots: .certificates(certificates))
    }

    private init(requestTimeout: Duration, userAgent: String, trustRoots: NIOSSLTrustRoots?) {
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: .seconds(15), read: .seconds(300)))
        configuration.httpVersion = .automatic
        if let trustRoots {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.trustRoots = trustRoots
            configuration.tlsConfiguration = tls
        }
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        self.userAgent = userAgent
        let (seconds, attoseconds) = requestTimeout.components
        self.requestTimeout = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }

    /// Closes all connections. Required before the transport is released.
    public func shutdown() async throws { try await client.shutdown() }

    /// Sends one request and reads the response body (up to `maxBodyBytes`).
    func send(_ method: HTTPMethod, _ url: String, headers: [(String, String)] = [],
              body: RequestBody? = nil, maxBodyBytes: Int = 64 << 20) async throws -> HTTPReply {
        var request = HTTPClientRequest(url: url)
        request.method = method
        request.headers.add(name: "User-Agent", value: userAgent)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        switch body {
        case nil:
            break
        case .bytes(let bytes)?:
            request.body = .bytes(ByteBuffer(bytes: bytes))
        case let .file(prefix, path, size, suffix)?:
            request.body = .stream(FileBodySequence(prefix: prefix, path: path, fileSize: size, suffix: suffix),
                                   length: .known(Int64(prefix.count) + size + Int64(suffix.count)))
        }
        let response = try await client.execute(request, timeout: requestTimeout)
        var collected = [UInt8]()
        for try await var chunk in response.body {
            if collected.count < maxBodyBytes, let bytes = chunk.readBytes(length: min(chunk.readableBytes, maxBodyBytes - collected.count)) {
                collected += bytes
            }
        }
        return HTTPReply(status: Int(response.status.code), headers: response.headers, body: collected)
    }

    /// What ``download(_:headers:to:)`` got.
    struct Download: Sendable {
        /// The status code.
        let status: Int
        /// The response headers.
        let headers: HTTPHeaders
        /// The SHA-256 and size of the body (of what was written to the file, for a 200).
        let sha256: SHA256Digest
        let size: Int64
    }

    /// GETs `url` and streams the body of a 200 answer into a new file at `path` (or, when `path` is
    /// nil, only hashes it), in bounded memory whatever its size. Any other answer writes nothing;
    /// a transfer that fails half-way removes the file.
    func download(_ url: String, headers: [(String, String)] = [], to path: String?) async throws -> Download {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "User-Agent", value: userAgent)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        let response = try await client.execute(request, timeout: requestTimeout)
        var digest = StreamingDigest()
        let status = Int(response.status.code)
        var out: FileHandle?
        if status == 200, let path {
            guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path) else {
                throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
            }
            out = handle
        }
        do {
            for try await chunk in response.body {
                chunk.withUnsafeReadableBytes { digest.update($0) }
                if let out { try out.write(contentsOf: Data(chunk.readableBytesView)) }
            }
            try out?.close()
        } catch {
            try? out?.close()
            if let path, out != nil { try? FileManager.default.removeItem(atPath: path) }
            throw error
        }
        return Download(status: status, headers: response.headers, sha256: digest.finalize(), size: digest.byteCount)
    }
}

/// A request body made of a prefix, a file read from disk in 256 KiB chunks, and a suffix.
///
/// The HTTP client pulls one chunk at a time as the connection can take it, so memory stays at a
/// few chunks whatever the file size. Each iteration opens the file afresh, so a retried request
/// sends the file again from its start. Reading uses Foundation's `FileHandle`: a 256 KiB read of
/// a local file is short, and NIO's file system module is not a stable API in the pinned release.
struct FileBodySequence: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let prefix: [UInt8]
    let path: String
    let fileSize: Int64
    let suffix: [UInt8]
    static let chunkSize = 256 << 10

    struct AsyncIterator: AsyncIteratorProtocol {
        enum Phase { case prefix, file, suffix, done }
        let sequence: FileBodySequence
        var phase = Phase.prefix
        var handle: FileHandle?
        var remaining: Int64 = 0

        mutating func next() async throws -> ByteBuffer? {
            while true {
                switch phase {
                case .prefix:
                    phase = .file
                    guard let h = FileHandle(forReadingAtPath: sequence.path) else {
                        throw PublishingError.fileAccess(path: sequence.path, problem: "cannot open for reading")
                    }
                    handle = h
                    remaining = sequence.fileSize
                    if !sequence.prefix.isEmpty { return ByteBuffer(bytes: sequence.prefix) }
                case .file:
                    guard remaining > 0, let handle else {
                        try? handle?.close(); handle = nil
                        phase = .suffix
                        continue
                    }
                    let want = Int(Swift.min(Int64(FileBodySequence.chunkSize), remaining))
                    guard let data = try handle.read(upToCount: want), !data.isEmpty else {
                        throw PublishingError.fileAccess(path: sequence.path, problem: "file shrank while uploading: \(remaining) bytes missing")
                    }
                    remaining -= Int64(data.count)
                    return ByteBuffer(bytes: data)
                case .suffix:
                    phase = .done
                    if !sequence.suffix.isEmpty { return ByteBuffer(bytes: sequence.suffix) }
                case .done:
                    return nil
                }
            }
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(sequence: self) }
}
