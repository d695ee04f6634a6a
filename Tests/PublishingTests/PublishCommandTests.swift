import FarmTestSupport
import Foundation
import Testing

/// `wheelfarm publish` through the built binary, with the real verifier connected.
@Suite("wheelfarm publish (built binary)")
struct PublishVerifiedWheelTests {
    @Test func verifiedWheelsArePublishedAndTamperedOnesRefused() throws {
        let dir = try TestEnvironment.makeTemporaryDirectory("wf-publish-cli")
        defer { try? FileManager.default.removeItem(at: dir) }
        let wheel = try WheelFixtures.buildWheel(distribution: "wfpub-demo", version: "1.2.0", module: "wfpubdemo", in: dir)
        let index = dir.appendingPathComponent("index")

        let first = try TestProcess.wheelfarm(["publish", wheel.path, "--local-index", index.path, "--skip-github"])
        #expect(first.status == 0, "\(first.stdout)\n\(first.stderr)")
        #expect(first.stdout.contains("uploaded") && first.stdout.contains(wheel.lastPathComponent))
        let again = try TestProcess.wheelfarm(["publish", wheel.path, "--local-index", index.path, "--skip-github"])
        #expect(again.status == 0 && again.stdout.contains("already there"))

        // pip installs it from the local index.
        let target = dir.appendingPathComponent("site")
        let pip = try TestProcess.run(TestEnvironment.python, ["-m", "pip", "install", "--no-deps", "--quiet", "--target", target.path,
                                                               "--index-url", index.appendingPathComponent("simple").absoluteString, "wfpub-demo==1.2.0"])
        #expect(pip.status == 0, "\(pip.stderr)")

        // One byte changed inside a member: its CRC and RECORD hash no longer match; refused, nothing published.
        let tampered = dir.appendingPathComponent("tampered")
        try FileManager.default.createDirectory(at: tampered, withIntermediateDirectories: true)
        let copy = tampered.appendingPathComponent(wheel.lastPathComponent)
        try FileManager.default.copyItem(at: wheel, to: copy)
        try WheelFixtures.corruptFirstMember(copy)
        let other = dir.appendingPathComponent("index2")
        let refused = try TestProcess.wheelfarm(["publish", copy.path, "--local-index", other.path, "--skip-github"])
        #expect(refused.status == 1)
        #expect(refused.stdout.contains("not verified") || refused.stdout.contains("failed verification"))
        #expect(!FileManager.default.fileExists(atPath: other.appendingPathComponent("packages").path))
    }
}
