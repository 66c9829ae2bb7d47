#!/usr/bin/env bash
# Regenerate the protobuf-c code for Protocols/*.proto into Shared/CSegflowProto.
#
#   Protocols/generate.sh            write into Shared/CSegflowProto (commit the result)
#   Protocols/generate.sh OUT_DIR    write into OUT_DIR/segflow.pb-c.c + OUT_DIR/include/
#                                    (the staleness test uses this to diff)
#
# Needs protoc-c from Debian's protobuf-c-compiler (Deploy/setup.sh installs it). The
# generated code embeds the protobuf-c version, so regenerate with the same 1.4.x.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here/../Shared/CSegflowProto}"

if ! command -v protoc-c >/dev/null 2>&1; then
  echo "generate.sh: protoc-c not found; run Deploy/setup.sh (installs protobuf-c-compiler)" >&2
  exit 127
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
protoc-c --proto_path="$here" --c_out="$tmp" "$here/segflow.proto"

mkdir -p "$out/include"
cp "$tmp/segflow.pb-c.c" "$out/segflow.pb-c.c"
cp "$tmp/segflow.pb-c.h" "$out/include/segflow.pb-c.h"
