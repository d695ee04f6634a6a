#!/usr/bin/env bash
# Installs everything wheelfarm and its tests need on a fresh Debian 12 machine (run as root).
# Idempotent: safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  need=()
  for p in libssh2-1-dev openssh-server openssh-client libzydis-dev zlib1g-dev shellcheck unzip zip binutils \
           gcc g++ gcc-aarch64-linux-gnu g++-aarch64-linux-gnu binutils-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static \
           libsqlite3-dev python3-venv python3-dev git time ccache libnuma-dev cmake; do
    dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
  done
  if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
fi

venv="${WHEELFARM_VENV:-$PWD/.venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
"$venv/bin/python" -m pip install -q --disable-pip-version-check \
  'pypiserver==2.4.*' passlib twine wheel setuptools build >/dev/null
echo "setup: done (venv at $venv)"
