#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Reports what this build host is, as one JSON document on stdout (see README.md, "Probe").
#   probe.sh [--work-dir DIR]
# Exit 0 with the report; 2 on a usage error. Facts that cannot be found are null, never guessed.
set -uo pipefail
export LC_ALL=C

# The coordinator may also run this script on stdin, after lib.sh (`cat lib.sh probe.sh | bash -s --
# --work-dir DIR`), to probe a host whose work directory is unusable.
here=$(cd "$(dirname "${BASH_SOURCE[0]:-.}")" && pwd)
if [ -z "${WF_LIB_LOADED:-}" ]; then
  # shellcheck source=lib.sh
  . "$here/lib.sh"
fi

work_dir=${WF_WORK_DIR:-}
want_headers=() want_tools=()
while [ $# -gt 0 ]; do
  case $1 in
    --work-dir) work_dir=${2:-}; shift 2 ;;
    --work-dir=*) work_dir=${1#*=}; shift ;;
    --header) want_headers+=("${2:-}"); shift 2 ;;
    --tool) want_tools+=("${2:-}"); shift 2 ;;
    -h|--help) sed -n '2,4p' "$0"; exit 0 ;;
    *) echo "probe.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
if [ -z "$work_dir" ]; then echo "probe.sh: --work-dir is required" >&2; exit 2; fi
export WF_WORK_DIR=$work_dir

# CPU
mapfile -t flags < <(wf_cpu_flags)
model=$(awk -F: '/^model name[ \t]*:/ { sub(/^[ \t]+/, "", $2); print $2; exit }' /proc/cpuinfo 2>/dev/null)
cores=$(getconf _NPROCESSORS_ONLN 2>/dev/null || nproc 2>/dev/null || echo '')
mem_total=$(awk '/^MemTotal:/ { printf "%.0f", $2 * 1024; exit }' /proc/meminfo 2>/dev/null)
mem_avail=$(awk '/^MemAvailable:/ { printf "%.0f", $2 * 1024; exit }' /proc/meminfo 2>/dev/null)

# Work directory
wd_exists=false wd_writable=false
if [ -d "$work_dir" ]; then
  wd_exists=true
  probe_file="$work_dir/.wf-probe-$$"
  if ( : > "$probe_file" ) 2>/dev/null; then wd_writable=true; rm -f "$probe_file"; fi
fi
wd_free=$(wf_free_bytes "$work_dir")

# OS and C library
os_id='' os_version='' os_name=''
if [ -r /etc/os-release ]; then
  os_id=$(. /etc/os-release && echo "${ID:-}")
  os_version=$(. /etc/os-release && echo "${VERSION_ID:-}")
  os_name=$(. /etc/os-release && echo "${PRETTY_NAME:-}")
fi
glibc=$(wf_glibc_version)
musl=$(wf_musl_version)

# Compiler that builds for this arch
gcc_json=null
if cc=$(wf_find_cc); then
  target=$("$cc" -dumpmachine 2>/dev/null)
  # Cross when it targets another machine than the system compiler does (the host's real machine).
  native=$(gcc -dumpmachine 2>/dev/null || cc -dumpmachine 2>/dev/null || echo "$target")
  cross=false
  [ "${target%%-*}" = "${native%%-*}" ] || cross=true
  gcc_json=$(wf_json_obj path "$cc" version "$(wf_cc_version "$cc")" target "$target" cross:raw "$cross")
fi

# The libstdc++ C++ code is linked against (the one that compiler sees, else the system's).
libstdcxx_json=null
read -r stdcxx_path stdcxx_version stdcxx_glibcxx < <(wf_libstdcxx "${cc:-gcc}"; echo)
if [ -n "${stdcxx_path:-}" ]; then
  [ "$stdcxx_version" = - ] && stdcxx_version=''
  [ "$stdcxx_glibcxx" = - ] && stdcxx_glibcxx=''
  libstdcxx_json=$(wf_json_obj path "$stdcxx_path" version "$stdcxx_version" glibcxx "$stdcxx_glibcxx")
fi

# Python interpreters
py_items=()
while IFS= read -r p; do
  if info=$(wf_python_info "$p"); then py_items+=("$info"); fi
done < <(wf_python_candidates)
pythons="[$(IFS=,; echo "${py_items[*]}")]"

uv_json=null
if command -v uv >/dev/null 2>&1; then
  uv_json=$(wf_json_obj path "$(command -v uv)" version "$(uv --version 2>/dev/null | awk '{ print $2 }')")
fi

docker_json=$(wf_json_obj present:raw false usable:raw false)
if command -v docker >/dev/null 2>&1; then
  if server=$(timeout 15 docker info --format '{{.ServerVersion}}' 2>/dev/null) && [ -n "$server" ]; then
    docker_json=$(wf_json_obj present:raw true usable:raw true version "$server")
  else
    docker_json=$(wf_json_obj present:raw true usable:raw false)
  fi
fi

git_version=$(git --version 2>/dev/null | awk '{ print $3 }')
tools=()
for t in git tar flock setsid sha256sum curl; do command -v "$t" >/dev/null 2>&1 && tools+=("$t"); done

# Recipe prerequisites (--header/--tool): whether the C++ compiler finds each header, each tool is on PATH.
cxx_json=null
if cxx=$(wf_find_cxx_probe); then
  cxx_json=$(wf_json_obj path "$cxx" version "$(wf_cc_version "$cxx")" cross:raw false)
fi
hfound=() hmissing=() tfound=() tmissing=()
for h in "${want_headers[@]+"${want_headers[@]}"}"; do
  if [ -n "${cxx:-}" ] && printf '#include <%s>\n' "$h" | "$cxx" -E -x c++ - >/dev/null 2>&1; then hfound+=("$h"); else hmissing+=("$h"); fi
done
for t in "${want_tools[@]+"${want_tools[@]}"}"; do
  if command -v "$t" >/dev/null 2>&1; then tfound+=("$t"); else tmissing+=("$t"); fi
done
prereq_json=$(wf_json_obj headers_found:raw "$(wf_json_array "${hfound[@]+"${hfound[@]}"}")" \
  headers_missing:raw "$(wf_json_array "${hmissing[@]+"${hmissing[@]}"}")" \
  tools_found:raw "$(wf_json_array "${tfound[@]+"${tfound[@]}"}")" tools_missing:raw "$(wf_json_array "${tmissing[@]+"${tmissing[@]}"}")")

wf_json_obj \
  probe_version:raw 1 \
  time "$(wf_now)" \
  hostname "$(uname -n)" \
  arch "$(wf_arch)" \
  kernel "$(uname -r)" \
  cpu_model "$model" \
  cpu_flags:raw "$(wf_json_array "${flags[@]}")" \
  cores:raw "$cores" \
  memory_bytes:raw "$mem_total" \
  memory_available_bytes:raw "$mem_avail" \
  work_dir "$work_dir" \
  work_dir_exists:raw "$wd_exists" \
  work_dir_writable:raw "$wd_writable" \
  work_dir_free_bytes:raw "$wd_free" \
  os:raw "$(wf_json_obj id "$os_id" version "$os_version" name "$os_name")" \
  glibc:raw "$( [ -n "$glibc" ] && wf_json_str "$glibc" || echo null)" \
  musl:raw "$( [ -n "$musl" ] && wf_json_str "$musl" || echo null)" \
  libstdcxx:raw "$libstdcxx_json" \
  gcc:raw "$gcc_json" \
  pythons:raw "$pythons" \
  uv:raw "$uv_json" \
  docker:raw "$docker_json" \
  git:raw "$( [ -n "$git_version" ] && wf_json_str "$git_version" || echo null)" \
  tools:raw "$(wf_json_array "${tools[@]}")" \
  cxx:raw "$cxx_json" \
  prerequisites:raw "$prereq_json"
echo
