import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A network namespace made for a test (`ip netns add`) with its loopback up, so that servers in
/// it can be reached only from inside it. ``delete()`` removes it (stop its servers first).
public final class TestNetworkNamespace: Sendable {
    /// The namespace's name (`wf-…`).
    public let name: String

    private init(name: String) { self.name = name }

    /// Creates a namespace with a fresh name.
    public static func create() throws -> TestNetworkNamespace {
        let name = "wf-" + UUID().uuidString.prefix(8).lowercased()
        for args in [["netns", "add", name], ["netns", "exec", name, "ip", "link", "set", "lo", "up"]] {
            let r = try TestProcess.run("/usr/sbin/ip", args)
            guard r.status == 0 else { throw HarnessError("ip \(args.joined(separator: " ")) failed: \(r.stderr)") }
        }
        return TestNetworkNamespace(name: name)
    }

    /// True when something inside the namespace accepts TCP connections on `address:port`.
    public func accepts(_ address: String, _ port: Int) -> Bool {
        (try? TestProcess.run("/usr/sbin/ip", ["netns", "exec", name, "bash", "-c", "exec 3<>/dev/tcp/\(address)/\(port)"]))?.status == 0
    }

    /// Removes the namespace.
    public func delete() { _ = try? TestProcess.run("/usr/sbin/ip", ["netns", "delete", name]) }
}

/// An SSH certificate authority for host certificates (`ssh-keygen -s … -h`).
public struct CertificateAuthority: Sendable {
    /// The CA's private key file.
    public let privateKeyPath: String
    /// The CA's public key as `TYPE BASE64`, for `@cert-authority` lines.
    public let publicKey: String

    /// Creates a CA key of `type` in `directory`.
    public static func create(in directory: URL, type: String = "ed25519") throws -> CertificateAuthority {
        let path = directory.appendingPathComponent("host_ca_\(type)").path
        try SSHTestFarm.keygen(type: type, path: path, comment: "wheelfarm-test-host-ca")
        return CertificateAuthority(privateKeyPath: path, publicKey: try SSHTestFarm.publicKey(path))
    }

    /// Signs the host public key at `publicKeyPath` for `principals`; returns the certificate's path.
    public func signHostKey(_ publicKeyPath: String, principals: [String]) throws -> String {
        let r = try TestProcess.run("/usr/bin/ssh-keygen", ["-q", "-s", privateKeyPath, "-I", "wheelfarm-test-host", "-h",
                                                            "-n", principals.joined(separator: ","), publicKeyPath])
        guard r.status == 0 else { throw HarnessError("ssh-keygen -s failed: \(r.stderr)") }
        return publicKeyPath.replacingOccurrences(of: ".pub", with: "-cert.pub")
    }
}

/// An OpenSSH server beside an ``SSHTestFarm``'s hosts, for host-key and bastion tests: host
/// keys of chosen types, optionally certified by a CA, optionally inside a network namespace —
/// listening there (reachable only from inside), or served from outside it through
/// `Servers/netns_inetd.py` (a bastion that reaches what only the namespace can). It accepts the
/// farm's client keys. Stopped by PID in ``stop()``.
public final class ExtraSSHD: @unchecked Sendable {
    // @unchecked: `hostKeys` changes only in `start`; the processes are stopped under `lock`.

    /// How the server is set up.
    public struct Options: Sendable {
        /// Host key types (`ed25519`, `ecdsa`), one key each.
        public var hostKeyTypes: [String]
        /// Sign every host key with this CA (`HostCertificate`).
        public var certificateAuthority: CertificateAuthority?
        /// Run inside this namespace.
        public var namespace: TestNetworkNamespace?
        /// With a namespace: listen outside it and serve each connection inside it (`sshd -i`).
        public var viaInetd: Bool

        public init(hostKeyTypes: [String] = ["ed25519"], certificateAuthority: CertificateAuthority? = nil,
                    namespace: TestNetworkNamespace? = nil, viaInetd: Bool = false) {
            self.hostKeyTypes = hostKeyTypes; self.certificateAuthority = certificateAuthority
            self.namespace = namespace; self.viaInetd = viaInetd
        }
    }

    /// The server's name (its directory, messages).
    public let name: String
    /// The address it listens on (inside its namespace when it runs in one, unless via inetd).
    public let address: String
    /// The port.
    public let port: Int
    /// Its directory (config, keys, log).
    public let directory: URL
    /// Its public host keys, `TYPE BASE64` each, in the order of ``Options/hostKeyTypes``.
    public private(set) var hostKeys: [String] = []
    /// The log of sshd (`-e`).
    public var logPath: String { directory.appendingPathComponent("sshd.log").path }

    private let lock = NSLock()
    private var process: Process?
    private var lifeline: Pipe?
    private var inetd: ServerProcess?

    /// The name known_hosts lists it under: `[address]:port`.
    public var knownHostsName: String { "[\(address)]:\(port)" }

    private init(name: String, address: String, port: Int, directory: URL) {
        self.name = name; self.address = address; self.port = port; self.directory = directory
    }

    /// Starts a server for `farm` (its client key is authorised) and waits until it accepts connections.
    public static func start(_ name: String, farm: SSHTestFarm, options: Options = Options()) throws -> ExtraSSHD {
        let directory = farm.directory.appendingPathComponent("extra/\(name)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let address = "127.\(Int.random(in: 1...254)).\(Int.random(in: 0...254)).\(Int.random(in: 1...254))"
        let inside = options.namespace != nil && !options.viaInetd
        let port = inside ? Int.random(in: 20000...60000) : try SSHTestFarm.freePort(address)
        let server = ExtraSSHD(name: name, address: address, port: port, directory: directory)
        var config = [
            "ListenAddress \(address):\(port)",
            "PidFile none",
            "AuthorizedKeysFile \(farm.directory.appendingPathComponent("authorized_keys").path)",
            "PubkeyAuthentication yes", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password", "UsePAM no", "StrictModes no", "MaxSessions 64", "MaxStartups 64",
            "LogLevel ERROR", "AllowTcpForwarding yes", "Subsystem sftp internal-sftp",
            "SetEnv HOME=\(directory.path)",
        ]
        for type in options.hostKeyTypes {
            let key = directory.appendingPathComponent("ssh_host_\(type)_key").path
            try SSHTestFarm.keygen(type: type, path: key, comment: "\(name)-\(type)")
            server.hostKeys.append(try SSHTestFarm.publicKey(key))
            config.append("HostKey \(key)")
            if let ca = options.certificateAuthority {
                config.append("HostCertificate \(try ca.signHostKey(key + ".pub", principals: [address]))")
            }
        }
        let configPath = directory.appendingPathComponent("sshd_config").path
        try (config.joined(separator: "\n") + "\n").write(toFile: configPath, atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true)
        do {
            if let namespace = options.namespace, options.viaInetd {
                let portFile = directory.appendingPathComponent("inetd.port")
                let inetd = try ServerProcess(TestEnvironment.python, [TestServers.script("netns_inetd.py"), address, portFile.path,
                                                                       namespace.name, configPath],
                                              logFile: URL(fileURLWithPath: server.logPath))
                server.inetd = inetd
                let actual = try inetd.waitForPortFile(portFile)
                return ExtraSSHD(copying: server, port: actual)
            }
            try server.launch(configPath, namespace: options.namespace)
        } catch {
            server.stop()
            throw error
        }
        return server
    }

    private convenience init(copying other: ExtraSSHD, port: Int) {
        self.init(name: other.name, address: other.address, port: port, directory: other.directory)
        hostKeys = other.hostKeys
        inetd = other.inetd
        other.inetd = nil
    }

    private func launch(_ configPath: String, namespace: TestNetworkNamespace?) throws {
        let shell = "{ /usr/sbin/sshd -f \(configPath) -D -e </dev/null & read -r _; }"
        var command = ["/usr/bin/unshare", "--mount", "--pid", "--fork", "--mount-proc", "--propagation", "private",
                       "--kill-child", "/bin/sh", "-c", shell]
        if let namespace { command = ["/usr/sbin/ip", "netns", "exec", namespace.name] + command }
        let pipe = Pipe()
        _ = fcntl(pipe.fileHandleForWriting.fileDescriptor, F_SETFD, FD_CLOEXEC)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: command[0])
        p.arguments = Array(command.dropFirst())
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        p.standardOutput = log
        p.standardError = log
        p.standardInput = pipe
        try p.run()
        try? log.close()
        try? pipe.fileHandleForReading.close()
        lock.withLock { process = p; lifeline = pipe }
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, p.isRunning {
            if namespace.map({ $0.accepts(address, port) }) ?? SSHTestFarm.canConnect(address, port) { return }
            usleep(50_000)
        }
        throw HarnessError("sshd '\(name)' did not start on \(address):\(port): \((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "")")
    }

    /// Stops the server (and every session) by PID.
    public func stop() {
        let (p, pipe, i) = lock.withLock { () -> (Process?, Pipe?, ServerProcess?) in
            defer { process = nil; lifeline = nil; inetd = nil }
            return (process, lifeline, inetd)
        }
        i?.stop()
        if let p, p.isRunning {
            kill(p.processIdentifier, SIGKILL)
            while p.isRunning { usleep(5_000) }
        }
        try? pipe?.fileHandleForWriting.close()
    }

    deinit { stop() }
}
