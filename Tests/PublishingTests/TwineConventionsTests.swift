import FarmCore
import FarmTestSupport
import Foundation
import Logging
import Testing
@testable import Publishing

/// twine's conventions (`~/.pypirc`, `--repository`, `TWINE_REPOSITORY`, keyring, `--cert`),
/// the one destination/credential decision `release` and `publish` share, and GitHub instances.
@Suite("twine conventions and the shared publishing setup")
struct TwineConventionsTests {
    let logger = Logger(label: "test")

    /// A HOME with a `.pypirc` (if given), as the environment of a command.
    final class Home {
        let url: URL
        var pypirc: String { url.appendingPathComponent(".pypirc").path }
        init(pypirc: String? = nil) throws {
            url = try TestEnvironment.makeTemporaryDirectory("wheelfarm-pypirc")
            if let pypirc { try pypirc.write(toFile: self.pypirc, atomically: true, encoding: .utf8) }
        }
        deinit { try? FileManager.default.removeItem(at: url) }
        func environment(_ extra: [String: String] = [:]) -> [String: String] {
            ["HOME": url.path, "PATH": "/usr/bin:/bin"].merging(extra) { $1 }
        }
    }

    // MARK: ~/.pypirc

    @Test("~/.pypirc as configparser reads it: continuation lines, comments, case-insensitive keys, server-login")
    func parsesLikeConfigparser() throws {
        let file = try PyPIRC.parse("""
            # comment
            [distutils]
            index-servers =
                pypi
                local
            ; another comment

            [server-login]
            username: shared

            [local]
            Repository = https://index.example/upload/
            PASSWORD = s3cret
            ca_cert = /etc/ssl/private-ca.pem
            """, path: "~/.pypirc")
        #expect(file.indexServers == ["pypi", "local"])
        let local = try file.repository(named: "local")
        #expect(local.uploadURL == "https://index.example/upload/" && local.username == "shared")
        #expect(local.password?.withRevealed { $0 } == "s3cret" && local.caCert == "/etc/ssl/private-ca.pem")
        #expect(local.origin == "section [local] of '~/.pypirc' line 12" && local.passwordOrigin == "section [local] of '~/.pypirc' line 13")
        #expect(try file.repository(named: "pypi").uploadURL == PackageIndex.pypiUploadURL)
        #expect(file.repository(forUploadURL: "https://index.example/upload") != nil)
    }

    @Test("a section not listed in index-servers is not used, as twine ignores it; testpypi only when listed")
    func indexServers() throws {
        let file = try PyPIRC.parse("[distutils]\nindex-servers = pypi\n\n[local]\nrepository = http://x/\n", path: "p")
        #expect(throws: PublishingError.self) { try file.repository(named: "local") }
        do { _ = try file.repository(named: "local") } catch {
            #expect("\(error)".contains("section [local] (line 4) is not listed in [distutils] index-servers"), "\(error)")
        }
        #expect(throws: PublishingError.self) { try file.repository(named: "testpypi") }
        let none = try PyPIRC.parse("[pypi]\nusername = __token__\n", path: "p")
        #expect(none.indexServers == ["pypi", "testpypi"])
        #expect(try none.repository(named: "testpypi").uploadURL == PackageIndex.testPyPIUploadURL)
    }

    @Test("files configparser refuses are refused with file and line, and never quote a value",
          arguments: [
            ("[pypi]\npassword = pypi-AAAA\n\n[pypi]\npassword = pypi-BBBB\n", 4, "section [pypi] is defined twice (first on line 1)"),
            ("[pypi]\npassword = pypi-AAAA\npassword = pypi-BBBB\n", 3, "key 'password' is set twice in section [pypi] (first on line 2)"),
            ("password = pypi-AAAA\n", 1, "a key outside any [section]"),
            ("[pypi]\njust words\n", 2, "expected 'key = value' or a [section] header"),
            ("[pypi\n", 1, "closing ']'"),
          ])
    func malformed(_ text: String, _ line: Int, _ message: String) {
        do {
            _ = try PyPIRC.parse(text, path: "/home/me/.pypirc")
            Issue.record("accepted")
        } catch {
            let d = "\(error)"
            #expect(d.contains("'/home/me/.pypirc' line \(line)") && d.contains(message), "\(d)")
            #expect(!d.contains("pypi-AAAA") && !d.contains("pypi-BBBB"))
        }
    }

    // MARK: Destination: one decision for both commands

    struct DestinationCase: Sendable, CustomTestStringConvertible {
        var name: String
        var pypirc: String?
        var env: [String: String] = [:]
        var request = PublishingRequest()
        /// For `release` (`<dist>/index` as the default) and `publish`.
        var expectedRelease: String
        var expectedPublish: String
        var because: String
        var testDescription: String { name }
    }

    static let pypirc = """
        [distutils]
        index-servers = pypi local other

        [pypi]
        username = __token__
        password = pypi-from-pypirc

        [local]
        repository = http://127.0.0.1:9/local/

        [other]
        repository = http://127.0.0.1:9/other/
        """

    static let destinations: [DestinationCase] = [
        DestinationCase(name: "--local-index wins", pypirc: pypirc, env: ["TWINE_REPOSITORY_URL": "http://127.0.0.1:9/env/"],
                        request: PublishingRequest(localIndex: "/srv/index", repository: nil),
                        expectedRelease: "/srv/index", expectedPublish: "/srv/index", because: "--local-index"),
        DestinationCase(name: "--repository-url before --repository", pypirc: pypirc,
                        request: PublishingRequest(repositoryURL: "http://127.0.0.1:9/url/", repository: "local"),
                        expectedRelease: "http://127.0.0.1:9/url/", expectedPublish: "http://127.0.0.1:9/url/", because: "--repository-url"),
        DestinationCase(name: "--repository before the environment", pypirc: pypirc, env: ["TWINE_REPOSITORY_URL": "http://127.0.0.1:9/env/"],
                        request: PublishingRequest(repository: "local"),
                        expectedRelease: "http://127.0.0.1:9/local/", expectedPublish: "http://127.0.0.1:9/local/", because: "--repository 'local'"),
        DestinationCase(name: "TWINE_REPOSITORY_URL before TWINE_REPOSITORY", pypirc: pypirc,
                        env: ["TWINE_REPOSITORY_URL": "http://127.0.0.1:9/env/", "TWINE_REPOSITORY": "other"],
                        expectedRelease: "http://127.0.0.1:9/env/", expectedPublish: "http://127.0.0.1:9/env/", because: "environment variable TWINE_REPOSITORY_URL"),
        DestinationCase(name: "TWINE_REPOSITORY names a section", pypirc: pypirc, env: ["TWINE_REPOSITORY": "other"],
                        expectedRelease: "http://127.0.0.1:9/other/", expectedPublish: "http://127.0.0.1:9/other/", because: "environment variable TWINE_REPOSITORY 'other'"),
        DestinationCase(name: "only ~/.pypirc [pypi] with a password: PyPI for both", pypirc: pypirc,
                        expectedRelease: PackageIndex.pypiUploadURL, expectedPublish: PackageIndex.pypiUploadURL, because: "section [pypi]"),
        DestinationCase(name: "a PyPI token in the environment: PyPI for both", env: ["PYPI_TOKEN_WFSAMPLE_CPU": "pypi-x"],
                        expectedRelease: PackageIndex.pypiUploadURL, expectedPublish: PackageIndex.pypiUploadURL, because: "PYPI_TOKEN_WFSAMPLE_CPU"),
        DestinationCase(name: "Trusted Publishing variables: PyPI for both",
                        env: ["ACTIONS_ID_TOKEN_REQUEST_URL": "http://127.0.0.1:9/t?x=1", "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "t"],
                        expectedRelease: PackageIndex.pypiUploadURL, expectedPublish: PackageIndex.pypiUploadURL, because: "Trusted Publishing"),
        DestinationCase(name: "nothing configured: release keeps its local index, publish names PyPI",
                        expectedRelease: "/dist/index", expectedPublish: PackageIndex.pypiUploadURL, because: "default"),
    ]

    @Test("one documented order decides the destination for release and publish", arguments: destinations)
    func destination(_ c: DestinationCase) throws {
        let home = try Home(pypirc: c.pypirc)
        let release = try PublishingSetup.resolve(c.request, environment: home.environment(c.env),
                                                  defaultLocalIndex: URL(fileURLWithPath: "/dist/index"), logger: logger)
        let publish = try PublishingSetup.resolve(c.request, environment: home.environment(c.env), defaultLocalIndex: nil, logger: logger)
        defer { Task { await release.shutdown(); await publish.shutdown() } }
        #expect(release.destinationDescription == c.expectedRelease, "\(release.destinationSource)")
        #expect(publish.destinationDescription == c.expectedPublish, "\(publish.destinationSource)")
        #expect(release.destinationSource.contains(c.because), "\(release.destinationSource)")
    }

    @Test("an unknown repository name is a configuration error naming the file")
    func unknownRepository() throws {
        let home = try Home(pypirc: Self.pypirc)
        #expect(throws: PublishingError.self) {
            try PublishingSetup.resolve(PublishingRequest(repository: "nope"), environment: home.environment(), defaultLocalIndex: nil, logger: logger)
        }
    }

    // MARK: Credentials

    @Test("credentials: the chosen repository's section; keyring after it, through the real keyring command")
    func keyring() throws {
        let home = try Home(pypirc: Self.pypirc)
        // A keyring backend of the test's own, loaded by the real `keyring` command (Python keyring).
        let backend = home.url.appendingPathComponent("wf_test_keyring.py")
        let store = home.url.appendingPathComponent("keyring.json")
        let seen = home.url.appendingPathComponent("keyring-env.json")
        try """
            import json, os
            from keyring.backend import KeyringBackend
            class Keyring(KeyringBackend):
                priority = 1
                def _data(self):
                    json.dump(sorted(os.environ), open(os.environ["WF_TEST_KEYRING_SEEN"], "w"))
                    return json.load(open(os.environ["WF_TEST_KEYRING_FILE"]))
                def get_password(self, service, username):
                    return self._data().get(service, {}).get(username)
                def set_password(self, service, username, password):
                    raise NotImplementedError
                def delete_password(self, service, username):
                    raise NotImplementedError
            """.write(to: backend, atomically: true, encoding: .utf8)
        try #"{"http://127.0.0.1:9/local/": {"kr-user": "from-keyring"}, "http://127.0.0.1:9/other/": {"__token__": "pypi-in-keyring"}}"#
            .write(to: store, atomically: true, encoding: .utf8)
        let env = home.environment([
            "PATH": TestEnvironment.venv.appendingPathComponent("bin").path + ":/usr/bin:/bin",
            "PYTHONPATH": home.url.path, "PYTHON_KEYRING_BACKEND": "wf_test_keyring.Keyring",
            "WF_TEST_KEYRING_FILE": store.path, "WF_TEST_KEYRING_SEEN": seen.path,
            "TWINE_USERNAME": "kr-user", "GH_TOKEN": "gh-secret", "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "oidc-secret",
        ])
        let setup = try PublishingSetup.resolve(PublishingRequest(repository: "local"), environment: env, defaultLocalIndex: nil, logger: logger)
        defer { Task { await setup.shutdown() } }
        guard case let .fixed(credentials) = try setup.credentialPlan(for: "wfsample-cpu") else {
            Issue.record("no keyring credentials"); return
        }
        #expect(credentials.username == "kr-user" && credentials.password.withRevealed { $0 } == "from-keyring")
        #expect(credentials.source == "the system keyring ('keyring get http://127.0.0.1:9/local/ kr-user')")
        // The keyring process got no credential variables.
        let names = try JSONDecoder().decode([String].self, from: Data(contentsOf: seen))
        #expect(!names.contains("GH_TOKEN") && !names.contains("ACTIONS_ID_TOKEN_REQUEST_TOKEN") && names.contains("WF_TEST_KEYRING_FILE"))
        // A PyPI token found in the keyring is never sent to another index.
        var otherEnv = env; otherEnv["TWINE_USERNAME"] = "__token__"
        let other = try PublishingSetup.resolve(PublishingRequest(repository: "other"), environment: otherEnv, defaultLocalIndex: nil, logger: logger)
        defer { Task { await other.shutdown() } }
        guard case let .missing(looked) = try other.credentialPlan(for: "x") else { Issue.record("a PyPI token went to another index"); return }
        #expect(looked.contains { $0.contains("never sent to another index") }, "\(looked)")
    }

    @Test("the missing-credentials error names a withheld pypi- token and every place looked")
    func withheld() throws {
        let home = try Home()
        let setup = try PublishingSetup.resolve(PublishingRequest(repositoryURL: "http://127.0.0.1:9/private/"),
                                                environment: home.environment(["PYPI_API_TOKEN": "pypi-secret-value"]),
                                                defaultLocalIndex: nil, logger: logger)
        defer { Task { await setup.shutdown() } }
        do {
            _ = try setup.publisher(for: "wfsample-cpu")
            Issue.record("a pypi- token was accepted for a private index")
        } catch {
            let text = "\(error)"
            #expect(text.contains("PYPI_API_TOKEN (found in environment variable PYPI_API_TOKEN, but it holds a PyPI token"), "\(text)")
            #expect(text.contains("keyring") && text.contains("Trusted Publishing (ACTIONS_ID_TOKEN_REQUEST_URL"), "\(text)")
            #expect(!text.contains("pypi-secret-value"))
        }
    }

    // MARK: GitHub

    @Test("GH_HOST: the API URL as gh derives it, and the token variables of that instance")
    func gitHubHosts() throws {
        func instance(_ env: [String: String], option: String? = nil) -> GitHubInstance {
            GitHubInstance.resolve(apiURLOption: option, sources: CredentialSources(environment: env))
        }
        #expect(instance([:]).apiURL == "https://api.github.com")
        let ghes = instance(["GH_HOST": "github.example.com", "GITHUB_API_URL": "https://api.github.com"])
        #expect(ghes.apiURL == "https://github.example.com/api/v3" && ghes.isEnterpriseServer && ghes.source == "environment variable GH_HOST")
        #expect(ghes.tokenVariables.prefix(2) == ["GH_ENTERPRISE_TOKEN", "GITHUB_ENTERPRISE_TOKEN"])
        let tenancy = instance(["GH_HOST": "acme.ghe.com"])
        #expect(tenancy.apiURL == "https://api.acme.ghe.com" && !tenancy.isEnterpriseServer && tenancy.tokenVariables == ["GH_TOKEN", "GITHUB_TOKEN"])
        #expect(instance(["GH_HOST": "github.com"]).apiURL == "https://api.github.com")
        #expect(instance(["GITHUB_API_URL": "https://ghe.corp/api/v3"]).host == "ghe.corp")
        #expect(instance(["GH_HOST": "github.example.com"], option: "http://127.0.0.1:1").apiURL == "http://127.0.0.1:1")

        let sources = CredentialSources(environment: ["GH_ENTERPRISE_TOKEN": "e", "GH_TOKEN": "g"])
        #expect(try ghes.token(sources: sources, repository: nil).token.withRevealed { $0 } == "e")
        #expect(try GitHubInstance.dotCom.token(sources: sources, repository: nil).token.withRevealed { $0 } == "g")
        do {
            _ = try ghes.token(sources: CredentialSources(environment: [:]), repository: "acme/wheels")
            Issue.record("a token was found in an empty environment")
        } catch {
            let text = "\(error)"
            #expect(text.contains("no GitHub token for 'github.example.com'") && text.contains("GH_ENTERPRISE_TOKEN, GITHUB_ENTERPRISE_TOKEN"), "\(text)")
            #expect(text.contains("'contents: write' on acme/wheels") && text.contains("--skip-github"), "\(text)")
            #expect(!text.contains("__token__"), "a PyPI hint in a GitHub message: \(text)")
        }
    }
}
