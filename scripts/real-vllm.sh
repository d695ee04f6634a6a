#!/usr/bin/env bash
# Builds a real vLLM CPU wheel through `wheelfarm release` on this machine (inventory/local.yaml),
# from the PyPI sdist made into a local git repository; verifies it (ISA and platform audits),
# publishes it to the local index in the dist directory, installs it from there into a fresh venv
# and imports it (vllm._C and vLLM's CPU platform detection).
#
#   scripts/real-vllm.sh VERSION [VARIANT]        e.g. scripts/real-vllm.sh 0.16.0 noavx512
#
# Not part of `make test`: a cold build downloads several GB (torch and its CUDA libraries).
# Environment:
#   WHEELFARM_CACHE   where sdists, the git repository and downloaded wheels are kept
#                     (default /var/cache/wheelfarm; outside the clone, kept between runs)
#   DIST              the release's dist directory (default $WHEELFARM_CACHE/real-vllm/dist-VERSION)
#   PYTHON_VERSIONS   the Pythons to choose from (default 3.11, the one this machine has with torch)
#
# Substitutions, said again in the build log:
# - PyTorch's CPU index is unreachable here: WHEELFARM_TORCH_INDEX=pypi makes the build use PyPI's
#   torch of the same version (a CUDA build) and tells its CMake config not to require CUDA.
# - PIP_FIND_LINKS gains $WHEELFARM_CACHE/wheels, where wheels downloaded once are kept. (This
#   machine's pip configuration may also list a folder holding a CPU torch of another version;
#   the build pins torch exactly, so it is not picked.)
set -euo pipefail
cd "$(dirname "$0")/.."


VERSION=${1:?usage: scripts/real-vllm.sh VERSION [VARIANT]}
VARIANT=${2:-noavx512}
CACHE=${WHEELFARM_CACHE:-/var/cache/wheelfarm}
DIST=${DIST:-$CACHE/real-vllm/dist-$VERSION-$VARIANT}
PYTHONS=${PYTHON_VERSIONS:-3.11}
REPO=$CACHE/real-vllm/vllm.git-work
say() { printf '==> %s\n' "$*" >&2; }

mkdir -p "$CACHE/sdists" "$CACHE/wheels" "$CACHE/real-vllm"

# 1. The sdist from PyPI, SHA-256 checked against the index.
say "vLLM $VERSION sdist from PyPI (SHA-256 checked against the index)"
python3 agents/fetch_sdist.py --index https://pypi.org/simple --project vllm --version "$VERSION" --dest "$CACHE/sdists"
SDIST=$CACHE/sdists/$(cat "$CACHE/sdists/.last")

# 2. A local git repository holding each version as tag v<version> (one commit per version).
if [ ! -d "$REPO/.git" ]; then
  git init -q "$REPO"
  git -C "$REPO" config user.name wheelfarm; git -C "$REPO" config user.email wheelfarm@localhost
fi
if ! git -C "$REPO" rev-parse -q --verify "refs/tags/v$VERSION" >/dev/null; then
  say "committing the sdist as tag v$VERSION of $REPO"
  git -C "$REPO" checkout -q --orphan "sdist-$VERSION"
  git -C "$REPO" rm -rq --cached . >/dev/null 2>&1 || true
  find "$REPO" -mindepth 1 -maxdepth 1 ! -name .git -exec rm -rf {} +
  tar -xzf "$SDIST" -C "$REPO" --strip-components=1
  git -C "$REPO" add -A -f .
  git -C "$REPO" commit -qm "vLLM $VERSION from the PyPI sdist"
  git -C "$REPO" tag "v$VERSION"
fi

# 3. The release, with the release binary. The shipped recipe requires manylinux_2_28, which a
# native build on a newer glibc cannot honestly meet (plan says so; --builder docker is the way
# there). This script builds on this machine, so it uses a copy of the recipe with
# `platform: linux`: the wheel gets the most compatible tag its content allows (auditwheel repair
# on the host, audited again centrally), and it goes to the local index only.
BIN=${WHEELFARM_BINARY:-.build/release/wheelfarm}
if [ ! -x "$BIN" ]; then say "building wheelfarm (release)"; swift build -c release --product wheelfarm >&2; fi
RECIPE_DIR="$CACHE/real-vllm/recipe"
rm -rf "$RECIPE_DIR"; mkdir -p "$RECIPE_DIR"
cp -R recipes/vllm-cpu "$RECIPE_DIR/vllm-cpu"
sed 's/^platform: manylinux_2_28$/platform: linux/' recipes/vllm-cpu.yaml >"$RECIPE_DIR/vllm-cpu.yaml"
grep -q '^platform: linux$' "$RECIPE_DIR/vllm-cpu.yaml" || { say "the recipe's platform line moved: update this script"; exit 2; }
say "platform: this host's glibc is $(ldd --version | head -1 | awk '{print $NF}'); building with 'platform: linux' (the best tag the content allows, local index only)"
export WHEELFARM_TORCH_INDEX=pypi
export PIP_FIND_LINKS="$CACHE/wheels${PIP_FIND_LINKS:+ $PIP_FIND_LINKS}"
say "PyTorch's CPU index is unreachable here: building with PyPI's torch of the same version (WHEELFARM_TORCH_INDEX=pypi)"
start=$(date +%s)
set +e
case $(uname -m) in aarch64|arm64) PLATFORM=linux/arm64 ;; *) PLATFORM=linux/amd64 ;; esac
nice -n 10 "$BIN" release --inventory inventory/local.yaml --recipe "$RECIPE_DIR/vllm-cpu.yaml" --source "$REPO" \
  --versions "$VERSION" --variant "$VARIANT" --python-versions "$PYTHONS" --platform "$PLATFORM" --dist-dir "$DIST" --skip-github
rc=$?
set -e
end=$(date +%s)
say "release exit $rc after $((end - start)) s"
[ "$rc" = 0 ] || exit "$rc"

# 4. Install from the local index into a fresh venv and import it.
WHEEL=$(find "$DIST" -maxdepth 1 -name 'vllm_cpu*.whl' -newer "$SDIST" | sort | tail -n1)
[ -n "$WHEEL" ] || { say "no wheel in $DIST"; exit 1; }
say "wheel: $(basename "$WHEEL"), $(stat -c %s "$WHEEL") bytes"
VENV=$CACHE/real-vllm/venv-$VERSION-$VARIANT
rm -rf "$VENV"
"python$PYTHONS" -m venv "$VENV"
TORCH=$(unzip -p "$WHEEL" '*.dist-info/METADATA' | sed -n 's/^Requires-Dist: torch==\([0-9.]*\).*/\1/p' | head -n1)
say "installing $(basename "$WHEEL") from $DIST/index (no dependencies) and PyPI's torch ${TORCH:-?}"
"$VENV/bin/pip" install -q --no-deps --index-url "file://$DIST/index/simple" "$(unzip -p "$WHEEL" '*.dist-info/METADATA' | sed -n 's/^Name: //p' | head -n1)==$VERSION"
"$VENV/bin/pip" install -q "torch==${TORCH}" regex cachetools psutil pydantic 'transformers' cloudpickle msgspec pyzmq 2>&1 | tail -n 3 >&2 || true
say "import test"
"$VENV/bin/python" - <<'PY'
import importlib.metadata as md, json
import torch
import vllm._C  # noqa: F401  (the compiled extension loads against torch)
from vllm.platforms import current_platform
print(json.dumps({"vllm_version_seen_by_platform_detection": md.version("vllm"),
                  "platform": type(current_platform).__name__, "is_cpu": current_platform.is_cpu()}))
assert current_platform.is_cpu(), "vLLM did not detect the CPU platform"
PY
