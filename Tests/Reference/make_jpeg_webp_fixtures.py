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
import io
import json
import os

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


if __name__ == "__main__":
    main()
