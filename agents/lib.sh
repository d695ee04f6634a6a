# shellcheck shell=bash
# Functions shared by the wheelfarm agent scripts (probe.sh, build.sh, cancel.sh, recipes/*.sh).
# Bash 4+, coreutils, util-linux (flock, setsid) and awk: what a fresh Debian/Ubuntu/RHEL host has.
# The protocol these scripts speak is documented in README.md next to this file.
export WF_LIB_LOADED=1

# ---------------------------------------------------------------------------------------------
# JSON output

# Prints its argument as a JSON string literal (quotes included).
wf_json_str() {
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\n'/\\n}
  s=${s//$'\r'/\\r}
  s=${s//$'\t'/\\t}
  s=${s//[$'\001'-$'\037']/}
  printf '"%s"' "$s"
}

# Prints a JSON array of strings from its arguments.
wf_json_array() {
  local sep='' item out='['
  for item in "$@"; do
    out+=$sep$(wf_json_str "$item")
    sep=','
  done
  printf '%s]' "$out"
}

# Prints a JSON object from key/value pairs. A key ending in ':raw' takes its value as JSON as is
# (numbers, true/false/null, nested objects); any other value is a string.
#   wf_json_obj name "x" size:raw 12 ok:raw true
wf_json_obj() {
  local sep='' out='{' key value
  while [ $# -ge 2 ]; do
    key=$1 value=$2
    shift 2
    if [[ $key == *:raw ]]; then
      key=${key%:raw}
      [ -n "$value" ] || value=null
      out+=$sep$(wf_json_str "$key"):$value
    else
      out+=$sep$(wf_json_str "$key"):$(wf_json_str "$value")
    fi
    sep=','
  done
  printf '%s}' "$out"
}

# The current UTC time in RFC 3339 form.
wf_now() { date -u +%Y-%m-%dT%H:%M:%SZ; }

# ---------------------------------------------------------------------------------------------
# Host facts (shared by probe.sh and build.sh so that both see the host the same way)

# The machine name as `uname -m` prints it, with arm64 spelt aarch64.
wf_arch() {
  local m
  m=$(uname -m)
  case $m in
    arm64) echo aarch64 ;;
    amd64) echo x86_64 ;;
    *) echo "$m" ;;
  esac
}

# The CPU flags of the first processor in /proc/cpuinfo (x86 `flags`, arm `Features`), one per line.
wf_cpu_flags() {
  awk -F: '/^(flags|Features)[ \t]*:/ { n = split($2, f, " "); for (i = 1; i <= n; i++) print f[i]; exit }' \
    /proc/cpuinfo 2>/dev/null
}

# Succeeds when /proc/cpuinfo lists the flag.
wf_has_flag() { wf_cpu_flags | grep -qx -- "$1"; }

# Free bytes in the file system holding $1 (or its nearest existing ancestor).
wf_free_bytes() {
  local d=$1
  while [ ! -e "$d" ] && [ "$d" != / ]; do d=$(dirname "$d"); done
  df -Pk "$d" 2>/dev/null | awk 'NR == 2 { printf "%.0f\n", $4 * 1024 }'
}

# Prints the C compiler that builds for this host's arch: $CC if set, else gcc/cc when they target
# this arch, else the cross compiler <arch>-linux-gnu-gcc. Fails when there is none.
wf_find_cc() {
  local arch cc machine
  arch=$(wf_arch)
  if [ -n "${CC:-}" ]; then
    cc=${CC%% *}
    command -v "$cc" && return 0
    return 1
  fi
  for cc in gcc cc; do
    command -v "$cc" >/dev/null 2>&1 || continue
    machine=$("$cc" -dumpmachine 2>/dev/null) || continue
    case $machine in
      "$arch"-*) command -v "$cc"; return 0 ;;
    esac
  done
  command -v "$arch-linux-gnu-gcc" 2>/dev/null && return 0
  return 1
}

# The glibc version of this host (`2.36`); empty on other C libraries.
wf_glibc_version() {
  local v
  v=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{ print $2 }')
  [ -n "$v" ] || v=$(ldd --version 2>/dev/null | awk 'NR == 1 && /GLIBC|GNU libc/ { print $NF }')
  echo "$v"
}

# The musl version of this host (`1.2.4`); empty when the C library is not musl.
wf_musl_version() {
  local f
  for f in /lib/ld-musl-*.so.1; do
    [ -e "$f" ] || continue
    "$f" 2>&1 | awk '/^Version/ { print $2; exit }'
    return 0
  done
}

# The libstdc++ that compiler $1 (default gcc) links C++ code against, as three words: its path,
# its file version (`6.0.30`) and the newest GLIBCXX symbol version it defines (`3.4.30`).
# Prints nothing when there is none.
wf_libstdcxx() {
  local cc=${1:-gcc} f real version glibcxx
  f=$("$cc" -print-file-name=libstdc++.so.6 2>/dev/null)
  case $f in
    /*) ;;
    *) f=$(ldconfig -p 2>/dev/null | awk '/libstdc\+\+\.so\.6 / { print $NF; exit }') ;;
  esac
  [ -n "$f" ] && [ -e "$f" ] || return 0
  real=$(readlink -f "$f" 2>/dev/null || echo "$f")
  version=${real##*/libstdc++.so.}
  case $version in [0-9]*) ;; *) version='' ;; esac
  glibcxx=$(grep -ao 'GLIBCXX_3\.4[.0-9]*' "$real" 2>/dev/null | sed 's/^GLIBCXX_//; s/\.$//' | sort -u -V | tail -n1)
  echo "$real ${version:--} ${glibcxx:--}"
}

# The version of compiler $1 (`12.2.0`).
wf_cc_version() { "$1" -dumpfullversion -dumpversion 2>/dev/null | head -n1; }

# Succeeds when dotted version $1 >= $2 (numeric components; missing components count as 0).
wf_version_ge() {
  awk -v a="$1" -v b="$2" 'BEGIN {
    na = split(a, x, "."); nb = split(b, y, "."); n = na > nb ? na : nb
    for (i = 1; i <= n; i++) { p = x[i] + 0; q = y[i] + 0; if (p > q) exit 0; if (p < q) exit 1 }
    exit 0 }'
}

# Prints candidate Python interpreters, one path per line, without duplicates (by real path).
wf_python_candidates() {
  local seen="" p real
  {
    local IFS=: dir
    for dir in $PATH /usr/local/bin /usr/bin; do
      case $dir in */shims|'') continue ;; esac
      for p in "$dir"/python3 "$dir"/python3.[0-9] "$dir"/python3.[0-9][0-9]; do
        [ -x "$p" ] && [ ! -d "$p" ] && echo "$p"
      done
    done
    unset IFS
    for p in "${HOME:-/nonexistent}"/.pyenv/versions/*/bin/python3 \
             "${UV_PYTHON_INSTALL_DIR:-${HOME:-/nonexistent}/.local/share/uv/python}"/*/bin/python3 \
             "${WF_WORK_DIR:-/nonexistent}"/cache/uv-python/*/bin/python3 \
             /opt/python/cp3*/bin/python3; do
      [ -x "$p" ] && echo "$p"
    done
  } | while IFS= read -r p; do
    case $p in */shims/*) continue ;; esac
    real=$(readlink -f "$p" 2>/dev/null || echo "$p")
    case " $seen " in *" $real "*) continue ;; esac
    seen="$seen $real"
    echo "$p"
  done
}

# Prints a JSON object describing interpreter $1: path, version, and whether it can make venvs and
# build extensions (has Python.h). Fails if it does not run.
wf_python_info() {
  "$1" - "$1" 2>/dev/null <<'PY'
import importlib.util, json, os, sys, sysconfig
include = sysconfig.get_paths().get("include") or ""
print(json.dumps({
    "path": sys.argv[1],
    "version": "%d.%d.%d" % sys.version_info[:3],
    "implementation": sys.implementation.name,
    "venv": importlib.util.find_spec("venv") is not None and importlib.util.find_spec("ensurepip") is not None,
    "headers": os.path.exists(os.path.join(include, "Python.h")),
}, separators=(",", ":")))
PY
}

# Prints the path of an interpreter for Python version $1 (`3.12`) that can make venvs and has
# headers. Falls back to a uv-managed interpreter when uv is present (installing it into the shared
# cache). Fails when none is found.
wf_find_python() {
  local want=$1 p info
  while IFS= read -r p; do
    info=$(wf_python_info "$p") || continue
    case $info in
      *"\"version\":\"$want."*'"venv":true,"headers":true'*) echo "$p"; return 0 ;;
    esac
  done < <(wf_python_candidates 2>/dev/null)
  if command -v uv >/dev/null 2>&1; then
    p=$(uv python find --no-project "$want" 2>/dev/null) && [ -x "$p" ] && { echo "$p"; return 0; }
    if [ -n "${WF_WORK_DIR:-}" ] && [ "${WF_DRY_RUN:-0}" != 1 ]; then
      UV_PYTHON_INSTALL_DIR="$WF_WORK_DIR/cache/uv-python" uv python install "$want" >&2 || return 1
      p=$(UV_PYTHON_INSTALL_DIR="$WF_WORK_DIR/cache/uv-python" uv python find --no-project "$want" 2>/dev/null) \
        && { echo "$p"; return 0; }
    fi
  fi
  return 1
}

# SHA-256 of file $1 as lowercase hex.
wf_sha256() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum -- "$1" | awk '{ print $1 }'
  else
    shasum -a 256 -- "$1" | awk '{ print $1 }'
  fi
}

# Size of file $1 in bytes.
wf_size() { wc -c < "$1" | tr -d ' '; }

# The C++ compiler builds use: $CXX, else g++, else c++ (probe.sh; build steps use wf_find_cxx).
wf_find_cxx_probe() {
  local c
  if [ -n "${CXX:-}" ]; then c=${CXX%% *}; command -v "$c" && return 0; return 1; fi
  for c in g++ c++; do command -v "$c" 2>/dev/null && return 0; done
  return 1
}
