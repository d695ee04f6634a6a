import ArgumentParser
import FarmCore
import Foundation
import Recipes
import Wheels

/// `wheelfarm verify`: checks wheels before they may be published.
struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Verify wheels: zip integrity, layout, metadata, RECORD hashes, required files, ELF machine, ISA and platform audits.",
        discussion: """
        Every check has a stable id (zip.crc, record.hashes, isa.excluded, …); the report says what \
        was expected and what was found. With --recipe, each wheel is matched to the recipe's \
        variant by its name (or to --variant), and the variant's required files and instruction-set \
        expectations apply, and the recipe's platform requirement and provided libraries. The \
        platform audit reads every ELF object's needed libraries, search path and symbol versions \
        and checks them against the policy of the wheel's platform tag (manylinux_X_Y, \
        manylinux1/2010/2014, musllinux_X_Y); the report names the most compatible tag the \
        content allows. A path that is an ELF object rather than a wheel gets only the ELF and \
        ISA checks (and the most compatible tag it allows). Exit code 1 when any wheel fails, 2 on \
        a usage error.
        """)

    @Argument(help: ArgumentHelp("Wheel files to verify.", valueName: "wheel"))
    var wheels: [String]

    @Option(name: .long, help: ArgumentHelp("The recipe (vllm-cpu, sample, or a recipe file) whose variants' expectations apply.", valueName: "name|file"))
    var recipe: String?

    @Option(name: .long, help: ArgumentHelp("The variant every wheel must be (short or package name); implies --recipe vllm-cpu unless given.", valueName: "name"))
    var variant: String?

    @Option(name: .long, help: ArgumentHelp("The arch the wheels were built for (amd64, arm64).", valueName: "arch"))
    var arch: String?

    @Option(name: .customLong("expect-version"), help: ArgumentHelp("The version every wheel must carry (PEP 440).", valueName: "version"))
    var expectVersion: String?

    @Flag(name: .customLong("allow-linux-tag"), help: "Only warn about platform tags PyPI refuses (linux_*), e.g. for a local index.")
    var allowLinuxTag = false

    @Option(name: .long, help: ArgumentHelp("Wheels verified at once (default: min(8, cores)).", valueName: "n"))
    var concurrency: Int?

    @Flag(name: .long, help: "Print a JSON report per wheel instead of text.")
    var json = false

    @Flag(name: .long, help: "List every check, not only failures and warnings.")
    var verbose = false

    @Flag(name: .long, help: ArgumentHelp("For ELF objects: also count instructions per mnemonic (JSON only).", visibility: .hidden))
    var mnemonics = false

    @Flag(name: .customLong("no-platform-audit"), help: ArgumentHelp("Skip the platform audit (to measure what it costs).", visibility: .hidden))
    var noPlatformAudit = false

    func validate() throws {
        if let arch, Arch(parsing: arch) == nil {
            throw ValidationError("invalid value '\(arch)' for --arch: expected one of \(Arch.acceptedNames.joined(separator: ", "))")
        }
        if let expectVersion, PEP440Version(expectVersion) == nil {
            throw ValidationError("invalid value '\(expectVersion)' for --expect-version: expected \(PEP440Version.formHint)")
        }
        if let concurrency, concurrency < 1 { throw ValidationError("--concurrency must be at least 1, found \(concurrency)") }
    }

    func run() async throws {
        let archValue = arch.flatMap(Arch.init(parsing:))
        var recipeValue: Recipe?
        var fixedVariant: Variant?
        if recipe != nil || variant != nil {
            let name = recipe ?? "vllm-cpu"
            do { recipeValue = try RecipeCatalog.load(name) } catch {
                printError("wheelfarm: \(error)")
                throw ExitCode(2)
            }
            if let variant {
                guard let v = recipeValue!.variant(named: variant) else {
                    let names = recipeValue!.variants.flatMap { [$0.shortName, $0.package] }
                    printError("wheelfarm: recipe '\(recipeValue!.name)' has no variant '\(variant)'\(DidYouMean.hint(for: variant, among: names)); variants: \(recipeValue!.variants.map(\.shortName).joined(separator: ", "))")
                    throw ExitCode(2)
                }
                fixedVariant = v
            }
        }
        var items: [(path: String, expectation: WheelExpectation)] = []
        for path in wheels {
            var expectation = WheelExpectation(version: expectVersion, arch: archValue, allowNonPyPIPlatform: allowLinuxTag)
            if let recipeValue {
                let wheelName = WheelFilename((path as NSString).lastPathComponent)?.name
                let chosen = fixedVariant ?? wheelName.flatMap { recipeValue.variant(named: $0) }
                if let chosen {
                    expectation = WheelExpectation(recipe: recipeValue, variant: chosen, arch: archValue ?? WheelFilename((path as NSString).lastPathComponent)?.arch, version: expectVersion)
                    expectation.allowNonPyPIPlatform = allowLinuxTag
                } else {
                    expectation.requiredFiles = recipeValue.requiredFiles
                    expectation.name = recipeValue.variants.first?.package
                    printError("wheelfarm: '\(path)' is not named after a variant of recipe '\(recipeValue.name)' (\(recipeValue.variants.map(\.package).joined(separator: ", "))): only the recipe's required files apply")
                }
            }
            items.append((path, expectation))
        }
        let verifier = WheelVerifier(options: .init(concurrency: concurrency, platformAudit: !noPlatformAudit))
        var reports: [WheelReport] = []
        let wheelItems = items.filter { !Self.isELFObject($0.path) }
        let wheelReports = await verifier.verifyAll(wheelItems, concurrency: concurrency)
        var w = 0
        for item in items {
            if Self.isELFObject(item.path) {
                reports.append(verifier.verifyObject(path: item.path, expectation: item.expectation, countMnemonics: mnemonics))
            } else {
                reports.append(wheelReports[w]); w += 1
            }
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            let data = try encoder.encode(reports)
            print(String(decoding: data, as: UTF8.self))
        } else {
            for report in reports { print(Self.render(report, verbose: verbose)) }
            let failed = reports.filter { !$0.passed }.count
            print("\(reports.count - failed) of \(reports.count) wheel\(reports.count == 1 ? "" : "s") passed")
        }
        if reports.contains(where: { !$0.passed }) { throw ExitCode(1) }
    }

    /// Whether a path names an ELF object rather than a wheel (audited on its own).
    static func isELFObject(_ path: String) -> Bool {
        guard !path.hasSuffix(".whl"), let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        let magic = (try? handle.read(upToCount: 4)) ?? Data()
        return magic == Data([0x7f, 0x45, 0x4c, 0x46])
    }

    static func render(_ report: WheelReport, verbose: Bool) -> String {
        var lines = ["\(report.passed ? "PASS" : "FAIL") \(report.path)"]
        for check in report.checks where verbose || check.outcome == .fail || check.outcome == .warn {
            lines.append("  \(check.outcome.rawValue.uppercased().padding(toLength: 4, withPad: " ", startingAt: 0)) \(check.id.rawValue): \(check.message)")
        }
        if let isa = report.isa {
            lines.append("  isa: \(isa.summary) (\(isa.instructions) instructions in \(report.sharedObjects.count) object\(report.sharedObjects.count == 1 ? "" : "s"))")
        }
        if let platform = report.platform {
            let order = ["GLIBC", "GLIBCXX", "CXXABI", "GCC"]
            let keys = order.filter { platform.highest[$0] != nil } + platform.highest.keys.filter { !order.contains($0) }.sorted()
            let needs = keys.map { "\($0)_\(platform.highest[$0]!)" }.joined(separator: " ")
            let missing = platform.libraries.filter { $0.resolution == "missing" }.map(\.name)
            lines.append("  platform: needs \(needs.isEmpty ? "no versioned symbols" : needs)\(missing.isEmpty ? "" : "; missing \(missing.joined(separator: ", "))"); most compatible tag \(platform.mostCompatibleTag ?? "-")")
        }
        return lines.joined(separator: "\n")
    }
}
