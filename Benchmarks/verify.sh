#!/usr/bin/env bash
# Benchmark: full `wheelfarm verify` of a generated ~250 MB wheel with ~2,000 members, against
# `unzip -t` (CRC only) and against the old pipeline's chain `twine check` + `unzip -t`, measured
# in the same run. Also the ISA audit of the ~100 MB shared object inside it against
# `objdump -d` piped to a mnemonic count (same counts required). Peak memory from GNU time
# when available, else from /proc (VmHWM is not kept after exit, so wheelfarm reports via time -v).
#
# The ISA audit decodes large code sections on every core (ISAAuditor.parallelism), so the
# figures depend on how busy the machine is: the load average is printed before and after.
#
# usage: Benchmarks/verify.sh [WORK_DIR] [N]   (builds wheelfarm in release mode first; best of N, default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
work="${1:-${TMPDIR:-/tmp}/wheelfarm-bench}"
runs="${2:-5}"
venv="${WHEELFARM_VENV:-$PWD/.venv}"
# shellcheck source=Benchmarks/big-wheel.sh
. Benchmarks/big-wheel.sh

# Best of N wall-clock seconds of a command.
best() {
  local n="$1"; shift
  local best=""
  for _ in $(seq "$n"); do
    local s e t
    s=$(date +%s.%N); "$@" >/dev/null 2>&1 || true; e=$(date +%s.%N)
    t=$(echo "$e - $s" | bc -l)
    if [ -z "$best" ] || [ "$(echo "$t < $best" | bc -l)" = 1 ]; then best=$t; fi
  done
  printf '%.3f' "$best"
}
peak_kb() {  # peak RSS in KiB of a command
  /usr/bin/time -f '%M' "$@" 2>&1 >/dev/null | tail -1
}

echo "wheel: $(basename "$wheel") $(du -m "$wheel" | cut -f1) MB, $(unzip -l "$wheel" | tail -1 | awk '{print $2}') members"
echo "shared object: $(du -m "$so" | cut -f1) MB"
cat "$wheel" > /dev/null  # warm the page cache for every contender alike
echo "cores: $(nproc), load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

t_unzip=$(best "$runs" unzip -tq "$wheel")
t_chain=$(best "$runs" sh -c "'$venv/bin/twine' check '$wheel' && unzip -tq '$wheel'")
t_verify=$(best "$runs" "$bin" verify "$wheel")
echo
echo "verification (best of $runs, wall clock):"
echo "  unzip -t                 ${t_unzip} s"
echo "  twine check + unzip -t   ${t_chain} s"
echo "  wheelfarm verify         ${t_verify} s  (all checks + ISA audit of the .so)"
echo "  ratio verify / unzip -t              $(echo "$t_verify / $t_unzip" | bc -l | xargs printf '%.2f')x (target <= 1.3x)"
echo "  ratio verify / (twine check+unzip)   $(echo "$t_verify / $t_chain" | bc -l | xargs printf '%.2f')x"
if [ -x /usr/bin/time ]; then
  echo "  peak RSS: wheelfarm verify $(peak_kb "$bin" verify "$wheel") KiB, unzip -t $(peak_kb unzip -tq "$wheel") KiB"
fi

echo
echo "ISA audit of the shared object:"
t_objdump=$(best 1 sh -c "objdump -d --no-show-raw-insn -M intel '$so' | awk -F'\t' 'NF>=2 && \$1 ~ /^ *[0-9a-f]+:\$/ {split(\$2,a,\" \"); n[a[1]]++} END {for (m in n) print m, n[m]}' > '$work/objdump-counts.txt'")
t_audit=$(best "$runs" sh -c "'$bin' verify '$so' --json --mnemonics > '$work/wheelfarm-audit.json'")
echo "  objdump -d | mnemonic count   ${t_objdump} s"
echo "  wheelfarm audit               ${t_audit} s"
echo "  speed-up                      $(echo "$t_objdump / $t_audit" | bc -l | xargs printf '%.1f')x (target >= 5x)"
if [ -x /usr/bin/time ]; then echo "  peak RSS: wheelfarm audit $(peak_kb "$bin" verify "$so") KiB"; fi
python3 - "$work/objdump-counts.txt" "$work/wheelfarm-audit.json" <<'PY'
import json, sys
objdump = dict((l.split()[0], int(l.split()[1])) for l in open(sys.argv[1]) if l.strip())
report = json.load(open(sys.argv[2]))[0]
ours = report["sharedObjects"][0]["mnemonics"]
keys = ["vpaddd", "vfmadd231ps", "vmovdqu", "vaddps", "vmulps", "vpdpbusd", "vdpbf16ps", "tdpbf16ps", "mov", "add", "lea", "cmp", "jne", "xor", "nop"]
# Zydis spells some condition codes differently from objdump (jnz for jne).
alias = {"jne": "jnz", "je": "jz", "jae": "jnb", "ja": "jnbe", "jge": "jnl", "jg": "jnle"}
same = all(objdump.get(k, 0) == ours.get(alias.get(k, k), 0) for k in keys)
for k in keys:
    print(f"    {k:12s} objdump {objdump.get(k, 0):>9d}   wheelfarm {ours.get(alias.get(k, k), 0):>9d}")
total_o, total_w = sum(objdump.values()), report["isa"]["instructions"]
print(f"    {'total':12s} objdump {total_o:>9d}   wheelfarm {total_w:>9d}")
print("  counts: " + ("identical" if same and total_o == total_w else "DIFFERENT"))
print("  by capability: " + " ".join(f"{k}={v}" for k, v in sorted(report["isa"]["byCapability"].items())))
PY
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
