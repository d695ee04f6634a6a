#!/usr/bin/env bash
# Benchmark: `wheelfarm rewrite --version-suffix .post1` of a generated ~250 MB wheel against
# copying it, measured in the same run. The rewrite reports its phases (--timings), so its write
# phase is compared with `cp` directly, and its write plus fsync with `cp` plus `sync` (the
# rewrite syncs the new file before renaming it into place; the sync runs while the new file is
# verified). The two verifications are reported on their own: the target is <= 2x cp plus the
# verification time. Best of N (default 5) for every figure; the load average is printed because
# the figures mean little on a busy machine.
#
# usage: Benchmarks/rewrite.sh [WORK_DIR] [N]
set -euo pipefail
cd "$(dirname "$0")/.."
work="${1:-${TMPDIR:-/tmp}/wheelfarm-bench}"
runs="${2:-5}"
# shellcheck source=Benchmarks/big-wheel.sh
. Benchmarks/big-wheel.sh
cat "$wheel" > /dev/null  # warm the page cache for every contender alike
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

secs() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N); echo "$e - $s" | bc -l; }
min() { if [ -z "$1" ] || [ "$(echo "$2 < $1" | bc -l)" = 1 ]; then echo "$2"; else echo "$1"; fi; }
field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" "$2"; }
bcp=""; bcps=""; bwrite=""; bws=""; bsync=""; bvb=""; bva=""; bnoverify=""; btotal=""
for _ in $(seq "$runs"); do
  rm -rf "$work/cp-out" "$work/rw-out"; mkdir -p "$work/cp-out"
  bcp=$(min "$bcp" "$(secs cp "$wheel" "$work/cp-out/")")
  rm -rf "$work/cp-out"; mkdir -p "$work/cp-out"
  bcps=$(min "$bcps" "$(secs sh -c "cp '$wheel' '$work/cp-out/' && sync '$work/cp-out/'*.whl")")
  "$bin" rewrite "$wheel" --version-suffix .post1 -o "$work/rw-out" --timings >/dev/null 2>"$work/timings.txt"
  write=$(field write "$work/timings.txt"); sync=$(field sync "$work/timings.txt")
  vb=$(field verify_before "$work/timings.txt"); va=$(field verify_after "$work/timings.txt")
  commit=$(field commit "$work/timings.txt"); total=$(field total "$work/timings.txt")
  bwrite=$(min "$bwrite" "$write"); bsync=$(min "$bsync" "$sync")
  bws=$(min "$bws" "$(echo "$write + $sync" | bc -l)")
  bvb=$(min "$bvb" "$vb"); bva=$(min "$bva" "$va"); btotal=$(min "$btotal" "$total")
  bnoverify=$(min "$bnoverify" "$(echo "$write + $commit" | bc -l)")
done
ls "$work/rw-out"/*.post1-*.whl >/dev/null
printf 'wheel: %s (%s MB), best of %s\n' "$(basename "$wheel")" "$(du -m "$wheel" | cut -f1)" "$runs"
printf '  cp                                    %.3f s\n' "$bcp"
printf '  cp + sync                             %.3f s\n' "$bcps"
printf '  rewrite: write phase                  %.3f s\n' "$bwrite"
printf '  rewrite: fsync (during verify after)  %.3f s\n' "$bsync"
printf '  rewrite: verify before / after        %.3f s / %.3f s\n' "$bvb" "$bva"
printf '  rewrite: total                        %.3f s\n' "$btotal"
printf '  ratio write / cp                      %.2fx (target <= 2x)\n' "$(echo "$bwrite / $bcp" | bc -l)"
printf '  ratio (write + fsync) / (cp + sync)   %.2fx\n' "$(echo "$bws / $bcps" | bc -l)"
printf '  ratio (total - verifications) / cp    %.2fx (write + waiting for the sync, rename, directory sync)\n' "$(echo "$bnoverify / $bcp" | bc -l)"
if [ -x /usr/bin/time ]; then
  rm -rf "$work/rw-out"
  printf '  peak RSS rewrite: %s KiB\n' "$(/usr/bin/time -f '%M' "$bin" rewrite "$wheel" --version-suffix .post1 -o "$work/rw-out" 2>&1 >/dev/null | tail -1)"
fi
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
