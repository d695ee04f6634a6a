import FarmCore
import FarmTestSupport
import Foundation
import Inventory
import Testing

/// A machine with no files and a fixed CPU, so results do not depend on where tests run.
let testEnvironment = LoaderEnvironment(
    localArch: .amd64, localCapabilities: { [Capability("avx2"), Capability("fma")] },
    isReadable: { $0.hasPrefix("/keys/") }, home: "/home/builder")

func parse(_ text: String) throws(ConfigurationError) -> Inventory {
    try InventoryLoader.parse(text, file: "farm.yaml", environment: testEnvironment)
}

/// The diagnostics of an inventory that must fail.
func problems(_ text: String) -> [Diagnostic] {
    do {
        _ = try parse(text)
        Issue.record("expected the inventory to be refused")
        return []
    } catch { return error.diagnostics }
}

@Suite("Inventory loading")
struct InventoryLoaderTests {
    @Test func shippedInventoriesParse() throws {
        let root = TestEnvironment.repositoryRoot.path
        let local = try InventoryLoader.load(path: root + "/inventory/local.yaml")
        #expect(local.hosts.map(\.name) == ["localhost"])
        #expect(local.hosts[0].connection == .local)

        let farm = try InventoryLoader.load(path: root + "/inventory/example-farm.yaml")
        #expect(farm.hosts.count >= 6)
        #expect(Set(farm.hosts.map(\.arch)) == [.amd64, .arm64])
        let sapphire = try #require(farm["sapphire-1"])
        #expect(sapphire.has([Capability("amx_bf16"), Capability("amx_tile"), Capability("avx512_bf16")]))
        // Several AVX-512 levels are present, so each vLLM variant has a place to build.
        let levels = Set(farm.hosts.filter { $0.arch == .amd64 }.map { h in
            ["avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16"].filter { h.capabilities.contains(Capability($0)) }.count
        })
        #expect(levels == [0, 1, 2, 3, 4])
    }

    @Test func defaultsGroupsAndHostValuesCombine() throws {
        let inv = try parse("""
        defaults:
          user: builder
          slots: 2
          work_dir: /srv/wf
          labels: [farm]
        groups:
          avx512:
            hosts: [b]
            capabilities: [avx512]
            slots: 3
            labels: [fast]
          big:
            max_jobs: 32
            speed: 2
        hosts:
          a:
            arch: x86_64
            capabilities: [avx2]
          b:
            arch: amd64
            capabilities: [vnni]
            groups: [big]
            slots: 4
            user: root
          c:
            arch: aarch64
            groups: [big]
            speed: 0.5
        """)
        let a = try #require(inv["a"]), b = try #require(inv["b"]), c = try #require(inv["c"])
        #expect(a.user == "builder" && a.slots == 2 && a.workDir == "/srv/wf" && a.address == "a" && a.port == 22)
        #expect(a.arch == .amd64 && a.labels == ["farm"])
        // Group values over defaults, host values over groups; lists accumulate.
        #expect(b.slots == 4 && b.user == "root" && b.maxJobs == 32 && b.speed == 2)
        #expect(b.labels == ["farm", "fast"])
        #expect(b.capabilities == Set(["avx512f", "avx512vl", "avx512bw", "avx512dq", "avx512_vnni"].map(Capability.init)))
        #expect(c.arch == .arm64 && c.speed == 0.5 && c.maxJobs == 32)
    }

    @Test func everyKeyIsRead() throws {
        let inv = try parse("""
        ssh:
          known_hosts: /etc/wf/known_hosts
          host_key_checking: accept-new
          connect_timeout: 3
          keepalive: 0
        hosts:
          h:
            address: 127.0.0.2
            port: 2222
            user: u
            identity_file: /keys/id_ed25519
            passphrase_env: WF_PASS
            arch: amd64
            capabilities: [avx2, avx512, amx]
            reserved: [amx_bf16]
            slots: 2
            max_jobs: 8
            speed: 1.5
            labels: [x]
            drain: true
            host_key: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG
            work_dir: /w
        """)
        let h = try #require(inv["h"])
        #expect(h.address == "127.0.0.2" && h.port == 2222 && h.user == "u" && h.identityFile == "/keys/id_ed25519")
        #expect(h.passphraseEnv == "WF_PASS" && h.reserved == [Capability("amx_bf16")] && h.slots == 2 && h.maxJobs == 8)
        #expect(h.drain && h.hostKey?.hasPrefix("ssh-ed25519 ") == true && h.workDir == "/w" && h.labels == ["x"])
        #expect(inv.ssh.hostKeyChecking == .acceptNew && inv.ssh.knownHosts == "/etc/wf/known_hosts")
        #expect(inv.ssh.connectTimeout == 3 && inv.ssh.keepaliveInterval == 0)
    }

    @Test func localHostsReadThisMachine() throws {
        let inv = try parse("hosts:\n  me:\n    connection: local\n    capabilities: [auto]\n")
        let me = try #require(inv["me"])
        #expect(me.arch == .amd64)
        #expect(me.capabilities == [Capability("avx2"), Capability("fma")])
    }

    @Test func hostsMayBeAList() throws {
        let inv = try parse("hosts:\n  - name: a\n    arch: amd64\n  - name: b\n    arch: arm64\n")
        #expect(inv.hosts.map(\.name) == ["a", "b"])
    }

    // Each error kind is reported with its line and key.
    @Test func unknownKeySuggestsTheRightOne() {
        let p = problems("hosts:\n  a:\n    arch: amd64\n    capabilites: [avx2]\n")
        #expect(p.count == 1)
        #expect(p[0].line == 4 && p[0].key == "hosts.a.capabilites")
        #expect(p[0].message.contains("did you mean 'capabilities'?"))
        #expect(p[0].description.hasPrefix("farm.yaml:4:5: error: hosts.a.capabilites: unknown key"))
    }

    @Test func duplicateHostNames() {
        let p = problems("hosts:\n  a:\n    arch: amd64\n  b:\n    arch: amd64\n  a:\n    arch: arm64\n")
        #expect(p.count == 1)
        #expect(p[0].line == 6 && p[0].message.contains("duplicate key 'a'") && p[0].message.contains("2, 6"))
        let list = problems("hosts:\n  - name: a\n    arch: amd64\n  - name: a\n    arch: arm64\n")
        #expect(list.count == 1 && list[0].line == 4 && list[0].message.contains("duplicate host name 'a'"))
    }

    @Test func unknownCapability() {
        let p = problems("hosts:\n  a:\n    arch: amd64\n    capabilities: [avx2, avx512_bf61]\n")
        #expect(p.count == 1 && p[0].line == 4 && p[0].key == "hosts.a.capabilities[1]")
        #expect(p[0].message.contains("unknown capability 'avx512_bf61'") && p[0].message.contains("did you mean 'avx512_bf16'?"))
    }

    @Test func badArchAndMissingArch() {
        let p = problems("hosts:\n  a:\n    arch: sparc64\n  b:\n    slots: 1\n")
        #expect(p.count == 2)
        #expect(p[0].line == 3 && p[0].key == "hosts.a.arch" && p[0].message.contains("'sparc64' is not a supported architecture"))
        #expect(p[1].line == 4 && p[1].key == "hosts.b.arch" && p[1].message.contains("missing 'arch'"))
    }

    @Test func nonPositiveSlotsAndSpeed() {
        let p = problems("hosts:\n  a:\n    arch: amd64\n    slots: 0\n    speed: 0\n    max_jobs: -2\n")
        #expect(p.map(\.line) == [4, 5, 6])
        #expect(p.map(\.key) == ["hosts.a.slots", "hosts.a.speed", "hosts.a.max_jobs"])
        #expect(p[0].message.contains("at least 1"))
    }

    @Test func unreadableIdentityFile() {
        let p = problems("hosts:\n  a:\n    arch: amd64\n    identity_file: ~/.ssh/missing\n")
        #expect(p.count == 1 && p[0].line == 4 && p[0].key == "hosts.a.identity_file")
        #expect(p[0].message.contains("'~/.ssh/missing' cannot be read"))
    }

    @Test func allProblemsAtOnceInLineOrder() {
        let p = problems("""
        defaults:
          slotz: 1
        hosts:
          a:
            arch: mips
            capabilities: [avx9]
          b:
            arch: amd64
            connection: telnet
            groups: [nope]
        """)
        #expect(p.map(\.line) == [2, 5, 6, 9, 10])
    }

    @Test func hostKeyCheckingCannotBeTurnedOff() {
        let p = problems("ssh:\n  host_key_checking: no\nhosts:\n  a:\n    arch: amd64\n")
        #expect(p.count == 1 && p[0].line == 2 && p[0].message.contains("cannot be turned off"))
    }

    @Test func syntaxErrorsHaveALine() {
        let p = problems("hosts:\n  a:\n    arch: [amd64\n  b: {\n")
        #expect(p.count == 1 && p[0].line > 0 && p[0].message.contains("YAML"))
    }

    @Test func reservedMustBeOwnFlags() {
        let p = problems("hosts:\n  a:\n    arch: amd64\n    capabilities: [avx2]\n    reserved: [amx]\n")
        #expect(p.count == 1 && p[0].message.contains("not among the host's capabilities"))
    }

    @Test func cpuinfoFlagsAreRead() {
        let text = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_vnni made_up_flag\n"
        #expect(CPUInfo.flags(inText: text) == Set(["sse2", "avx2", "avx512f", "avx512_vnni"].map(Capability.init)))
        #expect(CPUInfo.flags(inText: "Features\t: fp asimd sve\n") == Set(["fp", "asimd", "sve"].map(Capability.init)))
    }
}
