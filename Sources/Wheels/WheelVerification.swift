#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import FarmCore
import Foundation
import Recipes

/// One verification run over one wheel (single-threaded; ``WheelVerifier`` runs several at once).
struct WheelVerification {
    let path: String
    let expectation: WheelExpectation
    let options: WheelVerifier.Options
    var recorder = CheckRecorder()
    var objects: [SharedObjectReport] = []
    var metadata: CoreMetadata?

    init(path: String, expectation: WheelExpectation, options: WheelVerifier.Options) {
        self.path = path; self.expectation = expectation; self.options = options
    }

    static let supportedMetadataVersions: Set<String> = ["1.0", "1.1", "1.2", "2.1", "2.2", "2.3", "2.4"]

    mutating func run() -> WheelReport {
        let basename = path.split(separator: "/").last.map(String.init) ?? path
        let filename = WheelFilename(basename)
        checkFilename(basename, filename)
        let archive: ZipArchive
        do {
            archive = try ZipArchive(path: path, limits: options.limits)
            recorder.pass(.zipArchive, "\(archive.entries.count) members, central directory at offset \(archive.centralDirectoryOffset)\(archive.isZip64 ? " (Zip64)" : "")")
        } catch let WheelError.malformed(check, message) {
            recorder.fail(WheelCheckID(rawValue: check) ?? .zipArchive, message)
            return report(filename: filename, members: 0, bytes: 0, reason: "the archive could not be read")
        } catch {
            recorder.fail(.zipArchive, "\(error)")
            return report(filename: filename, members: 0, bytes: 0, reason: "the archive could not be read")
        }
        let entries = archive.entries
        let total = entries.reduce(Int64(0)) { $0 &+ $1.uncompressedSize }
        let withinLimits = checkEntries(entries, total: total)

        // Layout and metadata (read first: RECORD says which hash each member needs).
        let reader = MemberReader()
        let files = entries.filter { !$0.isDirectory }
        let distInfo = checkDistInfo(entries, filename)
        var record: [String: RecordFile.Row] = [:]
        var recordOK = false
        var hasELFNames = false
        for e in files where Self.looksLikeSharedObject(e.name) { hasELFNames = true }
        if let distInfo, withinLimits {
            let byName = Dictionary(files.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
            checkMetadata(byName["\(distInfo)/METADATA"], archive, reader, filename)
            checkWheelFile(byName["\(distInfo)/WHEEL"], archive, reader, filename, hasELF: hasELFNames)
            (record, recordOK) = checkRecord(byName["\(distInfo)/RECORD"], archive, reader, files: files, distInfo: distInfo)
        } else {
            let reason = withinLimits ? "no usable .dist-info directory" : "the archive exceeds the limits: nothing was inflated"
            for id in [WheelCheckID.metadataParse, .metadataVersion, .metadataRequiredFields, .metadataNameVersion, .metadataDescription,
                       .wheelParse, .wheelVersion, .wheelRootIsPurelib, .wheelTags, .recordParse, .recordCoverage, .recordHashes, .recordSelf] {
                recorder.skip(id, reason)
            }
        }
        checkRequiredFiles(files)

        // The streaming pass: every member inflated once, CRC, RECORD hash, ELF audit.
        let wheelArch = filename?.arch ?? expectation.arch
        var totalISA: ISACounts?
        if withinLimits {
            totalISA = streamMembers(archive, reader, record: recordOK ? record : nil, wheelArch: wheelArch)
        } else {
            for id in [WheelCheckID.zipLocalHeaders, .zipCRC, .elfMachine, .elfDynamic] { recorder.skip(id, "the archive exceeds the limits: nothing was inflated") }
        }
        if !recorder.failed(.zipLimits) {
            Self.isaChecks(&recorder, expectation: expectation, wheelArch: wheelArch, total: totalISA, objects: objects)
        }
        var platform: PlatformReport?
        if !withinLimits || !options.inspectELF || !options.platformAudit {
            let reason = !withinLimits ? "the archive exceeds the limits: nothing was inflated" : "the platform audit is off"
            for id in [WheelCheckID.platformSymbols, .platformLibraries, .platformRequirement] { recorder.skip(id, reason) }
        } else if let filename {
            platform = platformAudit(filename: filename, files: files)
        } else {
            for id in [WheelCheckID.platformSymbols, .platformLibraries, .platformRequirement] { recorder.skip(id, "the filename does not parse") }
        }
        return report(filename: filename, members: entries.count, bytes: total, totalISA: totalISA, platform: platform, reason: "not applicable")
    }

    /// The platform audit over the objects the streaming pass read (their tables were parsed
    /// while the ISA audit ran on the same file).
    mutating func platformAudit(filename: WheelFilename, files: [ZipEntry]) -> PlatformReport? {
        let machines = Set(objects.compactMap { o in Arch(parsing: o.machine == "x86-64" ? "x86_64" : o.machine)?.kernelName })
        var required: Set<String>?
        if let metadata {
            required = Set(metadata.values("Requires-Dist").compactMap { line in
                let name = line.prefix { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }
                return name.isEmpty ? nil : Variant.normalize(String(name))
            })
        }
        let audit = PlatformAudit(
            objects: objects.compactMap { o in o.dependencies.map { PlatformAudit.Object(member: o.path, dependencies: $0) } },
            members: Set(files.map(\.name)), platformTags: filename.platformTags,
            machine: filename.arch?.kernelName ?? (machines.count == 1 ? machines.first : nil),
            expectation: expectation, requiredDistributions: required)
        return audit.run(&recorder)
    }

    func report(filename: WheelFilename?, members: Int, bytes: Int64, totalISA: ISACounts? = nil, platform: PlatformReport? = nil, reason: String) -> WheelReport {
        var r = WheelReport(path: path, filename: filename, checks: recorder.results(skippingOthers: reason), sharedObjects: objects,
                            isa: totalISA, members: members, uncompressedBytes: bytes)
        r.metadata = metadata
        r.platform = platform
        return r
    }

    // MARK: Filename

    mutating func checkFilename(_ basename: String, _ filename: WheelFilename?) {
        guard let f = filename else {
            recorder.fail(.filenameFormat, "'\(basename)' is not a wheel filename: expected {name}-{version}(-{build})?-{python}-{abi}-{platform}.whl")
            for id in [WheelCheckID.filenamePlatform, .filenameArch, .filenameExpectation] { recorder.skip(id, "the filename does not parse") }
            return
        }
        let nameOK = !f.name.isEmpty && f.name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == ".") }
            && f.name.first!.isLetterOrNumberASCII && f.name.last!.isLetterOrNumberASCII
        let tagChars: (String) -> Bool = { $0.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") } }
        if !nameOK {
            recorder.fail(.filenameFormat, "name '\(f.name)' has characters a wheel name cannot have: expected letters, digits and '_'")
        } else if PEP440Version(f.version) == nil {
            recorder.fail(.filenameFormat, "version '\(f.version)' is not \(PEP440Version.formHint)")
        } else if let b = f.build, !(b.first?.isNumber ?? false) || !tagChars(b) {
            recorder.fail(.filenameFormat, "build tag '\(b)' must start with a digit")
        } else if !(f.pythonTags + f.abiTags + f.platformTags).allSatisfy(tagChars) {
            recorder.fail(.filenameFormat, "tags '\(f.pythonTags.joined(separator: "."))-\(f.abiTags.joined(separator: "."))-\(f.platformTags.joined(separator: "."))' contain characters other than letters, digits and '_'")
        } else if WheelFilename.normalizedName(f.name) != f.name || PEP440Version(f.version)!.description != f.version {
            recorder.warn(.filenameFormat, "'\(f.name)-\(f.version)' is not normalised: expected '\(WheelFilename.normalizedName(f.name))-\(PEP440Version(f.version)!.description)'")
        } else {
            recorder.pass(.filenameFormat, "name '\(f.name)', version '\(f.version)', tags \(f.pythonTags.joined(separator: "."))-\(f.abiTags.joined(separator: "."))-\(f.platformTags.joined(separator: "."))")
        }
        let rejected = f.platformTags.filter { !WheelFilename.isPyPIAcceptable(platformTag: $0) }
        if rejected.isEmpty {
            recorder.pass(.filenamePlatform, "platform tag '\(f.platformTags.joined(separator: "."))' is accepted by PyPI")
        } else {
            let message = "platform tag '\(rejected.joined(separator: "."))' is not accepted by PyPI: expected a manylinux/musllinux tag such as 'manylinux_2_28_\(rejected.first.flatMap(WheelFilename.arch(ofPlatformTag:))?.wheelTagSuffix ?? "x86_64")' (retag with auditwheel or 'python -m wheel tags --platform-tag')"
            if expectation.allowNonPyPIPlatform { recorder.warn(.filenamePlatform, message) } else { recorder.fail(.filenamePlatform, message) }
        }
        if let want = expectation.arch {
            switch f.arch {
            case want?: recorder.pass(.filenameArch, "platform tag arch is \(want.kernelName), as the job's")
            case nil where f.platformTags == ["any"]:
                recorder.warn(.filenameArch, "platform tag 'any' names no arch; the job built for \(want.kernelName)")
            case let other:
                recorder.fail(.filenameArch, "platform tag '\(f.platformTags.joined(separator: "."))' is for \(other?.kernelName ?? "an unknown or mixed arch"); the job built for \(want.kernelName)")
            }
        } else {
            recorder.skip(.filenameArch, "no job arch given")
        }
        if expectation.name == nil && expectation.version == nil && !expectation.abi3 {
            recorder.skip(.filenameExpectation, "no expected name or version given")
        } else {
            var problems: [String] = []
            if let n = expectation.name, Variant.normalize(n) != Variant.normalize(f.name) {
                problems.append("name '\(f.name)' but expected '\(n)'")
            }
            if let v = expectation.version {
                let have = PEP440Version(f.version), want = PEP440Version(v)
                if have == nil || want == nil || have! != want! { problems.append("version '\(f.version)' but expected '\(v)'") }
            }
            if let abi3 = expectation.abi3Problem(f) { problems.append(abi3) }
            if problems.isEmpty {
                recorder.pass(.filenameExpectation, "name and version are the expected '\(expectation.name ?? f.name)' '\(expectation.version ?? f.version)'")
            } else {
                recorder.fail(.filenameExpectation, problems.joined(separator: "; "))
            }
        }
    }

    // MARK: Entries

    /// Static checks on the central directory; returns whether the archive is within the limits.
    mutating func checkEntries(_ entries: [ZipEntry], total: Int64) -> Bool {
        let limits = options.limits
        var seen = Set<[UInt8]>()
        for e in entries {
            if let problem = Self.pathProblem(e) { recorder.fail(.zipPaths, "member '\(e.name)': \(problem)") }
            if !seen.insert(e.rawName).inserted { recorder.fail(.zipDuplicates, "member '\(e.name)' appears more than once") }
            if let mode = e.unixMode {
                let type = mode & 0o170000
                let names: [UInt32: String] = [0o120000: "a symbolic link", 0o020000: "a character device", 0o060000: "a block device",
                                               0o010000: "a fifo", 0o140000: "a socket"]
                if type != 0, type != 0o100000, type != 0o040000 {
                    recorder.fail(.zipFileTypes, "member '\(e.name)' is \(names[type] ?? "of file type \(String(type, radix: 8))"); expected regular files only")
                } else if type == 0o040000, !e.isDirectory {
                    recorder.fail(.zipFileTypes, "member '\(e.name)' is marked as a directory but its name does not end in '/'")
                }
            }
            if e.isDirectory, e.uncompressedSize != 0 {
                recorder.fail(.zipFileTypes, "directory entry '\(e.name)' has \(e.uncompressedSize) bytes of content")
            }
            if e.isEncrypted { recorder.fail(.zipEncryption, "member '\(e.name)' is encrypted; wheels cannot be") }
            if e.uncompressedSize > limits.maxMemberBytes {
                recorder.fail(.zipLimits, "member '\(e.name)' declares \(e.uncompressedSize) bytes; the limit is \(limits.maxMemberBytes)")
            } else if e.uncompressedSize > limits.ratioThreshold, e.uncompressedSize / max(1, e.compressedSize) > limits.maxRatio {
                recorder.fail(.zipLimits, "member '\(e.name)' declares a compression ratio of \(e.uncompressedSize / max(1, e.compressedSize)):1 (\(e.compressedSize) → \(e.uncompressedSize) bytes); the limit is \(limits.maxRatio):1 (zip bomb?)")
            }
        }
        if total > limits.maxTotalBytes || total < 0 {
            recorder.fail(.zipLimits, "members declare \(total) bytes in total; the limit is \(limits.maxTotalBytes)")
        }
        recorder.pass(.zipPaths, "\(entries.count) member names are relative UTF-8 paths")
        recorder.pass(.zipDuplicates, "no duplicate member names")
        recorder.pass(.zipFileTypes, "regular files only")
        recorder.pass(.zipEncryption, "no encrypted members")
        recorder.pass(.zipLimits, "\(entries.count) members, \(total) bytes uncompressed: within the limits")
        return !recorder.failed(.zipLimits)
    }

    static func pathProblem(_ e: ZipEntry) -> String? {
        guard e.nameIsUTF8 else { return "name is not valid UTF-8" }
        let n = e.name
        if n.isEmpty { return "empty name" }
        if n.hasPrefix("/") { return "absolute path" }
        if n.contains("\\") { return "backslash in the name (a Windows path?)" }
        if n.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) { return "control character in the name" }
        if n.count >= 2, n.dropFirst().first == ":" { return "drive letter in the name" }
        var components = n.split(separator: "/", omittingEmptySubsequences: false)
        if e.isDirectory { components.removeLast() }
        if components.contains("..") { return "'..' component (path traversal)" }
        if components.contains(".") { return "'.' component" }
        if components.contains("") { return "empty path component" }
        return nil
    }

    static func looksLikeSharedObject(_ name: String) -> Bool {
        let base = name.split(separator: "/").last.map(String.init) ?? name
        return base.hasSuffix(".so") || base.contains(".so.") || base.hasSuffix(".pyd") || base.hasSuffix(".dylib")
    }

    // MARK: dist-info

    mutating func checkDistInfo(_ entries: [ZipEntry], _ filename: WheelFilename?) -> String? {
        var tops = Set<String>()
        var dataDirs = Set<String>()
        for e in entries {
            guard let first = e.name.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).first,
                  e.name.contains("/") else { continue }
            if first.hasSuffix(".dist-info") { tops.insert(String(first)) }
            if first.hasSuffix(".data") { dataDirs.insert(String(first)) }
        }
        let sorted = tops.sorted()
        guard !sorted.isEmpty else {
            recorder.fail(.distInfoLayout, "no '.dist-info' directory: expected '\(filename.map { "\($0.name)-\($0.version)" } ?? "{name}-{version}").dist-info'")
            return nil
        }
        guard let f = filename else {
            if sorted.count == 1 { recorder.skip(.distInfoLayout, "the filename does not parse"); return sorted[0] }
            recorder.fail(.distInfoLayout, "\(sorted.count) '.dist-info' directories (\(sorted.joined(separator: ", "))): expected exactly one")
            return nil
        }
        func matches(_ dir: String, suffix: String) -> Bool {
            let stem = String(dir.dropLast(suffix.count))
            guard let dash = stem.lastIndex(of: "-") else { return false }
            let name = String(stem[..<dash]), version = String(stem[stem.index(after: dash)...])
            guard Variant.normalize(name) == Variant.normalize(f.name),
                  let v = PEP440Version(version), let fv = PEP440Version(f.version) else { return false }
            return v == fv
        }
        let expected = "\(f.name)-\(f.version).dist-info"
        let matching = sorted.filter { matches($0, suffix: ".dist-info") }
        if sorted.count > 1 {
            recorder.fail(.distInfoLayout, "\(sorted.count) '.dist-info' directories (\(sorted.joined(separator: ", "))): expected exactly one, '\(expected)'")
            return matching.count == 1 ? matching[0] : nil
        }
        guard matching.count == 1 else {
            recorder.fail(.distInfoLayout, "'.dist-info' directory is '\(sorted[0])': expected '\(expected)' after the filename")
            return sorted[0]
        }
        if let badData = dataDirs.sorted().first(where: { !matches($0, suffix: ".data") }) {
            recorder.fail(.distInfoLayout, "'.data' directory is '\(badData)': expected '\(f.name)-\(f.version).data'")
        } else {
            recorder.pass(.distInfoLayout, "one '.dist-info' directory, '\(sorted[0])'")
        }
        return sorted[0]
    }

    /// Reads a metadata member; records a skip (zip problems are reported by the streaming pass).
    mutating func readSmall(_ entry: ZipEntry, _ archive: ZipArchive, _ reader: MemberReader, dependents: [WheelCheckID]) -> [UInt8]? {
        do {
            return try reader.readAll(archive, entry, limit: options.limits.maxMetadataBytes)
        } catch let WheelError.malformed(check, message) where check == "zip.limits" {
            recorder.fail(.zipLimits, message)
        } catch {
            // zip.crc / zip.local-headers: recorded when the member is streamed.
        }
        for id in dependents { recorder.skip(id, "'\(entry.name)' could not be read") }
        return nil
    }

    // MARK: METADATA

    mutating func checkMetadata(_ entry: ZipEntry?, _ archive: ZipArchive, _ reader: MemberReader, _ filename: WheelFilename?) {
        let dependents: [WheelCheckID] = [.metadataParse, .metadataVersion, .metadataRequiredFields, .metadataNameVersion, .metadataDescription]
        guard let entry else {
            recorder.fail(.metadataParse, "no METADATA file in the '.dist-info' directory")
            for id in dependents.dropFirst() { recorder.skip(id, "no METADATA") }
            return
        }
        guard let bytes = readSmall(entry, archive, reader, dependents: dependents) else { return }
        let metadata: CoreMetadata
        do {
            metadata = try CoreMetadata(bytes: bytes)
            self.metadata = metadata
            recorder.pass(.metadataParse, "\(metadata.fields.count) header fields, \(metadata.body.utf8.count) bytes of body")
        } catch {
            recorder.fail(.metadataParse, "'\(entry.name)' does not parse: \(error)")
            for id in dependents.dropFirst() { recorder.skip(id, "METADATA does not parse") }
            return
        }
        if let mv = metadata.value("Metadata-Version") {
            if Self.supportedMetadataVersions.contains(mv) {
                recorder.pass(.metadataVersion, "Metadata-Version \(mv)")
            } else {
                recorder.fail(.metadataVersion, "Metadata-Version is '\(mv)': expected one of \(Self.supportedMetadataVersions.sorted().joined(separator: ", "))")
            }
        } else {
            recorder.fail(.metadataVersion, "no Metadata-Version field")
        }
        let missing = ["Name", "Version"].filter { (metadata.value($0) ?? "").isEmpty }
        if missing.isEmpty {
            recorder.pass(.metadataRequiredFields, "Name and Version present")
        } else {
            recorder.fail(.metadataRequiredFields, "required field\(missing.count > 1 ? "s" : "") \(missing.map { "'\($0)'" }.joined(separator: ", ")) missing or empty")
        }
        if let f = filename, let name = metadata.value("Name"), let version = metadata.value("Version"), !name.isEmpty, !version.isEmpty {
            var problems: [String] = []
            if Variant.normalize(name) != Variant.normalize(f.name) { problems.append("Name is '\(name)' but the filename says '\(f.name)'") }
            if PEP440Version(version) == nil || PEP440Version(f.version) == nil || PEP440Version(version)! != PEP440Version(f.version)! {
                problems.append("Version is '\(version)' but the filename says '\(f.version)'")
            }
            if problems.isEmpty { recorder.pass(.metadataNameVersion, "Name '\(name)' and Version '\(version)' match the filename") } else { recorder.fail(.metadataNameVersion, problems.joined(separator: "; ")) }
        } else {
            recorder.skip(.metadataNameVersion, filename == nil ? "the filename does not parse" : "Name or Version missing")
        }
        checkDescription(metadata)
    }

    mutating func checkDescription(_ metadata: CoreMetadata) {
        let text = metadata.description.trimmingWhitespace()
        let contentType = metadata.value("Description-Content-Type")
        if let contentType {
            let parts = contentType.split(separator: ";").map { $0.trimmingWhitespace() }
            let type = parts.first?.lowercased() ?? ""
            let allowed = ["text/plain", "text/x-rst", "text/markdown"]
            guard allowed.contains(type) else {
                recorder.fail(.metadataDescription, "Description-Content-Type is '\(contentType)': expected one of \(allowed.joined(separator: ", "))")
                return
            }
            for param in parts.dropFirst() {
                let kv = param.split(separator: "=", maxSplits: 1).map { $0.trimmingWhitespace() }
                guard kv.count == 2 else { recorder.fail(.metadataDescription, "Description-Content-Type parameter '\(param)' is not key=value"); return }
                switch kv[0].lowercased() {
                case "charset" where kv[1].uppercased() != "UTF-8":
                    recorder.fail(.metadataDescription, "Description-Content-Type charset is '\(kv[1])': expected UTF-8"); return
                case "variant" where type != "text/markdown" || !["gfm", "commonmark"].contains(kv[1].lowercased()):
                    recorder.fail(.metadataDescription, "Description-Content-Type variant '\(kv[1])' is invalid: expected GFM or CommonMark with text/markdown"); return
                case "charset", "variant":
                    break
                default:
                    recorder.fail(.metadataDescription, "Description-Content-Type parameter '\(kv[0])' is unknown: expected charset or variant"); return
                }
            }
        }
        if text.isEmpty {
            let message = "the long description is empty: expected the project's README as the METADATA body"
            if expectation.requireDescription { recorder.fail(.metadataDescription, message) } else { recorder.warn(.metadataDescription, message) }
        } else if contentType == nil {
            recorder.warn(.metadataDescription, "no Description-Content-Type: PyPI will render the \(text.utf8.count)-byte description as reStructuredText")
        } else {
            recorder.pass(.metadataDescription, "\(text.utf8.count)-byte description as \(contentType!)")
        }
    }

    // MARK: WHEEL

    mutating func checkWheelFile(_ entry: ZipEntry?, _ archive: ZipArchive, _ reader: MemberReader, _ filename: WheelFilename?, hasELF: Bool) {
        let dependents: [WheelCheckID] = [.wheelParse, .wheelVersion, .wheelRootIsPurelib, .wheelTags]
        guard let entry else {
            recorder.fail(.wheelParse, "no WHEEL file in the '.dist-info' directory")
            for id in dependents.dropFirst() { recorder.skip(id, "no WHEEL") }
            return
        }
        guard let bytes = readSmall(entry, archive, reader, dependents: dependents) else { return }
        let wheel: CoreMetadata
        do {
            wheel = try CoreMetadata(bytes: bytes)
            recorder.pass(.wheelParse, "\(wheel.fields.count) fields")
        } catch {
            recorder.fail(.wheelParse, "'\(entry.name)' does not parse: \(error)")
            for id in dependents.dropFirst() { recorder.skip(id, "WHEEL does not parse") }
            return
        }
        if let v = wheel.value("Wheel-Version") {
            let parts = v.split(separator: ".")
            if parts.count == 2, parts[0] == "1", let minor = Int(parts[1]) {
                if minor == 0 { recorder.pass(.wheelVersion, "Wheel-Version \(v)") } else { recorder.warn(.wheelVersion, "Wheel-Version \(v) is newer than 1.0, the version wheelfarm knows") }
            } else {
                recorder.fail(.wheelVersion, "Wheel-Version is '\(v)': expected 1.x")
            }
        } else {
            recorder.fail(.wheelVersion, "no Wheel-Version field")
        }
        switch wheel.value("Root-Is-Purelib")?.lowercased() {
        case "true"?:
            if let f = filename, f.platformTags != ["any"] {
                recorder.fail(.wheelRootIsPurelib, "Root-Is-Purelib is true but the platform tag is '\(f.platformTags.joined(separator: "."))': expected false for a platform wheel")
            } else if hasELF {
                recorder.fail(.wheelRootIsPurelib, "Root-Is-Purelib is true but the wheel contains compiled extensions: expected false")
            } else {
                recorder.pass(.wheelRootIsPurelib, "Root-Is-Purelib true for a pure wheel")
            }
        case "false"?:
            recorder.pass(.wheelRootIsPurelib, "Root-Is-Purelib false")
        case let other:
            recorder.fail(.wheelRootIsPurelib, "Root-Is-Purelib is \(other.map { "'\($0)'" } ?? "missing"): expected true or false")
        }
        guard let f = filename else { recorder.skip(.wheelTags, "the filename does not parse"); return }
        let tags = Set(wheel.values("Tag"))
        if tags != f.expandedTags {
            recorder.fail(.wheelTags, "Tag lines are \(tags.sorted().map { "'\($0)'" }.joined(separator: ", ")) but the filename says \(f.expandedTags.sorted().map { "'\($0)'" }.joined(separator: ", "))")
        } else if wheel.value("Build") != f.build {
            recorder.fail(.wheelTags, "Build is \(wheel.value("Build").map { "'\($0)'" } ?? "absent") but the filename's build tag is \(f.build.map { "'\($0)'" } ?? "absent")")
        } else {
            recorder.pass(.wheelTags, "Tag lines equal the filename's tags (\(tags.count))")
        }
    }

    // MARK: RECORD

    mutating func checkRecord(_ entry: ZipEntry?, _ archive: ZipArchive, _ reader: MemberReader, files: [ZipEntry], distInfo: String) -> ([String: RecordFile.Row], Bool) {
        let dependents: [WheelCheckID] = [.recordParse, .recordCoverage, .recordHashes, .recordSelf]
        guard let entry else {
            recorder.fail(.recordParse, "no RECORD file in '\(distInfo)'")
            for id in dependents.dropFirst() { recorder.skip(id, "no RECORD") }
            return ([:], false)
        }
        guard let bytes = readSmall(entry, archive, reader, dependents: dependents) else { return ([:], false) }
        let record: RecordFile
        do {
            record = try RecordFile(bytes: bytes)
        } catch {
            recorder.fail(.recordParse, "'\(entry.name)' does not parse: \(error)")
            for id in dependents.dropFirst() { recorder.skip(id, "RECORD does not parse") }
            return ([:], false)
        }
        // Field syntax.
        for row in record.rows {
            if row.path.isEmpty { recorder.fail(.recordParse, "line \(row.line): empty path") }
            if !row.hash.isEmpty {
                let parts = row.hash.split(separator: "=", maxSplits: 1)
                if parts.count != 2 || parts[0].isEmpty || parts[1].isEmpty || !parts[1].allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) {
                    recorder.fail(.recordParse, "line \(row.line): hash '\(row.hash)' is not algorithm=urlsafe-base64")
                }
            }
            if !row.size.isEmpty, Int64(row.size) == nil || Int64(row.size)! < 0 {
                recorder.fail(.recordParse, "line \(row.line): size '\(row.size)' is not a whole number")
            }
        }
        if recorder.failed(.recordParse) {
            for id in dependents.dropFirst() { recorder.skip(id, "RECORD has invalid rows") }
            return ([:], false)
        }
        recorder.pass(.recordParse, "\(record.rows.count) rows")
        let selfPath = "\(distInfo)/RECORD"
        let unhashed: Set<String> = [selfPath, "\(distInfo)/RECORD.jws", "\(distInfo)/RECORD.p7s"]
        var rows: [String: RecordFile.Row] = [:]
        for row in record.rows {
            if let previous = rows[row.path] {
                recorder.fail(.recordCoverage, "'\(row.path)' is listed twice (lines \(previous.line) and \(row.line))")
            }
            rows[row.path] = row
        }
        if let own = rows[selfPath] {
            if own.hash.isEmpty && own.size.isEmpty { recorder.pass(.recordSelf, "RECORD lists itself without hash and size") } else { recorder.fail(.recordSelf, "RECORD's own row (line \(own.line)) has hash '\(own.hash)' and size '\(own.size)': expected both empty") }
        } else {
            recorder.fail(.recordSelf, "RECORD does not list itself: expected a row '\(selfPath),,'")
        }
        let present = Set(files.map(\.name))
        for f in files where rows[f.name] == nil && !unhashed.contains(f.name) {
            recorder.fail(.recordCoverage, "member '\(f.name)' is not listed in RECORD")
        }
        for row in record.rows where !present.contains(row.path) {
            recorder.fail(.recordCoverage, "RECORD lists '\(row.path)' (line \(row.line)), which is not in the archive")
        }
        recorder.pass(.recordCoverage, "all \(files.count) files listed, every listed file present")
        for row in record.rows where !unhashed.contains(row.path) {
            let algorithm = row.hash.split(separator: "=", maxSplits: 1).first.map(String.init) ?? ""
            if row.hash.isEmpty {
                recorder.fail(.recordHashes, "'\(row.path)' has no hash in RECORD (line \(row.line)): expected sha256=…")
            } else if !RecordFile.acceptedAlgorithms.contains(algorithm) {
                recorder.fail(.recordHashes, "'\(row.path)' is hashed with '\(algorithm)' (line \(row.line)): expected sha256 or stronger")
            } else if row.size.isEmpty {
                recorder.fail(.recordHashes, "'\(row.path)' has no size in RECORD (line \(row.line))")
            }
        }
        return (rows, true)
    }

    // MARK: Required files

    mutating func checkRequiredFiles(_ files: [ZipEntry]) {
        guard !expectation.requiredFiles.isEmpty else {
            recorder.skip(.contentRequiredFiles, "no required files given")
            return
        }
        var missing: [String] = []
        var found: [String] = []
        for pattern in expectation.requiredFiles {
            if let hit = files.first(where: { fnmatch(pattern, $0.name, FNM_PATHNAME) == 0 }) { found.append(hit.name) } else { missing.append(pattern) }
        }
        if missing.isEmpty {
            recorder.pass(.contentRequiredFiles, "found \(found.map { "'\($0)'" }.joined(separator: ", "))")
        } else {
            recorder.fail(.contentRequiredFiles, "no member matches \(missing.map { "'\($0)'" }.joined(separator: ", ")): the build did not produce the package's module or compiled extension")
        }
    }
}

extension Character {
    var isLetterOrNumberASCII: Bool { isASCII && (isLetter || isNumber) }
}
