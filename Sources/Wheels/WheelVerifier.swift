#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import FarmCore
import Foundation
import Recipes

/// Verifies wheels: zip integrity, PEP 427 layout, metadata, RECORD hashes, required files, ELF
/// machines and the instruction-set audit. See ``WheelCheckID`` for every check.
///
/// Verification streams: each member is inflated once in 256 KiB chunks, with its CRC-32 and
/// RECORD hash computed as the bytes pass. Only METADATA, WHEEL and RECORD are held in memory
/// (each bounded by ``ZipLimits/maxMetadataBytes``). ELF objects are streamed into a private
/// temporary directory (mode 0700, files 0600) while they are hashed, audited there, and
/// deleted straight after; nothing else touches the disk.
public struct WheelVerifier: Sendable {
    /// Verification settings.
    public struct Options: Sendable, Hashable {
        /// Hostile-input bounds.
        public var limits: ZipLimits
        /// Wheels verified at once by ``WheelVerifier/verifyAll(_:concurrency:)`` (default min(8, cores)).
        public var concurrency: Int
        /// Where the private temporary directory for ELF objects is made (default: `TMPDIR` or `/tmp`).
        public var temporaryDirectory: String?
        /// Whether ELF objects are checked and audited at all.
        public var inspectELF: Bool
        /// Whether the platform audit runs (dependencies, symbol versions, libraries against the
        /// platform tag's policy); off only to measure what it costs.
        public var platformAudit: Bool

        /// Default options.
        public init(limits: ZipLimits = ZipLimits(), concurrency: Int? = nil, temporaryDirectory: String? = nil, inspectELF: Bool = true,
                    platformAudit: Bool = true) {
            self.limits = limits
            self.concurrency = max(1, concurrency ?? min(8, ProcessInfo.processInfo.activeProcessorCount))
            self.temporaryDirectory = temporaryDirectory
            self.inspectELF = inspectELF
            self.platformAudit = platformAudit
        }
    }

    /// The settings in force.
    public var options: Options

    /// Creates a verifier.
    public init(options: Options = Options()) { self.options = options }

    /// Verifies one wheel against an expectation; never throws: every problem is a check in the report.
    public func verify(path: String, expectation: WheelExpectation = WheelExpectation()) async -> WheelReport {
        let options = self.options
        return await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                var verification = WheelVerification(path: path, expectation: expectation, options: options)
                continuation.resume(returning: verification.run())
            }
        }
    }

    /// Verifies one wheel on the calling thread (blocking).
    public func verifySynchronously(path: String, expectation: WheelExpectation = WheelExpectation()) -> WheelReport {
        var verification = WheelVerification(path: path, expectation: expectation, options: options)
        return verification.run()
    }

    /// Verifies many wheels, at most `concurrency` at once (default ``Options/concurrency``);
    /// reports come back in the order of `wheels`.
    public func verifyAll(_ wheels: [(path: String, expectation: WheelExpectation)], concurrency: Int? = nil) async -> [WheelReport] {
        let limit = max(1, concurrency ?? options.concurrency)
        var reports = [WheelReport?](repeating: nil, count: wheels.count)
        await withTaskGroup(of: (Int, WheelReport).self) { group in
            var next = 0
            func start() {
                let i = next
                next += 1
                group.addTask { (i, await self.verify(path: wheels[i].path, expectation: wheels[i].expectation)) }
            }
            while next < min(limit, wheels.count) { start() }
            while let (i, report) = await group.next() {
                reports[i] = report
                if next < wheels.count { start() }
            }
        }
        return reports.map { $0! }
    }

    /// Verifies many wheels with the same expectation.
    public func verifyAll(paths: [String], expectation: WheelExpectation = WheelExpectation(), concurrency: Int? = nil) async -> [WheelReport] {
        await verifyAll(paths.map { ($0, expectation) }, concurrency: concurrency)
    }

    /// Checks and audits a bare ELF object (not a wheel): only `elf.machine` and the ISA checks
    /// apply; the arch comes from the expectation (or the object itself).
    public func verifyObject(path: String, expectation: WheelExpectation = WheelExpectation(), countMnemonics: Bool = false) -> WheelReport {
        var recorder = CheckRecorder()
        var objects: [SharedObjectReport] = []
        var total: ISACounts?
        var platform: PlatformReport?
        do {
            let file = try ReadOnlyFile(path: path)
            let elf = try ELFFile(file: file, name: path)
            let arch = expectation.arch ?? elf.arch
            var report = SharedObjectReport(path: path, machine: elf.machineName, isa: nil)
            if let arch, elf.arch != arch {
                recorder.fail(.elfMachine, "'\(path)' is \(elf.machineName); expected \(arch.kernelName)")
            } else {
                recorder.pass(.elfMachine, "'\(path)' is \(elf.machineName)")
            }
            if options.platformAudit {
                do {
                    let dependencies = try elf.dependencies(file: file, name: path)
                    report.dependencies = dependencies
                    report.highestVersions = dependencies.highestByNamespace
                    recorder.pass(.elfDynamic, "dynamic section, version tables and string tables well-formed")
                    // What the object allows on its own (no tag to check: only the report).
                    let machine = elf.arch?.kernelName ?? elf.machineName
                    var scratch = CheckRecorder()
                    platform = PlatformAudit(objects: [.init(member: path, dependencies: dependencies)], members: [], platformTags: ["linux_\(machine)"],
                                             machine: machine, expectation: WheelExpectation(providedLibraries: expectation.providedLibraries),
                                             requiredDistributions: nil).run(&scratch)
                } catch let WheelError.malformed(_, message) {
                    recorder.fail(.elfDynamic, message)
                }
            }
            if elf.machine == 62 {
                let audit = try ISAAuditor(countMnemonics: countMnemonics).audit(file: file, elf: elf)
                report.isa = audit.counts
                report.mnemonics = audit.mnemonics
                total = audit.counts
            } else if elf.machine == 183 {
                report.isa = try AArch64Auditor().audit(file: file, elf: elf)
                total = report.isa
            }
            objects.append(report)
        } catch {
            recorder.fail(.elfMachine, "\(error)")
        }
        WheelVerification.isaChecks(&recorder, expectation: expectation, wheelArch: expectation.arch ?? objects.first.flatMap { $0.machine == "aarch64" ? .arm64 : nil } ?? .amd64,
                                    total: total, objects: objects.map { var o = $0; o.path = (o.path as NSString).lastPathComponent; return o })
        var result = WheelReport(path: path, filename: nil, checks: recorder.results(skippingOthers: "not a wheel: only the ELF and ISA checks apply"),
                                 sharedObjects: objects, isa: total, members: 0, uncompressedBytes: 0)
        result.platform = platform
        return result
    }
}

/// Collects check results; the first failure of a check keeps its message, later ones are counted.
struct CheckRecorder {
    private var results: [WheelCheckID: CheckResult] = [:]
    private var extra: [WheelCheckID: Int] = [:]

    mutating func set(_ id: WheelCheckID, _ outcome: CheckOutcome, _ message: String) {
        if let existing = results[id] {
            let rank: [CheckOutcome: Int] = [.skip: 0, .pass: 1, .warn: 2, .fail: 3]
            if rank[outcome]! > rank[existing.outcome]! {
                results[id] = CheckResult(id: id, outcome: outcome, message: message)
                extra[id] = 0
            } else if outcome == existing.outcome, outcome == .fail || outcome == .warn {
                extra[id, default: 0] += 1
            }
        } else {
            results[id] = CheckResult(id: id, outcome: outcome, message: message)
        }
    }
    mutating func pass(_ id: WheelCheckID, _ message: String) { set(id, .pass, message) }
    mutating func fail(_ id: WheelCheckID, _ message: String) { set(id, .fail, message) }
    mutating func warn(_ id: WheelCheckID, _ message: String) { set(id, .warn, message) }
    mutating func skip(_ id: WheelCheckID, _ message: String) { set(id, .skip, message) }
    func outcome(_ id: WheelCheckID) -> CheckOutcome? { results[id]?.outcome }
    func failed(_ id: WheelCheckID) -> Bool { results[id]?.outcome == .fail }

    func results(skippingOthers reason: String) -> [CheckResult] {
        WheelCheckID.allCases.map { id in
            guard var r = results[id] else { return CheckResult(id: id, outcome: .skip, message: reason) }
            if let n = extra[id], n > 0 { r.message += " (and \(n) more)" }
            return r
        }
    }
}
