import FarmCore
import Foundation
import struct Inventory.Host
import Recipes
import Remote
import Scheduling
import Wheels

/// Runs a recipe's `test:` on one built wheel, on a host, in a fresh venv.
///
/// The wheel is uploaded into `<work_dir>/tests/<id>/`, installed without its dependencies into a
/// new venv (the test's `requires` are installed next to it), and the command runs with the
/// venv's `bin/` first on PATH. A host whose environment sets `WHEELFARM_TEST_LAUNCHER` (e.g.
/// `qemu-x86_64-static -cpu Haswell`, a CPU without AVX-512) runs the venv's Python through it,
/// so a "weak host" can be an emulated CPU. A test killed by SIGILL (exit 132 or signal ILL) is
/// reported as an illegal instruction, with the ISA audit's findings of the excluded extensions
/// the wheel contains.
public struct WheelTestRunner: Sendable {
    /// What a test run found.
    public struct Outcome: Sendable, Hashable {
        public var passed: Bool
        public var host: String
        public var message: String
        /// The command's output, last lines.
        public var outputTail: String
    }

    public let test: RecipeTest
    public init(test: RecipeTest) { self.test = test }

    /// Tests `wheel` (a local file) of `job` on `host`; `report` is the wheel's verification report.
    public func run(wheel: URL, job: BuildJob, report: WheelReport?, on transport: any Transport, host: Host) async throws -> Outcome {
        let id = BuildRequestID.safe("test-\(job.variant.normalizedPackage)-\(job.publishedVersion)-\(job.python.cpythonTag)-\(job.arch.rawValue)-\(UUID().uuidString.prefix(6))")
        let dir = "\(host.workDir)/tests/\(id)"
        let mk = try await transport.run(ExecRequest("mkdir -p \(shellQuote(dir))"))
        guard mk.status.isSuccess else {
            return Outcome(passed: false, host: host.name, message: "cannot create '\(dir)' on \(host.name): \(mk.stderrText)", outputTail: "")
        }
        let remoteWheel = "\(dir)/\(wheel.lastPathComponent)"
        try await transport.upload(.file(wheel.path), to: remoteWheel, mode: 0o644)
        let values = ["version": job.publishedVersion, "package": job.variant.package, "python": job.python.description,
                      "arch": job.arch.kernelName, "max_jobs": "1", "project": job.recipe]
        let command = RecipeTemplate.expand(test.command, values)
        let requires = test.requires.map { shellQuote($0) }.joined(separator: " ")
        let script = """
            set -u
            cd \(shellQuote(dir)) || exit 3
            PY=$(command -v python\(job.python) || command -v python3) || { echo "no Python \(job.python) on this host" >&2; exit 3; }
            if [ -n "${WHEELFARM_TEST_LAUNCHER:-}" ]; then COPIES=--copies; else COPIES=; fi
            "$PY" -m venv $COPIES venv >&2 || exit 3
            venv/bin/python -m pip install -q --disable-pip-version-check --no-deps \(shellQuote(remoteWheel)) >&2 || exit 3
            \(requires.isEmpty ? ":" : "venv/bin/python -m pip install -q --disable-pip-version-check \(requires) >&2 || exit 3")
            mkdir -p launch
            if [ -n "${WHEELFARM_TEST_LAUNCHER:-}" ]; then
              printf '#!/bin/sh\\nexec %s %s "$@"\\n' "$WHEELFARM_TEST_LAUNCHER" "$PWD/venv/bin/python" > launch/python
              chmod +x launch/python; cp launch/python launch/python3
              echo "==> the test's Python runs through: $WHEELFARM_TEST_LAUNCHER" >&2
            fi
            cd /tmp && PATH="\(dir)/launch:\(dir)/venv/bin:$PATH" VIRTUAL_ENV="\(dir)/venv" sh -c \(shellQuote(command))
            rc=$?
            rm -rf \(shellQuote(dir))
            exit $rc
            """
        let result = try await transport.run(ExecRequest(script))
        let tail = (result.stdoutText + result.stderrText).split(separator: "\n").suffix(20).joined(separator: "\n")
        switch result.status {
        case .exited(0):
            return Outcome(passed: true, host: host.name, message: "test passed on \(host.name)", outputTail: tail)
        case .exited(132), .signaled("ILL"):
            return Outcome(passed: false, host: host.name, message: Self.illegalInstruction(host: host, job: job, report: report), outputTail: tail)
        case .exited(3):
            return Outcome(passed: false, host: host.name, message: "the test could not be set up on \(host.name) (venv or install failed)", outputTail: tail)
        case let status:
            return Outcome(passed: false, host: host.name, message: "test failed on \(host.name) with \(status)", outputTail: tail)
        }
    }

    /// "illegal instruction on HOST (lacks avx512f): the wheel uses it", with the audit's counts.
    static func illegalInstruction(host: Host, job: BuildJob, report: WheelReport?) -> String {
        let isa = job.variant.isa[job.arch]
        let candidates = (isa?.exclude ?? []).union(isa?.expect ?? []).union(isa?.requested ?? [])
        let lacks = candidates.subtracting(host.capabilities).sorted()
        let counts = report?.isa
        let used = lacks.filter { (counts?.count($0) ?? 0) > 0 }
        let lacking = (used.isEmpty ? lacks : used).map(\.name).joined(separator: ", ")
        var m = "illegal instruction on \(host.name)\(lacking.isEmpty ? "" : " (lacks \(lacking))"): the wheel uses it"
        if let counts, !used.isEmpty {
            m += "; the ISA audit found " + used.map { "\($0.name) × \(counts.count($0))" }.joined(separator: ", ")
            let objects = (report?.sharedObjects ?? []).filter { o in used.contains { (o.isa?.count($0) ?? 0) > 0 } }.map(\.path)
            if !objects.isEmpty { m += " in \(objects.joined(separator: ", "))" }
        }
        return m
    }
}

/// Quotes a word for a POSIX shell.
private func shellQuote(_ word: String) -> String {
    if !word.isEmpty, word.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_./=:,+@%".contains($0)) }) { return word }
    return "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
}

/// Host-safe identifiers.
enum BuildRequestID {
    static func safe(_ raw: String) -> String {
        String(raw.map { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) ? $0 : "_" })
    }
}
