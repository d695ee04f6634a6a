#!/usr/bin/env bash
# Benchmark: `wheelfarm rewrite --version-suffix .post1` of a generated ~250 MB wheel against
# copying it with `cp`, measured in the same run. The rewrite verifies the original before and
# the result after (two full verifications), so the target is <= 2x cp plus the verification
# time; both ratios are printed.
#
# usage: Benchmarks/rewrite.sh [WORK_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
work="${1:-${TMPDIR:-/tmp}/wheelfarm-bench}"
mkdir -p "$work"
swift build -c release --product wheelfarm >/dev/null
bin="$PWD/.build/release/wheelfarm"
wheel="$(ls "$work"/wfbench_cpu-*.whl 2>/dev/null | head -1 || true)"
if [ -z "$wheel" ]; then
  python3 Benchmarks/gen_fixtures.py "$work" 100 250 >/dev/null
  wheel="$(ls "$work"/wfbench_cpu-*.whl | head -1)"
fi
cat "$wheel" > /dev/null
secs() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N); echo "$e - $s" | bc -l; }
best=""; bcp=""; bverify=""; bsync=""
for _ in 1 2 3; do
  rm -rf "$work/cp-out" "$work/rw-out"; mkdir -p "$work/cp-out"
  t_cp=$(secs cp "$wheel" "$work/cp-out/")
  rm -rf "$work/cp-out"; mkdir -p "$work/cp-out"
  t_sync=$(secs sh -c "cp '$wheel' '$work/cp-out/' && sync '$work/cp-out/'*.whl")
  if [ -z "$bsync" ] || [ "$(echo "$t_sync < $bsync" | bc -l)" = 1 ]; then bsync=$t_sync; fi
  t_rw=$(secs "$bin" rewrite "$wheel" --version-suffix .post1 -o "$work/rw-out")
  t_v=$(secs "$bin" verify "$wheel")
  if [ -z "$best" ] || [ "$(echo "$t_rw < $best" | bc -l)" = 1 ]; then best=$t_rw; fi
  if [ -z "$bcp" ] || [ "$(echo "$t_cp < $bcp" | bc -l)" = 1 ]; then bcp=$t_cp; fi
  if [ -z "$bverify" ] || [ "$(echo "$t_v < $bverify" | bc -l)" = 1 ]; then bverify=$t_v; fi
done
ls "$work/rw-out"/*.post1-*.whl >/dev/null
printf 'wheel: %s (%s MB)\n' "$(basename "$wheel")" "$(du -m "$wheel" | cut -f1)"
printf '  cp                         %.3f s\n' "$bcp"
printf '  cp + sync (durable, as the rewrite must be before its rename)  %.3f s\n' "$bsync"
printf '  wheelfarm verify (once)    %.3f s\n' "$bverify"
printf '  wheelfarm rewrite .post1   %.3f s  (verify before + write + verify after)\n' "$best"
printf '  ratio rewrite / cp                         %.1fx\n' "$(echo "$best / $bcp" | bc -l)"
printf '  ratio (rewrite - 2 verifications) / cp     %.1fx (target <= 2x)\n' "$(echo "($best - 2 * $bverify) / $bcp" | bc -l)"
if [ -x /usr/bin/time ]; then
  rm -rf "$work/rw-out"
  printf '  peak RSS rewrite: %s KiB\n' "$(/usr/bin/time -f '%M' "$bin" rewrite "$wheel" --version-suffix .post1 -o "$work/rw-out" 2>&1 >/dev/null | tail -1)"
fi
