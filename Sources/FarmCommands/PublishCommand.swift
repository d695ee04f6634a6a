import ArgumentParser
import Foundation
import Logging
import Publishing
import Synchronization

/// `wheelfarm publish`: verify wheels, then publish them to an index and to GitHub Releases.
struct PublishCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "publish",
        abstract: "Verify wheels and publish them to a package index and GitHub Releases.",
        discussion: """
        Each wheel is verified first; unverified wheels are refused. A wheel whose exact file (same
        name, same SHA-256) is already on the index is skipped; a different file under the same name
        is refused with the --version-suffix that would work. Nothing is uploaded twice, even after
        retries.

        \(PublishingOptions.discussion)

        Exit codes: 0 every wheel published or already there, 1 some wheel refused or failed,
        2 usage or configuration error.
        """
    )

    @Argument(help: "Wheel files to publish.")
    var wheels: [String]

    @OptionGroup(title: "Publishing") var publishing: PublishingOptions

    @Option(help: "Attempts per upload (first try included).")
    var attempts = 5

    @Flag(help: "Show what would be done; upload nothing.")
    var dryRun = false

    @OptionGroup(title: "Network limits") var networkLimits: NetworkLimitOptions

    @Flag(help: "Log each step to standard error.")
    var verbose = false

    @OptionGroup(title: "Output") var output: OutputOptions

    func validate() throws {
        guard !wheels.isEmpty else { throw ValidationError("give at least one wheel file") }
        guard attempts >= 1 else { throw ValidationError("--attempts must be at least 1, got '\(attempts)'") }
    }

    func run() async throws {
        let logger = commandLogger("wheelfarm.publish", verbose: verbose)

        // Configuration errors stop before anything is verified or sent. One decision, shared
        // with `release`: where wheels go and with which credentials.
        let setup = try publishing.setup(command: "publish", defaultLocalIndex: nil, attempts: attempts,
                                         limits: networkLimits.limits, logger: logger)
        let collected = PublicationResults()
        var ok = true
        do {
            // 1. Verify every wheel; unverified ones are refused and go nowhere.
            var verified: [PublishableWheel] = []
            for path in wheels {
                do {
                    verified.append(try await verifiedForPublishing(path))
                } catch {
                    ok = false
                    report(collected, PublicationResult(filename: URL(fileURLWithPath: path).lastPathComponent, destination: "verification",
                                             outcome: .failed("not verified, not published: \(error)")))
                }
            }

            // 2. The index (upload API or local).
            if dryRun {
                for line in setup.describe(packages: Array(Set(verified.map(\.name)))) { if output.json { printError(line) } else { print(line) } }
            }
            var onIndex: [PublishableWheel] = []
            for wheel in verified {
                let publisher: any WheelPublisher
                do {
                    publisher = try setup.publisher(for: wheel.name, dryRun: dryRun)
                } catch {
                    ok = false
                    report(collected, PublicationResult(filename: wheel.filename, destination: setup.destinationDescription, outcome: .failed("\(error)")))
                    continue
                }
                let outcome: PublicationOutcome
                do { outcome = try await publisher.publish(wheel, dryRun: dryRun) } catch {
                    outcome = .failed("\(error)")
                }
                ok = ok && outcome.isSuccess
                if outcome.isSuccess { onIndex.append(wheel) }
                report(collected, PublicationResult(filename: wheel.filename, destination: publisher.destination, outcome: outcome))
            }

            // 3. GitHub Releases, for the wheels that are on the index.
            if !publishing.skipGitHub && !onIndex.isEmpty {
                if setup.gitHub != nil {
                    do {
                        if let github = try setup.gitHubPublisher() {
                            for result in await github.publish(onIndex, dryRun: dryRun) {
                                ok = ok && result.outcome.isSuccess
                                report(collected, result)
                            }
                        }
                    } catch {
                        ok = false
                        printError("wheelfarm publish: GitHub: \(error)")
                    }
                } else {
                    let note = "github: not configured (pass --github-repository OWNER/NAME or set GITHUB_REPOSITORY; --skip-github to silence)"
                    if output.json { printError(note) } else { print(note) }
                }
            }
        }
        await setup.shutdown()
        if output.json { try printJSON(PublishDocument(ok: ok, results: collected.results)) }
        if !ok { throw ExitCode(1) }
    }

    /// Prints one result, or keeps it for the `--json` document.
    private func report(_ collected: PublicationResults, _ result: PublicationResult) {
        if output.json { collected.append(result); return }
        let label: String
        switch result.outcome {
        case .uploaded: label = "uploaded"
        case .alreadyThere: label = "already there"
        case .wouldUpload: label = "would upload"
        case .refused: label = "refused"
        case .failed: label = "failed"
        }
        var line = "\(label.padding(toLength: 14, withPad: " ", startingAt: 0)) \(result.filename) → \(result.destination)"
        switch result.outcome {
        case .uploaded(let n) where n > 1: line += " (after \(n) attempts)"
        case .refused(let r): line += ": \(r)"
        case .failed(let e): line += ": \(e)"
        default: break
        }
        print(line)
    }
}

/// Publication results gathered for `publish --json`.
final class PublicationResults: Sendable {
    private let list = Mutex([PublicationResult]())
    func append(_ r: PublicationResult) { list.withLock { $0.append(r) } }
    var results: [PublicationResult] { list.withLock { $0 } }
}

/// The `publish --json` document (schema `wheelfarm.publish/1`).
struct PublishDocument: Encodable {
    struct Result: Encodable {
        let file: String
        let destination: String
        /// `uploaded`, `already_there`, `would_upload`, `refused`, `failed`.
        let outcome: String
        let attempts: Int?
        let detail: String?
    }
    let schema = "wheelfarm.publish/1"
    let ok: Bool
    let results: [Result]

    init(ok: Bool, results: [PublicationResult]) {
        self.ok = ok
        self.results = results.map { r in
            switch r.outcome {
            case let .uploaded(n): Result(file: r.filename, destination: r.destination, outcome: "uploaded", attempts: n, detail: nil)
            case .alreadyThere: Result(file: r.filename, destination: r.destination, outcome: "already_there", attempts: nil, detail: nil)
            case .wouldUpload: Result(file: r.filename, destination: r.destination, outcome: "would_upload", attempts: nil, detail: nil)
            case let .refused(why): Result(file: r.filename, destination: r.destination, outcome: "refused", attempts: nil, detail: "\(why)")
            case let .failed(why): Result(file: r.filename, destination: r.destination, outcome: "failed", attempts: nil, detail: why)
            }
        }
    }
}

/// The one place where `wheelfarm publish` verifies a wheel before publishing it: the `Wheels`
/// verifier, through ``VerifyingGate``; a wheel that fails any check is refused.
func verifiedForPublishing(_ path: String) async throws -> PublishableWheel {
    try await VerifyingGate().verifiedForPublishing(wheelAt: path)
}

