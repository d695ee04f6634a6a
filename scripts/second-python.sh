#!/usr/bin/env bash
# Installs a second CPython (3.13) for the tests, so the end-to-end release test builds wheels for
# two Python versions for real. Debian 12 ships one CPython (3.11) and no other is packaged for it;
# the source comes through apt from Debian 13's python3.13 source package (apt checks it against
# the signed Sources index), is built without PGO/LTO (a few minutes on two cores) and goes to
# $WHEELFARM_TEST_PYTHON_PREFIX (default /opt/cpython-3.13). Only the simulated build hosts that
# ask for it put it on their PATH; the machine's own `python3` is untouched. Idempotent.
set -euo pipefail

prefix=${WHEELFARM_TEST_PYTHON_PREFIX:-/opt/cpython-3.13}
python=$prefix/bin/python3.13

usable() {
  "$python" - <<'PY' 2>/dev/null
import ensurepip, os, ssl, sysconfig, venv, zlib
raise SystemExit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))
PY
}

if usable; then exit 0; fi

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  need=()
  for p in build-essential libssl-dev zlib1g-dev libffi-dev libbz2-dev liblzma-dev libsqlite3-dev xz-utils; do
    dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
  done
  if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "second-python: building CPython 3.13 into $prefix (once; a few minutes)"

# A private apt configuration: the system's sources, lists and caches are left alone.
mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
echo "deb-src http://deb.debian.org/debian trixie main" > "$work/sources.list"
apt_options=(-o Dir::Etc::SourceList="$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
             -o Dir::State::Lists="$work/lists" -o Dir::Cache="$work/cache" -o APT::Sandbox::User=root)
apt-get "${apt_options[@]}" update -qq
(cd "$work" && apt-get "${apt_options[@]}" source --download-only -qq python3.13 >/dev/null)
tar -xJf "$work"/python3.13_*.orig.tar.xz -C "$work"

cd "$work"/Python-3.13*/
if ! { ./configure --prefix="$prefix" --without-ensurepip && make -j"$(nproc)" && make altinstall; } > "$work/build.log" 2>&1; then
  tail -n 40 "$work/build.log" >&2
  echo "second-python: building CPython 3.13 failed (the last lines of its log are above)" >&2
  exit 1
fi
usable || { echo "second-python: $python lacks ssl, zlib, venv or its headers" >&2; exit 1; }
echo "second-python: $("$python" --version) at $python"
