#!/usr/bin/env bash
# Agent delivery per build: wheelfarm's content-addressed check (one `test -f` of the bundle's
# completion marker when the scripts did not change) against copying the agent scripts before every
# build with scp or rsync, as a hand-written pipeline would. Runs a real sshd on loopback (needs root
# and openssh-server), N rounds each, and prints the mean time per build and the ratios. Each `ssh`
# exec runs the remote user's login shell (its rc files count); OpenSSH 9's scp uses the SFTP
# subsystem, which does not: the bare exec row shows that fixed cost.
#   Benchmarks/agent-delivery.sh [ROUNDS]
set -euo pipefail
rounds=${1:-20}
repo=$(cd "$(dirname "$0")/.." && pwd)
dir=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
cleanup() { [ -f "$dir/sshd.pid" ] && kill "$(cat "$dir/sshd.pid")" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT

ssh-keygen -q -t ed25519 -N '' -f "$dir/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$dir/client_key"
cp "$dir/client_key.pub" "$dir/authorized_keys"
mkdir -p /run/sshd
cat > "$dir/sshd_config" <<CONF
ListenAddress 127.0.0.1:$port
HostKey $dir/host_key
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
PasswordAuthentication no
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
CONF
/usr/sbin/sshd -f "$dir/sshd_config"
for _ in $(seq 50); do [ -f "$dir/sshd.pid" ] && break; sleep 0.1; done
echo "127.0.0.1 $(cut -d' ' -f1,2 "$dir/host_key.pub")" | sed "s/^127.0.0.1/[127.0.0.1]:$port/" > "$dir/known_hosts"
opts=(-o "UserKnownHostsFile=$dir/known_hosts" -o StrictHostKeyChecking=yes -o BatchMode=yes -i "$dir/client_key")
target=root@127.0.0.1
work=$dir/remote-work
hash=$(cd "$repo/agents" && find . -type f ! -name '.*' | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-64)
mkdir -p "$work/agents/$hash" && cp -R "$repo/agents/." "$work/agents/$hash/" && echo "$hash" > "$work/agents/$hash/.complete"

time_it() {  # time_it LABEL COMMAND...: mean seconds per round
  local start end
  start=$(date +%s.%N)
  for _ in $(seq "$rounds"); do "$@" >/dev/null; done
  end=$(date +%s.%N)
  awk -v s="$start" -v e="$end" -v n="$rounds" 'BEGIN { printf "%.4f", (e - s) / n }'
}
bare=$(time_it ssh -n -p "$port" "${opts[@]}" "$target" "exec /bin/true")
check=$(time_it ssh -n -p "$port" "${opts[@]}" "$target" "test -f $work/agents/$hash/.complete")
scp=$(time_it scp -q -r -P "$port" "${opts[@]}" "$repo/agents" "$target:$work/copy-scp")
if command -v rsync >/dev/null; then
  rsync=$(time_it rsync -a -e "ssh -p $port ${opts[*]}" "$repo/agents/" "$target:$work/copy-rsync/")
else
  rsync=''
fi
files=$(find "$repo/agents" -type f | wc -l)
echo "agent delivery per build ($files files, $rounds rounds, loopback sshd)"
printf '  ssh exec of /bin/true: %8.1f ms\n' "$(awk -v x="$bare" 'BEGIN { print x * 1000 }')"
printf '  wheelfarm hash check : %8.1f ms\n' "$(awk -v x="$check" 'BEGIN { print x * 1000 }')"
printf '  scp -r every build   : %8.1f ms  (%.1fx the check)\n' "$(awk -v x="$scp" 'BEGIN { print x * 1000 }')" "$(awk -v a="$scp" -v b="$check" 'BEGIN { print a / b }')"
if [ -n "$rsync" ]; then
  printf '  rsync -a every build : %8.1f ms  (%.1fx the check)\n' "$(awk -v x="$rsync" 'BEGIN { print x * 1000 }')" "$(awk -v a="$rsync" -v b="$check" 'BEGIN { print a / b }')"
else
  echo "  rsync: not installed"
fi
