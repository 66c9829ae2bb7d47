#!/usr/bin/env bash
# Create the Python client's venv (Deploy/clients/python) outside the repository, at
#   ${SEGFLOW_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/segflow}/python-client-venv
# with the pinned requirements (runtime + tests) installed by pip from PyPI. Prints the
# venv's path. Idempotent: a venv whose stamp matches the requirement files and the
# interpreter is kept; anything else is rebuilt from scratch (never patched in place).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
client="$here/Deploy/clients/python"
home="${SEGFLOW_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/segflow}"
venv="$home/python-client-venv"
log() { printf '\033[1msetup:\033[0m %s\n' "$*" >&2; }

# Debian's interpreter (python3 + python3-venv from setup.sh), not whatever python3 is
# first on PATH, so every machine builds the same venv.
python=/usr/bin/python3
[ -x "$python" ] || { echo "python-client-venv: $python missing; run Deploy/setup.sh" >&2; exit 1; }
stamp="$("$python" --version 2>&1) $(cat "$client/requirements.txt" "$client/requirements-test.txt" | sha256sum | cut -d' ' -f1)"

if [ -f "$venv/segflow-stamp" ] && [ "$(cat "$venv/segflow-stamp")" = "$stamp" ] && [ -x "$venv/bin/python" ]; then
  log "Python client venv ready at $venv"
  echo "$venv"; exit 0
fi

log "creating the Python client venv at $venv (pinned: $client/requirements-test.txt)"
mkdir -p "$home"
rm -rf "$venv.partial"
"$python" -m venv "$venv.partial"
# A venv's scripts embed its path: build it under the final name, then stamp it.
rm -rf "$venv"
mv "$venv.partial" "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
  --only-binary=:all: -r "$client/requirements-test.txt"
echo "$stamp" > "$venv/segflow-stamp"
log "Python client venv ready at $venv"
echo "$venv"
