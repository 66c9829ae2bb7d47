#!/usr/bin/env bash
# Builds and runs the libFuzzer harness for ImageDecoder (Imaging + the CPNGSupport
# and CJPEGSupport C shims + system libpng, libjpeg-turbo and libwebp) under
# AddressSanitizer.
#
#   Tests/Fuzz/run-image-fuzz.sh [seconds=120] [extra libFuzzer flags...]
#
# Seeds: every PNG, JPEG and WebP fixture in Tests/ImagingTests/Fixtures (copied to
# fuzz-out/image-seeds). New corpus entries go to fuzz-out/image-corpus (git-ignored),
# crashes to fuzz-out/image-crash-*. Coverage feedback comes from the Swift code and
# the shims; the Debian libraries are not instrumented, so libFuzzer steers by how
# far our code gets, and ASan still checks every buffer we hand them.
# The PNG shim is built with FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION (chunk CRCs
# ignored so mutations get past the checksum into the decoder). Needs the Swift toolchain's clang, libpng-dev,
# libjpeg62-turbo-dev and libwebp-dev; no SwiftPM involvement.
set -euo pipefail

SECONDS_TO_RUN="${1:-120}"
shift || true
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
OUT="$ROOT/fuzz-out"
BUILD="$OUT/build-image"
mkdir -p "$BUILD" "$OUT/image-corpus"

# SwiftPM synthesises the C targets' module maps; here we write them ourselves.
for shim in CPNGSupport:segflow_png CJPEGSupport:segflow_jpeg; do
    module="${shim%%:*}" header="${shim##*:}"
    mkdir -p "$BUILD/$module"
    cat > "$BUILD/$module/module.modulemap" <<MAP
module $module {
    header "$ROOT/Shared/$module/include/$header.h"
    export *
}
MAP
    clang -O1 -g -fsanitize=fuzzer-no-link,address -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION \
        -I "$ROOT/Shared/$module/include" \
        -c "$ROOT/Shared/$module/$header.c" -o "$BUILD/$header.o"
done

swiftc -O -g -sanitize=fuzzer,address -parse-as-library \
    -module-name ImageFuzz \
    -I "$ROOT/Shared/CPNG" -I "$ROOT/Shared/CWebP" -I "$BUILD/CPNGSupport" -I "$BUILD/CJPEGSupport" \
    "$ROOT"/Shared/Imaging/*.swift "$ROOT/Tests/Fuzz/ImageFuzz/ImageFuzz.swift" \
    "$BUILD/segflow_png.o" "$BUILD/segflow_jpeg.o" -lpng16 -ljpeg -lwebpdemux -lwebp \
    -o "$BUILD/image-fuzz" 2> "$BUILD/swiftc.log" || { cat "$BUILD/swiftc.log" >&2; exit 1; }
# Drop gold's harmless noise about ASan's asm thunks; keep any other diagnostics.
grep -v "Cannot export local symbol '__asan" "$BUILD/swiftc.log" >&2 || true

# Seed with the encoded fixtures only (not the .rgb/.json expectations next to them).
mkdir -p "$OUT/image-seeds"
cp "$ROOT"/Tests/ImagingTests/Fixtures/*.{png,jpg,webp} "$OUT/image-seeds/"

cd "$OUT"
exec "$BUILD/image-fuzz" -max_total_time="$SECONDS_TO_RUN" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
    -artifact_prefix="$OUT/image-crash-" -print_final_stats=1 "$@" \
    "$OUT/image-corpus" "$OUT/image-seeds"
