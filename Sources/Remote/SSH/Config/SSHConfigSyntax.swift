/// The lexical rules of OpenSSH's client configuration (`ssh_config(5)`), as `readconf.c` and
/// `misc.c` of OpenSSH 9 apply them.
///
/// Written by hand: no maintained Swift package reads ssh_config, and the rules that matter
/// (first value wins, `Host`/`Match` blocks, `Include`, quoting, `#` comments inside a line) are
/// small. The behaviour is checked against `ssh -G` for a corpus of configurations in the tests.
enum SSHConfigSyntax {
    /// One meaningful line: its keyword (lowercased), its arguments and where it was written.
    struct Line: Sendable, Hashable {
        /// The keyword in lowercase (`hostname`, `identityfile`, …).
        var keyword: String
        /// The arguments after the keyword, unquoted, with `\` escapes removed.
        var arguments: [String]
        /// The text after the keyword and its separator, as written (`ProxyCommand` and
        /// `ProxyJump` read it whole).
        var rest: String
        /// 1-based line number.
        var number: Int
    }

    /// Why a line cannot be split into a keyword and arguments.
    struct LineError: Error, Sendable, Hashable {
        var number: Int
        var keyword: String
        var message: String
    }

    /// Splits one line; `nil` for blank lines and comments.
    static func parse(line raw: Substring, number: Int) throws(LineError) -> Line? {
        // Trailing whitespace (and form feeds) go; leading whitespace is skipped.
        var text = raw
        while let last = text.last, last == " " || last == "\t" || last == "\r" || last == "\n" || last == "\u{0C}" {
            text.removeLast()
        }
        let chars = Array(text.unicodeScalars)
        var i = 0
        while i < chars.count, chars[i] == " " || chars[i] == "\t" { i += 1 }
        if i == chars.count || chars[i] == "#" { return nil }
        let keywordStart = i
        while i < chars.count, chars[i] != " ", chars[i] != "\t", chars[i] != "=", chars[i] != "\"" { i += 1 }
        var keyword = String(String.UnicodeScalarView(chars[keywordStart..<i])).lowercased()
        if keyword.isEmpty { keyword = "=" }
        // One '=' may separate keyword and value, with whitespace around it.
        while i < chars.count, chars[i] == " " || chars[i] == "\t" { i += 1 }
        if i < chars.count, chars[i] == "=" {
            i += 1
            while i < chars.count, chars[i] == " " || chars[i] == "\t" { i += 1 }
        }
        let rest = String(String.UnicodeScalarView(chars[i...]))
        if rest.isEmpty {
            throw LineError(number: number, keyword: keyword, message: "no argument after keyword '\(keyword)'")
        }
        guard let arguments = splitArguments(rest) else {
            throw LineError(number: number, keyword: keyword, message: "invalid quotes")
        }
        return Line(keyword: keyword, arguments: arguments, rest: rest, number: number)
    }

    /// `argv_split` with comments ending the line: words separated by blanks, `"…"` or `'…'`
    /// quoting, and `\` escaping a quote, a backslash or (outside quotes) a space. `nil` when a
    /// quote is not closed.
    static func splitArguments(_ text: String) -> [String]? {
        let s = Array(text.unicodeScalars)
        var out: [String] = []
        var i = 0
        while i < s.count {
            if s[i] == " " || s[i] == "\t" { i += 1; continue }
            if s[i] == "#" { break }
            var quote: Unicode.Scalar?
            var word = String.UnicodeScalarView()
            while i < s.count {
                let c = s[i]
                if c == "\\", i + 1 < s.count,
                   s[i + 1] == "'" || s[i + 1] == "\"" || s[i + 1] == "\\" || (quote == nil && s[i + 1] == " ") {
                    i += 1
                    word.append(s[i])
                } else if quote == nil && (c == " " || c == "\t") {
                    break
                } else if quote == nil && (c == "\"" || c == "'") {
                    quote = c
                } else if let q = quote, c == q {
                    quote = nil
                } else {
                    word.append(c)
                }
                i += 1
            }
            if quote != nil { return nil }
            out.append(String(word))
        }
        return out
    }

    /// Every keyword OpenSSH's client accepts (current OpenSSH plus Debian's GSSAPI additions),
    /// so a configuration `ssh` reads is never refused here and a misspelt keyword is.
    static let keywords: Set<String> = [
        "addkeystoagent", "addressfamily", "afstokenpassing", "batchmode", "bindaddress", "bindinterface",
        "canonicaldomains", "canonicalizefallbacklocal", "canonicalizehostname", "canonicalizemaxdots",
        "canonicalizepermittedcnames", "casignaturealgorithms", "certificatefile", "challengeresponseauthentication",
        "channeltimeout", "checkhostip", "cipher", "ciphers", "clearallforwardings", "compression", "compressionlevel",
        "connectionattempts", "connecttimeout", "controlmaster", "controlpath", "controlpersist", "dsaauthentication",
        "dynamicforward", "enableescapecommandline", "enablesshkeysign", "escapechar", "exitonforwardfailure",
        "fallbacktorsh", "fingerprinthash", "forkafterauthentication", "forwardagent", "forwardx11",
        "forwardx11timeout", "forwardx11trusted", "gatewayports", "globalknownhostsfile", "globalknownhostsfile2",
        "gssapiauthentication", "gssapidelegatecredentials", "gssapikeyexchange", "gssapiclientidentity",
        "gssapiserveridentity", "gssapirenewalforcesrekey", "gssapitrustdns", "gssapikexalgorithms",
        "hashknownhosts", "host", "hostbasedacceptedalgorithms", "hostbasedauthentication", "hostbasedkeytypes",
        "hostkeyalgorithms", "hostkeyalias", "hostname", "identitiesonly", "identityagent", "identityfile",
        "identityfile2", "ignoreunknown", "include", "ipqos", "kbdinteractiveauthentication",
        "kbdinteractivedevices", "keepalive", "kerberosauthentication", "kerberostgtpassing", "kexalgorithms",
        "knownhostscommand", "localcommand", "localforward", "loglevel", "logverbose", "macs", "match",
        "nohostauthenticationforlocalhost", "numberofpasswordprompts", "obscurekeystroketiming",
        "passwordauthentication", "permitlocalcommand", "permitremoteopen", "pkcs11provider", "port",
        "preferredauthentications", "protocol", "proxycommand", "proxyjump", "proxyusefdpass",
        "pubkeyacceptedalgorithms", "pubkeyacceptedkeytypes", "pubkeyauthentication", "refuseconnection",
        "rekeylimit", "remotecommand", "remoteforward", "requesttty", "requiredrsasize", "revokedhostkeys",
        "rhostsauthentication", "rhostsrsaauthentication", "rsaauthentication", "securitykeyprovider", "sendenv",
        "serveralivecountmax", "serveraliveinterval", "sessiontype", "setenv", "skeyauthentication",
        "smartcarddevice", "stdinnull", "streamlocalbindmask", "streamlocalbindunlink", "stricthostkeychecking",
        "syslogfacility", "tag", "tcpkeepalive", "tisauthentication", "tunnel", "tunneldevice", "updatehostkeys",
        "useprivilegedport", "user", "userknownhostsfile", "userknownhostsfile2", "useroaming", "usersh",
        "verifyhostkeydns", "versionaddendum", "visualhostkey", "warnweakcrypto", "xauthlocation",
    ]

    /// Keywords whose every occurrence adds a value (the others keep the first value obtained).
    static let accumulating: Set<String> = [
        "identityfile", "identityfile2", "certificatefile", "localforward", "remoteforward", "dynamicforward",
        "sendenv", "setenv", "channeltimeout",
    ]

    /// Keywords that name the same option as another one.
    static let aliases: [String: String] = [
        "identityfile2": "identityfile", "keepalive": "tcpkeepalive", "hostbasedkeytypes": "hostbasedacceptedalgorithms",
        "pubkeyacceptedkeytypes": "pubkeyacceptedalgorithms", "challengeresponseauthentication": "kbdinteractiveauthentication",
        "skeyauthentication": "kbdinteractiveauthentication", "tisauthentication": "kbdinteractiveauthentication",
        "dsaauthentication": "pubkeyauthentication",
    ]
}

/// OpenSSH's wildcard patterns (`match.c`): `*` any run, `?` one character, `!` negates an entry
/// of a comma list.
enum SSHPattern {
    /// `match_pattern`: the whole of `string` against one pattern, case-sensitively.
    static func matches(_ string: String, _ pattern: String) -> Bool {
        matches(Array(string.unicodeScalars)[...], Array(pattern.unicodeScalars)[...])
    }

    private static func matches(_ s: ArraySlice<Unicode.Scalar>, _ p: ArraySlice<Unicode.Scalar>) -> Bool {
        var s = s, p = p
        while true {
            guard let pc = p.first else { return s.isEmpty }
            if pc == "*" {
                while p.first == "*" { p = p.dropFirst() }
                if p.isEmpty { return true }
                var rest = s
                while true {
                    if matches(rest, p) { return true }
                    guard !rest.isEmpty else { return false }
                    rest = rest.dropFirst()
                }
            }
            guard let sc = s.first else { return false }
            if pc != "?" && pc != sc { return false }
            s = s.dropFirst(); p = p.dropFirst()
        }
    }

    /// `match_pattern_list`: 1 when an entry matches, -1 when a negated entry matches (which
    /// wins), 0 otherwise. With `lowercasing`, the patterns are lowercased first (host names).
    static func matchList(_ string: String, _ list: String, lowercasing: Bool) -> Int {
        var positive = false
        for raw in list.split(separator: ",", omittingEmptySubsequences: false) {
            var entry = Substring(raw)
            let negated = entry.first == "!"
            if negated { entry = entry.dropFirst() }
            let pattern = lowercasing ? entry.lowercased() : String(entry)
            if matches(string, pattern) {
                if negated { return -1 }
                positive = true
            }
        }
        return positive ? 1 : 0
    }
}
