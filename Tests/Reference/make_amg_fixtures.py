"""Golden files for the automatic mask generator tests (Tests/SAMTests/AutomaticMaskGeneratorTests.swift).

Run by hand in the same venv as make_sam_fixtures.py plus pycocotools and
opencv-python-headless (upstream needs them for output_mode="coco_rle" and
min_mask_region_area > 0):

    pip install pycocotools opencv-python-headless
    python Tests/Reference/make_amg_fixtures.py --litemedsam ~/.cache/segflow/weights/lite_medsam.pth

Writes into Tests/SAMTests/Fixtures/:
  amg_tiny.json        upstream SamAutomaticMaskGenerator(output_mode="coco_rle") with the tiny
                       random ViT SAM (sam_tiny_vit.pth, from make_sam_fixtures.tiny_vit_sam) on
                       chelsea_crop.png: a whole-image run, and a run with crop_n_layers=1 and
                       min_mask_region_area > 0
  amg_litemedsam.json  the real LiteMedSAM on chelsea.png (thresholds lowered, see LITEMEDSAM_PARAMS)
  amg_utils.json       amg.py helpers and torchvision's batched_nms on synthetic inputs
                       (point grids, crop boxes, NMS with tied scores, small-region removal
                       against cv2.connectedComponentsWithStats, mask boxes)

The tiny random model is nearly insensitive to the prompt point: for every point its three
masks are "everything negative" (predicted IoU ~0.30, stability 0/0 = NaN), "everything
positive" (predicted IoU ~-0.6) and one partial mask (IoU ~0.2) whose logits lie within
±0.45. Upstream's thresholds would drop all of them, so both sides get lowered ones:
pred_iou_thresh 0.1, stability_score_thresh 0.25 with stability_score_offset 0.05 (the
logits' scale), and box_nms_thresh 1.0 (all partial masks share one box, so any lower
threshold keeps exactly one). Duplicate removal is exercised by the LiteMedSAM run and by
the synthetic NMS cases instead. In the crop run every crop mask touches an inner crop edge
and is dropped (is_box_near_crop_edge), which the Swift side must reproduce too.

LiteMedSAM normalisation: LiteMedSAM min-max normalises the resized image. As in
make_sam_fixtures.py this is expressed through segment_anything by setting pixel_mean = min
and pixel_std = max - min before each SamPredictor.set_image. The generator embeds every
crop separately through set_image(cropped_im), so the min and max are those of the resized
*crop*: the wrapper below hooks set_image to recompute them per call. Segflow's
Sam.preprocess(.minMax) computes them on whatever pixels it is given, so per crop as well.

Check Swift's JSON with pycocotools (the Swift test writes its records to
$TMPDIR/segflow_amg_<run>.json and prints the path):

    python Tests/Reference/make_amg_fixtures.py --check-swift-json /tmp/segflow_amg_tiny_whole.json --against tiny_whole
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from segment_anything import SamAutomaticMaskGenerator
import segment_anything.automatic_mask_generator as amg_module
from segment_anything.utils import amg
from torchvision.ops import batched_nms

HERE = Path(__file__).resolve().parent
FIX = HERE.parent / "SAMTests" / "Fixtures"
sys.path.insert(0, str(HERE))
from make_sam_fixtures import litemedsam, set_litemedsam_normalisation, tiny_vit_sam  # noqa: E402

TINY_PARAMS = dict(points_per_side=12, pred_iou_thresh=0.1, stability_score_thresh=0.25,
                   stability_score_offset=0.05, box_nms_thresh=1.0)
TINY_CROP_PARAMS = dict(points_per_side=8, pred_iou_thresh=0.1, stability_score_thresh=0.25,
                        stability_score_offset=0.05, box_nms_thresh=1.0, crop_nms_thresh=1.0,
                        crop_n_layers=1, min_mask_region_area=100)
# LiteMedSAM was trained with single-mask outputs only; its three multimask outputs (what
# the generator asks for) are nearly untrained: logits within about ±0.4 and predicted IoU
# ≤ 0.24 on chelsea.png. With upstream's defaults (pred_iou_thresh 0.88, stability offset
# 1.0) no mask survives (checked: 0 masks from 1024 points). The thresholds below keep
# ~110 candidates so that box NMS removes real duplicates; 16 points per side keep the
# Swift test's runtime modest.
LITEMEDSAM_PARAMS = dict(points_per_side=16, pred_iou_thresh=0.15, stability_score_thresh=0.2,
                         stability_score_offset=0.02)


class Margins:
    """Records how close any candidate came to a threshold: a candidate within float
    rounding of one could be kept on one side and dropped on the other."""

    def __init__(self):
        self.iou, self.stability = [], []

    def install(self, gen):
        orig_predict = gen.predictor.predict_torch
        orig_stab = amg_module.calculate_stability_score

        def predict_torch(*a, **k):
            masks, iou, low = orig_predict(*a, **k)
            self.iou.append(iou.flatten().clone())
            return masks, iou, low

        def stab(masks, t, o):
            s = orig_stab(masks, t, o)
            self.stability.append(s.flatten().clone())
            return s

        gen.predictor.predict_torch = predict_torch
        amg_module.calculate_stability_score = stab
        return lambda: setattr(amg_module, "calculate_stability_score", orig_stab)

    def summary(self, params):
        iou = torch.cat(self.iou).numpy().astype(np.float64)
        st = torch.cat(self.stability).numpy().astype(np.float64) if self.stability else np.zeros(0)
        st = st[np.isfinite(st)]
        out = {}
        if params.get("pred_iou_thresh", 0.88) > 0:
            out["pred_iou"] = float(np.min(np.abs(iou - params.get("pred_iou_thresh", 0.88))))
        if params.get("stability_score_thresh", 0.95) > 0 and len(st):
            out["stability"] = float(np.min(np.abs(st - params.get("stability_score_thresh", 0.95))))
        return out


def run_generator(sam, image, params, per_crop_minmax=False):
    gen = SamAutomaticMaskGenerator(sam, output_mode="coco_rle", **params)
    if per_crop_minmax:
        orig_set_image = gen.predictor.set_image

        def set_image(im, image_format="RGB"):
            set_litemedsam_normalisation(sam, im)  # min/max of this (cropped) image
            return orig_set_image(im, image_format)

        gen.predictor.set_image = set_image
    margins = Margins()
    restore = margins.install(gen)
    t = time.time()
    with torch.no_grad():
        records = gen.generate(image)
    print(f"upstream generate: {time.time() - t:.1f} s")
    restore()
    for r in records:
        # Upstream sometimes promotes boxes to float (an empty batch concatenates a float
        # zeros tensor); the values are whole numbers either way.
        r["bbox"] = [int(v) for v in r["bbox"]]
        r["crop_box"] = [int(v) for v in r["crop_box"]]
    return {"params": params, "height": image.shape[0], "width": image.shape[1], "records": records,
            "closest_threshold_margins": margins.summary(params)}


def utils_cases():
    rng = np.random.default_rng(7)
    out = {}
    out["point_grids"] = [
        {"n_per_side": n, "n_layers": l, "scale": s,
         "grids": [g.tolist() for g in amg.build_all_layer_point_grids(n, l, s)]}
        for n, l, s in [(1, 0, 1), (3, 0, 1), (12, 1, 1), (16, 2, 2), (7, 1, 3)]]
    out["crop_boxes"] = []
    for h, w, l, r in [(100, 120, 1, 512 / 1500), (300, 451, 2, 512 / 1500), (1, 5, 1, 0.5), (64, 64, 3, 0.25)]:
        boxes, layers = amg.generate_crop_boxes((h, w), l, r)
        out["crop_boxes"].append({"height": h, "width": w, "n_layers": l, "overlap_ratio": r,
                                  "boxes": boxes, "layers": layers})
    # NMS: integer boxes as the generator makes them, scores with exact ties, one or two
    # categories; n = 1200 goes through torchvision's per-category path (> 4000 numbers).
    out["nms"] = []
    for n, n_cat, thr, tie_levels in [(40, 1, 0.7, 5), (300, 1, 0.5, 0), (300, 3, 0.3, 4), (1200, 1, 0.7, 7)]:
        x0 = rng.integers(0, 80, n); y0 = rng.integers(0, 80, n)
        bw = rng.integers(0, 40, n); bh = rng.integers(0, 40, n)
        boxes = np.stack([x0, y0, x0 + bw, y0 + bh], 1)
        scores = (rng.integers(0, tie_levels, n) / tie_levels if tie_levels else rng.random(n)).astype(np.float32)
        cats = rng.integers(0, n_cat, n)
        keep = batched_nms(torch.from_numpy(boxes).float(), torch.from_numpy(scores), torch.from_numpy(cats), thr)
        out["nms"].append({"boxes": boxes.tolist(), "scores": scores.astype(np.float64).tolist(),
                           "categories": cats.tolist(), "iou_threshold": thr, "keep": keep.tolist()})
    # Small regions: blobby random masks (thresholded smoothed noise) with speckle.
    out["small_regions"] = []
    for k in range(6):
        h, w = [(40, 50), (33, 21), (64, 64), (1, 30), (25, 1), (48, 36)][k]
        noise = rng.random((h + 4, w + 4))
        smooth = sum(noise[dy:dy + h, dx:dx + w] for dy in range(5) for dx in range(5)) / 25
        mask = (smooth > np.quantile(smooth, 0.5)) ^ (rng.random((h, w)) < 0.04)
        for mode in ["holes", "islands"]:
            for thr in [3, 10, 60, 10_000]:
                new, changed = amg.remove_small_regions(mask, thr, mode)
                out["small_regions"].append({
                    "height": h, "width": w, "mode": mode, "area_thresh": thr,
                    "mask": amg.mask_to_rle_pytorch(torch.from_numpy(mask)[None])[0]["counts"],
                    "result": amg.mask_to_rle_pytorch(torch.from_numpy(np.ascontiguousarray(new))[None])[0]["counts"],
                    "changed": changed,
                    "box": amg.batched_mask_to_box(torch.from_numpy(mask)[None])[0].tolist()})
    return out


def check_swift_json(path, against):
    """Decodes Swift's records with pycocotools and compares them with the golden run."""
    from pycocotools import mask as mask_utils
    swift = json.loads(Path(path).read_text())
    run_name, _, key = against.partition("_")
    golden = json.loads((FIX / f"amg_{run_name}.json").read_text())[key or "whole"]["records"]
    assert len(swift) == len(golden), f"{len(swift)} Swift records, {len(golden)} upstream"
    for r in swift:
        seg = {"size": r["segmentation"]["size"], "counts": r["segmentation"]["counts"].encode()}
        m = mask_utils.decode(seg)
        assert int(m.sum()) == r["area"] == int(mask_utils.area(seg)), "area"
        bx = mask_utils.toBbox(seg)
        assert m.sum() == 0 or (bx[0], bx[1]) == tuple(r["bbox"][:2]), "bbox origin"
    ref = [mask_utils.decode({"size": g["segmentation"]["size"], "counts": g["segmentation"]["counts"].encode()}) for g in golden]
    worst = 1.0
    for r in swift:
        m = mask_utils.decode({"size": r["segmentation"]["size"], "counts": r["segmentation"]["counts"].encode()})
        best = max((np.logical_and(m, g).sum() / max(1, np.logical_or(m, g).sum())) if (m.any() or g.any()) else 1.0 for g in ref)
        worst = min(worst, best)
    print(f"pycocotools decoded {len(swift)} Swift masks; worst best-IoU against upstream {worst:.6f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--litemedsam", type=Path, help="path to lite_medsam.pth")
    ap.add_argument("--check-swift-json", type=Path, help="records JSON written by the Swift test")
    ap.add_argument("--against", default="tiny_whole", help="golden run to compare with: tiny_whole, tiny_crops, litemedsam")
    args = ap.parse_args()
    if args.check_swift_json:
        check_swift_json(args.check_swift_json, args.against)
        return
    torch.set_num_threads(1)  # bit-stable goldens

    sam = tiny_vit_sam()
    img = np.array(Image.open(FIX / "chelsea_crop.png").convert("RGB"))
    tiny = {"whole": run_generator(sam, img, TINY_PARAMS), "crops": run_generator(sam, img, TINY_CROP_PARAMS)}
    (FIX / "amg_tiny.json").write_text(json.dumps(tiny) + "\n")
    (FIX / "amg_utils.json").write_text(json.dumps(utils_cases()) + "\n")

    if args.litemedsam:
        sam = litemedsam(args.litemedsam)
        img = np.array(Image.open(FIX / "chelsea.png").convert("RGB"))
        lm = {"whole": run_generator(sam, img, LITEMEDSAM_PARAMS, per_crop_minmax=True)}
        (FIX / "amg_litemedsam.json").write_text(json.dumps(lm) + "\n")

    for f in sorted(FIX.glob("amg_*.json")):
        d = json.loads(f.read_text())
        for k, v in d.items():
            if isinstance(v, dict) and "records" in v:
                print(f"{f.name}:{k}: {len(v['records'])} masks, margins {v['closest_threshold_margins']}")
        print(f"{f.stat().st_size:>10}  {f.name}")


if __name__ == "__main__":
    main()
