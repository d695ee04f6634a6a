#!/usr/bin/env bash
# Uploads one large wheel to a local pypiserver with wheelfarm and with `twine upload`, in the same
# run, and prints the time ratio and peak memory of each.
#   Benchmarks/upload.sh [SIZE_MB]   (default 250; CONFIG=debug for a debug build)
set -euo pipefail
cd "$(dirname "$0")/.."
config="${CONFIG:-release}"
swift build -c "$config" --product upload-benchmark >/dev/null
exec "$(swift build -c "$config" --show-bin-path)/upload-benchmark" "${1:-250}"
