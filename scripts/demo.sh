#!/usr/bin/env bash
# The embedded default: the sample recipe planned against this machine (inventory/local.yaml),
# every variant the plan places here built for real, verified, published to a local index in
# dist/index, and each installed from that index with pip and run.
#
# Runs the release build of wheelfarm (`make demo` builds it first), the binary users run;
# WHEELFARM_BINARY overrides it, WHEELFARM_DEMO_DIST the dist directory.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
bin=${WHEELFARM_BINARY:-.build/release/wheelfarm}
dist=${WHEELFARM_DEMO_DIST:-dist}
venv=${WHEELFARM_VENV:-$PWD/.venv}
[ -x "$bin" ] || { echo "demo: no wheelfarm binary at $bin (make demo builds it)" >&2; exit 2; }

echo "== the plan: every sample variant against this machine =="
"$bin" plan --inventory inventory/local.yaml --recipe sample --variant all
# Exit code 1 only says that some variants cannot be built on this CPU; the plan says why.
[ $? -le 1 ] || exit 2

# The packages the plan places on this machine (the others need a CPU this one is not).
plan_json=$("$bin" plan --inventory inventory/local.yaml --recipe sample --variant all --json)
[ $? -le 1 ] || exit 2
packages=$(printf '%s' "$plan_json" | "$venv/bin/python" -c '
import json, sys
plan = json.load(sys.stdin)
print(",".join(sorted({job["package"] for job in plan["jobs"] if job["placeable"]})))
') || exit 2
if [ -z "$packages" ]; then
  echo "demo: this machine can build no sample variant natively (the plan above says why)" >&2
  exit 1
fi

echo
echo "== release: every variant this CPU builds natively ($packages) =="
"$bin" release --inventory inventory/local.yaml --recipe sample --variant "$packages" --platform linux/amd64 \
  --dist-dir "$dist" || exit $?

echo
echo "== install each from the local index and run it =="
for package in ${packages//,/ }; do
  site=$(mktemp -d)
  "$venv/bin/python" -m pip install --quiet --no-deps --target "$site" \
    --index-url "file://$(cd "$dist" && pwd)/index/simple" "$package" || { rm -rf "$site"; exit 1; }
  PYTHONPATH="$site" "$venv/bin/python" - "$package" <<'PY' || { rm -rf "$site"; exit 1; }
import importlib.metadata as md, sys, wfsample
from wfsample import _kernels
package = sys.argv[1]
print(f"installed {package} {md.version(package)} - compiled ISA paths: {_kernels.isa()}")
PY
  rm -rf "$site"
done
