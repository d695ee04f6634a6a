#!/usr/bin/env bash
# Downloads a 256 MiB file from a loopback sshd with wheelfarm's SSH transport and with OpenSSH scp
# in the same run; prints both throughputs, their ratio and wheelfarm's peak memory growth.
# Needs root and openssh-server (scripts/setup.sh). Usage: Benchmarks/ssh-download.sh [MiB] [runs]
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product ssh-download-bench >/dev/null
exec .build/release/ssh-download-bench "$@"
