#!/usr/bin/env bash
# The embedded default: the sample recipe built on this machine (inventory/local.yaml), verified,
# published to a local index in dist/index, and installed from it with pip.
set -uo pipefail
cd "$(dirname "$0")/.."
bin=.build/debug/wheelfarm
dist=${WHEELFARM_DEMO_DIST:-dist}
venv=${WHEELFARM_VENV:-$PWD/.venv}

echo "== the plan: every sample variant against this machine =="
"$bin" plan --inventory inventory/local.yaml --recipe sample --variant all
# Exit code 1 only says that some variants cannot be built on this CPU; the plan says why.
[ $? -le 1 ] || exit 2

echo
echo "== release: the variant this CPU builds natively (wfsample-cpu, amd64) =="
"$bin" release --inventory inventory/local.yaml --recipe sample --variant noavx512 --platform linux/amd64 \
  --dist-dir "$dist" || exit $?

echo
echo "== install it from the local index =="
site=$(mktemp -d)
"$venv/bin/python" -m pip install --quiet --no-deps --target "$site" \
  --index-url "file://$(cd "$dist" && pwd)/index/simple" wfsample-cpu || exit 1
PYTHONPATH="$site" "$venv/bin/python" -c '
import importlib.metadata as md, wfsample
from wfsample import _kernels
print("installed wfsample-cpu", md.version("wfsample-cpu"), "- compiled ISA paths:", _kernels.isa())
'
rm -rf "$site"
