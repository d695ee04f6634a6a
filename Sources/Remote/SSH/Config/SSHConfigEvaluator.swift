import FarmCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One value of an ssh_config option, with where it was written.
struct SSHConfigValue: Sendable, Hashable {
    /// The arguments, unquoted.
    var arguments: [String]
    /// The text after the keyword as written (`ProxyCommand`, `ProxyJump`).
    var rest: String
    /// Where the value came from.
    var origin: SSHValueOrigin

    /// The first argument (every single-valued option has one).
    var first: String { arguments.first ?? rest }
}

/// A configuration file to read, and how OpenSSH treats it.
struct SSHConfigFile: Sendable, Hashable {
    /// The path as written in messages (`~/.ssh/config`).
    var displayPath: String
    /// The path on disk.
    var path: String
    /// A user configuration (relative `Include`s are under `~/.ssh`, `~` may start them).
    var isUserConfig: Bool
    /// Refused when writable by others or owned by someone else, as OpenSSH refuses it.
    var checkPermissions: Bool
    /// A missing file is an error (`ssh -F FILE`), not silently skipped.
    var required: Bool
}

/// What the evaluation needs to know about this machine.
struct SSHConfigContext: Sendable {
    /// The coordinator's user (`Match localuser`, `%u`, the default remote user).
    var localUser: String
    /// The home directory for `~` and `%d` (wheelfarm uses `$HOME`; OpenSSH uses the passwd entry).
    var home: String
    /// For `${VAR}` in paths.
    var environment: [String: String]
    /// This machine's host name (`%l`, `%L`).
    var thisHost: String
    /// The coordinator's uid (`%i`).
    var uid: UInt32
}

/// The options that apply to one host name after reading the configuration files, as `ssh`
/// obtains them: the first value of each option wins, values set before the files (the
/// inventory's, like `ssh -o`) win over all of them, and `IdentityFile` accumulates.
struct SSHConfigResult: Sendable {
    /// The name the files were evaluated for (the inventory name, as in `ssh NAME`).
    var hostArgument: String
    /// Single-valued options by canonical lowercase keyword.
    var values: [String: SSHConfigValue] = [:]
    /// Accumulating options (`identityfile`, …) in order.
    var lists: [String: [SSHConfigValue]] = [:]
    /// The files read, in order.
    var filesRead: [String] = []

    /// The option's value, if any was obtained.
    subscript(_ keyword: String) -> SSHConfigValue? { values[keyword] }

    /// `HostName` with `%h` expanded, else the argument; lowercased unless it is an address (as ssh does).
    var hostname: String {
        let expanded = values["hostname"].map { SSHConfigEvaluator.expandHostname($0.first, host: hostArgument) } ?? hostArgument
        return SSHConfigEvaluator.isAddress(expanded) ? expanded : expanded.lowercased()
    }
}

/// Evaluates ssh_config files for one host name, as OpenSSH's `readconf.c` does.
///
/// Supported: every keyword OpenSSH accepts (unknown ones are errors unless `IgnoreUnknown`
/// names them), `Host` patterns with `*`, `?` and `!`, `Match` with `all`, `host`,
/// `originalhost`, `user`, `localuser`, `tagged`, `canonical` and `final` (with OpenSSH's second
/// pass), `Include` with globs (relative to `~/.ssh` or `/etc/ssh`, loops reported), and
/// OpenSSH's permission check on user configuration files. `Match exec`, `localnetwork`,
/// `command`, `sessiontype` and `version` are refused when they would have to be evaluated (they
/// would run commands or need a session); hostname canonicalisation is not done.
struct SSHConfigEvaluator {
    let context: SSHConfigContext
    private var result: SSHConfigResult
    private var diagnostics: [Diagnostic] = []
    private var finalPass = false
    private var wantFinalPass = false
    private var currentHost: String

    /// Nesting limit of `Include` (OpenSSH's `READCONF_MAX_DEPTH`).
    static let maxDepth = 16

    private init(hostArgument: String, context: SSHConfigContext) {
        self.context = context
        self.result = SSHConfigResult(hostArgument: hostArgument)
        self.currentHost = hostArgument
    }

    /// Evaluates `files` in order for `host`; `presets` are values obtained before any file (the
    /// inventory's), `presetIdentities` identity files named before any file.
    static func evaluate(host: String, files: [SSHConfigFile], context: SSHConfigContext,
                         presets: [String: SSHConfigValue] = [:],
                         presetIdentities: [SSHConfigValue] = []) throws(ConfigurationError) -> SSHConfigResult {
        var evaluator = SSHConfigEvaluator(hostArgument: host, context: context)
        evaluator.result.values = presets
        if !presetIdentities.isEmpty { evaluator.result.lists["identityfile"] = presetIdentities }
        evaluator.run(files)
        if evaluator.diagnostics.isEmpty && evaluator.wantFinalPass {
            // OpenSSH's second pass: the host is now the (expanded) HostName, and `Match final`
            // and `Match canonical` hold.
            evaluator.finalPass = true
            evaluator.currentHost = evaluator.result.hostname
            evaluator.run(files)
        }
        if !evaluator.diagnostics.isEmpty {
            throw ConfigurationError(kind: "ssh configuration", diagnostics: evaluator.diagnostics)
        }
        return evaluator.result
    }

    private mutating func run(_ files: [SSHConfigFile]) {
        for file in files {
            var active = true
            read(file, active: &active, neverMatch: false, depth: 0, stack: [])
        }
    }

    // MARK: Files

    private mutating func report(_ file: String, _ line: Int, _ keyword: String, _ message: String) {
        let d = Diagnostic(file: file, line: line, key: keyword, message: message)
        if !diagnostics.contains(d) { diagnostics.append(d) }
    }

    private mutating func read(_ file: SSHConfigFile, active: inout Bool, neverMatch: Bool, depth: Int,
                               stack: [(path: String, display: String, line: Int)]) {
        var st = stat()
        guard stat(file.path, &st) == 0 else {
            if errno != ENOENT || file.required {
                report(file.displayPath, 0, "", "cannot read the ssh configuration file: \(errnoText())")
            }
            return
        }
        if file.checkPermissions, (st.st_uid != 0 && st.st_uid != geteuid()) || st.st_mode & 0o022 != 0 {
            report(file.displayPath, 0, "",
                   "bad owner or permissions (mode \(String(format: "%04o", st.st_mode & 0o7777)), owner uid \(st.st_uid)): OpenSSH refuses a configuration file that others can write; run 'chmod go-w \(file.displayPath)'")
            return
        }
        guard let data = FileManager.default.contents(atPath: file.path) else {
            report(file.displayPath, 0, "", "cannot read the ssh configuration file: \(errnoText())")
            return
        }
        if !finalPass && !result.filesRead.contains(file.displayPath) { result.filesRead.append(file.displayPath) }
        let text = String(decoding: data, as: UTF8.self)
        var number = 0
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            number += 1
            let line: SSHConfigSyntax.Line
            do {
                guard let parsed = try SSHConfigSyntax.parse(line: raw, number: number) else { continue }
                line = parsed
            } catch {
                report(file.displayPath, error.number, error.keyword, error.message)
                continue
            }
            process(line, file: file, active: &active, neverMatch: neverMatch, depth: depth, stack: stack)
        }
    }

    private mutating func process(_ line: SSHConfigSyntax.Line, file: SSHConfigFile, active: inout Bool,
                                  neverMatch: Bool, depth: Int, stack: [(path: String, display: String, line: Int)]) {
        let origin = SSHValueOrigin.sshConfig(file: file.displayPath, line: line.number)
        switch line.keyword {
        case "host":
            active = false
            for pattern in line.arguments {
                if neverMatch { break }
                let negated = pattern.hasPrefix("!")
                if SSHPattern.matches(currentHost, negated ? String(pattern.dropFirst()) : pattern) {
                    if negated { active = false; break }
                    active = true
                }
            }
        case "match":
            let matched = match(line, file: file.displayPath)
            active = neverMatch ? false : matched
        case "include":
            include(line, file: file, active: &active, depth: depth, stack: stack)
        default:
            apply(line, origin: origin, file: file.displayPath, active: active)
        }
    }

    private mutating func include(_ line: SSHConfigSyntax.Line, file: SSHConfigFile, active: inout Bool, depth: Int,
                                  stack: [(path: String, display: String, line: Int)]) {
        for argument in line.arguments {
            if argument.hasPrefix("~") && !file.isUserConfig {
                report(file.displayPath, line.number, "include", "bad include path '\(argument)': '~' is only allowed in user configuration files")
                continue
            }
            var pattern = argument
            if !pattern.hasPrefix("/") && !pattern.hasPrefix("~") {
                pattern = (file.isUserConfig ? "~/.ssh/" : "/etc/ssh/") + pattern
            }
            let expanded = pattern.hasPrefix("~/") ? context.home + pattern.dropFirst() : pattern
            let displayBase = pattern
            let paths = Self.glob(expanded)
            let outerActive = active
            for path in paths {
                let real = (path as NSString).resolvingSymlinksInPath
                let here = (path: (file.path as NSString).resolvingSymlinksInPath, display: file.displayPath, line: line.number)
                let chain = stack + [here]
                if let loopStart = chain.firstIndex(where: { $0.path == real }) {
                    let steps = chain[loopStart...].map { "'\($0.display)' line \($0.line)" }.joined(separator: " includes ")
                    report(file.displayPath, line.number, "include",
                           "Include loop: \(steps) includes '\(chain[loopStart].display)' again; remove one of these Include lines")
                    continue
                }
                if depth + 1 > Self.maxDepth {
                    report(file.displayPath, line.number, "include", "too many nested Include levels (more than \(Self.maxDepth)), as OpenSSH refuses")
                    continue
                }
                var display = paths.count == 1 && !displayBase.contains("*") && !displayBase.contains("?") ? displayBase : path
                if display.hasPrefix(context.home + "/") { display = "~" + display.dropFirst(context.home.count) }
                let included = SSHConfigFile(displayPath: display, path: path, isUserConfig: file.isUserConfig,
                                             checkPermissions: true, required: false)
                read(included, active: &active, neverMatch: !outerActive, depth: depth + 1, stack: chain)
                // An included file's Host and Match lines do not change the including file's state.
                active = outerActive
            }
        }
    }

    /// The files a glob pattern names, sorted (as glob(3) returns them).
    static func glob(_ pattern: String) -> [String] {
        var g = glob_t()
        defer { globfree(&g) }
        guard Glibc.glob(pattern, 0, nil, &g) == 0 else { return [] }
        return (0..<Int(g.gl_pathc)).compactMap { g.gl_pathv[$0].map { String(cString: $0) } }
    }

    // MARK: Match

    private static let unsupportedCriteria: Set<String> = ["exec", "localnetwork", "command", "sessiontype", "version"]

    private mutating func match(_ line: SSHConfigSyntax.Line, file: String) -> Bool {
        let ruser = result.values["user"]?.first ?? context.localUser
        let host: String = finalPass ? currentHost
            : result.values["hostname"].map { Self.expandHostname($0.first, host: result.hostArgument) } ?? result.hostArgument
        var args = line.arguments[...]
        var matched = true
        var attributes = 0
        while let raw = args.popFirst() {
            let negate = raw.hasPrefix("!")
            let attribute = (negate ? String(raw.dropFirst()) : raw).lowercased()
            if attribute == "all" {
                if attributes > 1 || !args.isEmpty {
                    report(file, line.number, "match", "'\(raw)' cannot be combined with other Match attributes")
                    return false
                }
                return matched && !negate
            }
            attributes += 1
            if attribute == "canonical" || attribute == "final" {
                if attribute == "final" { wantFinalPass = true }
                if finalPass == negate { matched = false }
                continue
            }
            guard let argument = args.popFirst() else {
                report(file, line.number, "match", "missing Match criteria for '\(attribute)'")
                return false
            }
            let hit: Bool
            switch attribute {
            case "host": hit = SSHPattern.matchList(host, argument, lowercasing: true) == 1
            case "originalhost": hit = SSHPattern.matchList(result.hostArgument, argument, lowercasing: true) == 1
            case "user": hit = SSHPattern.matchList(ruser, argument, lowercasing: false) == 1
            case "localuser": hit = SSHPattern.matchList(context.localUser, argument, lowercasing: false) == 1
            case "tagged": hit = SSHPattern.matchList(result.values["tag"]?.first ?? "", argument, lowercasing: false) == 1
            case _ where Self.unsupportedCriteria.contains(attribute):
                // Evaluated only when the criteria before it held, as OpenSSH runs `exec`.
                guard matched else { continue }
                report(file, line.number, "match",
                       "'Match \(attribute)' is not supported by wheelfarm (it would need to run a command or a session for every host); express the condition with Host or Match host/user")
                return false
            default:
                report(file, line.number, "match", "unsupported Match attribute '\(attribute)'; expected all, host, originalhost, user, localuser, tagged, canonical or final")
                return false
            }
            if hit == negate { matched = false }
        }
        if attributes == 0 {
            report(file, line.number, "match", "one or more attributes required for Match")
            return false
        }
        return matched
    }

    // MARK: Options

    private static let flags: Set<String> = [
        "identitiesonly", "batchmode", "checkhostip", "hashknownhosts", "forwardagent", "compression",
        "tcpkeepalive", "exitonforwardfailure", "permitlocalcommand", "clearallforwardings", "visualhostkey",
        "stdinnull", "proxyusefdpass", "enablesshkeysign", "gatewayports", "hostbasedauthentication",
        "passwordauthentication", "nohostauthenticationforlocalhost",
    ]
    private static let strictValues: [String: String] = [
        "yes": "true", "true": "true", "no": "false", "false": "false", "off": "false", "ask": "ask", "accept-new": "accept-new",
    ]

    private mutating func apply(_ line: SSHConfigSyntax.Line, origin: SSHValueOrigin, file: String, active: Bool) {
        var keyword = line.keyword
        guard SSHConfigSyntax.keywords.contains(keyword) else {
            if let ignored = result.values["ignoreunknown"], SSHPattern.matchList(keyword, ignored.first, lowercasing: true) == 1 {
                return
            }
            report(file, line.number, line.keyword,
                   "bad configuration option '\(line.keyword)'\(DidYouMean.hint(for: line.keyword, among: SSHConfigSyntax.keywords)); OpenSSH refuses it too (list it in IgnoreUnknown to skip it)")
            return
        }
        keyword = SSHConfigSyntax.aliases[keyword] ?? keyword
        let value = SSHConfigValue(arguments: line.arguments, rest: line.rest, origin: origin)
        let single: Set<String> = ["hostname", "user", "port", "hostkeyalias", "identityagent", "connecttimeout",
                                   "serveraliveinterval", "serveralivecountmax", "stricthostkeychecking", "ignoreunknown", "tag"]
        if single.contains(keyword) || Self.flags.contains(keyword), line.arguments.count > 1 {
            report(file, line.number, line.keyword, "'\(line.keyword)' takes one value, found \(line.arguments.count): \(line.arguments.joined(separator: " "))")
            return
        }
        guard let firstArgument = line.arguments.first, !firstArgument.isEmpty || keyword == "proxycommand" else {
            report(file, line.number, line.keyword, "missing argument")
            return
        }
        switch keyword {
        case "port":
            guard let n = Int(firstArgument), (1...65535).contains(n) else {
                report(file, line.number, line.keyword, "bad port '\(firstArgument)': expected a number from 1 to 65535"); return
            }
        case "connecttimeout", "serveraliveinterval":
            guard firstArgument.lowercased() == "none" || Self.seconds(firstArgument) != nil else {
                report(file, line.number, line.keyword, "invalid time value '\(firstArgument)': expected seconds such as 10, 30s or 1m"); return
            }
        case "serveralivecountmax":
            guard Int(firstArgument).map({ $0 >= 0 }) == true else {
                report(file, line.number, line.keyword, "expected a whole number, found '\(firstArgument)'"); return
            }
        case "stricthostkeychecking":
            guard Self.strictValues[firstArgument.lowercased()] != nil else {
                report(file, line.number, line.keyword, "expected yes, no, ask or accept-new, found '\(firstArgument)'"); return
            }
        case _ where Self.flags.contains(keyword):
            guard ["yes", "no", "true", "false"].contains(firstArgument.lowercased()) || keyword == "forwardagent" || keyword == "compression" else {
                report(file, line.number, line.keyword, "expected yes or no, found '\(firstArgument)'"); return
            }
        case "proxyjump":
            let spec = Self.stripComment(line.rest)
            if spec.lowercased() != "none" {
                do { _ = try ProxyJumpSpec.parseList(spec) } catch {
                    report(file, line.number, line.keyword, "invalid ProxyJump '\(spec)': \(error.message)"); return
                }
            }
        case "userknownhostsfile", "globalknownhostsfile":
            if line.arguments.contains(where: { $0.lowercased() == "none" }) && line.arguments.count > 1 {
                report(file, line.number, line.keyword, "\"none\" must appear alone"); return
            }
        default: break
        }
        guard active else { return }
        switch keyword {
        case "identityfile":
            var list = result.lists["identityfile", default: []]
            if !list.contains(where: { $0.first == firstArgument }) { list.append(value) }
            result.lists["identityfile"] = list
        case _ where SSHConfigSyntax.accumulating.contains(keyword):
            result.lists[keyword, default: []].append(value)
        case "proxyjump", "proxycommand":
            if result.values["proxyjump"] == nil && result.values["proxycommand"] == nil {
                var stored = value
                stored.rest = Self.stripComment(line.rest)
                result.values[keyword] = stored
            }
        default:
            if result.values[keyword] == nil { result.values[keyword] = value }
        }
    }

    // MARK: Helpers

    static func stripComment(_ text: String) -> String {
        var s = text
        if let hash = s.firstIndex(of: "#") { s = String(s[..<hash]) }
        return s.trimmingCharacters(in: .whitespaces)
    }

    /// `HostName`'s only tokens: `%h` (the name given) and `%%`.
    static func expandHostname(_ value: String, host: String) -> String {
        var out = ""
        var chars = value.makeIterator()
        while let c = chars.next() {
            guard c == "%" else { out.append(c); continue }
            switch chars.next() {
            case "h": out += host
            case "%": out += "%"
            case let other?: out += "%" + String(other)
            case nil: out += "%"
            }
        }
        return out
    }

    /// True for IPv4 and IPv6 literals.
    static func isAddress(_ text: String) -> Bool {
        var v4 = in_addr(), v6 = in6_addr()
        return inet_pton(AF_INET, text, &v4) == 1 || inet_pton(AF_INET6, text, &v6) == 1
    }

    /// OpenSSH's `convtime`: `90`, `90s`, `1m30s`, `1h`, … in seconds.
    static func seconds(_ text: String) -> Int? {
        if let n = Int(text), n >= 0 { return n }
        var total = 0, number = ""
        for c in text.lowercased() {
            if c.isNumber { number.append(c); continue }
            guard let n = Int(number) else { return nil }
            let factor: Int
            switch c {
            case "s": factor = 1
            case "m": factor = 60
            case "h": factor = 3600
            case "d": factor = 86400
            case "w": factor = 604800
            default: return nil
            }
            total += n * factor
            number = ""
        }
        if !number.isEmpty { guard let n = Int(number) else { return nil }; total += n }
        return total
    }
}
