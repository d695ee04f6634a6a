import struct Inventory.Host
import FarmCore
import Foundation
import Inventory
#if canImport(Glibc)
import Glibc
#endif

/// A build host that ``SSHTestFarm`` simulates with a real OpenSSH `sshd`.
public struct SimulatedHost: Sendable, Hashable {
    /// Inventory name.
    public var name: String
    /// The architecture its sessions see in `uname -m` (a wrapper bind-mounted over `uname`).
    public var arch: Arch
    /// The CPU flags its sessions see in `/proc/cpuinfo` (bind-mounted); `nil` keeps the real file.
    public var cpuFlags: [String]?
    /// Environment variables its sessions get (sshd `SetEnv`).
    public var environment: [String: String]

    /// Describes a host.
    public init(name: String, arch: Arch = .amd64, cpuFlags: [String]? = nil, environment: [String: String] = [:]) {
        self.name = name; self.arch = arch; self.cpuFlags = cpuFlags; self.environment = environment
    }
}

/// A farm of real OpenSSH servers on loopback, one per simulated host, for tests and benchmarks.
///
/// Each host gets its own loopback address (127.x.y.z) and free port, its own ed25519 host key and
/// sshd config, and runs as `unshare -m -p -f --mount-proc --kill-child sh -c '…; sshd -D & read'`:
/// a private mount namespace (for the fake `/proc/cpuinfo` and `uname`) and a PID namespace whose
/// init is that shell, so that SIGKILL to the `unshare` process kills sshd and every session below
/// it at once (``kill(_:)``: an abrupt host failure), and so that the host also goes when the test
/// process dies without cleaning up (the shell's stdin is a pipe only the test process holds). One ed25519 client key is authorised on every host;
/// ``knownHostsPath`` lists every host key. Everything is stopped by PID in ``stop()`` (also run
/// by `deinit`, and by ``withFarm(_:_:)`` when the body throws). Needs root and `openssh-server`.
public final class SSHTestFarm: @unchecked Sendable {
    // @unchecked: mutable state (`running`) is guarded by `lock`.

    /// One host's files and address.
    public struct HostFiles: Sendable {
        /// The simulated host.
        public let host: SimulatedHost
        /// Loopback address it listens on.
        public let address: String
        /// Port it listens on.
        public let port: Int
        /// Its directory (config, host key, log).
        public let directory: URL
        /// Its public host key as `ssh-ed25519 AAAA…`.
        public var hostKey: String
        /// sshd's output (errors, with `-e`).
        public var logPath: String { directory.appendingPathComponent("sshd.log").path }
    }

    /// The farm's scratch directory (removed by ``stop()``).
    public let directory: URL
    /// The ed25519 client key authorised on every host (no passphrase).
    public let clientKeyPath: String
    /// A known_hosts file listing every host's key.
    public let knownHostsPath: String
    /// The remote user (the current user; tests run as root).
    public let user: String
    /// The hosts, in the order given.
    public private(set) var hosts: [HostFiles]

    private let lock = NSLock()
    private var running: [String: Process] = [:]
    private var lifelines: [String: Pipe] = [:]
    private var agents: [SSHTestAgent] = []
    private var stopped = false

    /// Starts one sshd per host and waits until each accepts connections.
    public static func start(hosts: [SimulatedHost]) throws -> SSHTestFarm {
        let farm = try SSHTestFarm(hosts: hosts)
        do {
            for host in farm.hosts { try farm.launch(host.host.name) }
        } catch {
            farm.stop()
            throw error
        }
        return farm
    }

    /// Starts a farm, runs `body`, and stops the farm whether `body` returns or throws.
    public static func withFarm<T>(_ hosts: [SimulatedHost], _ body: (SSHTestFarm) async throws -> T) async throws -> T {
        let farm = try start(hosts: hosts)
        do {
            let result = try await body(farm)
            farm.stop()
            return result
        } catch {
            farm.stop()
            throw error
        }
    }

    private init(hosts simulated: [SimulatedHost]) throws {
        directory = try TestEnvironment.makeTemporaryDirectory("wheelfarm-sshfarm")
        try FileManager.default.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true)
        user = ProcessInfo.processInfo.environment["USER"] ?? "root"
        clientKeyPath = directory.appendingPathComponent("client_ed25519").path
        try Self.keygen(type: "ed25519", path: clientKeyPath, comment: "wheelfarm-test-client")
        knownHostsPath = directory.appendingPathComponent("known_hosts").path
        let authorized = directory.appendingPathComponent("authorized_keys").path
        try FileManager.default.copyItem(atPath: clientKeyPath + ".pub", toPath: authorized)

        // A /24 of its own per farm, so farms of tests running in parallel never collide.
        let octet2 = Int.random(in: 1...254), octet3 = Int.random(in: 0...254)
        var files: [HostFiles] = []
        for (index, host) in simulated.enumerated() {
            let address = "127.\(octet2).\(octet3).\(index + 1)"
            let dir = directory.appendingPathComponent("hosts/\(host.name)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            let keyPath = dir.appendingPathComponent("ssh_host_ed25519_key").path
            try Self.keygen(type: "ed25519", path: keyPath, comment: host.name)
            let hostKey = try Self.publicKey(keyPath)
            let port = try Self.freePort(address)
            files.append(HostFiles(host: host, address: address, port: port, directory: dir, hostKey: hostKey))
        }
        hosts = files
        for file in files { try writeHostFiles(file, authorizedKeys: authorized) }
        try writeKnownHosts()
    }

    deinit { stop() }

    // MARK: - Hosts

    /// The files of host `name`.
    public func files(_ name: String) -> HostFiles {
        guard let files = hosts.first(where: { $0.host.name == name }) else { fatalError("no simulated host '\(name)'") }
        return files
    }

    /// Runs a shell command on host `name` with OpenSSH's `ssh` client (inside the host's
    /// namespaces, so PIDs and files are seen as the host's builds see them).
    public func shell(on name: String, _ command: String) throws -> ProcessResult {
        let f = files(name)
        return try TestProcess.run("/usr/bin/ssh", [
            "-i", clientKeyPath, "-p", String(f.port), "-o", "UserKnownHostsFile=\(knownHostsPath)",
            "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=20",
            "\(user)@\(f.address)", command,
        ])
    }

    /// SIGKILLs the host's sshd and every session process (its PID namespace), like a power cut.
    public func kill(_ name: String) {
        let (process, lifeline) = lock.withLock { (running.removeValue(forKey: name), lifelines.removeValue(forKey: name)) }
        defer { try? lifeline?.fileHandleForWriting.close() }
        guard let process else { return }
        Glibc.kill(process.processIdentifier, SIGKILL)
        waitForExit(process)
        // The namespace's processes die after `unshare` itself: wait until the old sshd no longer
        // listens, so that a restart never mistakes it for the new one.
        let f = files(name)
        let deadline = Date().addingTimeInterval(60)
        while Self.canConnect(f.address, f.port), Date() < deadline { usleep(20_000) }
    }

    /// Starts a killed host again with the same address, port and host key.
    public func restart(_ name: String) throws {
        kill(name)
        try launch(name)
    }

    /// Gives the host a new host key and restarts it (known_hosts keeps the old key).
    public func changeHostKey(_ name: String) throws {
        let index = hosts.firstIndex { $0.host.name == name }!
        let keyPath = hosts[index].directory.appendingPathComponent("ssh_host_ed25519_key").path
        try? FileManager.default.removeItem(atPath: keyPath)
        try? FileManager.default.removeItem(atPath: keyPath + ".pub")
        try Self.keygen(type: "ed25519", path: keyPath, comment: name)
        hosts[index].hostKey = try Self.publicKey(keyPath)
        try restart(name)
    }

    /// The host's `Host` value, as an inventory for this farm would describe it.
    public func inventoryHost(_ name: String, identityFile: String? = nil, workDir: String? = nil) -> Host {
        let f = files(name)
        let capabilities = Set((f.host.cpuFlags ?? []).map(Capability.init))
        return Host(name: name, address: f.address, port: f.port, user: user,
                    identityFile: identityFile ?? clientKeyPath, arch: f.host.arch, capabilities: capabilities,
                    workDir: workDir ?? directory.appendingPathComponent("work/\(name)").path)
    }

    /// SSH settings for this farm: its known_hosts, strict checking, a short connect timeout.
    public func sshSettings(hostKeyChecking: SSHSettings.HostKeyChecking = .strict, knownHosts: String? = nil) -> SSHSettings {
        SSHSettings(knownHosts: knownHosts ?? knownHostsPath, hostKeyChecking: hostKeyChecking,
                    connectTimeout: 20, keepaliveInterval: 5)
    }

    /// An inventory file (see docs/INVENTORY-FORMAT.md) describing the farm (or only the hosts
    /// named in `only`).
    public func inventoryYAML(hostKeyChecking: SSHSettings.HostKeyChecking = .strict, only: [String]? = nil) -> String {
        var lines = [
            "ssh:",
            "  known_hosts: \(knownHostsPath)",
            "  host_key_checking: \(hostKeyChecking.rawValue)",
            "  connect_timeout: 20",
            "  keepalive: 5",
            "hosts:",
        ]
        for f in hosts where only?.contains(f.host.name) ?? true {
            lines += [
                "  \(f.host.name):",
                "    address: \(f.address)",
                "    port: \(f.port)",
                "    user: \(user)",
                "    identity_file: \(clientKeyPath)",
                "    arch: \(f.host.arch.rawValue)",
            ]
            if let flags = f.host.cpuFlags { lines.append("    capabilities: [\(flags.joined(separator: ", "))]") }
            lines.append("    work_dir: \(directory.appendingPathComponent("work/\(f.host.name)").path)")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Writes ``inventoryYAML(hostKeyChecking:)`` to `url`.
    public func writeInventory(to url: URL, hostKeyChecking: SSHSettings.HostKeyChecking = .strict, only: [String]? = nil) throws {
        try inventoryYAML(hostKeyChecking: hostKeyChecking, only: only).write(to: url, atomically: true, encoding: .utf8)
    }

    /// (Re)writes known_hosts with the current keys of `names` (all hosts by default), optionally
    /// hashed with `ssh-keygen -H` like OpenSSH's `HashKnownHosts yes`.
    public func writeKnownHosts(_ names: [String]? = nil, hashed: Bool = false, to path: String? = nil) throws {
        let target = path ?? knownHostsPath
        let lines = hosts.filter { names?.contains($0.host.name) ?? true }
            .map { "[\($0.address)]:\($0.port) \($0.hostKey)" }
        try (lines.joined(separator: "\n") + "\n").write(toFile: target, atomically: true, encoding: .utf8)
        if hashed {
            let result = try TestProcess.run("ssh-keygen", ["-H", "-f", target])
            guard result.status == 0 else { throw FarmError(code: "farm.keygen", message: "ssh-keygen -H failed: \(result.stderr)") }
            try? FileManager.default.removeItem(atPath: target + ".old")
        }
    }

    /// Generates a key pair (`ssh-keygen -t type`) in the farm directory and returns its private path.
    public func generateKey(_ name: String, type: String = "ed25519", passphrase: String = "") throws -> String {
        let path = directory.appendingPathComponent(name).path
        try Self.keygen(type: type, path: path, comment: name, passphrase: passphrase)
        return path
    }

    /// Adds a public key file's key to every host's authorized keys.
    public func authorize(publicKey path: String) throws {
        let authorized = directory.appendingPathComponent("authorized_keys")
        let handle = try FileHandle(forWritingTo: authorized)
        defer { try? handle.close() }
        try handle.seekToEnd()
        try handle.write(contentsOf: try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    /// Starts an ssh-agent holding `keys` (private key paths); it is stopped with the farm.
    public func startAgent(keys: [String]) throws -> SSHTestAgent {
        let agent = try SSHTestAgent.start(socket: directory.appendingPathComponent("agent-\(agents.count).sock").path)
        lock.withLock { agents.append(agent) }
        for key in keys { try agent.add(key) }
        return agent
    }

    /// Kills every sshd and agent by PID and removes the farm directory. Safe to call twice.
    public func stop() {
        let (processes, agentList) = lock.withLock { () -> ([Process], [SSHTestAgent]) in
            if stopped { return ([], []) }
            stopped = true
            defer { running.removeAll(); agents.removeAll(); lifelines.removeAll() }
            return (Array(running.values), agents)
        }
        guard !processes.isEmpty || !agentList.isEmpty || FileManager.default.fileExists(atPath: directory.path) else { return }
        for process in processes {
            Glibc.kill(process.processIdentifier, SIGKILL)
            waitForExit(process)
        }
        for agent in agentList { agent.stop() }
        try? FileManager.default.removeItem(at: directory)
    }

    // MARK: - Launching

    private func writeHostFiles(_ f: HostFiles, authorizedKeys: String) throws {
        var config = [
            "ListenAddress \(f.address):\(f.port)",
            "HostKey \(f.directory.appendingPathComponent("ssh_host_ed25519_key").path)",
            "PidFile \(f.directory.appendingPathComponent("sshd.pid").path)",
            "AuthorizedKeysFile \(authorizedKeys)",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password",
            "UsePAM no",
            "StrictModes no",
            "MaxSessions 64",
            "MaxStartups 64",
            "LogLevel ERROR",
            "Subsystem sftp internal-sftp",
        ]
        // A home of its own per host: sessions do not run the coordinator's shell start-up files
        // (bash reads ~/.bashrc for every SSH command), like a freshly installed build host.
        var environment = f.host.environment
        if environment["HOME"] == nil {
            let home = f.directory.appendingPathComponent("home")
            try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
            environment["HOME"] = home.path
        }
        config.append("SetEnv " + environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
        try (config.joined(separator: "\n") + "\n").write(to: f.directory.appendingPathComponent("sshd_config"), atomically: true, encoding: .utf8)

        if let flags = f.host.cpuFlags {
            let real = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? "processor\t: 0\nflags\t\t: \n"
            let label = f.host.arch == .arm64 ? "Features\t" : "flags\t\t"
            let fake = real.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
                line.hasPrefix("flags") || line.hasPrefix("Features") ? "\(label): \(flags.joined(separator: " "))" : String(line)
            }.joined(separator: "\n")
            try fake.write(to: f.directory.appendingPathComponent("cpuinfo"), atomically: true, encoding: .utf8)
        }
        if f.host.arch.kernelName != Self.machine {
            let realUname = f.directory.appendingPathComponent("uname.real").path
            try? FileManager.default.removeItem(atPath: realUname)
            try FileManager.default.copyItem(atPath: "/usr/bin/uname", toPath: realUname)
            let wrapper = """
            #!/bin/sh
            # Simulated host: the machine name reads \(f.host.arch.kernelName).
            for a in "$@"; do case "$a" in -m|--machine|-i|--hardware-platform|-p|--processor) ;; *) all=no ;; esac; done
            if [ $# -gt 0 ] && [ "${all:-yes}" = yes ]; then echo \(f.host.arch.kernelName); exit 0; fi
            \(realUname) "$@" | sed 's/\(Self.machine)/\(f.host.arch.kernelName)/g'

            """
            let path = f.directory.appendingPathComponent("uname").path
            try wrapper.write(toFile: path, atomically: true, encoding: .utf8)
            chmod(path, 0o755)
        }
    }

    private func launch(_ name: String) throws {
        let f = files(name)
        var setup: [String] = []
        let cpuinfo = f.directory.appendingPathComponent("cpuinfo").path
        if FileManager.default.fileExists(atPath: cpuinfo) { setup.append("mount --bind \(cpuinfo) /proc/cpuinfo") }
        let uname = f.directory.appendingPathComponent("uname").path
        if FileManager.default.fileExists(atPath: uname) { setup.append("mount --bind \(uname) /usr/bin/uname") }
        // The namespace's init is this shell: sshd runs below it while the shell waits for EOF on
        // its stdin, a pipe whose write end only this process holds. When the test process dies,
        // even by a crash, the shell returns and the kernel kills the whole PID namespace.
        setup.append("{ /usr/sbin/sshd -f \(f.directory.appendingPathComponent("sshd_config").path) -D -e </dev/null & read -r _; }")
        let lifeline = Pipe()
        _ = fcntl(lifeline.fileHandleForWriting.fileDescriptor, F_SETFD, FD_CLOEXEC)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
        process.arguments = ["--mount", "--pid", "--fork", "--mount-proc", "--propagation", "private", "--kill-child",
                             "/bin/sh", "-c", setup.joined(separator: " && ")]
        _ = FileManager.default.createFile(atPath: f.logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: f.logPath))
        try log.seekToEnd()
        process.standardOutput = log
        process.standardError = log
        process.standardInput = lifeline
        try process.run()
        try? log.close()
        try? lifeline.fileHandleForReading.close()
        lock.withLock { running[name] = process; lifelines[name] = lifeline }

        try waitUntilServing(f, process: process)
    }

    /// Waits until the host's sshd completes a key exchange offering the host's current key
    /// (`ssh-keyscan`): the one readiness test of a started and a restarted host, so no test
    /// connects to an sshd that is still starting, nor to one that a restart is replacing.
    /// A loaded machine can take many seconds.
    private func waitUntilServing(_ f: HostFiles, process: Process) throws {
        let deadline = Date().addingTimeInterval(90)
        var last = ""
        while Date() < deadline, process.isRunning {
            if Self.canConnect(f.address, f.port) {
                let scan = try TestProcess.run("/usr/bin/ssh-keyscan", ["-T", "10", "-t", "ed25519", "-p", String(f.port), f.address])
                if scan.stdout.contains(f.hostKey) { return }
                last = scan.stdout + scan.stderr
            }
            usleep(20_000)
        }
        let output = (try? String(contentsOfFile: f.logPath, encoding: .utf8)) ?? ""
        kill(f.host.name)
        throw FarmError(code: "farm.sshd", message: "sshd for simulated host '\(f.host.name)' did not serve its host key on '\(f.address):\(f.port)' (ssh-keyscan: \(last)); its log: \(output)")
    }

    // MARK: - Helpers

    /// The machine name of this computer as `uname -m` prints it (e.g. `x86_64`).
    public static let machine: String = {
        var info = utsname()
        uname(&info)
        return withUnsafeBytes(of: &info.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }()

    static func keygen(type: String, path: String, comment: String, passphrase: String = "") throws {
        let result = try TestProcess.run("ssh-keygen", ["-q", "-t", type, "-N", passphrase, "-C", comment, "-f", path])
        guard result.status == 0 else {
            throw FarmError(code: "farm.keygen", message: "ssh-keygen -t \(type) failed: \(result.stderr)")
        }
    }

    static func publicKey(_ privatePath: String) throws -> String {
        let text = try String(contentsOfFile: privatePath + ".pub", encoding: .utf8)
        return text.split(separator: " ").prefix(2).joined(separator: " ")
    }

    /// A port on `address` that nothing listens on right now.
    static func freePort(_ address: String) throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        inet_pton(AF_INET, address, &addr.sin_addr)
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw FarmError(code: "farm.port", message: "cannot bind '\(address)': \(String(cString: strerror(errno)))") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    static func canConnect(_ address: String, _ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = UInt16(port).bigEndian
        inet_pton(AF_INET, address, &addr.sin_addr)
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }
}

/// An `ssh-agent` started for a test (foreground mode, so its PID is known and it is stopped by it).
public final class SSHTestAgent: @unchecked Sendable {
    // @unchecked: immutable after start; `Process` is only used to signal and wait.

    /// The agent's socket, for `SSH_AUTH_SOCK`.
    public let socketPath: String
    private let process: Process

    private init(socketPath: String, process: Process) {
        self.socketPath = socketPath; self.process = process
    }

    /// Starts `ssh-agent -D -a socket` and waits for the socket to appear.
    public static func start(socket: String) throws -> SSHTestAgent {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/ssh-agent")
        process.arguments = ["-D", "-a", socket]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let agent = SSHTestAgent(socketPath: socket, process: process)
        let deadline = Date().addingTimeInterval(30)
        // The socket file appears at bind(), before listen(): wait until it accepts connections.
        while !canConnectUnix(socket) {
            if Date() > deadline || !process.isRunning {
                agent.stop()
                throw FarmError(code: "farm.agent", message: "ssh-agent did not create '\(socket)'")
            }
            usleep(10_000)
        }
        return agent
    }

    /// Loads a private key into the agent (`ssh-add`).
    public func add(_ keyPath: String) throws {
        var env = ProcessInfo.processInfo.environment
        env["SSH_AUTH_SOCK"] = socketPath
        let result = try TestProcess.run("/usr/bin/ssh-add", ["-q", keyPath], environment: env)
        guard result.status == 0 else { throw FarmError(code: "farm.agent", message: "ssh-add '\(keyPath)' failed: \(result.stderr)") }
    }

    /// Stops the agent by PID (SIGKILL: children of Foundation's `Process` may start with
    /// SIGTERM blocked, inherited from the spawning thread's signal mask).
    public func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            waitForExit(process)
        }
        try? FileManager.default.removeItem(atPath: socketPath)
    }

    deinit { stop() }
}

/// Waits for a `Process` to end by polling `isRunning` every few milliseconds.
///
/// `Process.waitUntilExit()` on Linux spins the current run loop, which busy-loops on threads
/// without one (the concurrency pool's) and can starve other tests.
func waitForExit(_ process: Process) {
    while process.isRunning { usleep(5_000) }
}

/// True when a Unix stream socket at `path` accepts a connection.
func canConnectUnix(_ path: String) -> Bool {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return false }
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
        for (i, b) in bytes.enumerated() { raw[i] = b }
        raw[bytes.count] = 0
    }
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    } == 0
}
