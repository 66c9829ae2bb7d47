"""JPEG/WebP inputs for the command-line tests: chelsea.png re-encoded as JPEG (quality 90,
4:2:0) and lossy WebP, plus PIL's decode of each saved losslessly as PNG. The tests check
that `segflow segment photo.jpg` gives exactly the masks of `segflow segment` on PIL's
decoded pixels (so the JPEG path decodes like PIL end to end).

    /work/venv/bin/python Tests/Reference/make_cli_jpeg_fixtures.py
"""
from pathlib import Path

from PIL import Image

here = Path(__file__).resolve().parent
fixtures = here.parent / "SAMTests" / "Fixtures"
src = Image.open(fixtures / "chelsea.png").convert("RGB")
src.save(fixtures / "chelsea.jpg", quality=90, subsampling=2)
src.save(fixtures / "chelsea.webp", quality=80, method=4)
for name in ("chelsea.jpg", "chelsea.webp"):
    decoded = Image.open(fixtures / name).convert("RGB")
    decoded.save(fixtures / (name.replace(".", "_") + "_pil.png"))
    print(name, decoded.size)
