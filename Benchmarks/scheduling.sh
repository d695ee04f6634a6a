#!/usr/bin/env bash
# Scheduling benchmark: wheelfarm's placement vs the lower bound, naive first-fit and one host
# building everything in sequence, on inventory/example-farm.yaml and the vLLM recipe; and the
# time to place 10,000 jobs on 1,000 hosts. Usage: Benchmarks/scheduling.sh
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product scheduling-benchmark >/dev/null
"$(swift build -c release --show-bin-path)/scheduling-benchmark" "$PWD"
