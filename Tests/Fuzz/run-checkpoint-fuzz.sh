#!/usr/bin/env bash
# Builds the checkpoint-reader fuzzer with libFuzzer + AddressSanitizer and runs it.
#
#   Tests/Fuzz/run-checkpoint-fuzz.sh [seconds=60] [extra libFuzzer flags…]
#
# Built with swiftc directly (SwiftPM has no fuzzer product type): Shared/Tensor becomes
# module Tensor; Shared/Checkpoint and the harness are compiled together as one module
# so the harness can drive the internal parsers too. Seeds: the committed fixtures plus
# the data.pkl of every fixture archive. New corpus entries and crash artifacts go to
# fuzz-out/checkpoint/ (git-ignored). Exits non-zero if libFuzzer finds a crash.
set -euo pipefail

SECONDS_TO_RUN="${1:-60}"
shift || true
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
OUT="$ROOT/fuzz-out/checkpoint"
BUILD="$OUT/build"
SEEDS="$OUT/seeds"
CORPUS="$OUT/corpus"
mkdir -p "$BUILD" "$SEEDS" "$CORPUS"

FLAGS=(-O -g -parse-as-library -sanitize=fuzzer,address -swift-version 6)
TENSOR_EXTRA=()
if grep -qs "import COpenBLAS" "$ROOT"/Shared/Tensor/*.swift; then
    # Tensor kernels on OpenBLAS: make the system module visible and link the library.
    TENSOR_EXTRA=(-I "$ROOT/Shared/COpenBLAS" -lopenblas)
fi

echo "== building module Tensor"
swiftc "${FLAGS[@]}" "${TENSOR_EXTRA[@]}" -module-name Tensor -wmo \
    -emit-module -emit-module-path "$BUILD/Tensor.swiftmodule" \
    -c "$ROOT"/Shared/Tensor/*.swift -o "$BUILD/Tensor.o"

echo "== building checkpoint-fuzz"
swiftc "${FLAGS[@]}" "${TENSOR_EXTRA[@]}" -module-name CheckpointFuzz -I "$BUILD" \
    "$ROOT"/Shared/Checkpoint/*.swift "$ROOT"/Tests/Fuzz/CheckpointFuzz/*.swift "$BUILD/Tensor.o" \
    -o "$BUILD/checkpoint-fuzz"

echo "== seeds"
FIXTURES="$ROOT/Tests/CheckpointTests/Fixtures"
for f in "$FIXTURES"/*.pth "$FIXTURES"/*.safetensors; do
    cp "$f" "$SEEDS/"
    # The bare pickle, so the pickle-only target starts from real torch.save output.
    if command -v unzip >/dev/null && unzip -Z1 "$f" 2>/dev/null | grep -q '/data.pkl$'; then
        unzip -p "$f" '*/data.pkl' > "$SEEDS/$(basename "$f").pkl" 2>/dev/null || true
    fi
done
ls "$SEEDS" | wc -l | xargs echo "seed files:"

echo "== fuzzing for ${SECONDS_TO_RUN}s"
# -rss_limit_mb / -malloc_limit_mb: any single allocation over 512 MB is a finding
# (the readers must never allocate absurdly for a small input).
exec "$BUILD/checkpoint-fuzz" "$CORPUS" "$SEEDS" \
    -max_total_time="$SECONDS_TO_RUN" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=512 \
    -max_len=65536 -print_final_stats=1 -artifact_prefix="$OUT/" "$@"
