import FarmCore
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import Synchronization

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

    /// The first line-ish part of the body, for error messages (at most 300 characters), scrubbed
    /// of every credential *before* it is cut, so a partly quoted token cannot survive the cut.
    /// (Only the first 16 KiB are scrubbed: a credential running past that window loses its
    /// leading part to the prefix rule, and everything after it is cut anyway.)
    var excerpt: String {
        let window = String(decoding: body.prefix(16 << 10), as: UTF8.self)
        let t = Redaction.scrub(window).trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "\n", with: " ")
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
/// bodies streamed from disk in bounded memory, and a deadline on every read (``HTTPLimits``).
///
/// Wraps AsyncHTTPClient. Call ``shutdown()`` when done.
public final class HTTPTransport: Sendable {
    private let client: HTTPClient
    private let userAgent: String
    /// The deadlines and rates every request is held to.
    public let limits: HTTPLimits

    /// Creates a transport held to `limits`.
    public convenience init(limits: HTTPLimits = HTTPLimits(), userAgent: String = "wheelfarm/0.1") {
        self.init(limits: limits, userAgent: userAgent, trustRoots: nil)
    }

    /// Creates a transport that trusts only the certificate authorities in the PEM bundle at
    /// `caBundle` (twine's `--cert`), e.g. a private index's own CA.
    public convenience init(caBundle: String, limits: HTTPLimits = HTTPLimits(), userAgent: String = "wheelfarm/0.1") throws(PublishingError) {
        let certificates: [NIOSSLCertificate]
        do {
            certificates = try NIOSSLCertificate.fromPEMFile(caBundle)
        } catch {
            throw .fileAccess(path: caBundle, problem: "cannot read it as a PEM bundle of CA certificates (\(error))")
        }
        guard !certificates.isEmpty else { throw .fileAccess(path: caBundle, problem: "it holds no PEM certificate") }
        self.init(limits: limits, userAgent: userAgent, trustRoots: .certificates(certificates))
    }

    private init(limits: HTTPLimits, userAgent: String, trustRoots: NIOSSLTrustRoots?) {
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: limits.connectTimeout.timeAmount, read: limits.idleTimeout.timeAmount))
        configuration.httpVersion = .automatic
        if let trustRoots {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.trustRoots = trustRoots
            configuration.tlsConfiguration = tls
        }
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        self.userAgent = userAgent
        self.limits = limits
    }

    /// Closes all connections. Required before the transport is released.
    public func shutdown() async throws { try await client.shutdown() }

    /// Sends one request and reads the response body (up to `maxBodyBytes`; reading stops there).
    ///
    /// A request with a file body (an upload) is a transfer: it must keep
    /// ``HTTPLimits/minimumRate`` and be answered within ``HTTPLimits/answerDeadline`` of its last
    /// byte. Any other request (listings, JSON metadata, API calls) must complete, body included,
    /// within ``HTTPLimits/requestDeadline``. Past a limit the request is cancelled and
    /// ``HTTPLimitExceeded`` thrown, which callers retry as a transient failure.
    func send(_ method: HTTPMethod, _ url: String, headers: [(String, String)] = [],
              body: RequestBody? = nil, maxBodyBytes: Int = 64 << 20) async throws -> HTTPReply {
        var request = HTTPClientRequest(url: url)
        request.method = method
        request.headers.add(name: "User-Agent", value: userAgent)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        let progress = TransferProgress()
        var kind = TransferKind.metadata
        switch body {
        case nil:
            break
        case .bytes(let bytes)?:
            request.body = .bytes(ByteBuffer(bytes: bytes))
        case let .file(prefix, path, size, suffix)?:
            kind = .upload
            request.body = .stream(FileBodySequence(prefix: prefix, path: path, fileSize: size, suffix: suffix, progress: progress),
                                   length: .known(Int64(prefix.count) + size + Int64(suffix.count)))
        }
        let client = client
        let request2 = request
        return try await limits.enforce(kind, on: url, progress: progress) {
            let response = try await client.execute(request2, timeout: .hours(24))
            var collected = [UInt8]()
            for try await var chunk in response.body {
                let take = min(chunk.readableBytes, maxBodyBytes - collected.count)
                if take > 0, let bytes = chunk.readBytes(length: take) { collected += bytes }
                // Past the cap nothing more is read: the rest of an endless answer never arrives here.
                if collected.count >= maxBodyBytes { break }
            }
            return HTTPReply(status: Int(response.status.code), headers: response.headers, body: collected)
        }
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
    /// a transfer that fails half-way (or runs below ``HTTPLimits/minimumRate``) removes the file.
    func download(_ url: String, headers: [(String, String)] = [], to path: String?) async throws -> Download {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "User-Agent", value: userAgent)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        let progress = TransferProgress()
        let client = client
        let request2 = request
        do {
            return try await limits.enforce(.download, on: url, progress: progress) {
                let response = try await client.execute(request2, timeout: .hours(24))
                var digest = StreamingDigest()
                let status = Int(response.status.code)
                var out: FileHandle?
                if status == 200, let path {
                    guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path) else {
                        throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
                    }
                    out = handle
                }
                defer { try? out?.close() }
                for try await chunk in response.body {
                    chunk.withUnsafeReadableBytes { digest.update($0) }
                    progress.add(chunk.readableBytes)
                    if let out { try out.write(contentsOf: Data(chunk.readableBytesView)) }
                }
                try out?.close()
                out = nil
                return Download(status: status, headers: response.headers, sha256: digest.finalize(), size: digest.byteCount)
            }
        } catch {
            if let path { try? FileManager.default.removeItem(atPath: path) }
            throw error
        }
    }
}

/// Deadlines on every network read of the publishing client.
///
/// A listing or API call gets ``requestDeadline`` for the whole exchange (a body trickling one byte
/// a second cannot hold pre-flight for long). A large transfer (an upload, a download) gets
/// ``grace``, then must average at least ``minimumRate``; after an upload's last byte the answer
/// must come within ``answerDeadline``. ``idleTimeout`` bounds a silent connection in any case.
public struct HTTPLimits: Sendable, Hashable {
    /// The whole-exchange deadline of listings, JSON metadata and API calls.
    public var requestDeadline: Duration
    /// The slowest average rate of a large transfer, in bytes per second (after ``grace``).
    public var minimumRate: Int
    /// How long a transfer may take before its rate counts.
    public var grace: Duration
    /// How long an upload's answer may take after its last byte was sent (indexes hash and store).
    public var answerDeadline: Duration
    /// Connecting.
    public var connectTimeout: Duration
    /// The longest silence on a connection.
    public var idleTimeout: Duration

    /// Creates limits; the defaults suit PyPI and GitHub on any working link.
    public init(requestDeadline: Duration = .seconds(120), minimumRate: Int = 32 << 10, grace: Duration = .seconds(30),
                answerDeadline: Duration = .seconds(600), connectTimeout: Duration = .seconds(15), idleTimeout: Duration = .seconds(300)) {
        self.requestDeadline = requestDeadline; self.minimumRate = max(1, minimumRate); self.grace = grace
        self.answerDeadline = answerDeadline; self.connectTimeout = connectTimeout; self.idleTimeout = idleTimeout
    }

    /// Runs `body` (one request and its body), cancelling it with ``HTTPLimitExceeded`` when it
    /// breaks the limits of `kind`. A watcher task looks at `progress` four times a second.
    func enforce<T: Sendable>(_ kind: TransferKind, on url: String, progress: TransferProgress,
                              _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let limits = self
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                let clock = ContinuousClock()
                let start = clock.now
                while true {
                    try await Task.sleep(for: .milliseconds(250))
                    if let problem = limits.violation(kind, elapsed: start.duration(to: clock.now), progress: progress, clock: clock) {
                        throw HTTPLimitExceeded(url: Redaction.scrub(url), problem: problem)
                    }
                }
            }
            defer { group.cancelAll() }
            while let result = try await group.next() {
                if let result { return result }
            }
            throw CancellationError()
        }
    }

    /// Why a request of `kind` that has run `elapsed` breaks the limits, or nil.
    func violation(_ kind: TransferKind, elapsed: Duration, progress: TransferProgress, clock: ContinuousClock) -> String? {
        switch kind {
        case .metadata:
            return elapsed > requestDeadline ? "no complete answer within \(requestDeadline.text)" : nil
        case .upload, .download:
            if let sent = progress.finishedSending {
                let waited = sent.duration(to: clock.now)
                return waited > answerDeadline ? "no answer within \(answerDeadline.text) of sending the last byte" : nil
            }
            guard elapsed > grace else { return nil }
            let bytes = progress.bytes
            let needed = Double(minimumRate) * (elapsed - grace).seconds
            guard Double(bytes) < needed else { return nil }
            let verb = kind == .upload ? "sent" : "received"
            return "\(bytes) bytes \(verb) in \(elapsed.text): slower than the minimum of \(minimumRate / 1024) KiB/s after \(grace.text)"
        }
    }
}

/// The kind of exchange ``HTTPLimits`` holds a request to.
enum TransferKind: Sendable { case metadata, upload, download }

/// Bytes moved so far by one request, shared between the request and its watcher.
final class TransferProgress: Sendable {
    private let state = Mutex<(bytes: Int64, finished: ContinuousClock.Instant?)>((0, nil))
    func add(_ n: Int) { state.withLock { $0.bytes += Int64(n) } }
    func finishSending() { state.withLock { $0.finished = $0.finished ?? ContinuousClock.now } }
    var bytes: Int64 { state.withLock { $0.bytes } }
    var finishedSending: ContinuousClock.Instant? { state.withLock { $0.finished } }
}

/// A request broke an ``HTTPLimits`` deadline or rate and was cancelled; a transient failure.
public struct HTTPLimitExceeded: Error, Sendable, CustomStringConvertible {
    /// The URL (userinfo and credentials scrubbed).
    public let url: String
    /// Which limit, with the figures.
    public let problem: String
    public var description: String { "'\(url)': \(problem)" }
}

extension Duration {
    /// NIO's `TimeAmount` for this duration.
    var timeAmount: TimeAmount {
        let (seconds, attoseconds) = components
        return .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }

    /// `90 s`, `1.5 s`.
    var text: String {
        let s = seconds
        return s == s.rounded() ? "\(Int(s)) s" : String(format: "%.1f s", s)
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
    /// Counts the bytes handed to the client (and when the last one was), for the rate check.
    var progress: TransferProgress? = nil
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
                    sequence.progress?.add(data.count)
                    return ByteBuffer(bytes: data)
                case .suffix:
                    phase = .done
                    if !sequence.suffix.isEmpty { return ByteBuffer(bytes: sequence.suffix) }
                case .done:
                    sequence.progress?.finishSending()
                    return nil
                }
            }
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(sequence: self) }
}
