#!/usr/bin/env bash
# The toolchain self-check: proves that each tool the build, the tests and the demo use works,
# rather than that a package is installed. Run by `make test` and `make demo` (through
# `scripts/setup.sh --check`) before anything else, and by the fresh-root check inside a new
# Debian 12 root. Every failure names the Debian package (or the command) that fixes it.
#
#   scripts/doctor.sh [--tests]
#
# --tests also checks what only the tests need: an extension module for the second CPython
# (scripts/second-python.sh), or, before it is built, the headers and tools its build needs. Exit code: 0 all checks passed, 1 some failed.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
repo=$PWD

tests=no
for arg in "$@"; do
  case $arg in
    --tests) tests=yes ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "doctor: unknown option '$arg'" >&2; exit 2 ;;
  esac
done

venv=${WHEELFARM_VENV:-$repo/.venv}
second_prefix=${WHEELFARM_TEST_PYTHON_PREFIX:-/opt/cpython-3.13}
work=$(mktemp -d)
sshd_pid=''
cleanup() {
  if [ -n "$sshd_pid" ]; then kill "$sshd_pid" 2>/dev/null; wait "$sshd_pid" 2>/dev/null; fi
  rm -rf "$work"
}
trap cleanup EXIT

failures=()
started=$(date +%s%N)

# check NAME FIX COMMAND...: runs COMMAND with its output in a log; on failure records NAME, the
# last lines of the log and FIX (what to install or run).
check() {
  local name=$1 fix=$2
  shift 2
  local log=$work/check.log t0 ms
  t0=$(date +%s%N)
  if "$@" >"$log" 2>&1; then
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    printf '  ok    %-44s %5d ms\n' "$name" "$ms"
  else
    printf '  FAIL  %s\n' "$name"
    sed -e 's/^/          /' "$log" | tail -n 6
    printf '        fix: %s\n' "$fix"
    failures+=("$name: $fix")
  fi
}

apt_fix() { echo "apt-get install $* (or run scripts/setup.sh)"; }

# --- Commands ------------------------------------------------------------------------------------

tool() {
  local cmd=$1
  command -v "$cmd" >/dev/null || { echo "'$cmd' is not on PATH"; return 1; }
}
tools_present() {
  local missing=() cmd
  for cmd in "$@"; do command -v "$cmd" >/dev/null || missing+=("$cmd"); done
  [ ${#missing[@]} = 0 ] || { echo "not on PATH: ${missing[*]}"; return 1; }
}

basic_tools() {
  tools_present git unzip zip shellcheck || return 1
  [ -x /usr/bin/time ] || { echo "missing /usr/bin/time"; return 1; }
  shellcheck --version >/dev/null && unzip -v >/dev/null && zip -v >/dev/null
}
check "git, unzip, zip, shellcheck, time" "$(apt_fix git unzip zip shellcheck time)" basic_tools
check "util-linux: unshare, setsid, flock" "$(apt_fix util-linux)" \
  bash -c 'command -v flock >/dev/null && command -v setsid >/dev/null &&
           unshare --mount --pid --fork --mount-proc --propagation private true'

# --- Compilers -----------------------------------------------------------------------------------

cat > "$work/hello.c" <<'C'
#include <stdio.h>
int main(void) { puts("hello from aarch64"); return 0; }
C
echo 'int add_one(int x) { return x + 1; }' > "$work/free.c"
# Three steps, so that a failure names the one package behind it.
aarch64_object() {
  tool aarch64-linux-gnu-gcc || return 1
  aarch64-linux-gnu-gcc -O1 -ffreestanding -c -o "$work/free-arm64.o" "$work/free.c" || return 1
  aarch64-linux-gnu-objdump -d "$work/free-arm64.o" | grep -q 'add_one>:'
}
aarch64_link() {
  [ -f "$work/free-arm64.o" ] || { echo "needs the aarch64 compiler above"; return 1; }
  aarch64-linux-gnu-gcc -O1 -o "$work/hello-arm64" "$work/hello.c"
}
aarch64_run() {
  [ -f "$work/hello-arm64" ] || { echo "needs the aarch64 program above"; return 1; }
  tool qemu-aarch64-static || return 1
  [ "$(qemu-aarch64-static -L /usr/aarch64-linux-gnu "$work/hello-arm64")" = "hello from aarch64" ]
}
check "aarch64 cross compiler and objdump" "$(apt_fix gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu)" aarch64_object
check "aarch64 program links (its C library)" "$(apt_fix libc6-dev-arm64-cross)" aarch64_link
check "aarch64 program runs under qemu-user" "$(apt_fix qemu-user-static)" aarch64_run

cat > "$work/isa.c" <<'C'
#include <immintrin.h>
__m512i vnni(__m512i acc, __m512i a, __m512i b) { return _mm512_dpbusd_epi32(acc, a, b); }
__m512 bf16(__m512 acc, __m512bh a, __m512bh b) { return _mm512_dpbf16_ps(acc, a, b); }
__m512i avx512(__m512i a, __m512i b) { return _mm512_add_epi32(a, b); }
__m256i avx2(__m256i a, __m256i b) { return _mm256_add_epi32(a, b); }
void amx(const void *config, const void *data) { _tile_loadconfig(config); _tile_loadd(0, data, 64); _tile_release(); }
C
isa_object() {
  tool gcc || return 1
  gcc -O2 -c -mavx2 -mavx512f -mavx512vl -mavx512bw -mavx512dq -mavx512vnni -mavx512bf16 -mamx-tile -mamx-bf16 \
    -o "$work/isa.o" "$work/isa.c" || return 1
  objdump -d "$work/isa.o" | grep -q vpdpbusd && objdump -d "$work/isa.o" | grep -q ldtilecfg
}
if [ "$(uname -m)" = x86_64 ]; then
  check "gcc: AVX-512/VNNI/BF16/AMX intrinsics, objdump" "$(apt_fix gcc binutils)" isa_object
fi

cat > "$work/omp.cpp" <<'CPP'
#include <memory>
#include <mutex>
#include <thread>
static std::once_flag once;
extern "C" int work(int n) {
  auto shared = std::make_shared<int>(0);
  std::call_once(once, [&] { *shared = 1; });
  std::thread t([&] { *shared += n; });
  t.join();
  int sum = 0;
#pragma omp parallel for reduction(+:sum)
  for (int i = 0; i < n; i++) sum += i;
  return sum + *shared;
}
CPP
check "g++: C++17 shared object with threads and OpenMP" "$(apt_fix g++ libgomp1)" \
  g++ -std=c++17 -O1 -fPIC -shared -fopenmp -o "$work/libomp-test.so" "$work/omp.cpp"

# --- C libraries the Swift package links -----------------------------------------------------------

cat > "$work/libs.c" <<'C'
#include <Zydis/Zydis.h>
#include <libssh2.h>
#include <sqlite3.h>
#include <zlib.h>
int main(void) {
  ZydisDecoder decoder;
  if (ZYAN_FAILED(ZydisDecoderInit(&decoder, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64))) return 1;
  if (libssh2_init(0) != 0) return 2;
  libssh2_exit();
  return sqlite3_libversion_number() > 0 && zlibVersion()[0] ? 0 : 3;
}
C
libraries() {
  tool pkg-config || return 1
  pkg-config --exists libssh2 zlib sqlite3 || { echo "pkg-config does not find libssh2, zlib or sqlite3"; return 1; }
  # shellcheck disable=SC2046
  gcc -o "$work/libs" "$work/libs.c" $(pkg-config --cflags --libs libssh2 zlib sqlite3) -lZydis -lZycore && "$work/libs"
}
check "Zydis, libssh2, SQLite, zlib (headers, pkg-config, link)" \
  "$(apt_fix libzydis-dev libssh2-1-dev libsqlite3-dev zlib1g-dev pkg-config)" libraries

# The system library targets' module maps, compiled by Swift as the package build would.
swift_modules() {
  cat > "$work/main.swift" <<'SWIFT'
import CLibSSH2
import CZlib
import CZydis
import Foundation
print(libssh2_init(0) == 0 && zlibVersion() != nil && ZydisGetVersion() > 0 ? "ok" : "failed")
SWIFT
  swiftc -I "$repo/Sources/CLibSSH2" -I "$repo/Sources/CZlib" -I "$repo/Sources/CZydis" \
    -module-cache-path "$work/modules" -o "$work/swift-modules" "$work/main.swift" || return 1
  [ "$("$work/swift-modules")" = ok ]
}
if command -v swiftc >/dev/null; then
  check "swiftc: the C modules (CLibSSH2, CZlib, CZydis) import and link" \
    "$(apt_fix libssh2-1-dev libzydis-dev zlib1g-dev pkg-config libc6-dev libstdc++-12-dev)" swift_modules
else
  echo "  skip  swiftc is not on PATH here (the Swift toolchain is installed separately)"
fi

# --- Python ----------------------------------------------------------------------------------------

cat > "$work/wfprobe.c" <<'C'
#define PY_SSIZE_T_CLEAN
#include <Python.h>
static PyObject *answer(PyObject *self, PyObject *args) { return PyLong_FromLong(42); }
static PyMethodDef methods[] = {{"answer", answer, METH_NOARGS, NULL}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "wfprobe", NULL, -1, methods};
PyMODINIT_FUNC PyInit_wfprobe(void) { return PyModule_Create(&module); }
C
# Builds and imports a CPython extension module with the given interpreter.
extension() {
  local python=$1 dir
  dir=$work/ext-$(basename "$python")-$RANDOM
  mkdir -p "$dir"
  "$python" -c 'import venv, ensurepip' || { echo "$python has no venv/ensurepip"; return 1; }
  local include suffix
  include=$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])') || return 1
  suffix=$("$python" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))') || return 1
  [ -f "$include/Python.h" ] || { echo "no Python.h in $include"; return 1; }
  gcc -O1 -fPIC -shared -I "$include" -o "$dir/wfprobe$suffix" "$work/wfprobe.c" || return 1
  [ "$(cd "$dir" && "$python" -c 'import wfprobe; print(wfprobe.answer())')" = 42 ]
}
system_python=$(command -v python3 || true)
if [ -z "$system_python" ]; then
  check "python3" "$(apt_fix python3 python3-venv python3-dev)" false
else
  check "CPython extension with $system_python ($("$system_python" -c 'import sys; print(sys.version.split()[0])' 2>/dev/null))" \
    "$(apt_fix python3-dev python3-venv)" extension "$system_python"
fi
second=$second_prefix/bin/python3.13
if [ "$tests" = yes ] && [ -x "$second" ]; then
  check "CPython extension with $second" "bash scripts/second-python.sh" extension "$second"
fi

venv_tools() {
  [ -x "$venv/bin/python" ] || { echo "no venv at $venv"; return 1; }
  "$venv/bin/python" -c 'import pypiserver, passlib, twine, wheel, setuptools, build' || return 1
  "$venv/bin/twine" --version >/dev/null && "$venv/bin/pypi-server" --help >/dev/null
}
check "venv tools: pypiserver, passlib, twine, wheel, setuptools, build" "bash scripts/setup.sh (creates $venv)" venv_tools

# The second CPython's build needs these headers (ssl, ctypes, bz2, lzma, sqlite3, zlib).
python_build_deps() {
  cat > "$work/pydeps.c" <<'C'
#include <bzlib.h>
#include <ffi.h>
#include <lzma.h>
#include <openssl/ssl.h>
#include <sqlite3.h>
#include <zlib.h>
int main(void) { return OPENSSL_init_ssl(0, NULL) == 1 && lzma_version_number() > 0 ? 0 : 1; }
C
  tools_present make || return 1
  gcc -o "$work/pydeps" "$work/pydeps.c" -lbz2 -lffi -llzma -lssl -lcrypto -lsqlite3 -lz && "$work/pydeps"
}
if [ "$tests" = yes ] && [ ! -x "$second" ]; then
  # Not built yet (make test runs scripts/second-python.sh before this check): what its build needs.
  check "headers and make to build the second CPython" \
    "$(apt_fix make libssl-dev libffi-dev libbz2-dev liblzma-dev libsqlite3-dev zlib1g-dev)" python_build_deps
fi

# --- OpenSSH ---------------------------------------------------------------------------------------

sshd_loopback() {
  tools_present ssh ssh-keygen ssh-agent ssh-add || return 1
  [ -x /usr/sbin/sshd ] || { echo "no /usr/sbin/sshd"; return 1; }
  local d=$work/ssh port
  mkdir -p "$d" /run/sshd
  ssh-keygen -q -t ed25519 -N '' -f "$d/host" && ssh-keygen -q -t ed25519 -N '' -f "$d/client" || return 1
  cp "$d/client.pub" "$d/authorized_keys"
  port=$(( 20000 + RANDOM % 20000 ))
  cat > "$d/sshd_config" <<EOF
ListenAddress 127.0.0.1:$port
HostKey $d/host
PidFile $d/sshd.pid
AuthorizedKeysFile $d/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
EOF
  /usr/sbin/sshd -f "$d/sshd_config" -D -e 2>"$d/sshd.log" &
  sshd_pid=$!
  local known=$d/known_hosts attempt out=''
  echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$d/host.pub")" > "$known"
  for attempt in $(seq 1 100); do
    out=$(ssh -i "$d/client" -p "$port" -o UserKnownHostsFile="$known" -o StrictHostKeyChecking=yes \
          -o BatchMode=yes -o ConnectTimeout=5 "$(id -un)@127.0.0.1" 'echo ssh-ok' 2>&1) && break
    kill -0 "$sshd_pid" 2>/dev/null || { cat "$d/sshd.log"; return 1; }
    [ "$attempt" -lt 100 ] && sleep 0.1
  done
  kill "$sshd_pid" 2>/dev/null; wait "$sshd_pid" 2>/dev/null; sshd_pid=''
  [ "$out" = ssh-ok ] || { echo "$out"; cat "$d/sshd.log"; return 1; }
}
check "sshd on loopback: start, log in with a key, stop" "$(apt_fix openssh-server openssh-client)" sshd_loopback

# --------------------------------------------------------------------------------------------------

elapsed=$(( ($(date +%s%N) - started) / 1000000 ))
if [ ${#failures[@]} -gt 0 ]; then
  echo "doctor: ${#failures[@]} check(s) failed in ${elapsed} ms:" >&2
  for f in "${failures[@]}"; do echo "  - $f" >&2; done
  exit 1
fi
echo "doctor: every check passed in ${elapsed} ms"
