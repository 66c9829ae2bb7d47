#!/usr/bin/env bash
# The test command (README, .ci/run): set up a fresh Debian 12 machine, then run the
# whole suite in release mode (model-level tests are numeric loops; debug builds run
# them 10-100x slower).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$here/Deploy/setup.sh" --no-build
cd "$here"
swift build -c release --build-tests
swift test -c release --skip-build --disable-swift-testing "$@"
