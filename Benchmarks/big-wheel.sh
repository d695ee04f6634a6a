# shellcheck shell=bash disable=SC2034  # bin, wheel and so are read by the sourcing script
# Shared set-up of the benchmarks on the generated 250 MB wheel (verify.sh, rewrite.sh), sourced
# from the repository root with `work` set: builds wheelfarm in release mode (sets `bin`) and
# generates the wheel and its ~100 MB shared object once per work directory (sets `wheel`, `so`).
: "${work:?set work to the benchmark directory before sourcing big-wheel.sh}"
mkdir -p "$work"
swift build -c release --product wheelfarm >/dev/null
bin="$PWD/.build/release/wheelfarm"
wheel="$(ls "$work"/wfbench_cpu-*.whl 2>/dev/null | head -1 || true)"
if [ -z "$wheel" ] || [ ! -f "$work/big.so" ]; then
  python3 Benchmarks/gen_fixtures.py "$work" 100 250 >/dev/null
  wheel="$(ls "$work"/wfbench_cpu-*.whl | head -1)"
fi
so="$work/big.so"
