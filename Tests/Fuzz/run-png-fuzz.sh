#!/usr/bin/env bash
# Builds and runs the libFuzzer harness for the PNG decoder (Imaging + the
# CPNGSupport C shim + system libpng) under AddressSanitizer.
#
#   Tests/Fuzz/run-png-fuzz.sh [seconds=60] [extra libFuzzer flags...]
#
# Seeds: Tests/ImagingTests/Fixtures/*.png (copied to fuzz-out/png-seeds). New corpus entries go to
# fuzz-out/png-corpus (git-ignored), crashes to fuzz-out/png-crash-*.
# The C shim is built with FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION, which makes it
# ignore chunk CRCs so mutations get past the checksum into the decoder.
# Needs the Swift toolchain's clang and libpng-dev; no SwiftPM involvement, so it
# does not touch any .build directory.
set -euo pipefail

SECONDS_TO_RUN="${1:-60}"
shift || true
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
OUT="$ROOT/fuzz-out"
BUILD="$OUT/build"
mkdir -p "$BUILD" "$OUT/png-corpus"

# SwiftPM synthesises the C target's module map; here we write it ourselves.
mkdir -p "$BUILD/CPNGSupport"
cat > "$BUILD/CPNGSupport/module.modulemap" <<MAP
module CPNGSupport {
    header "$ROOT/Shared/CPNGSupport/include/segflow_png.h"
    export *
}
MAP

clang -O1 -g -fsanitize=fuzzer-no-link,address -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION \
    -I "$ROOT/Shared/CPNGSupport/include" \
    -c "$ROOT/Shared/CPNGSupport/segflow_png.c" -o "$BUILD/segflow_png.o"

swiftc -O -g -sanitize=fuzzer,address -parse-as-library \
    -module-name PNGFuzz \
    -I "$ROOT/Shared/CPNG" -I "$BUILD/CPNGSupport" \
    "$ROOT"/Shared/Imaging/*.swift "$ROOT/Tests/Fuzz/PNGFuzz/PNGFuzz.swift" \
    "$BUILD/segflow_png.o" -lpng16 \
    -o "$BUILD/png-fuzz" 2> "$BUILD/swiftc.log" || { cat "$BUILD/swiftc.log" >&2; exit 1; }
# Drop gold's harmless noise about ASan's asm thunks; keep any other diagnostics.
grep -v "Cannot export local symbol '__asan" "$BUILD/swiftc.log" >&2 || true

# Seed with the PNG fixtures only (not the .rgb/.json expectations next to them).
mkdir -p "$OUT/png-seeds"
cp "$ROOT"/Tests/ImagingTests/Fixtures/*.png "$OUT/png-seeds/"

cd "$OUT"
exec "$BUILD/png-fuzz" -max_total_time="$SECONDS_TO_RUN" -max_len=65536 -rss_limit_mb=2048 \
    -artifact_prefix="$OUT/png-crash-" -print_final_stats=1 "$@" \
    "$OUT/png-corpus" "$OUT/png-seeds"
