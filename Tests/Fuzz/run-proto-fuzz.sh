#!/usr/bin/env bash
# libFuzzer + AddressSanitizer run over the segflow.v1 protobuf decoders.
#
#   Tests/Fuzz/run-proto-fuzz.sh [SECONDS]        default 150 seconds
#
# Environment:
#   FUZZ_OUT           work directory (default: <repo>/fuzz-out/proto, git-ignored)
#   PROTOBUF_C_SOURCE  path to protobuf-c.c of the installed version (1.4.1 on Debian 12);
#                      when set it is compiled in with coverage instrumentation, so the
#                      fuzzer is also guided through protobuf-c's own parser. Otherwise the
#                      uninstrumented system libprotobuf-c is linked (ASan still checks
#                      every access our code and the generated code make).
#
# Builds with swiftc -sanitize=fuzzer,address -parse-as-library over
# Shared/Messaging/Proto/*.swift + Tests/Fuzz/ProtoFuzz/ProtoFuzz.swift, and the generated
# Shared/CSegflowProto/segflow.pb-c.c with clang. Crashing inputs land in $FUZZ_OUT.
set -euo pipefail

seconds="${1:-150}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="${FUZZ_OUT:-$root/fuzz-out/proto}"
mkdir -p "$out/corpus" "$out/build" "$out/modules/CSegflowProto"
build="$out/build"

# Module map for the generated C code (SwiftPM synthesises this one during normal builds).
cat > "$out/modules/CSegflowProto/module.modulemap" <<MAP
module CSegflowProto {
    header "$root/Shared/CSegflowProto/include/segflow.pb-c.h"
    export *
}
MAP

log="$build/build.log"
: > "$log"
run() { "$@" >>"$log" 2>&1 || { cat "$log" >&2; echo "run-proto-fuzz.sh: build step failed: $*" >&2; exit 1; }; }

cflags=(-O1 -g -fsanitize=fuzzer-no-link,address -I "$root/Shared/CSegflowProto/include")
run clang "${cflags[@]}" -c "$root/Shared/CSegflowProto/segflow.pb-c.c" -o "$build/segflow.pb-c.o"
objects=("$build/segflow.pb-c.o")
if [ -n "${PROTOBUF_C_SOURCE:-}" ]; then
  run clang "${cflags[@]}" -I "$(dirname "$PROTOBUF_C_SOURCE")/.." -c "$PROTOBUF_C_SOURCE" -o "$build/protobuf-c.o"
  objects+=("$build/protobuf-c.o")
  link=()
else
  link=(-lprotobuf-c)
fi

swift_inputs=("$root"/Shared/Messaging/Proto/*.swift)
# (ld.gold's "Cannot export local symbol '__asan_…'" warnings in the log are harmless.)
run swiftc -O -g -sanitize=fuzzer,address -parse-as-library -module-name ProtoFuzz \
  -I "$root/Shared/CProtobufC" -I "$out/modules/CSegflowProto" \
  "${swift_inputs[@]}" "$root/Tests/Fuzz/ProtoFuzz/ProtoFuzz.swift" \
  "${objects[@]}" "${link[@]}" -o "$build/proto-fuzz"

# Seed corpus: one valid encoding of each message shape (plain build, no sanitizers).
run clang -O1 -I "$root/Shared/CSegflowProto/include" -c "$root/Shared/CSegflowProto/segflow.pb-c.c" -o "$build/segflow.pb-c.plain.o"
run swiftc -O -parse-as-library -module-name MakeCorpus \
  -I "$root/Shared/CProtobufC" -I "$out/modules/CSegflowProto" \
  "${swift_inputs[@]}" "$root/Tests/Fuzz/ProtoFuzz/make_corpus.swift" \
  "$build/segflow.pb-c.plain.o" -lprotobuf-c -o "$build/make-corpus"
"$build/make-corpus" "$out/corpus"

cd "$out"
# -rss_limit_mb bounds memory (hostile length prefixes); -max_len allows a few KiB messages.
exec "$build/proto-fuzz" -max_total_time="$seconds" -max_len=8192 -rss_limit_mb=2048 \
  -print_final_stats=1 -artifact_prefix="$out/" "$out/corpus"
