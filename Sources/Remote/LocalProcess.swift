import FarmCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Runs one local command in a process group of its own and streams its output.
///
/// Hand-written with `posix_spawn` and `poll()` rather than Foundation's `Process`: we need the
/// child to lead a new process group (so cancellation can stop everything it started), stdout and
/// stderr drained together as they arrive, stdin fed without blocking, and the same poll-driven
/// cancellation as the SSH transport.
enum LocalProcess {
    /// Runs `request` with `environment` as the whole environment of `/bin/sh` (callers pass
    /// ``ChildEnvironment/sanitized(_:removing:)``: no credential reaches a local command).
    static func run(_ request: ExecRequest, host: String, control: OperationControl,
                    environment: [String: String] = ChildEnvironment.sanitized(),
                    output: @Sendable (ExecOutput) -> Void) throws -> ExecStatus {
        let stdinPipe = makePipe(nonBlocking: false), stdoutPipe = makePipe(nonBlocking: false)
        let stderrPipe = makePipe(nonBlocking: false)
        guard stdinPipe[0] >= 0, stdoutPipe[0] >= 0, stderrPipe[0] >= 0 else {
            throw TransportError(.localIO, host: host, "cannot create pipes: \(errnoText())")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, stdinPipe[0], 0)
        posix_spawn_file_actions_adddup2(&actions, stdoutPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, stderrPipe[1], 2)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // A new process group led by the child: pgid == pid. Signals back to default.
        posix_spawnattr_setpgroup(&attributes, 0)
        var defaults = sigset_t()
        sigfillset(&defaults)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let script = Shell.script(for: request)
        let argv = ["/bin/sh", "-c", script]
        var cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        var cEnv: [UnsafeMutablePointer<CChar>?] = environment.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { cEnv.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, "/bin/sh", &actions, &attributes, &cArgs, &cEnv)
        close(stdinPipe[0]); close(stdoutPipe[1]); close(stderrPipe[1])
        guard spawned == 0 else {
            close(stdinPipe[1]); close(stdoutPipe[0]); close(stderrPipe[0])
            throw TransportError(.commandFailed, host: host, "cannot start '/bin/sh': \(errnoText(spawned))")
        }

        var inFD: Int32 = stdinPipe[1], outFD: Int32 = stdoutPipe[0], errFD: Int32 = stderrPipe[0]
        for fd in [inFD, outFD, errFD] { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        defer { for fd in [inFD, outFD, errFD] where fd >= 0 { close(fd) } }
        let stdinData = request.stdin ?? Data()
        var stdinOffset = 0
        if stdinData.isEmpty { close(inFD); inFD = -1 }

        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var interruption: Interruption?
        while outFD >= 0 || errFD >= 0 {
            if control.isCancelled { interruption = .cancelled; break }
            if control.isPastDeadline { interruption = .timedOut; break }
            var fds: [pollfd] = [pollfd(fd: control.wakeFD, events: Int16(POLLIN), revents: 0)]
            if outFD >= 0 { fds.append(pollfd(fd: outFD, events: Int16(POLLIN), revents: 0)) }
            if errFD >= 0 { fds.append(pollfd(fd: errFD, events: Int16(POLLIN), revents: 0)) }
            if inFD >= 0 { fds.append(pollfd(fd: inFD, events: Int16(POLLOUT), revents: 0)) }
            let ready = poll(&fds, nfds_t(fds.count), control.pollTimeout())
            if ready < 0 && errno != EINTR { break }
            if fds[0].revents != 0 { control.drainWake() }
            // Read whatever is there on both streams before waiting again.
            for isStdout in [true, false] {
                let fd = isStdout ? outFD : errFD
                guard fd >= 0 else { continue }
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n > 0 {
                    let data = Data(buffer[0..<n])
                    output(isStdout ? .stdout(data) : .stderr(data))
                } else if n == 0 || (errno != EAGAIN && errno != EINTR) {
                    close(fd)
                    if isStdout { outFD = -1 } else { errFD = -1 }
                }
            }
            if inFD >= 0 {
                let n = stdinData.withUnsafeBytes { bytes in
                    write(inFD, bytes.baseAddress! + stdinOffset, bytes.count - stdinOffset)
                }
                if n > 0 { stdinOffset += n }
                if stdinOffset >= stdinData.count || (n < 0 && errno != EAGAIN && errno != EINTR) {
                    close(inFD); inFD = -1
                }
            }
        }
        // Output is closed; the command may still run (or ignore its pipes): wait, interruptibly.
        var finished: ExecStatus?
        while interruption == nil {
            if let status = reapIfExited(pid) { finished = status; break }
            if control.isCancelled { interruption = .cancelled; break }
            if control.isPastDeadline { interruption = .timedOut; break }
            var wake = pollfd(fd: control.wakeFD, events: Int16(POLLIN), revents: 0)
            if poll(&wake, 1, control.pollTimeout(cap: 50)) > 0 { control.drainWake() }
        }
        if let finished { return finished }
        if let interruption {
            stopGroup(pid, grace: request.killGracePeriod)
            _ = reap(pid)
            switch interruption {
            case .cancelled:
                throw TransportError(.cancelled, host: host, "command '\(request.command)' was cancelled; its processes were stopped")
            case .timedOut:
                throw TransportError(.timeout, host: host,
                                     "command '\(request.command)' ran past its timeout of \(request.timeout ?? .zero); its processes were stopped")
            }
        }
        return reap(pid)
    }

    /// The status of `pid` if it has ended (and reaps it), else `nil`.
    private static func reapIfExited(_ pid: pid_t) -> ExecStatus? {
        var status: Int32 = 0
        let r = waitpid(pid, &status, WNOHANG)
        guard r == pid else { return nil }
        return convert(status)
    }

    private static func convert(_ status: Int32) -> ExecStatus {
        let signal = status & 0x7f
        if signal == 0 { return .exited((status >> 8) & 0xff) }
        return .signaled(SignalNames.name(of: signal))
    }

    /// Waits for `pid` and converts its wait status.
    private static func reap(_ pid: pid_t) -> ExecStatus {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return convert(status)
    }

    /// SIGTERM to the group, up to `grace` for it to go, then SIGKILL.
    private static func stopGroup(_ pgid: pid_t, grace: Duration) {
        kill(-pgid, SIGTERM)
        let end = ContinuousClock.now + grace
        while ContinuousClock.now < end {
            if kill(-pgid, 0) != 0 { return }
            // The group leader stays a zombie until reaped; treat "only zombies left" as gone.
            var status: Int32 = 0
            _ = waitpid(pgid, &status, WNOHANG)
            if kill(-pgid, 0) != 0 { return }
            usleep(50_000)
        }
        kill(-pgid, SIGKILL)
    }
}

/// Signal numbers to the names SSH uses (without `SIG`).
enum SignalNames {
    static func name(of signal: Int32) -> String {
        switch signal {
        case SIGHUP: "HUP"
        case SIGINT: "INT"
        case SIGQUIT: "QUIT"
        case SIGILL: "ILL"
        case SIGABRT: "ABRT"
        case SIGFPE: "FPE"
        case SIGKILL: "KILL"
        case SIGSEGV: "SEGV"
        case SIGPIPE: "PIPE"
        case SIGALRM: "ALRM"
        case SIGTERM: "TERM"
        case SIGUSR1: "USR1"
        case SIGUSR2: "USR2"
        case SIGBUS: "BUS"
        default: "\(signal)"
        }
    }
}
