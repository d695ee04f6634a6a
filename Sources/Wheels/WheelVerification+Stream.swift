#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import FarmCore
import Foundation
import Synchronization
import Recipes

extension WheelVerification {
    /// Inflates every member once (in local-header order, so the file is read front to back),
    /// checking local headers, CRC-32, sizes and RECORD hashes; ELF objects are copied to a
    /// private temporary file while they stream, then checked and audited.
    mutating func streamMembers(_ archive: ZipArchive, _ reader: MemberReader, record: [String: RecordFile.Row]?, wheelArch: Arch?) -> ISACounts? {
        let ordered = archive.entries.sorted { $0.localHeaderOffset < $1.localHeaderOffset }
        var previousEnd: Int64 = 0
        var previousName = ""
        var scratch: ScratchDirectory?
        defer { scratch?.remove() }
        var total: ISACounts?
        var hashed = 0
        let group = DispatchGroup()
        let audits = DispatchSemaphore(value: 2)  // at most two objects on disk and in audit at once
        let results = InspectionResults()
        for entry in ordered {
            if entry.isEncrypted { continue }
            let data: ZipMemberData
            do {
                data = try archive.memberData(entry)
            } catch let WheelError.malformed(_, message) {
                recorder.fail(.zipLocalHeaders, message)
                continue
            } catch {
                recorder.fail(.zipLocalHeaders, "'\(entry.name)': \(error)")
                continue
            }
            if entry.localHeaderOffset < previousEnd {
                recorder.fail(.zipLocalHeaders, "'\(entry.name)' at offset \(entry.localHeaderOffset) overlaps '\(previousName)', which ends at \(previousEnd)")
                continue
            }
            previousEnd = data.end
            previousName = entry.name

            let row = record?[entry.name]
            let algorithm = row.flatMap { $0.hash.split(separator: "=", maxSplits: 1).first.map(String.init) } ?? "sha256"
            var hasher = RecordHasher(algorithm: algorithm) ?? RecordHasher(algorithm: "sha256")!
            var elfSink: ScratchFile?
            var first = true
            var sinkError: Error?
            do {
                try reader.stream(archive, entry, data: data) { chunk in
                    hasher.update(chunk)
                    if first {
                        first = false
                        if options.inspectELF, !entry.isDirectory, ELFFile.hasMagic(chunk) {
                            do {
                                if scratch == nil { scratch = try ScratchDirectory(parent: options.temporaryDirectory) }
                                elfSink = try scratch!.newFile()
                            } catch { sinkError = error }
                        }
                    }
                    if let sink = elfSink { try sink.write(chunk) }
                }
            } catch let WheelError.malformed(_, message) {
                recorder.fail(.zipCRC, message)
                elfSink?.remove()
                continue
            } catch {
                recorder.fail(.zipCRC, "'\(entry.name)': \(error)")
                elfSink?.remove()
                continue
            }
            if let row, !row.hash.isEmpty, RecordFile.acceptedAlgorithms.contains(algorithm), !Self.isUnhashedRecordFile(entry.name) {
                hashed += 1
                let actual = hasher.finalize()
                if actual != row.hash {
                    recorder.fail(.recordHashes, "'\(entry.name)' hashes to \(actual) but RECORD says \(row.hash)")
                } else if let size = Int64(row.size), size != entry.uncompressedSize {
                    recorder.fail(.recordHashes, "'\(entry.name)' has \(entry.uncompressedSize) bytes but RECORD says \(size)")
                }
            }
            if let sinkError {
                recorder.fail(.elfMachine, "'\(entry.name)' could not be copied for inspection: \(sinkError)")
            }
            if let sink = elfSink {
                // Audit on another thread while the next members stream (the audit of a large
                // extension takes as long as inflating the rest of the wheel).
                let objectPath = sink.detach()
                let name = entry.name, expectation = self.expectation, platformAudit = options.platformAudit
                audits.wait()
                group.enter()
                DispatchQueue.global().async {
                    defer { unlink(objectPath); audits.signal(); group.leave() }
                    results.append(Self.inspectELF(name: name, path: objectPath, wheelArch: wheelArch, expectation: expectation,
                                                   platformAudit: platformAudit))
                }
            }
        }
        group.wait()
        for result in results.all.sorted(by: { $0.name < $1.name }) {
            for failure in result.failures { recorder.fail(.elfMachine, failure) }
            for failure in result.dynamicFailures { recorder.fail(.elfDynamic, failure) }
            if let report = result.report {
                objects.append(report)
                if let counts = report.isa {
                    if total == nil { total = ISACounts() }
                    total!.add(counts)
                }
            }
        }
        recorder.pass(.zipLocalHeaders, "\(ordered.count) local headers agree with the central directory; no overlaps")
        recorder.pass(.zipCRC, "\(ordered.count) members inflated, sizes and CRC-32 equal")
        if record != nil { recorder.pass(.recordHashes, "\(hashed) hashes and sizes recomputed and equal") }
        if !options.platformAudit {
            recorder.skip(.elfDynamic, "the platform audit is off")
        } else {
            let read = objects.filter { $0.dependencies != nil }.count
            recorder.pass(.elfDynamic, objects.isEmpty ? "no ELF objects" : "\(read) ELF object\(read == 1 ? "" : "s"): dynamic sections, version tables and string tables well-formed")
        }
        if objects.isEmpty {
            recorder.pass(.elfMachine, "no ELF objects")
        } else if let wheelArch {
            recorder.pass(.elfMachine, "\(objects.count) ELF object\(objects.count == 1 ? "" : "s"), all \(wheelArch.kernelName)")
        } else {
            recorder.skip(.elfMachine, "\(objects.count) ELF objects but the platform tag names no arch")
        }
        return total
    }

    /// RECORD and its signatures, which RECORD lists without hashes.
    static func isUnhashedRecordFile(_ name: String) -> Bool {
        let parts = name.split(separator: "/")
        return parts.count == 2 && parts[0].hasSuffix(".dist-info") && ["RECORD", "RECORD.jws", "RECORD.p7s"].contains(parts[1])
    }

    /// What inspecting one ELF object found.
    struct Inspection: Sendable {
        var name: String
        var report: SharedObjectReport?
        /// `elf.machine` failures (unreadable header or section table, wrong machine).
        var failures: [String]
        /// `elf.dynamic` failures (unreadable dependency tables).
        var dynamicFailures: [String] = []
    }

    /// Reads one ELF object once: header and section table, then (on the same descriptor) its
    /// dependency tables for the platform audit and its code for the ISA audit.
    static func inspectELF(name: String, path: String, wheelArch: Arch?, expectation: WheelExpectation, platformAudit: Bool = true) -> Inspection {
        do {
            let file = try ReadOnlyFile(path: path)
            let elf = try ELFFile(file: file, name: name)
            var report = SharedObjectReport(path: name, machine: elf.machineName, isa: nil)
            var failures: [String] = []
            var dynamicFailures: [String] = []
            if let wheelArch, elf.arch != wheelArch {
                failures.append("'\(name)' is \(elf.machineName) but the wheel is for \(wheelArch.kernelName)")
            }
            if platformAudit {
                do {
                    let dependencies = try elf.dependencies(file: file, name: name)
                    report.dependencies = dependencies
                    report.highestVersions = dependencies.highestByNamespace
                } catch let WheelError.malformed(_, message) {
                    dynamicFailures.append(message)
                }
            }
            if elf.machine == 62, expectation.isa?.mode != .off {
                report.isa = try ISAAuditor().audit(file: file, elf: elf).counts
            } else if elf.machine == 183, expectation.isa?.mode != .off {
                report.isa = try AArch64Auditor().audit(file: file, elf: elf)
            }
            return Inspection(name: name, report: report, failures: failures, dynamicFailures: dynamicFailures)
        } catch let WheelError.malformed(_, message) {
            return Inspection(name: name, report: nil, failures: [message])
        } catch {
            return Inspection(name: name, report: nil, failures: ["'\(name)': \(error)"])
        }
    }

    /// The `isa.expected` and `isa.excluded` checks (``ISAExpectationChecks``).
    static func isaChecks(_ recorder: inout CheckRecorder, expectation: WheelExpectation, wheelArch: Arch?, total: ISACounts?,
                          objects: [SharedObjectReport]) {
        ISAExpectationChecks.run(&recorder, expectation: expectation, wheelArch: wheelArch, objects: objects, total: total)
    }
}

/// A private temporary directory (mode 0700) for ELF objects under inspection.
final class ScratchDirectory {
    let path: String
    private var counter = 0

    init(parent: String?) throws(WheelError) {
        let base = parent ?? ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        var template = Array((base + "/wheelfarm-verify-XXXXXX").utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw WheelError.io(path: base, operation: "create a temporary directory in", errno: errno)
        }
        path = String(cString: made)
    }

    func newFile() throws(WheelError) -> ScratchFile {
        counter += 1
        return try ScratchFile(path: "\(path)/object-\(counter)")
    }

    func remove() { rmdir(path) }
}

/// A file in a ``ScratchDirectory``, created exclusively with mode 0600.
final class ScratchFile {
    let path: String
    private var descriptor: Int32

    init(path: String) throws(WheelError) {
        descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw WheelError.io(path: path, operation: "create", errno: errno) }
        self.path = path
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        try writeAll(descriptor, bytes, path: path)
    }

    private var owned = true

    func remove() {
        if descriptor >= 0 { close(descriptor); descriptor = -1 }
        if owned { unlink(path); owned = false }
    }

    /// Closes the file and hands its removal to the caller; returns its path.
    func detach() -> String {
        if descriptor >= 0 { close(descriptor); descriptor = -1 }
        owned = false
        return path
    }

    deinit { remove() }
}

/// Inspection results gathered from audit threads, behind a `Mutex`.
final class InspectionResults: Sendable {
    private let items = Mutex<[WheelVerification.Inspection]>([])
    func append(_ item: WheelVerification.Inspection) { items.withLock { $0.append(item) } }
    var all: [WheelVerification.Inspection] { items.withLock { $0 } }
}
