#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Stops a running build and everything it started (see README.md, "Cancel").
#   cancel.sh --work-dir DIR --job-id ID [--grace SECONDS]
# Prints one JSON line. Exit 0 when the job was stopped or was not running; 2 on a usage error.
set -uo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

work_dir='' job_id='' grace=10
while [ $# -gt 0 ]; do
  case $1 in
    --work-dir) work_dir=${2:-}; shift 2 ;;
    --job-id) job_id=${2:-}; shift 2 ;;
    --grace) grace=${2:-}; shift 2 ;;
    *) echo "cancel.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
if [ -z "$work_dir" ] || ! [[ $job_id =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] || ! [[ $grace =~ ^[0-9]+$ ]]; then
  echo "cancel.sh: needs --work-dir DIR --job-id ID [--grace SECONDS]" >&2
  exit 2
fi

pid_file=$work_dir/jobs/$job_id/pid
pid=$(cat "$pid_file" 2>/dev/null || true)
if ! [[ $pid =~ ^[0-9]+$ ]] || ! kill -0 "$pid" 2>/dev/null; then
  wf_json_obj event cancel job "$job_id" time "$(wf_now)" running:raw false; echo
  exit 0
fi
# build.sh runs in its own session: its process group holds the build and every child.
pgid=$(awk '{ sub(/^.*\) /, ""); print $3 }' "/proc/$pid/stat" 2>/dev/null)
target=$pid
[ -n "$pgid" ] && [ "$pgid" = "$pid" ] && target=-$pid
kill -TERM -- "$target" 2>/dev/null
waited=0
while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt $((grace * 10)) ]; do sleep 0.1; waited=$((waited + 1)); done
forced=false
if kill -0 "$pid" 2>/dev/null; then kill -KILL -- "$target" 2>/dev/null; forced=true; fi
wf_json_obj event cancel job "$job_id" time "$(wf_now)" running:raw true pid:raw "$pid" forced:raw "$forced"; echo
