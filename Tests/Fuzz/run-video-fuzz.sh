#!/usr/bin/env bash
# Builds and runs the libFuzzer harness for VideoReader (in-memory input through
# Debian's libavformat, libavcodec, libswscale) under AddressSanitizer.
#
#   Tests/Fuzz/run-video-fuzz.sh [seconds=120] [extra libFuzzer flags...]
#
# Seeds: the clips in Tests/VideoTests/Fixtures (MP4/H.264, MKV/FFV1, AVI/MJPEG,
# WebM/VP9), each prefixed with a policy byte (even: fail on corrupt data, odd: skip).
# Corpus: fuzz-out/video-corpus (git-ignored), crashes: fuzz-out/video-crash-*.
# Coverage feedback comes from the Swift code only (FFmpeg is not instrumented), so this
# mainly checks that whatever FFmpeg returns never breaks the reader: ASan checks every
# buffer we hand FFmpeg and every frame we copy out. Needs the Swift toolchain's clang
# and the -dev packages of libpng, libjpeg-turbo, libwebp and FFmpeg; no SwiftPM.
set -euo pipefail

SECONDS_TO_RUN="${1:-120}"
shift || true
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
OUT="$ROOT/fuzz-out"
BUILD="$OUT/build-video"
mkdir -p "$BUILD" "$OUT/video-corpus" "$OUT/video-seeds"

# Imaging's C shims, as run-image-fuzz.sh builds them (module maps written here).
for shim in CPNGSupport:segflow_png CJPEGSupport:segflow_jpeg; do
    module="${shim%%:*}" header="${shim##*:}"
    mkdir -p "$BUILD/$module"
    cat > "$BUILD/$module/module.modulemap" <<MAP
module $module {
    header "$ROOT/Shared/$module/include/$header.h"
    export *
}
MAP
    clang -O1 -g -fsanitize=fuzzer-no-link,address -I "$ROOT/Shared/$module/include" \
        -c "$ROOT/Shared/$module/$header.c" -o "$BUILD/$header.o"
done

# The reader's files only (FrameSource and TrackOutputs need Pipeline, which the reader does not).
swiftc -O -g -sanitize=fuzzer,address -parse-as-library -D SEGFLOW_FUZZ_SINGLE_MODULE \
    -module-name VideoFuzz \
    -I "$ROOT/Shared/CPNG" -I "$ROOT/Shared/CWebP" -I "$ROOT/Shared/CFFmpeg" -I /usr/include/x86_64-linux-gnu \
    -I "$BUILD/CPNGSupport" -I "$BUILD/CJPEGSupport" \
    "$ROOT"/Shared/Imaging/*.swift \
    "$ROOT/Shared/Video/VideoReader.swift" "$ROOT/Shared/Video/VideoError.swift" "$ROOT/Shared/Video/FFmpeg.swift" \
    "$ROOT/Tests/Fuzz/VideoFuzz/VideoFuzz.swift" \
    "$BUILD/segflow_png.o" "$BUILD/segflow_jpeg.o" -lpng16 -ljpeg -lwebpdemux -lwebp \
    -lavformat -lavcodec -lswscale -lavutil \
    -o "$BUILD/video-fuzz" 2> "$BUILD/swiftc.log" || { cat "$BUILD/swiftc.log" >&2; exit 1; }
grep -v "Cannot export local symbol '__asan" "$BUILD/swiftc.log" >&2 || true

for f in "$ROOT"/Tests/VideoTests/Fixtures/*.{mp4,mkv,avi,webm}; do
    name="$(basename "$f")"
    { printf '\x00'; cat "$f"; } > "$OUT/video-seeds/fail-$name"
    { printf '\x01'; cat "$f"; } > "$OUT/video-seeds/skip-$name"
done

cd "$OUT"
exec "$BUILD/video-fuzz" -max_total_time="$SECONDS_TO_RUN" -max_len=16384 -rss_limit_mb=2048 -timeout=10 \
    -artifact_prefix="$OUT/video-crash-" -print_final_stats=1 "$@" \
    "$OUT/video-corpus" "$OUT/video-seeds"
