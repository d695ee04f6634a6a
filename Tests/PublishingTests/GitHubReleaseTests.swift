import FarmCore
import FarmTestSupport
import Foundation
import Testing
@testable import Publishing

/// GitHub Releases against a local fake of the REST API.
@Suite("GitHub releases", .serialized)
struct GitHubReleaseTests {
    let token = "ghp_test\(UUID().uuidString.replacingOccurrences(of: "-", with: ""))"

    func publisher(_ github: FakeGitHub, _ transport: HTTPTransport, _ log: LogCapture, template: String = "old",
                   token: String? = nil) throws -> GitHubReleasePublisher {
        try GitHubReleasePublisher(apiBaseURL: github.apiURL, repository: GitHubRepository("acme/wheels"),
                                   token: Secret(token ?? self.token), tagTemplate: TagTemplate(template),
                                   transport: transport, retry: quickRetry, logger: log.logger())
    }

    /// Three wheels of one version (three variants): one release under the `old` template.
    func variantWheels(_ scratch: Scratch) async throws -> [PublishableWheel] {
        var out: [PublishableWheel] = []
        for name in ["wf-gh-cpu", "wf-gh-cpu-avx512", "wf-gh-cpu-amxbf16"] {
            out.append(try await publishableWheel(name, "0.16.0", in: scratch.path("dist")))
        }
        return out
    }

    func expectComplete(_ github: FakeGitHub, tag: String, wheels: [PublishableWheel]) throws {
        let releases = try github.state().filter { $0.tag_name == tag }
        #expect(releases.count == 1)
        guard let release = releases.first else { return }
        #expect(!release.draft)
        #expect(release.assets.map(\.name).sorted() == wheels.map(\.filename).sorted())
        for w in wheels {
            let asset = release.assets.first { $0.name == w.filename }
            #expect(asset?.state == "uploaded")
            #expect(asset?.sha256 == w.sha256.hex)
        }
    }

    @Test("creates a draft, attaches every wheel, publishes; a second run uploads nothing")
    func createAndRepeat() async throws {
        let scratch = try Scratch()
        let github = try FakeGitHub(token: token, scratch: scratch)
        defer { github.stop() }
        let wheels = try await variantWheels(scratch)
        let log = LogCapture()
        let first = try await withTransport { t in try await publisher(github, t, log).publish(wheels) }
        #expect(first.map(\.outcome) == [.uploaded(attempts: 1), .uploaded(attempts: 1), .uploaded(attempts: 1)])
        try expectComplete(github, tag: "v0.16.0-cpu", wheels: wheels)
        let requests = github.requests
        let created = requests.firstIndex { $0.hasPrefix("POST /repos/acme/wheels/releases") }
        let published = requests.firstIndex { $0.hasPrefix("PATCH /repos/acme/wheels/releases/") }
        #expect(created != nil && published != nil && created! < published!)
        #expect(requests.filter { $0.hasPrefix("POST /uploads/") }.count == 3)

        let before = github.requests.count
        let second = try await withTransport { t in try await publisher(github, t, log).publish(wheels) }
        #expect(second.map(\.outcome) == [.alreadyThere, .alreadyThere, .alreadyThere])
        #expect(!github.requests[before...].contains { $0.hasPrefix("POST") || $0.hasPrefix("PATCH") })
        try expectComplete(github, tag: "v0.16.0-cpu", wheels: wheels)
        #expect(!log.text.contains(token))
        #expect(!github.requests.joined().contains(token))
    }

    @Test("a release left with only its first wheel gets the rest on the next run")
    func completesAnIncompleteRelease() async throws {
        let scratch = try Scratch()
        let github = try FakeGitHub(token: token, scratch: scratch)
        defer { github.stop() }
        let wheels = try await variantWheels(scratch)
        let log = LogCapture()
        let first = try await withTransport { t in try await publisher(github, t, log).publish([wheels[0]]) }
        #expect(first.map(\.outcome) == [.uploaded(attempts: 1)])
        let again = try await withTransport { t in try await publisher(github, t, log).publish(wheels) }
        #expect(again.map(\.outcome) == [.alreadyThere, .uploaded(attempts: 1), .uploaded(attempts: 1)])
        try expectComplete(github, tag: "v0.16.0-cpu", wheels: wheels)
    }

    @Test("a dropped upload leaves a partial asset, which is deleted and uploaded again; a 502 after it is retried")
    func partialAssetRetried() async throws {
        let scratch = try Scratch()
        let github = try FakeGitHub(token: token, uploadPlan: ["drop-partial", "502"], scratch: scratch)
        defer { github.stop() }
        let wheels = try await variantWheels(scratch)
        let log = LogCapture()
        let results = try await withTransport { t in try await publisher(github, t, log).publish(wheels) }
        // First wheel: dropped mid-body (partial asset left), then 502, then stored.
        #expect(results.map(\.outcome) == [.uploaded(attempts: 3), .uploaded(attempts: 1), .uploaded(attempts: 1)])
        #expect(github.requests.filter { $0.hasPrefix("DELETE /repos/acme/wheels/releases/assets/") }.count == 1)
        try expectComplete(github, tag: "v0.16.0-cpu", wheels: wheels)
        #expect(log.text.contains("deleted incomplete asset"))
        #expect(!log.text.contains(token))
    }

    @Test("a run that fails leaves a draft; the next run finds the draft and finishes it")
    func draftFinishedLater() async throws {
        let scratch = try Scratch()
        let github = try FakeGitHub(token: token, uploadPlan: ["pass", "502", "502", "502", "502"], scratch: scratch)
        defer { github.stop() }
        let wheels = try await variantWheels(scratch)
        let log = LogCapture()
        let failed = try await withTransport { t in try await publisher(github, t, log).publish(wheels) }
        #expect(failed[0].outcome == .uploaded(attempts: 1))
        guard case .failed(let message) = failed[1].outcome else { Issue.record("expected a failure, got \(failed[1])"); return }
        #expect(message.contains("gave up"))
        #expect(failed[2].outcome == .uploaded(attempts: 1))
        #expect(try github.state().map(\.draft) == [true])
        let finished = try await withTransport { t in try await publisher(github, t, log).publish(wheels) }
        #expect(finished.map(\.outcome) == [.alreadyThere, .uploaded(attempts: 1), .alreadyThere])
        #expect(github.requests.contains { $0.hasPrefix("GET /repos/acme/wheels/releases?") })
        try expectComplete(github, tag: "v0.16.0-cpu", wheels: wheels)
    }

    @Test("the default template makes one release per package; a bad token is reported without the token")
    func defaultTemplateAndBadToken() async throws {
        let scratch = try Scratch()
        let github = try FakeGitHub(token: token, scratch: scratch)
        defer { github.stop() }
        let wheels = try await variantWheels(scratch)
        let log = LogCapture()
        let results = try await withTransport { t in try await publisher(github, t, log, template: "default").publish(wheels) }
        #expect(results.allSatisfy { $0.outcome == .uploaded(attempts: 1) })
        #expect(try github.state().map(\.tag_name).sorted() == ["v0.16.0-wf-gh-cpu", "v0.16.0-wf-gh-cpu-amxbf16", "v0.16.0-wf-gh-cpu-avx512"])
        let bad = "ghp_wrong\(UUID().uuidString)"
        let refused = try await withTransport { t in try await publisher(github, t, log, token: bad).publish([wheels[0]]) }
        guard case .failed(let message) = refused.first?.outcome else { Issue.record("expected a failure"); return }
        #expect(message.contains("401"))
        #expect(message.contains("GH_TOKEN"))
        #expect(!message.contains(bad))
        #expect(!log.text.contains(bad) && !log.text.contains(token))
    }
}
