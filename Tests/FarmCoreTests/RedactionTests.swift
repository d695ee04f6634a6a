import FarmCore
import Foundation
import Testing

@Suite("Redaction and child environments")
struct RedactionTests {
    @Test func everyFormOfARegisteredSecretIsScrubbed() throws {
        let secret = "pw/with\\odd+chars-\(UUID().uuidString.prefix(8))"
        Redaction.register(secret, username: "alice")
        let basic = Data("alice:\(secret)".utf8).base64EncodedString()
        let json = String(String(data: try JSONEncoder().encode(secret), encoding: .utf8)!.dropFirst().dropLast())
        let swift = String(String(reflecting: secret).dropFirst().dropLast())
        let percent = secret.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
        let text = "raw \(secret) basic \(basic) json \(json) swift \(swift) pct \(percent) cut \(secret.prefix(10))… end"
        let scrubbed = Redaction.scrub(text)
        for form in [secret, basic, json, swift, percent, String(secret.prefix(Redaction.minimumPrefix))] {
            #expect(!scrubbed.contains(form), "\(form) survived in \(scrubbed)")
        }
        #expect(scrubbed.hasPrefix("raw <redacted> basic <redacted>") && scrubbed.hasSuffix("end"), "\(scrubbed)")
    }

    @Test func userinfoOfEveryURLIsRedacted() {
        #expect(Redaction.scrub("see https://bob:tok3n@example.test:8443/x and http://u@h/") ==
                "see https://<redacted>@example.test:8443/x and http://<redacted>@h/")
        #expect(Redaction.arguments(["--index-url", "https://u:p@host/simple/", "--x=git+ssh://git@host/r"])
                == ["--index-url", "https://<redacted>@host/simple/", "--x=git+ssh://<redacted>@host/r"])
    }

    @Test func childEnvironmentsLoseEveryCredential() {
        let value = "zz-\(UUID().uuidString)"
        Redaction.register(value)
        let env = ["PATH": "/bin", "PYPI_API_TOKEN": "a", "PYPI_TOKEN_VLLM_CPU": "b", "TWINE_PASSWORD": "c", "GH_TOKEN": "d",
                   "SSH_AUTH_SOCK": "/tmp/agent", "DEPLOY_TOKEN": "e", "KEY_PASSPHRASE": "f", "MY_KEY_PW": "g",
                   "INNOCENT_NAME": "holds \(value) inside", "HOME": "/root"]
        #expect(ChildEnvironment.sanitized(env, removing: ["MY_KEY_PW"]) == ["PATH": "/bin", "HOME": "/root"])
    }
}
