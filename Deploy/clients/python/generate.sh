#!/usr/bin/env bash
# Regenerate the Python protobuf module for Protocols/segflow.proto.
#
#   Deploy/clients/python/generate.sh           write segflow_client/_proto/segflow_pb2.py(+.pyi) (commit them)
#   Deploy/clients/python/generate.sh OUT_DIR   write into OUT_DIR (the freshness test diffs)
#
# Uses Debian 12's protoc (protobuf-compiler 3.21.12, which Deploy/setup.sh installs);
# the generated code needs the matching runtime, PyPI protobuf==4.21.12 (requirements.txt).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
protos="$here/../../../Protocols"
out="${1:-$here/segflow_client/_proto}"
if ! command -v protoc >/dev/null 2>&1; then
  echo "generate.sh: protoc not found; run Deploy/setup.sh (installs protobuf-compiler)" >&2
  exit 127
fi
mkdir -p "$out"
protoc --proto_path="$protos" --python_out="$out" --pyi_out="$out" "$protos/segflow.proto"
