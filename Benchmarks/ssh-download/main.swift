// Downloads a large file from a loopback sshd with wheelfarm's SSH transport and with OpenSSH
// `scp`, in the same run, and prints the throughput ratio and wheelfarm's peak memory; then the
// same through a bastion (ProxyJump in an ssh_config both read: libssh2 direct-tcpip tunnel vs
// `scp` with `ssh -W`), as paired runs (A B A B …) and their median ratio.
//
// Usage: ssh-download-bench [MEGABYTES] [RUNS]   (defaults: 256 MB, 3 runs; best run counts)
import FarmCore
import FarmTestSupport
import Foundation
import Inventory
import Logging
import Remote

let arguments = CommandLine.arguments.dropFirst()
let megabytes = arguments.first.flatMap(Int.init) ?? 256
let runs = arguments.dropFirst().first.flatMap(Int.init) ?? 3

/// Peak resident set size of this process in MiB (VmHWM), and a reset of that peak.
func peakRSS() -> Double {
    let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
    let line = status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") } ?? ""
    return (Double(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) / 1024
}
func resetPeakRSS() { try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8) }

func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }

let farm = try SSHTestFarm.start(hosts: [SimulatedHost(name: "bench"), SimulatedHost(name: "bastion")])
defer { farm.stop() }
let host = farm.inventoryHost("bench")
let settings = farm.sshSettings()
let logger = Logger(label: "bench")
let options = SSHClientOptions(environment: ProcessInfo.processInfo.environment, agentSocket: .some(nil))

let remoteDir = farm.directory.appendingPathComponent("remote")
let localDir = farm.directory.appendingPathComponent("local")
try FileManager.default.createDirectory(at: remoteDir, withIntermediateDirectories: true)
try FileManager.default.createDirectory(at: localDir, withIntermediateDirectories: true)

func makeFile(_ mb: Int) throws -> (String, SHA256Digest) {
    let path = remoteDir.appendingPathComponent("file-\(mb).bin").path
    let dd = try TestProcess.run("/bin/dd", ["if=/dev/urandom", "of=\(path)", "bs=1M", "count=\(mb)", "status=none"])
    precondition(dd.status == 0, dd.stderr)
    return (path, try StreamingDigest.file(at: path).digest)
}

/// One wheelfarm download on a fresh transport (connect + transfer + digest check).
func wheelfarmDownload(_ path: String, _ digest: SHA256Digest) async throws -> Double {
    let destination = localDir.appendingPathComponent("wf.bin").path
    try? FileManager.default.removeItem(atPath: destination)
    let transport = SSHTransport(host: host, settings: settings, options: options, logger: logger)
    let elapsed = try await ContinuousClock().measure {
        _ = try await transport.download(path, to: destination, expected: ExpectedFile(digest: digest))
    }
    await transport.close()
    return seconds(elapsed)
}

/// One OpenSSH scp download with the same key and known_hosts (connect + transfer).
func scpDownload(_ path: String) throws -> Double {
    let destination = localDir.appendingPathComponent("scp.bin").path
    try? FileManager.default.removeItem(atPath: destination)
    let f = farm.files("bench")
    let start = ContinuousClock.now
    let result = try TestProcess.run("/usr/bin/scp", [
        "-q", "-P", "\(f.port)", "-i", farm.clientKeyPath, "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
        "-o", "UserKnownHostsFile=\(farm.knownHostsPath)", "-o", "StrictHostKeyChecking=yes",
        "\(farm.user)@\(f.address):\(path)", destination,
    ])
    let elapsed = seconds(ContinuousClock.now - start)
    guard result.status == 0 else { fatalError("scp failed: \(result.stderr)") }
    return elapsed
}

// Peak memory for two sizes, to show it does not grow with the file.
var memory: [(Int, Double)] = []
for mb in [max(16, megabytes / 4), megabytes] {
    let (path, digest) = try makeFile(mb)
    resetPeakRSS()
    let before = peakRSS()
    _ = try await wheelfarmDownload(path, digest)
    memory.append((mb, peakRSS() - before))
    if mb != megabytes { try FileManager.default.removeItem(atPath: path) }
}

let (path, digest) = try makeFile(megabytes)
var wheelfarmTimes: [Double] = [], scpTimes: [Double] = []
for _ in 0..<runs {
    wheelfarmTimes.append(try await wheelfarmDownload(path, digest))
    scpTimes.append(try scpDownload(path))
}
let wf = wheelfarmTimes.min()!, scp = scpTimes.min()!
let mbytes = Double(megabytes) * 1_048_576 / 1_000_000
print("ssh-download: \(megabytes) MiB from a loopback sshd, best of \(runs) (connect included)")
print(String(format: "  wheelfarm (libssh2 %@, SCP, sha256 checked): %.2f s  %.0f MB/s", LibSSH2Info.version, wf, mbytes / wf))
print(String(format: "  OpenSSH scp:                                 %.2f s  %.0f MB/s", scp, mbytes / scp))
print(String(format: "  throughput ratio wheelfarm/scp: %.2fx (target >= 0.90x)", scp / wf))
for (mb, growth) in memory {
    print(String(format: "  peak RSS growth during a %d MiB download: %.1f MiB", mb, growth))
}

// Through a bastion: one ssh_config for both clients.
let target = farm.files("bench"), bastion = farm.files("bastion")
let viaConfig = farm.directory.appendingPathComponent("ssh_config_via").path
try """
    Host bench-via
      HostName \(target.address)
      Port \(target.port)
      ProxyJump jump
    Host jump
      HostName \(bastion.address)
      Port \(bastion.port)
    Host *
      User \(farm.user)
      IdentityFile \(farm.clientKeyPath)
      IdentitiesOnly yes
      UserKnownHostsFile \(farm.knownHostsPath)
      StrictHostKeyChecking yes
    """.write(toFile: viaConfig, atomically: true, encoding: .utf8)
let viaOptions = SSHClientOptions(environment: ProcessInfo.processInfo.environment, agentSocket: .some(nil),
                                  userConfigPath: viaConfig, systemConfigPath: nil)

func wheelfarmViaBastion(_ path: String, _ digest: SHA256Digest) async throws -> Double {
    let destination = localDir.appendingPathComponent("wf-via.bin").path
    try? FileManager.default.removeItem(atPath: destination)
    let transport = SSHTransport(host: Host(name: "bench-via", arch: .amd64, sshOrigins: [:]), settings: SSHSettings(origins: [:]),
                                 options: viaOptions, logger: logger)
    let elapsed = try await ContinuousClock().measure {
        _ = try await transport.download(path, to: destination, expected: ExpectedFile(digest: digest))
    }
    await transport.close()
    return seconds(elapsed)
}

func scpViaBastion(_ path: String) throws -> Double {
    let destination = localDir.appendingPathComponent("scp-via.bin").path
    try? FileManager.default.removeItem(atPath: destination)
    let start = ContinuousClock.now
    let result = try TestProcess.run("/usr/bin/scp", ["-q", "-F", viaConfig, "-o", "BatchMode=yes", "bench-via:\(path)", destination])
    let elapsed = seconds(ContinuousClock.now - start)
    guard result.status == 0 else { fatalError("scp through the bastion failed: \(result.stderr)") }
    return elapsed
}

var ratios: [Double] = [], viaWF: [Double] = [], viaSCP: [Double] = []
for _ in 0..<max(3, runs) {
    let w = try await wheelfarmViaBastion(path, digest)
    let o = try scpViaBastion(path)
    viaWF.append(w); viaSCP.append(o); ratios.append(o / w)
}
func median(_ xs: [Double]) -> Double { let s = xs.sorted(); return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2 }
print("ssh-download via a bastion (ProxyJump): \(megabytes) MiB, \(ratios.count) paired runs (connect included)")
print(String(format: "  wheelfarm (direct-tcpip tunnel): median %.2f s  %.0f MB/s", median(viaWF), mbytes / median(viaWF)))
print(String(format: "  OpenSSH scp (ProxyJump):          median %.2f s  %.0f MB/s", median(viaSCP), mbytes / median(viaSCP)))
print(String(format: "  median throughput ratio wheelfarm/scp: %.2fx (runs: %@)", median(ratios),
             ratios.map { String(format: "%.2f", $0) }.joined(separator: " ")))
