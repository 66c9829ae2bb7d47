#!/usr/bin/env python3
"""Golden fixtures for Tests/ImagingTests (PNG decode semantics + COCO RLE).

Reference decoder: PIL ``Image.open(f).convert("RGB")`` -- what upstream SAM
code runs. Reference RLE: pycocotools.

Generate (writes Tests/ImagingTests/Fixtures/):
    /work/venv/bin/python Tests/Reference/make_png_fixtures.py

Verify PNGs written by the Swift encoder with PIL (the Swift test exports them
when SEGFLOW_IMAGING_EXPORT_DIR is set):
    SEGFLOW_IMAGING_EXPORT_DIR=/tmp/swift-png swift test -c release \
        --scratch-path .build-img --filter ImagingTests
    /work/venv/bin/python Tests/Reference/make_png_fixtures.py --verify-swift /tmp/swift-png

PNGs are written by hand (zlib + struct) rather than by PIL so that every
colour type, bit depth, tRNS form and Adam7 interlacing is covered exactly;
PIL cannot write 16-bit RGB or interlaced files.
"""
import argparse
import io
import json
import os
import struct
import sys
import zlib

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "ImagingTests", "Fixtures")


def chunk(tag, data):
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def pack_row(samples, bit_depth):
    """samples: 1-D sequence of ints for one row (all channels interleaved)."""
    if bit_depth == 16:
        return b"".join(struct.pack(">H", int(v)) for v in samples)
    if bit_depth == 8:
        return bytes(int(v) for v in samples)
    per_byte = 8 // bit_depth
    out = bytearray()
    for i in range(0, len(samples), per_byte):
        b = 0
        group = list(samples[i:i + per_byte]) + [0] * (per_byte - len(samples[i:i + per_byte]))
        for v in group:
            b = (b << bit_depth) | int(v)
        out.append(b)
    return bytes(out)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def make_png(pixels, bit_depth, color_type, interlace=False, extra=(), plte=None, trns=None, filters=0):
    """pixels: array (H, W, C) of ints. Filter type 0 everywhere except `filters=1`
    (Sub filter) to exercise the unfilter path without relying on PIL."""
    h, w, c = pixels.shape

    def encode_rows(img):
        raw = bytearray()
        for row in img:
            data = pack_row(row.reshape(-1), bit_depth)
            if filters == 1:
                bpp = max(1, c * bit_depth // 8)
                sub = bytes((data[i] - (data[i - bpp] if i >= bpp else 0)) & 0xFF for i in range(len(data)))
                raw += b"\x01" + sub
            else:
                raw += b"\x00" + data
        return bytes(raw)

    if interlace:
        raw = b""
        for x0, y0, dx, dy in ADAM7:
            sub = pixels[y0::dy, x0::dx]
            if sub.shape[0] and sub.shape[1]:
                raw += encode_rows(sub)
    else:
        raw = encode_rows(pixels)
    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 1 if interlace else 0)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
    for tag, data in extra:
        out += chunk(tag, data)
    if plte is not None:
        out += chunk(b"PLTE", bytes(np.asarray(plte, dtype=np.uint8).reshape(-1)))
    if trns is not None:
        out += chunk(b"tRNS", trns)
    # Two IDAT chunks: decoders must concatenate them.
    z = zlib.compress(raw, 9)
    half = len(z) // 2
    out += chunk(b"IDAT", z[:half]) + chunk(b"IDAT", z[half:]) + chunk(b"IEND", b"")
    return out


def pil_rgb(png_bytes):
    im = Image.open(io.BytesIO(png_bytes))
    mode = im.mode
    rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
    return mode, rgb


def build_pngs(rng):
    W, H = 17, 11  # odd sizes: partial Adam7 blocks and partial sub-byte packing
    cases = {}

    def gray16_values(shape):
        # Half the samples below 256 so PIL's I;16 -> L saturation is visible, half anywhere.
        small = rng.integers(0, 256, shape)
        big = rng.integers(0, 65536, shape)
        return np.where(rng.random(shape) < 0.5, small, big)

    g8 = rng.integers(0, 256, (H, W, 1))
    cases["gray8"] = make_png(g8, 8, 0)
    cases["gray1"] = make_png(rng.integers(0, 2, (H, W, 1)), 1, 0)
    cases["gray2"] = make_png(rng.integers(0, 4, (H, W, 1)), 2, 0)
    cases["gray4"] = make_png(rng.integers(0, 16, (H, W, 1)), 4, 0)
    cases["gray16"] = make_png(gray16_values((H, W, 1)), 16, 0)
    cases["gray8_trns"] = make_png(g8, 8, 0, trns=struct.pack(">H", int(g8[0, 0, 0])))
    cases["gray16_trns"] = make_png(gray16_values((H, W, 1)), 16, 0, trns=struct.pack(">H", 7))
    ga8 = rng.integers(0, 256, (H, W, 2))
    cases["gray_alpha8"] = make_png(ga8, 8, 4)
    cases["gray_alpha16"] = make_png(rng.integers(0, 65536, (H, W, 2)), 16, 4)
    rgb8 = rng.integers(0, 256, (H, W, 3))
    cases["rgb8"] = make_png(rgb8, 8, 2)
    cases["rgb8_sub_filter"] = make_png(rgb8, 8, 2, filters=1)
    cases["rgb8_trns"] = make_png(rgb8, 8, 2, trns=struct.pack(">HHH", *[int(v) for v in rgb8[0, 0]]))
    # gAMA 1.0 + cHRM: libpng's simplified API would gamma-convert this; PIL does not.
    gama = struct.pack(">I", 100000)
    chrm = struct.pack(">8I", 31270, 32900, 64000, 33000, 30000, 60000, 15000, 6000)
    cases["rgb8_gamma1"] = make_png(rgb8, 8, 2, extra=[(b"gAMA", gama), (b"cHRM", chrm)])
    cases["rgb16"] = make_png(rng.integers(0, 65536, (H, W, 3)), 16, 2)
    cases["rgb16_gamma1"] = make_png(rng.integers(0, 65536, (H, W, 3)), 16, 2, extra=[(b"gAMA", gama)])
    rgba8 = rng.integers(0, 256, (H, W, 4))
    rgba8[..., 3] = rng.choice([0, 1, 128, 255], (H, W))  # fully transparent pixels keep their colour
    cases["rgba8"] = make_png(rgba8, 8, 6)
    rgba16 = rng.integers(0, 65536, (H, W, 4))
    rgba16[..., 3] = rng.choice([0, 1, 32768, 65535], (H, W))
    cases["rgba16"] = make_png(rgba16, 16, 6)
    plte = rng.integers(0, 256, (12, 3))
    idx = rng.integers(0, 12, (H, W, 1))
    cases["palette8"] = make_png(idx, 8, 3, plte=plte)
    cases["palette4_trns"] = make_png(idx, 4, 3, plte=plte, trns=bytes([0, 128, 255, 7]))
    cases["palette2"] = make_png(rng.integers(0, 4, (H, W, 1)), 2, 3, plte=plte[:4])
    cases["palette1_trns"] = make_png(rng.integers(0, 2, (H, W, 1)), 1, 3, plte=plte[:2], trns=bytes([0]))
    # Indices 12..15 point past the 12-entry PLTE.
    cases["palette8_out_of_range"] = make_png(rng.integers(0, 16, (H, W, 1)), 8, 3, plte=plte)
    cases["interlaced_rgb8"] = make_png(rgb8, 8, 2, interlace=True)
    cases["interlaced_gray4"] = make_png(rng.integers(0, 16, (H, W, 1)), 4, 0, interlace=True)
    cases["interlaced_rgba16"] = make_png(rgba16, 16, 6, interlace=True)
    cases["interlaced_palette4_trns"] = make_png(idx, 4, 3, plte=plte, trns=bytes([0, 128]), interlace=True)
    # A PIL-written file: adaptive filters (Paeth/Up/Average) on a smooth image.
    yy, xx = np.mgrid[0:40, 0:56]
    smooth = np.stack([(xx * 4) % 256, (yy * 6) % 256, ((xx + yy) * 3) % 256], axis=-1).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(smooth, "RGB").save(buf, format="PNG", optimize=True)
    cases["pil_written_rgb8"] = buf.getvalue()
    # 1x1 edge case.
    cases["one_pixel_rgba8"] = make_png(np.array([[[9, 8, 7, 0]]]), 8, 6)
    return cases


def build_masks(rng):
    from pycocotools import mask as mask_utils

    masks = {}
    h, w = 23, 31
    yy, xx = np.mgrid[0:h, 0:w]
    masks["blob"] = ((yy - 11) ** 2 / 40 + (xx - 14) ** 2 / 90 < 1).astype(np.uint8)
    masks["empty"] = np.zeros((h, w), np.uint8)
    masks["full"] = np.ones((h, w), np.uint8)
    single = np.zeros((h, w), np.uint8)
    single[h - 1, w - 1] = 1
    masks["single_last_pixel"] = single
    first = np.zeros((h, w), np.uint8)
    first[0, 0] = 1
    masks["first_pixel"] = first
    masks["random"] = (rng.random((h, w)) < 0.3).astype(np.uint8)
    # Large runs exercise multi-character values and negative deltas.
    big = np.zeros((300, 400), np.uint8)
    big[20:280, 30:390] = 1
    big[100:150, 100:300] = 0
    masks["large_rect_hole"] = big
    # Runs spanning column boundaries (exercises toBbox's xp < x branch).
    wrap = np.zeros((h, w), np.uint8)
    wrap[15:, 4] = 1
    wrap[:5, 5] = 1
    masks["column_wrap"] = wrap

    manifest = {}
    for name, m in masks.items():
        rle = mask_utils.encode(np.asfortranarray(m))
        # Uncompressed counts the long way, to cross-check frPyObjects on it.
        flat = m.flatten(order="F")
        counts, current, run = [], 0, 0
        for v in flat:
            if v != current:
                counts.append(run)
                run, current = 0, v
            run += 1
        counts.append(run)
        via_fr = mask_utils.frPyObjects({"size": [int(m.shape[0]), int(m.shape[1])], "counts": counts}, *m.shape)
        assert via_fr["counts"] == rle["counts"], name
        assert (mask_utils.decode(rle) == m).all(), name
        png = io.BytesIO()
        Image.fromarray(m * 255, "L").save(png, format="PNG")
        with open(os.path.join(OUT, f"mask_{name}.png"), "wb") as f:
            f.write(png.getvalue())
        manifest[name] = {
            "png": f"mask_{name}.png",
            "height": int(m.shape[0]),
            "width": int(m.shape[1]),
            "counts": rle["counts"].decode("ascii"),
            "uncompressed": counts,
            "area": int(mask_utils.area(rle)),
            "bbox": [int(v) for v in mask_utils.toBbox(rle)],
        }
    return manifest


def generate():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20240611)
    manifest = {}
    for name, data in build_pngs(rng).items():
        mode, rgb = pil_rgb(data)
        with open(os.path.join(OUT, f"{name}.png"), "wb") as f:
            f.write(data)
        with open(os.path.join(OUT, f"{name}.rgb"), "wb") as f:
            f.write(rgb.tobytes())
        manifest[name] = {"png": f"{name}.png", "rgb": f"{name}.rgb", "width": rgb.shape[1],
                          "height": rgb.shape[0], "pil_mode": mode}
    with open(os.path.join(OUT, "png_cases.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
    with open(os.path.join(OUT, "rle_cases.json"), "w") as f:
        json.dump(build_masks(rng), f, indent=1, sort_keys=True)
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print(f"wrote {len(os.listdir(OUT))} files, {total} bytes, to {os.path.normpath(OUT)}")


def verify_swift(directory):
    """Each <name>.png written by Swift comes with <name>.raw (the pixels Swift
    encoded) and an entry in exports.json giving PIL mode and size. PIL must
    decode the PNG to exactly those bytes in that mode."""
    with open(os.path.join(directory, "exports.json")) as f:
        exports = json.load(f)
    failures = 0
    for name, meta in sorted(exports.items()):
        im = Image.open(os.path.join(directory, name + ".png"))
        im.load()
        expected = open(os.path.join(directory, name + ".raw"), "rb").read()
        got = im.tobytes()
        ok = im.mode == meta["mode"] and im.size == (meta["width"], meta["height"]) and got == expected
        failures += not ok
        print(f"{'OK  ' if ok else 'FAIL'} {name}: PIL mode {im.mode} size {im.size}, {len(got)} bytes")
    print(f"{len(exports) - failures}/{len(exports)} Swift-written PNGs decode identically in PIL")
    return failures == 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--verify-swift", metavar="DIR", help="check PNGs exported by the Swift tests")
    args = parser.parse_args()
    if args.verify_swift:
        sys.exit(0 if verify_swift(args.verify_swift) else 1)
    generate()
