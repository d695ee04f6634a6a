import FarmCore
import Inventory
import Testing

/// The inventory's SSH keys: what it sets is recorded with its line (ssh_config may supply the
/// rest), `proxy_jump` and `ssh.ssh_config`.
@Suite("Inventory SSH keys")
struct SSHKeysTests {
    @Test func whatTheInventorySetsIsRecordedWithItsLineAndTheRestIsLeftToSSHConfig() throws {
        let inventory = try parse("""
            ssh:
              ssh_config: ~/.ssh/farm_config
              connect_timeout: 5
            defaults:
              user: builder
            hosts:
              farmbox:
                arch: amd64
              bastioned:
                arch: amd64
                address: 10.0.0.7
                proxy_jump: ops@bastion:2222,bastion-2
            """)
        let farmbox = try #require(inventory["farmbox"])
        #expect(farmbox.sshOrigins == ["user": "farm.yaml:5"])
        #expect(farmbox.address == "farmbox" && farmbox.proxyJump == nil)
        let bastioned = try #require(inventory["bastioned"])
        #expect(bastioned.proxyJump == "ops@bastion:2222,bastion-2")
        #expect(bastioned.sshOrigins == ["user": "farm.yaml:5", "address": "farm.yaml:11", "proxy_jump": "farm.yaml:12"])
        #expect(inventory.ssh.sshConfig == "~/.ssh/farm_config")
        #expect(inventory.ssh.origins == ["ssh_config": "farm.yaml:2", "connect_timeout": "farm.yaml:3"])
    }

    @Test func aProxyJumpWithSpacesIsRefusedWithItsLine() {
        let found = problems("hosts:\n  a:\n    arch: amd64\n    proxy_jump: bastion one\n")
        #expect(found.count == 1 && found.first?.line == 4 && found.first?.message.contains("ProxyJump") == true, "\(found)")
    }
}
