#!/usr/bin/env bash
# Builds the libFuzzer target for the wheel and ELF parsers and runs it for a bounded time over the
# committed seed corpus (new inputs go to a scratch copy, so the commit stays small).
#
# usage: Fuzz/run.sh [SECONDS]   (default 60; CI runs it as is)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
out="${TMPDIR:-/tmp}/wheelfarm-fuzz-build"
mkdir -p "$out/corpus"
cp Fuzz/corpus/* "$out/corpus/"
sources=(Sources/Wheels/ReadOnlyFile.swift Sources/Wheels/WheelError.swift Sources/Wheels/ZipArchive.swift
         Sources/Wheels/MemberReader.swift Sources/Wheels/CoreMetadata.swift
         Sources/Wheels/ELFFile.swift Sources/Wheels/ELFDependencies.swift Sources/Wheels/PlatformPolicy.swift
         Sources/FarmCore/Arch.swift Sources/FarmCore/PlatformTag.swift)
swiftc -sanitize=fuzzer,address -parse-as-library -O -module-name WheelsFuzz \
  -I Sources/CZlib Fuzz/WheelsFuzz.swift "${sources[@]}" -o "$out/wheels-fuzz" 2> >(grep -v "Cannot export local symbol" >&2)
"$out/wheels-fuzz" -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
  -print_final_stats=1 "$out/corpus"
