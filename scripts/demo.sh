#!/usr/bin/env bash
# The embedded default: the sample recipe on this machine (inventory/local.yaml).
# Shows what this CPU can build natively and why the other variants cannot be placed here.
set -uo pipefail
cd "$(dirname "$0")/.."
bin=.build/debug/wheelfarm
echo "== hosts (inventory/local.yaml) =="
"$bin" hosts list --inventory inventory/local.yaml
echo
echo "== plan: every sample variant on this machine =="
"$bin" plan --inventory inventory/local.yaml --recipe sample --variant all
status=$?
# Exit code 1 only means some variants cannot be built on this CPU, which the plan explains.
[ "$status" -le 1 ] || exit "$status"
exit 0
