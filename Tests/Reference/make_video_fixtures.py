#!/usr/bin/env python3
"""Golden fixtures for the Video module (Tests/VideoTests/Fixtures/).

Independent encoder and decoder: PyAV (its wheel bundles its own FFmpeg, a newer
one than Debian's libavcodec 59 that the Swift side links). For each clip this writes
- the encoded file, made by PyAV from crops of the CC0 photograph chelsea.png panned
  across it (Tests/SAMTests/Fixtures/IMAGES-LICENSE.md);
- ``<clip>.frames.png``: PyAV's decoded RGB24 frames stacked top to bottom (one PNG,
  lossless, so the golden stays small), converted with the flags VideoReader uses
  (``BILINEAR | ACCURATE_RND | FULL_CHR_H_INT | BITEXACT``, the frame's own matrix/range);
- ``<clip>.default.frames.png``: the same frames from PyAV's default conversion
  (``frame.to_ndarray(format="rgb24")``: BILINEAR only), to measure how far a Python
  user's pixels are;
- ``video_cases.json``: per clip the size, frame count, pts (seconds), frame rate,
  codec, pixel format, and the PyAV/FFmpeg versions.
It also writes ``davis_palette.json``: the DAVIS/YouTube-VOS colour map from the
DAVIS toolkit's bit-interleaving rule (davis2017-evaluation's ``_pascal_color_map``,
re-implemented here in numpy as published), 256 RGB triples.

Generate:
    /work/venv/bin/pip install av pillow numpy
    /work/venv/bin/python Tests/Reference/make_video_fixtures.py

Runtime checks (VideoReferenceTests, when SEGFLOW_REFERENCE_PYTHON names a Python with
av, PIL, numpy and pycocotools) call this script's ``--check-*`` modes:
    --check-video FILE              print JSON {count, width, height, pts} decoded by PyAV,
                                    and write FILE.pyav.rgb (the frames, rgb24, same flags)
    --check-palette-png FILE        print JSON {mode, palette, labels} as PIL reads FILE
    --check-rle JSON                print JSON [[frame, object id, mask sum, area(), toBbox,
                                    mask row-major]] decoded by pycocotools
"""
import argparse
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(ROOT, "Tests", "VideoTests", "Fixtures")
PHOTO = os.path.join(ROOT, "Tests", "SAMTests", "Fixtures", "chelsea.png")

# What VideoReader.swsFlags is: BILINEAR | ACCURATE_RND | FULL_CHR_H_INT | BITEXACT.
SEGFLOW_INTERPOLATION = "BILINEAR | ACCURATE_RND | FULL_CHR_H_INT | BITEXACT"


def interpolation():
    from av.video.reformatter import Interpolation
    return Interpolation.BILINEAR | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT | Interpolation.BITEXACT


def davis_palette(n=256):
    """DAVIS toolkit's colour map (PASCAL VOC labelcolormap)."""
    def bit(v, i):
        return (v >> i) & 1
    cmap = np.zeros((n, 3), dtype=np.uint8)
    for i in range(n):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= bit(c, 0) << (7 - j)
            g |= bit(c, 1) << (7 - j)
            b |= bit(c, 2) << (7 - j)
            c >>= 3
        cmap[i] = (r, g, b)
    return cmap


def pan_frames(width, height, count):
    """Crops of chelsea.png moving right and down by a few pixels per frame."""
    from PIL import Image
    photo = np.asarray(Image.open(PHOTO).convert("RGB"))
    frames = []
    for i in range(count):
        x, y = 40 + 7 * i, 20 + 3 * i
        frames.append(np.ascontiguousarray(photo[y:y + height, x:x + width]))
    return frames


def encode(path, frames, codec, pix_fmt, rate, options=None, container_options=None):
    import av
    from fractions import Fraction
    with av.open(path, "w", options=container_options or {}) as out:
        s = out.add_stream(codec, rate=Fraction(rate))
        s.width, s.height = frames[0].shape[1], frames[0].shape[0]
        s.pix_fmt = pix_fmt
        s.options = options or {}
        s.thread_count = 1
        for f in frames:
            vf = av.VideoFrame.from_ndarray(f, format="rgb24")
            for p in s.encode(vf):
                out.mux(p)
        for p in s.encode():
            out.mux(p)


def decode(path, interp):
    import av
    frames, pts = [], []
    with av.open(path) as c:
        s = c.streams.video[0]
        s.thread_count = 1
        info = {"codec": s.codec_context.name, "pix_fmt": s.codec_context.pix_fmt,
                "frame_rate": float(s.average_rate) if s.average_rate else None,
                "nb_frames": int(s.frames) or None}
        for f in c.decode(s):
            arr = f.to_ndarray(format="rgb24", interpolation=interp) if interp is not None else f.to_ndarray(format="rgb24")
            frames.append(arr)
            pts.append(float(f.time) if f.time is not None else None)
    return frames, pts, info


def stacked_png(path, frames):
    from PIL import Image
    Image.fromarray(np.concatenate(frames, axis=0), "RGB").save(path, optimize=True)


# name, container file, codec, pix_fmt, size, frames, rate, codec options
CLIPS = [
    ("pan_h264", "pan_h264.mp4", "libx264", "yuv420p", (64, 48), 12, 25,
     {"crf": "18", "preset": "medium", "bf": "2"}),          # B-frames: pts order != decode order
    ("odd_ffv1", "odd_ffv1.mkv", "ffv1", "yuv420p", (37, 23), 6, 10, {}),  # odd size, chroma rounds up
    ("pan_mjpeg", "pan_mjpeg.avi", "mjpeg", "yuvj420p", (48, 32), 5, 15, {"q:v": "3"}),  # full-range YUV
    ("pan_vp9", "pan_vp9.webm", "libvpx-vp9", "yuv420p", (48, 32), 5, 30, {"crf": "30", "b:v": "0", "deadline": "good", "cpu-used": "8"}),
]


def generate():
    import av
    os.makedirs(OUT, exist_ok=True)
    cases = {"pyav": av.__version__, "ffmpeg": av.ffmpeg_version_info, "interpolation": SEGFLOW_INTERPOLATION, "clips": {}}
    for name, file, codec, pix_fmt, (w, h), count, rate, opts in CLIPS:
        path = os.path.join(OUT, file)
        encode(path, pan_frames(w, h, count), codec, pix_fmt, rate, opts)
        exact, pts, info = decode(path, interpolation())
        default, _, _ = decode(path, None)
        stacked_png(os.path.join(OUT, name + ".frames.png"), exact)
        stacked_png(os.path.join(OUT, name + ".default.frames.png"), default)
        cases["clips"][name] = dict(file=file, width=w, height=h, count=len(exact), pts=pts, encoder=codec, **info)
        print(f"{file}: {os.path.getsize(path)} bytes, {len(exact)} frames, {info}")
    with open(os.path.join(OUT, "video_cases.json"), "w") as f:
        json.dump(cases, f, indent=1, sort_keys=True)
    with open(os.path.join(OUT, "davis_palette.json"), "w") as f:
        json.dump(davis_palette().tolist(), f)


def check_video(path):
    frames, pts, info = decode(path, interpolation())
    with open(path + ".pyav.rgb", "wb") as f:
        for fr in frames:
            f.write(fr.tobytes())
    h, w = (frames[0].shape[:2]) if frames else (0, 0)
    print(json.dumps({"count": len(frames), "width": w, "height": h, "pts": pts, **info}))


def check_palette_png(path):
    from PIL import Image
    im = Image.open(path)
    labels = np.asarray(im)
    print(json.dumps({"mode": im.mode, "format": im.format, "palette": im.getpalette(),
                      "width": im.width, "height": im.height, "labels": labels.reshape(-1).tolist()}))


def check_rle(path):
    from pycocotools import mask as mask_utils
    with open(path) as f:
        doc = json.load(f)
    out = []
    for fr in doc["frames"]:
        for obj in fr["objects"]:
            rle = dict(obj["segmentation"])
            rle["counts"] = rle["counts"].encode()
            m = mask_utils.decode(rle)  # Fortran-order h x w uint8
            bbox = [int(round(v)) for v in mask_utils.toBbox(rle)]
            out.append([fr["index"], obj["id"], int(m.sum()), int(mask_utils.area(rle)), bbox,
                        np.ascontiguousarray(m).astype(np.uint8).reshape(-1).tolist()])
    print(json.dumps(out))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--check-video")
    ap.add_argument("--check-palette-png")
    ap.add_argument("--check-rle")
    a = ap.parse_args()
    if a.check_video:
        check_video(a.check_video)
    elif a.check_palette_png:
        check_palette_png(a.check_palette_png)
    elif a.check_rle:
        check_rle(a.check_rle)
    else:
        generate()
