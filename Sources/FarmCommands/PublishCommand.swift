import ArgumentParser
import Foundation
import Logging
import Publishing

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

    @Flag(help: "Log each step to standard error.")
    var verbose = false

    func validate() throws {
        guard !wheels.isEmpty else { throw ValidationError("give at least one wheel file") }
        guard attempts >= 1 else { throw ValidationError("--attempts must be at least 1, got '\(attempts)'") }
    }

    func run() async throws {
        var logger = Logger(label: "wheelfarm.publish")
        logger.logLevel = verbose ? .info : .warning

        // Configuration errors stop before anything is verified or sent. One decision, shared
        // with `release`: where wheels go and with which credentials.
        let setup = try publishing.setup(command: "publish", defaultLocalIndex: nil, attempts: attempts, logger: logger)
        var ok = true
        do {
            // 1. Verify every wheel; unverified ones are refused and go nowhere.
            var verified: [PublishableWheel] = []
            for path in wheels {
                do {
                    verified.append(try await verifiedForPublishing(path))
                } catch {
                    ok = false
                    report(PublicationResult(filename: URL(fileURLWithPath: path).lastPathComponent, destination: "verification",
                                             outcome: .failed("not verified, not published: \(error)")))
                }
            }

            // 2. The index (upload API or local).
            if dryRun {
                for line in setup.describe(packages: Array(Set(verified.map(\.name)))) { print(line) }
            }
            var onIndex: [PublishableWheel] = []
            for wheel in verified {
                let publisher: any WheelPublisher
                do {
                    publisher = try setup.publisher(for: wheel.name, dryRun: dryRun)
                } catch {
                    ok = false
                    report(PublicationResult(filename: wheel.filename, destination: setup.destinationDescription, outcome: .failed("\(error)")))
                    continue
                }
                let outcome: PublicationOutcome
                do { outcome = try await publisher.publish(wheel, dryRun: dryRun) } catch {
                    outcome = .failed("\(error)")
                }
                ok = ok && outcome.isSuccess
                if outcome.isSuccess { onIndex.append(wheel) }
                report(PublicationResult(filename: wheel.filename, destination: publisher.destination, outcome: outcome))
            }

            // 3. GitHub Releases, for the wheels that are on the index.
            if !publishing.skipGitHub && !onIndex.isEmpty {
                if setup.gitHub != nil {
                    do {
                        if let github = try setup.gitHubPublisher() {
                            for result in await github.publish(onIndex, dryRun: dryRun) {
                                ok = ok && result.outcome.isSuccess
                                report(result)
                            }
                        }
                    } catch {
                        ok = false
                        printError("wheelfarm publish: GitHub: \(error)")
                    }
                } else {
                    print("github: not configured (pass --github-repository OWNER/NAME or set GITHUB_REPOSITORY; --skip-github to silence)")
                }
            }
        }
        await setup.shutdown()
        if !ok { throw ExitCode(1) }
    }

    private func report(_ result: PublicationResult) {
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

/// The one place where `wheelfarm publish` verifies a wheel before publishing it: the `Wheels`
/// verifier, through ``VerifyingGate``; a wheel that fails any check is refused.
func verifiedForPublishing(_ path: String) async throws -> PublishableWheel {
    try await VerifyingGate().verifiedForPublishing(wheelAt: path)
}

