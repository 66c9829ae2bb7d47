#!/usr/bin/env python3
"""Golden fixtures for ImageDecoder's JPEG and WebP paths (Tests/ImagingTests).

Reference decoder: PIL ``Image.open(f).convert("RGB")`` -- what upstream SAM
code runs. For every fixture this writes the encoded file and PIL's decoded RGB
bytes (``<name>.rgb``, row-major, 3 bytes per pixel), plus
``jpeg_webp_cases.json`` with sizes, PIL's mode, and the library versions PIL
decoded with (Pillow wheels bundle their own libjpeg-turbo and libwebp; the Swift
side links Debian's -- the test compares both).

Generate (writes Tests/ImagingTests/Fixtures/):
    /work/venv/bin/pip install pillow numpy   # if missing
    /work/venv/bin/python Tests/Reference/make_jpeg_webp_fixtures.py

Differential run against PIL on many malformed files (mutations of the fixtures):
    /work/venv/bin/python Tests/Reference/make_jpeg_webp_fixtures.py --mutate /tmp/imgdiff --count 4000
    SEGFLOW_IMAGING_DIFF_DIR=/tmp/imgdiff swift test -c release --skip-build \
        --filter ImageDecoderParityTests/testDecodeDirectoryForDifferentialRun
    /work/venv/bin/python Tests/Reference/make_jpeg_webp_fixtures.py --differential /tmp/imgdiff
The Swift side writes <file>.swift.rgb (decoded) or <file>.swift.err (error text) next
to each file; the last step compares accept/refuse and pixels with PIL and exits
non-zero on any disagreement other than DC-only progressive JPEGs (see the Swift
tests' dcOnlyProgressiveTolerance), which it reports separately.

Facts about PIL this pins down (each has a Swift test):
- JPEG: ISLOW DCT, fancy upsampling, libjpeg's own YCbCr -> RGB; grayscale
  replicated; 4-component files are opened as CMYK with Adobe (inverted)
  polarity and converted with PIL's cmyk2rgb; the EXIF orientation tag is *not*
  applied by Image.open (the decoded size is the stored size).
- JPEG missing its EOI marker: PIL accepts it when every scanline decoded
  without asking for more data, and raises "image file is truncated" otherwise
  (``pil_accepts_without_eoi``).
- WebP: decoded through libwebp's WebPAnimDecoder (RGBA, not premultiplied);
  convert("RGB") drops alpha (no compositing), so RGB under transparent pixels is
  what the file stores; an animated file yields its first frame on the canvas.
"""
import argparse
import glob
import io
import json
import os
import random
import sys
import warnings

import numpy as np
import PIL
from PIL import Image, features

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "ImagingTests", "Fixtures")


def photo(width, height, channels=3, seed=0):
    """Smooth gradients + a hard edge + mild noise: exercises DCT, upsampling and clamping."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    planes = []
    for c in range(channels):
        base = 128 + 100 * np.sin((x * (c + 1) + y * (3 - c % 3)) / (5.0 + c))
        base += np.where(x + 2 * y > width, 60, -60) * (1 if c % 2 == 0 else -1)
        base += rng.normal(0, 12, size=base.shape)
        planes.append(np.clip(base, 0, 255))
    a = np.stack(planes, axis=-1).astype(np.uint8)
    return a[..., 0] if channels == 1 else a


def save(name, data, cases, fmt):
    path = os.path.join(OUT, name)
    with open(path, "wb") as f:
        f.write(data)
    im = Image.open(io.BytesIO(data))
    mode = im.mode
    size = im.size
    rgb = np.asarray(im.convert("RGB"))
    assert rgb.shape == (size[1], size[0], 3)
    stem = os.path.splitext(name)[0]
    with open(os.path.join(OUT, stem + ".rgb"), "wb") as f:
        f.write(rgb.tobytes())
    case = {"file": name, "rgb": stem + ".rgb", "format": fmt, "width": size[0], "height": size[1], "pil_mode": mode}
    if fmt == "jpeg":
        assert data[-2:] == b"\xff\xd9"
        try:
            cut = Image.open(io.BytesIO(data[:-2]))
            cut.load()
            same = np.array_equal(np.asarray(cut.convert("RGB")), rgb)
            assert same, "PIL decoded the EOI-less file differently"
            case["pil_accepts_without_eoi"] = True
        except OSError:
            case["pil_accepts_without_eoi"] = False
    cases[stem] = case


def jpeg(array, mode=None, **kw):
    b = io.BytesIO()
    Image.fromarray(array, mode).save(b, "JPEG", **kw) if mode else Image.fromarray(array).save(b, "JPEG", **kw)
    return b.getvalue()


def ycck(cmyk_jpeg):
    """PIL cannot write YCCK, so flip the Adobe APP14 transform flag of a CMYK file
    from 0 (CMYK) to 2 (YCCK): libjpeg then reads the same samples as YCCK and
    converts them to CMYK on decode -- a valid YCCK file with unusual colours."""
    i = cmyk_jpeg.index(b"\xff\xee")
    assert cmyk_jpeg[i + 4:i + 9] == b"Adobe"
    transform = i + 4 + 11  # marker(2) + length(2) + "Adobe"(5) + version(2) + flags0(2) + flags1(2)
    assert cmyk_jpeg[transform] == 0, cmyk_jpeg[transform]
    out = bytearray(cmyk_jpeg)
    out[transform] = 2
    return bytes(out)


def dc_only(progressive_jpeg):
    """Keeps everything up to the second SOS (tables, SOF, the DC scan) and appends EOI."""
    second = progressive_jpeg.index(b"\xff\xda", progressive_jpeg.index(b"\xff\xda") + 2)
    return progressive_jpeg[:second] + b"\xff\xd9"


def webp(image, **kw):
    b = io.BytesIO()
    image.save(b, "WEBP", **kw)
    return b.getvalue()


def main():
    os.makedirs(OUT, exist_ok=True)
    cases = {}
    rgb64 = photo(64, 48)
    save("jpeg_baseline_420.jpg", jpeg(rgb64, quality=85, subsampling=2), cases, "jpeg")
    save("jpeg_baseline_422.jpg", jpeg(rgb64, quality=85, subsampling=1), cases, "jpeg")
    save("jpeg_baseline_444.jpg", jpeg(rgb64, quality=92, subsampling=0), cases, "jpeg")
    save("jpeg_progressive_420.jpg", jpeg(rgb64, quality=85, progressive=True), cases, "jpeg")
    save("jpeg_progressive_444_odd.jpg", jpeg(photo(17, 13, seed=3), quality=90, subsampling=0, progressive=True),
         cases, "jpeg")
    # A progressive file holding only its first (DC) scan, then EOI -- what an
    # interrupted progressive download looks like. libjpeg-turbo fills the missing AC
    # coefficients by block smoothing, which changed between 2.1.x (Debian) and 3.x
    # (Pillow wheels); the Swift test measures that with a named tolerance.
    save("jpeg_progressive_dc_only.jpg", dc_only(jpeg(rgb64, quality=85, progressive=True)), cases, "jpeg")
    cases["jpeg_progressive_dc_only"]["dc_only_progressive"] = True
    save("jpeg_odd_420_17x13.jpg", jpeg(photo(17, 13, seed=1), quality=80, subsampling=2), cases, "jpeg")
    save("jpeg_odd_420_33x7.jpg", jpeg(photo(33, 7, seed=2), quality=75, subsampling=2), cases, "jpeg")
    save("jpeg_optimized_420.jpg", jpeg(photo(40, 30, seed=4), quality=70, optimize=True), cases, "jpeg")
    save("jpeg_gray.jpg", jpeg(photo(31, 23, channels=1, seed=5), quality=85), cases, "jpeg")
    save("jpeg_gray_progressive.jpg", jpeg(photo(16, 16, channels=1, seed=6), quality=85, progressive=True),
         cases, "jpeg")
    save("jpeg_cmyk.jpg", jpeg(photo(24, 16, channels=4, seed=7), mode="CMYK", quality=90), cases, "jpeg")
    save("jpeg_ycck.jpg", ycck(jpeg(photo(24, 16, channels=4, seed=14), mode="CMYK", quality=90)), cases, "jpeg")
    # EXIF Orientation = 6 ("rotate 90 CW to display"); PIL's Image.open ignores it.
    exif = Image.Exif()
    exif[0x0112] = 6
    save("jpeg_exif_orientation6.jpg", jpeg(photo(40, 24, seed=8), quality=85, exif=exif.tobytes()), cases, "jpeg")

    rgb_img = Image.fromarray(photo(64, 48, seed=9))
    save("webp_lossy.webp", webp(rgb_img, quality=80), cases, "webp")
    save("webp_lossless.webp", webp(rgb_img, lossless=True), cases, "webp")
    save("webp_lossy_odd_17x13.webp", webp(Image.fromarray(photo(17, 13, seed=10)), quality=60), cases, "webp")
    rgba = photo(32, 24, channels=4, seed=11)
    rgba[:, :8, 3] = 0  # fully transparent band: its RGB must still come through (alpha dropped, not composited)
    save("webp_alpha_lossy.webp", webp(Image.fromarray(rgba, "RGBA"), quality=80), cases, "webp")
    save("webp_alpha_lossless.webp", webp(Image.fromarray(rgba, "RGBA"), lossless=True, exact=True), cases, "webp")
    frames = [Image.fromarray(photo(20, 12, seed=s)) for s in (12, 13)]
    save("webp_animated.webp", webp(frames[0], save_all=True, append_images=frames[1:], duration=100, lossless=True),
         cases, "webp")

    meta = {
        "pillow": PIL.__version__,
        "libjpeg_turbo": features.version("libjpeg_turbo"),
        "libwebp": features.version("webp"),
        "numpy": np.__version__,
    }
    with open(os.path.join(OUT, "jpeg_webp_cases.json"), "w") as f:
        json.dump({"versions": meta, "cases": cases}, f, indent=1, sort_keys=True)
        f.write("\n")
    print(json.dumps(meta), len(cases), "cases")


def mutate(directory, count, seed=7):
    """Seeded random edits of every JPEG/WebP fixture: bit flips, byte overwrites near
    the headers, truncations, insertions and deletions."""
    os.makedirs(directory, exist_ok=True)
    rng = random.Random(seed)
    files = sorted(glob.glob(os.path.join(OUT, "*.jpg")) + glob.glob(os.path.join(OUT, "*.webp")))
    for k in range(count):
        d = bytearray(open(files[k % len(files)], "rb").read())
        op = rng.randrange(5)
        if op == 0:
            for _ in range(rng.randint(1, 4)):
                d[rng.randrange(len(d))] ^= 1 << rng.randrange(8)
        elif op == 1:
            d[rng.randrange(min(len(d), 300))] = rng.choice([0, 0xFF, 0x7F, 0x80, 1, rng.randrange(256)])
        elif op == 2:
            d = d[: rng.randrange(1, len(d))]
        elif op == 3:
            i = rng.randrange(min(len(d), 300))
            d[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 3)))
        else:
            i = rng.randrange(min(len(d), 300))
            del d[i : i + rng.randint(1, 3)]
        with open(os.path.join(directory, f"mutant_{k:05d}"), "wb") as f:
            f.write(bytes(d))
    print(f"wrote {count} mutants of {len(files)} fixtures to {directory}")


def is_dc_only_progressive(data):
    """A progressive JPEG with a single scan: its AC coefficients are all missing."""
    if not data.startswith(b"\xff\xd8\xff"):
        return False
    sof2 = data.find(b"\xff\xc2")
    return sof2 >= 0 and data.count(b"\xff\xda") == 1


def differential(directory, max_pixels=1 << 20):
    """Compares the Swift decoder's outputs in `directory` with PIL (same pixel limit
    as the Swift side's 1 Mi: larger declared sizes are skipped)."""
    warnings.simplefilter("ignore")
    Image.MAX_IMAGE_PIXELS = None
    counts, bad = {}, []
    for path in sorted(glob.glob(os.path.join(directory, "*"))):
        if ".swift." in path:
            continue
        data = open(path, "rb").read()
        swift_ok = os.path.exists(path + ".swift.rgb")
        if not swift_ok and not os.path.exists(path + ".swift.err"):
            bad.append((path, "no Swift output"))
            continue
        try:
            im = Image.open(io.BytesIO(data))
            if im.size[0] * im.size[1] > max_pixels:
                counts["over the pixel limit"] = counts.get("over the pixel limit", 0) + 1
                continue
            pil = np.asarray(im.convert("RGB")).tobytes()
        except Exception:
            pil = None
        if swift_ok and pil is not None:
            same = open(path + ".swift.rgb", "rb").read() == pil
            key = "same pixels" if same else "pixels differ (DC-only progressive)" if is_dc_only_progressive(data) else None
        elif not swift_ok and pil is None:
            key = "both refuse"
        else:
            key = None
        if key is None:
            what = "pixels differ" if swift_ok and pil is not None else "Swift decodes, PIL refuses" if swift_ok else \
                "PIL decodes, Swift refuses: " + open(path + ".swift.err").read().strip()
            bad.append((path, what))
        else:
            counts[key] = counts.get(key, 0) + 1
    for key, n in sorted(counts.items()):
        print(f"{n:6d}  {key}")
    for path, what in bad[:20]:
        print("DISAGREE", path, what)
    print(f"{len(bad)} disagreements")
    return not bad


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mutate", metavar="DIR", help="write mutated fixtures for a differential run")
    parser.add_argument("--count", type=int, default=4000)
    parser.add_argument("--differential", metavar="DIR", help="compare Swift outputs in DIR with PIL")
    args = parser.parse_args()
    if args.mutate:
        mutate(args.mutate, args.count)
    elif args.differential:
        sys.exit(0 if differential(args.differential) else 1)
    else:
        main()
