#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import FarmCore
import Recipes

/// The `isa.expected` and `isa.excluded` checks: the variant's expectation held against the
/// audited objects' counts.
///
/// Objects matching a per-object entry (``Variant/ObjectExpectation``, first match wins) are held
/// to it one by one; the wheel-level lists apply to the sum over the other objects (all of them
/// when there are no entries). A `requested` extension the code lacks is a warning ("requested
/// from the compiler but not emitted"), which a release publishes visibly; under `mode: warn`
/// every failure is a warning.
enum ISAExpectationChecks {
    static func run(_ recorder: inout CheckRecorder, expectation: WheelExpectation, wheelArch: Arch?,
                    objects: [SharedObjectReport], total: ISACounts?) {
        guard let isa = expectation.isa else {
            for id in [WheelCheckID.isaExpected, .isaExcluded] { recorder.skip(id, "no ISA expectation given") }
            return
        }
        guard isa.mode != .off else {
            for id in [WheelCheckID.isaExpected, .isaExcluded] { recorder.skip(id, "ISA audit is off for this variant") }
            return
        }
        let arch = wheelArch ?? .amd64
        guard arch == .amd64 || arch == .arm64 else {
            for id in [WheelCheckID.isaExpected, .isaExcluded] { recorder.skip(id, "no ISA audit for \(arch.kernelName)") }
            return
        }
        var findings: [(WheelCheckID, CheckOutcome, String)] = []
        let failOutcome: CheckOutcome = isa.mode == .required ? .fail : .warn
        func fail(_ id: WheelCheckID, _ message: String) { findings.append((id, failOutcome, message)) }
        let audited = objects.filter { $0.isa != nil }
        var unmatched: [SharedObjectReport] = []
        var matched: [(SharedObjectReport, Variant.ObjectExpectation)] = []
        for object in audited {
            if let entry = isa.objects.first(where: { fnmatch($0.glob, object.path, FNM_PATHNAME) == 0 }) { matched.append((object, entry)) }
            else { unmatched.append(object) }
        }
        var passes: [String] = [], excludedPasses: [String] = []
        for entry in isa.objects where entry.required && !matched.contains(where: { $0.1 == entry }) {
            fail(.isaExpected, "no audited object matches '\(entry.glob)': the wheel lacks the object the variant's expectation names")
        }
        for (object, entry) in matched {
            let counts = object.isa ?? ISACounts()
            check(counts, expect: entry.expect, exclude: entry.exclude, requested: entry.requested, scope: "'\(object.path)'",
                  findings: &findings, failOutcome: failOutcome, passes: &passes, excludedPasses: &excludedPasses)
        }
        let wheelLevel = !isa.expect.isEmpty || !isa.exclude.isEmpty || !isa.requested.isEmpty
        if wheelLevel {
            var sum: ISACounts?
            for o in (isa.objects.isEmpty ? audited : unmatched) { if sum == nil { sum = ISACounts() }; sum!.add(o.isa!) }
            if isa.objects.isEmpty, sum == nil { sum = total }
            let scope = isa.objects.isEmpty ? "the wheel" : "the objects no entry names"
            if sum == nil, !isa.expect.isEmpty {
                fail(.isaExpected, "no \(arch.kernelName) code found: expected \(isa.expect.sorted().map(\.name).joined(separator: ", "))")
            } else if let sum {
                check(sum, expect: isa.expect, exclude: isa.exclude, requested: isa.requested, scope: scope,
                      findings: &findings, failOutcome: failOutcome, passes: &passes, excludedPasses: &excludedPasses)
            }
        }
        for (id, outcome, message) in findings { recorder.set(id, outcome, message) }
        recorder.pass(.isaExpected, passes.isEmpty ? "no extensions promised" : passes.joined(separator: "; "))
        recorder.pass(.isaExcluded, excludedPasses.isEmpty ? "no extensions excluded" : excludedPasses.joined(separator: "; "))
    }

    static func check(_ counts: ISACounts, expect: Set<Capability>, exclude: Set<Capability>, requested: Set<Capability>, scope: String,
                      findings: inout [(WheelCheckID, CheckOutcome, String)], failOutcome: CheckOutcome,
                      passes: inout [String], excludedPasses: inout [String]) {
        func fail(_ id: WheelCheckID, _ message: String) { findings.append((id, failOutcome, message)) }
        let missing = expect.sorted().filter { counts.count($0) == 0 }
        if !missing.isEmpty {
            fail(.isaExpected, "\(scope): no \(missing.map(\.name).joined(separator: ", ")) instructions in \(counts.instructions) decoded: the variant promises them (\(counts.summary))")
        } else if !expect.isEmpty {
            passes.append("\(scope): " + expect.sorted().map { "\($0.name)=\(counts.count($0))" }.joined(separator: " "))
        }
        let notEmitted = requested.sorted().filter { counts.count($0) == 0 }
        if !notEmitted.isEmpty {
            findings.append((.isaExpected, .warn, "\(scope): \(notEmitted.map(\.name).joined(separator: ", ")) requested from the compiler but not emitted (0 instructions in \(counts.instructions)): the wheel is published without them"))
        }
        let present = exclude.sorted().filter { counts.count($0) > 0 }
        if present.isEmpty {
            if !exclude.isEmpty { excludedPasses.append("\(scope): none of \(exclude.sorted().map(\.name).joined(separator: ", ")) in \(counts.instructions) instructions") }
        } else {
            fail(.isaExcluded, "\(scope): found excluded \(present.map { "\($0.name) (\(counts.count($0)) instructions)" }.joined(separator: ", ")): this code would crash CPUs without them")
        }
    }
}
