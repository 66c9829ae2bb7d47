"""Prompts and answers as plain Python values (the wire messages stay inside the client)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np
from pycocotools import mask as coco_mask

from ._proto import segflow_pb2 as pb
from .errors import SegflowReplyError


@dataclass(frozen=True)
class Point:
    """A point prompt in original-image pixels; ``label`` 1 = foreground, 0 = background."""

    x: float
    y: float
    label: int = 1


@dataclass(frozen=True)
class Box:
    """A box prompt in original-image pixels, top-left (x0, y0) to bottom-right (x1, y1)."""

    x0: float
    y0: float
    x1: float
    y1: float


@dataclass(frozen=True)
class SegmentationMask:
    """One mask of an answer, as COCO compressed RLE (column-major, like pycocotools).

    Attributes:
        rle: ``{"size": [height, width], "counts": bytes}`` — pycocotools' own form, so
            ``pycocotools.mask.decode(m.rle)`` works directly.
        predicted_iou, stability_score: SAM's scores for the mask.
        bbox: ``(x, y, w, h)`` in pixels (COCO XYWH).
        area: foreground pixel count.
        point_coords: "everything" answers only: the point that produced the mask.
        label: class index for class-map answers (0 = binary).
    """

    rle: Dict[str, object]
    predicted_iou: float
    stability_score: float
    bbox: Tuple[int, int, int, int]
    area: int
    point_coords: Tuple[float, ...] = ()
    label: int = 0

    @property
    def height(self) -> int:
        return int(self.rle["size"][0])  # type: ignore[index]

    @property
    def width(self) -> int:
        return int(self.rle["size"][1])  # type: ignore[index]

    def to_array(self) -> np.ndarray:
        """The mask as a ``(height, width)`` uint8 array of 0/1 (pycocotools ``decode``)."""
        return np.ascontiguousarray(coco_mask.decode(self.rle))


@dataclass(frozen=True)
class SegmentationResult:
    """The answer to one prompt request.

    ``masks`` is prompt-major: a request with N boxes is N prompts, prompt i's masks are
    ``masks[i*M:(i+1)*M]`` with M = 3 when ``multimask`` was asked, else 1. An
    "everything" answer may hold zero masks (nothing passed the filters): a valid answer.
    """

    request_id: str
    image_id: str
    model: str
    masks: List[SegmentationMask]
    timings_ms: Dict[str, float] = field(default_factory=dict)

    def best(self) -> Optional[SegmentationMask]:
        """The mask with the highest predicted IoU, or None for an empty answer."""
        return max(self.masks, key=lambda m: m.predicted_iou, default=None)


def parse_counts(counts: str) -> List[int]:
    """The run lengths of a COCO compressed counts string (pycocotools ``rleFrString``),
    checked: characters '0'..'o' only, no unterminated or over-long group, no negative
    run. The client checks a reply with this before pycocotools decodes it (pycocotools
    trusts the string and writes past its buffer when the runs overshoot the size).
    ref: pycocotools/common/maskApi.c rleFrString"""
    data = counts.encode("ascii") if counts.isascii() else None
    if data is None:
        raise ValueError("non-ASCII characters")
    runs: List[int] = []
    p = 0
    while p < len(data):
        x, k, more = 0, 0, True
        while more:
            if p >= len(data):
                raise ValueError(f"unterminated group at the end of {len(data)} characters")
            c = data[p] - 48
            if c < 0 or c > 63:
                raise ValueError(f"character {chr(data[p])!r} at {p} is outside '0'..'o'")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if k > 13:
                raise ValueError(f"group ending at {p} is longer than 13 characters")
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(runs) > 2:
            x += runs[-2]
        if x < 0:
            raise ValueError(f"negative run {x} at index {len(runs)}")
        runs.append(x)
    return runs


def decode_runs(runs: List[int], height: int, width: int) -> np.ndarray:
    """Plain-numpy decode of uncompressed runs (background first, column-major) to a
    row-major ``(height, width)`` uint8 mask — the reference the unit tests hold
    pycocotools' ``decode`` to."""
    flat = np.zeros(height * width, dtype=np.uint8)
    pos = 0
    for i, n in enumerate(runs):
        if i % 2 == 1:
            flat[pos:pos + n] = 1
        pos += n
    return flat.reshape((width, height)).T.copy()


def mask_from_wire(request_id: str, m: "pb.Mask") -> SegmentationMask:
    """Converts and checks one wire ``Mask``: the RLE must parse, cover height × width
    exactly and agree with the declared area, else SegflowReplyError."""
    which = m.WhichOneof("encoding")
    if which != "rle":
        raise SegflowReplyError(request_id, f"mask encoding {which or 'none'} is not RLE (this client asks for RLE)")
    h, w = int(m.rle.height), int(m.rle.width)
    if h == 0 or w == 0:
        raise SegflowReplyError(request_id, f"RLE of size {h}x{w}")
    try:
        runs = parse_counts(m.rle.counts)
    except ValueError as e:
        raise SegflowReplyError(request_id, f"RLE counts do not parse: {e}") from e
    if sum(runs) != h * w:
        raise SegflowReplyError(request_id, f"RLE counts sum to {sum(runs)}, expected {h}x{w} = {h * w}")
    area = sum(runs[1::2])
    if area != int(m.area):
        raise SegflowReplyError(request_id, f"RLE area {area} differs from the declared area {m.area}")
    rle: Dict[str, object] = {"size": [h, w], "counts": m.rle.counts.encode("ascii")}
    return SegmentationMask(rle=rle, predicted_iou=float(m.predicted_iou), stability_score=float(m.stability_score),
                            bbox=(int(m.bbox.x), int(m.bbox.y), int(m.bbox.w), int(m.bbox.h)), area=area,
                            point_coords=tuple(m.point_coords), label=int(m.label))


def result_from_wire(r: "pb.MaskResult") -> SegmentationResult:
    """A successful wire ``MaskResult`` (no error) as a SegmentationResult."""
    timings = {"queue": r.timings.queue_ms, "decode": r.timings.decode_ms, "total": r.timings.total_ms} \
        if r.HasField("timings") else {}
    return SegmentationResult(request_id=r.request_id, image_id=r.image_id, model=r.model,
                              masks=[mask_from_wire(r.request_id, m) for m in r.masks], timings_ms=timings)
