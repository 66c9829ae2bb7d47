"""Golden files for the SAM 2 (image mode) parity tests (Tests/SAM2Tests/Fixtures).

Run by hand in a venv with torch, torchvision, transformers (5.x), safetensors, pillow, numpy
and the official package (sdist from PyPI, no CUDA extension needed):

    SAM2_BUILD_CUDA=0 /work/venv/bin/pip install sam2==1.1.0      # pulls hydra-core, iopath
    /work/venv/bin/python Tests/Reference/make_sam2_fixtures.py

Deterministic: fixed seeds, one CPU thread, and the random `.data/serialization_id` that
torch.save writes into every zip is overwritten with a constant, so rerunning reproduces
identical files.

Writes (Tests/SAM2Tests/Fixtures):
  sam2_tiny/config.json, model.safetensors   Sam2Model(cfg).save_pretrained (transformers names, float32)
  sam2_tiny/preprocessor_config.json         the Sam2ImageProcessor that Sam2Processor uses (the only
                                             one in transformers 5.24: torchvision backend), size
                                             128x128, mask_size 32x32
  sam2_tiny_original.pt        the same weights under facebookresearch/sam2's names, image-mode modules
                               only, torch.save({"model": sd}) as the official sam2.1_hiera_*.pt are;
                               stored as float16 (every weight is fp16-representable, so this is
                               lossless and half the bytes; the loader's f16 -> f32 path is exercised)
  sam2_tiny_original_names.json  {original name: transformers name} for every original tensor
  image.png                    56 wide x 40 high RGB: gradients, a bright rectangle, a dark bar
  sam2_golden.safetensors      inputs, intermediates and outputs of every case (see `goldens`)
  sam2_cases.json              the cases (prompts in original coordinates, multimask flag, which
                               dynamic-multimask branch was taken) and official-vs-transformers diffs

Tiny geometry: Hiera with hidden 16 and stages [1, 2, 3, 1] (dims 16/32/64/128, heads 1/2/4/8,
windows 4/4/4/2, block 4 global, 7x7 background position grid) on a 128x128 input, i.e. a 32x32
token grid after the stride-4 patch embedding: every stage has at least one whole window (the
windowed pos-embed tiling, q-pooling at each stage change, the global block and window padding
rules are all exercised); FPN width 32 with levels 32x32, 16x16, 8x8 (the 4x4 stride-32 level is
dropped, scalp=1); prompt encoder / mask decoder width 32 (2 heads, MLP 64, IoU head 32), 8x8
image embedding, 32x32 low-res masks. The image is not square (56x40) so that the separate x/y
coordinate scaling and the post-processing resize to the original size are exercised. Size: the
geometry has 411k parameters (1.6 MB as float32 safetensors, 0.9 MB as the float16 .pt), the
goldens 0.9 MB (pixel_values, 4 stages, 3 FPN levels + position encodings dominate): ~3.5 MB.

Weights: EVERY parameter and buffer is randomised (the default init zeroes biases, pos_embed,
pos_embed_window and no_memory_embedding and makes norms identity): matrices ~ N(0,1)/sqrt(fan_in),
biases 0.2·N, norm weights 1 + 0.1·N and biases 0.1·N, tokens / embeddings / position tables 0.5·N,
the random-Fourier gaussian matrix N(0,1) like the real one; then rounded to fp16-representable
values. The seed (148) is the first whose two single-mask cases split: `box` keeps the single-mask
token (stable branch, stability 0.988 >= 0.98) and `mask_input` falls back to the best multimask
token (0.963); the script asserts this. `shared_image_embedding.positional_embedding` is set equal to
`prompt_encoder.shared_embedding.positional_embedding`: in real checkpoints both are the one
`sam_prompt_encoder.pe_layer.positional_encoding_gaussian_matrix` (transformers keeps two copies;
the original has one).

Official check: the sam2 package's own modules (Hiera, FpnNeck, PositionEmbeddingSine,
ImageEncoder(scalp=1), PromptEncoder, MaskDecoder, TwoWayTransformer) are built with the same
geometry and the sam2.1 flags (use_high_res_features_in_sam, pred_obj_scores, pred_obj_scores_mlp,
iou_prediction_use_sigmoid, use_multimask_token_for_obj_ptr, and the dynamic-multimask overrides
build_sam2 adds: via_stability, delta 0.05, thresh 0.98), loaded strictly with the mapped weights,
wrapped in a minimal SAM2Base stand-in (SAM2Base.forward_image / _prepare_backbone_features
themselves, no memory modules) and run (a) on transformers' pixel_values and normalised prompts
with SAM2ImagePredictor._predict's steps restated (to get the object-score logits and the prompt
embeddings too), and (b) end to end through SAM2ImagePredictor.set_image / predict on image.png
with the prompts in original coordinates. The max abs diffs go to sam2_cases.json; (a) is
0 for the image side and <= 4e-6 for the prompts/decoder (the script asserts < 1e-4); (b) is ~3e-2
on the logits, all of it from the processor's uint8 resize (below).

Upstream differences worth knowing (all checked here):
  - token order: the official predictor turns a box into two points (labels 2, 3) placed BEFORE
    the clicks and pads one not-a-point after them; transformers embeds the clicks (no pad when a
    box is present), then the box corners plus a padding point: [pts..., tl, br, pad] vs
    [tl, br, pts..., pad]. Attention is permutation-equivariant over the prompt tokens, so the
    outputs agree (to float rounding); the sparse embeddings agree after reordering.
  - pixels: the processor resizes the uint8 image (torchvision bilinear, antialias, rounded back
    to uint8 by its fixed-point kernel) and then rescales/normalises; SAM2Transforms (ToTensor,
    then torchvision Resize, bilinear, antialias, on the float [0, 1] image, then Normalize) does
    not round. The pixel_values differ by up to ~1 grey level (0.016 after / std).
  - coordinates: x * (128 / W) (processor) vs x / W * 128 (SAM2Transforms): last-ulp differences.
  - the official predictor clamps the returned low-res logits to [-32, 32]; transformers does not.
"""
import hashlib
import json
import re
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import save_file
from transformers import (
    Sam2Config,
    Sam2HieraDetConfig,
    Sam2ImageProcessor,
    Sam2MaskDecoderConfig,
    Sam2Model,
    Sam2Processor,
    Sam2PromptEncoderConfig,
    Sam2VisionConfig,
)

from sam2.modeling.backbones.hieradet import Hiera
from sam2.modeling.backbones.image_encoder import FpnNeck, ImageEncoder
from sam2.modeling.position_encoding import PositionEmbeddingSine
from sam2.modeling.sam.mask_decoder import MaskDecoder
from sam2.modeling.sam.prompt_encoder import PromptEncoder
from sam2.modeling.sam.transformer import TwoWayTransformer
from sam2.modeling.sam2_base import SAM2Base
from sam2.sam2_image_predictor import SAM2ImagePredictor

HERE = Path(__file__).resolve().parent
FIX = HERE.parent / "SAM2Tests" / "Fixtures"

IMAGE_SIZE = 128
MASK_SIZE = 32
WIDTH, HEIGHT = 56, 40
FEAT_SIZES = [(32, 32), (16, 16), (8, 8)]
# Seed 148: the first (of 0..399) whose dynamic-multimask cases split, `box` taking the stable
# branch (stability 0.988) and `mask_input` the fallback one (0.963), so both are exercised.
SEED = 148

POINTS = [[20.5, 15.0], [40.0, 30.0]]
LABELS = [1, 0]
BOX = [10.0, 8.0, 45.0, 33.0]
# name -> (points, labels, box, multimask, feeds the best mask of `point` back)
CASES = {
    "point": (POINTS, LABELS, None, True, False),
    "box": (None, None, BOX, False, False),
    "box_multi": (None, None, BOX, True, False),
    "points_box": (POINTS, LABELS, BOX, True, False),
    "mask_input": (POINTS[:1], LABELS[:1], None, False, True),
}


def config():
    backbone = Sam2HieraDetConfig(
        hidden_size=16, num_attention_heads=1, image_size=[IMAGE_SIZE, IMAGE_SIZE], blocks_per_stage=[1, 2, 3, 1],
        embed_dim_per_stage=[16, 32, 64, 128], num_attention_heads_per_stage=[1, 2, 4, 8],
        window_size_per_stage=[4, 4, 4, 2], global_attention_blocks=[4],
        window_positional_embedding_background_size=[7, 7])
    vision = Sam2VisionConfig(backbone_config=backbone, backbone_channel_list=[128, 64, 32, 16],
                              backbone_feature_sizes=[list(s) for s in FEAT_SIZES], fpn_hidden_size=32)
    prompt = Sam2PromptEncoderConfig(hidden_size=32, image_size=IMAGE_SIZE, patch_size=16, mask_input_channels=16)
    decoder = Sam2MaskDecoderConfig(hidden_size=32, mlp_dim=64, num_attention_heads=2, iou_head_hidden_dim=32)
    return Sam2Config(vision_config=vision, prompt_encoder_config=prompt, mask_decoder_config=decoder)


def processor():
    ip = Sam2ImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
                            mask_size={"height": MASK_SIZE, "width": MASK_SIZE})
    return Sam2Processor(image_processor=ip)


# Learned tables (tokens, embeddings, position grids): 0.5·N.
TABLES = {"vision_encoder.backbone.pos_embed", "vision_encoder.backbone.pos_embed_window", "no_memory_embedding",
          "point_embed", "not_a_point_embed", "no_mask_embed", "iou_token", "mask_tokens", "obj_score_token"}


def randomise(model, seed=SEED):
    g = torch.Generator().manual_seed(seed)
    tensors = list(model.named_parameters()) + list(model.named_buffers())
    with torch.no_grad():
        for name, p in tensors:
            r = torch.randn(p.shape, generator=g)
            if "norm" in name:
                p.copy_(1 + 0.1 * r if name.endswith("weight") else 0.1 * r)
            elif name.endswith("positional_embedding"):
                p.copy_(r)
            elif name.endswith("bias"):
                p.copy_(0.2 * r)
            elif name in TABLES or name.split(".")[-2] in TABLES:
                p.copy_(0.5 * r)
            elif p.dim() >= 2:
                p.copy_(r / np.sqrt(int(np.prod(p.shape[1:]))))
            else:
                p.copy_(0.2 * r)
            p.copy_(p.half().float())
        model.shared_image_embedding.positional_embedding.copy_(
            model.prompt_encoder.shared_embedding.positional_embedding)
    return [n for n, _ in tensors]


def make_image():
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    r = 30 + 180 * x / (WIDTH - 1)
    gch = 200 - 150 * y / (HEIGHT - 1)
    b = 90 + 60 * np.sin(x / 5.0) * np.cos(y / 7.0)
    img = np.stack([r, gch, b], axis=-1)
    img[10:27, 16:39] = [245, 235, 215]   # bright rectangle (the positive click is inside)
    img[31:36, 4:22] = [20, 25, 60]       # a dark bar
    return Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8), mode="RGB")


# ----------------------------------------------------------------------------------------------
# The official modules and the name mapping.

class OfficialImageModel(nn.Module):
    """The image-mode part of SAM2Base: its own forward_image / _prepare_backbone_features, the
    same attribute names (so state_dict names are the checkpoint's), no memory modules."""

    forward_image = SAM2Base.forward_image
    _prepare_backbone_features = SAM2Base._prepare_backbone_features

    def __init__(self):
        super().__init__()
        trunk = Hiera(embed_dim=16, num_heads=1, stages=(1, 2, 3, 1), window_pos_embed_bkg_spatial_size=(7, 7),
                      window_spec=(4, 4, 4, 2), global_att_blocks=(4,))
        neck = FpnNeck(position_encoding=PositionEmbeddingSine(num_pos_feats=32, normalize=True, scale=None,
                                                               temperature=10000),
                       d_model=32, backbone_channel_list=[128, 64, 32, 16], fpn_top_down_levels=[2, 3],
                       fpn_interp_model="nearest")
        self.image_encoder = ImageEncoder(trunk=trunk, neck=neck, scalp=1)
        # SAM2Base._build_sam_heads, with the tiny widths instead of 2048 / 8 / 256.
        self.sam_prompt_encoder = PromptEncoder(embed_dim=32, image_embedding_size=(8, 8),
                                                input_image_size=(IMAGE_SIZE, IMAGE_SIZE), mask_in_chans=16)
        self.sam_mask_decoder = MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=2, embedding_dim=32, mlp_dim=64, num_heads=2),
            transformer_dim=32, iou_head_depth=3, iou_head_hidden_dim=32,
            use_high_res_features=True, iou_prediction_use_sigmoid=True,
            pred_obj_scores=True, pred_obj_scores_mlp=True, use_multimask_token_for_obj_ptr=True,
            dynamic_multimask_via_stability=True, dynamic_multimask_stability_delta=0.05,
            dynamic_multimask_stability_thresh=0.98)
        self.no_mem_embed = nn.Parameter(torch.zeros(1, 1, 32))
        self.image_size = IMAGE_SIZE
        self.use_high_res_features_in_sam = True
        self.num_feature_levels = 3
        self.directly_add_no_mem_embed = True

    @property
    def device(self):
        return next(self.parameters()).device


# (pattern, replacement) applied in order, first match only.
RULES = [
    (r"^image_encoder\.trunk\.patch_embed\.proj\.", "vision_encoder.backbone.patch_embed.projection."),
    (r"^image_encoder\.trunk\.(pos_embed|pos_embed_window)$", r"vision_encoder.backbone.\1"),
    (r"^image_encoder\.trunk\.blocks\.(\d+)\.norm(\d)\.", r"vision_encoder.backbone.blocks.\1.layer_norm\2."),
    (r"^image_encoder\.trunk\.blocks\.(\d+)\.mlp\.layers\.0\.", r"vision_encoder.backbone.blocks.\1.mlp.proj_in."),
    (r"^image_encoder\.trunk\.blocks\.(\d+)\.mlp\.layers\.1\.", r"vision_encoder.backbone.blocks.\1.mlp.proj_out."),
    (r"^image_encoder\.trunk\.blocks\.", "vision_encoder.backbone.blocks."),  # attn.qkv, attn.proj, proj
    (r"^image_encoder\.neck\.convs\.(\d+)\.conv\.", r"vision_encoder.neck.convs.\1."),
    (r"^sam_prompt_encoder\.pe_layer\.positional_encoding_gaussian_matrix$",
     "prompt_encoder.shared_embedding.positional_embedding"),
    (r"^sam_prompt_encoder\.point_embeddings\.(\d)\.weight$", r"prompt_encoder.point_embed.weight[\1]"),
    (r"^sam_prompt_encoder\.mask_downscaling\.0\.", "prompt_encoder.mask_embed.conv1."),
    (r"^sam_prompt_encoder\.mask_downscaling\.1\.", "prompt_encoder.mask_embed.layer_norm1."),
    (r"^sam_prompt_encoder\.mask_downscaling\.3\.", "prompt_encoder.mask_embed.conv2."),
    (r"^sam_prompt_encoder\.mask_downscaling\.4\.", "prompt_encoder.mask_embed.layer_norm2."),
    (r"^sam_prompt_encoder\.mask_downscaling\.6\.", "prompt_encoder.mask_embed.conv3."),
    (r"^sam_prompt_encoder\.", "prompt_encoder."),  # not_a_point_embed, no_mask_embed
    (r"^sam_mask_decoder\.transformer\.layers\.(\d+)\.norm(\d)\.", r"mask_decoder.transformer.layers.\1.layer_norm\2."),
    (r"^sam_mask_decoder\.transformer\.layers\.(\d+)\.mlp\.layers\.0\.", r"mask_decoder.transformer.layers.\1.mlp.proj_in."),
    (r"^sam_mask_decoder\.transformer\.layers\.(\d+)\.mlp\.layers\.1\.", r"mask_decoder.transformer.layers.\1.mlp.proj_out."),
    (r"^sam_mask_decoder\.transformer\.norm_final_attn\.", "mask_decoder.transformer.layer_norm_final_attn."),
    (r"^sam_mask_decoder\.transformer\.(.+)\.out_proj\.", r"mask_decoder.transformer.\1.o_proj."),
    (r"^sam_mask_decoder\.output_upscaling\.0\.", "mask_decoder.upscale_conv1."),
    (r"^sam_mask_decoder\.output_upscaling\.1\.", "mask_decoder.upscale_layer_norm."),
    (r"^sam_mask_decoder\.output_upscaling\.3\.", "mask_decoder.upscale_conv2."),
    (r"^sam_mask_decoder\.(output_hypernetworks_mlps\.\d+|iou_prediction_head|pred_obj_score_head)\.layers\.0\.",
     r"mask_decoder.\1.proj_in."),
    (r"^sam_mask_decoder\.(output_hypernetworks_mlps\.\d+|iou_prediction_head|pred_obj_score_head)\.layers\.1\.",
     r"mask_decoder.\1.layers.0."),
    (r"^sam_mask_decoder\.(output_hypernetworks_mlps\.\d+|iou_prediction_head|pred_obj_score_head)\.layers\.2\.",
     r"mask_decoder.\1.proj_out."),
    (r"^sam_mask_decoder\.", "mask_decoder."),  # transformer q/k/v_proj, tokens, conv_s0, conv_s1
    (r"^no_mem_embed$", "no_memory_embedding"),
]


def to_transformers_name(name):
    for pattern, repl in RULES:
        if re.match(pattern, name):
            return re.sub(pattern, repl, name, count=1)
    raise KeyError(name)


def original_state_dict(hf_sd, official):
    """The official module's state dict filled from transformers' tensors; checks both sides."""
    names = {}
    sd = {}
    used = set()
    for k, ref in official.state_dict().items():
        t = to_transformers_name(k)
        names[k] = t
        m = re.match(r"^(.*)\[(\d+)\]$", t)
        src = hf_sd[m.group(1)][int(m.group(2))].reshape(ref.shape) if m else hf_sd[t]
        used.add(m.group(1) if m else t)
        assert src.shape == ref.shape, (k, t, src.shape, ref.shape)
        sd[k] = src.clone()
    only_hf = sorted(set(hf_sd) - used)
    assert only_hf == ["shared_image_embedding.positional_embedding"], only_hf
    assert torch.equal(hf_sd[only_hf[0]], hf_sd["prompt_encoder.shared_embedding.positional_embedding"])
    return sd, names


def fix_serialization_id(path):
    """torch.save writes a random `<archive>/.data/serialization_id`; make it a constant (same
    length, CRC fixed in the local header and the central directory) so reruns are identical."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = next(i for i in z.infolist() if i.filename.endswith(".data/serialization_id"))
        start_dir = z.start_dir
    assert info.compress_type == zipfile.ZIP_STORED
    name_len, extra_len = struct.unpack_from("<HH", data, info.header_offset + 26)
    off = info.header_offset + 30 + name_len + extra_len
    new = b"0" * info.file_size
    data[off:off + info.file_size] = new
    crc = zlib.crc32(new) & 0xFFFFFFFF
    struct.pack_into("<I", data, info.header_offset + 14, crc)
    p = start_dir
    while data[p:p + 4] == b"PK\x01\x02":
        n, e, c = struct.unpack_from("<HHH", data, p + 28)
        if data[p + 46:p + 46 + n].decode() == info.filename:
            struct.pack_into("<I", data, p + 16, crc)
            break
        p += 46 + n + e + c
    else:
        raise RuntimeError("central directory entry not found")
    path.write_bytes(bytes(data))
    with zipfile.ZipFile(path) as z:
        assert z.testzip() is None


# ----------------------------------------------------------------------------------------------
# transformers side.

def record_dynamic(decoder):
    """Wraps the decoder's dynamic-multimask selection to record which branch it took."""
    log = []
    inner = decoder._dynamic_multimask_via_stability

    def wrapped(all_mask_logits, all_iou_scores):
        stability = decoder._get_stability_scores(all_mask_logits[:, :, 0:1])
        stable = bool((stability >= decoder.dynamic_multimask_stability_thresh).all())
        best = int(torch.argmax(all_iou_scores[:, :, 1:], dim=-1).flatten()[0]) + 1
        # How far the nearest single-mask logit is from the ±delta thresholds: a port's float
        # differences below this cannot change the stability counts (hence the branch).
        margin = (all_mask_logits[:, :, 0].abs() - decoder.dynamic_multimask_stability_delta).abs().min()
        log.append({"branch": "stable" if stable else "fallback", "stability_score": float(stability.flatten()[0]),
                    "threshold": decoder.dynamic_multimask_stability_thresh,
                    "nearest_logit_to_delta": float(margin),
                    "singlemask_iou": float(all_iou_scores.flatten()[0]),
                    "chosen_output_token": 0 if stable else best})
        return inner(all_mask_logits, all_iou_scores)

    decoder._dynamic_multimask_via_stability = wrapped
    return log


def run_transformers(model, proc, image, pixel_values, g, cases_json):
    log = record_dynamic(model.mask_decoder)
    outputs = {}
    for name, (pts, labels, box, multimask, feed_mask) in CASES.items():
        kw = {}
        if pts is not None:
            kw["input_points"] = [[pts]]
            kw["input_labels"] = [[labels]]
        if box is not None:
            kw["input_boxes"] = [[box]]
        enc = proc(images=image, return_tensors="pt", **kw)
        assert torch.equal(enc["pixel_values"], pixel_values)
        model_in = {k: enc[k] for k in ("input_points", "input_labels", "input_boxes") if k in enc}
        if feed_mask:
            best = int(outputs["point"].iou_scores[0, 0].argmax())
            model_in["input_masks"] = outputs["point"].pred_masks[:, 0, best:best + 1].clone()  # [1, 1, 32, 32]
        n_before = len(log)
        with torch.no_grad():
            out = model(pixel_values=pixel_values, multimask_output=multimask, **model_in)
            sparse, dense = model.prompt_encoder(
                input_points=model_in.get("input_points"), input_labels=model_in.get("input_labels"),
                input_boxes=model_in.get("input_boxes"), input_masks=model_in.get("input_masks"))
        masks = proc.post_process_masks(out.pred_masks, enc["original_sizes"], binarize=False)[0]
        outputs[name] = out
        if pts is not None:
            g[f"{name}.input_points"] = model_in["input_points"]
            g[f"{name}.input_points_original"] = torch.tensor([[pts]])
            g[f"{name}.input_labels"] = model_in["input_labels"]
        if box is not None:
            g[f"{name}.input_boxes"] = model_in["input_boxes"]
            g[f"{name}.input_boxes_original"] = torch.tensor([[box]])
        if feed_mask:
            g[f"{name}.input_masks"] = model_in["input_masks"]
        g[f"{name}.sparse"] = sparse
        g[f"{name}.dense"] = dense
        g[f"{name}.pred_masks"] = out.pred_masks
        g[f"{name}.iou_scores"] = out.iou_scores
        g[f"{name}.object_score_logits"] = out.object_score_logits
        g[f"{name}.masks"] = masks
        entry = {
            "points": pts, "labels": labels, "box": box, "multimask_output": multimask,
            "mask_input": "best low-res mask of case point (argmax iou, token %d), unclamped" %
                          (int(outputs["point"].iou_scores[0, 0].argmax()) + 1) if feed_mask else None,
            "num_sparse_tokens": int(sparse.shape[2]),
            "pred_masks_shape": list(out.pred_masks.shape),
            "dynamic_multimask": None,
            "low_res_logit_range": [float(out.pred_masks.min()), float(out.pred_masks.max())],
        }
        assert len(log) == n_before + (0 if multimask else 1)
        if not multimask:
            entry["dynamic_multimask"] = log[n_before]
        del log[n_before:]
        cases_json[name] = entry
    return outputs


# ----------------------------------------------------------------------------------------------
# Official side.

def official_embed(official, pixel_values):
    """SAM2ImagePredictor.set_image after its transforms, with the tiny feature sizes."""
    backbone_out = official.forward_image(pixel_values)
    _, vision_feats, _, _ = official._prepare_backbone_features(backbone_out)
    vision_feats[-1] = vision_feats[-1] + official.no_mem_embed
    feats = [feat.permute(1, 2, 0).view(1, -1, *size)
             for feat, size in zip(vision_feats[::-1], FEAT_SIZES[::-1])][::-1]
    return {"image_embed": feats[-1], "high_res_feats": feats[:-1]}


def official_predict(official, features, coords, labels, box, mask_input, multimask):
    """SAM2ImagePredictor._predict restated (prompts already in input-frame pixels), also
    returning the prompt embeddings and the object-score logits that _predict drops."""
    concat_points = (coords, labels) if coords is not None else None
    if box is not None:
        box_coords = box.reshape(-1, 2, 2)
        box_labels = torch.tensor([[2, 3]], dtype=torch.int).repeat(box.size(0), 1)
        if concat_points is not None:
            concat_points = (torch.cat([box_coords, concat_points[0]], dim=1),
                             torch.cat([box_labels, concat_points[1]], dim=1))
        else:
            concat_points = (box_coords, box_labels)
    sparse, dense = official.sam_prompt_encoder(points=concat_points, boxes=None, masks=mask_input)
    low_res, iou, _, obj = official.sam_mask_decoder(
        image_embeddings=features["image_embed"], image_pe=official.sam_prompt_encoder.get_dense_pe(),
        sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=multimask,
        repeat_image=False, high_res_features=features["high_res_feats"])
    masks = F.interpolate(low_res, (HEIGHT, WIDTH), mode="bilinear", align_corners=False)
    return sparse, dense, low_res, iou, obj, masks


def maxdiff(a, b):
    assert a.numel() == b.numel(), (a.shape, b.shape)
    return float((a.float() - b.float().reshape(a.shape)).abs().max())


def check_official(official, image, pixel_values, g, cases_json):
    report = {}
    with torch.no_grad():
        stages = official.image_encoder.trunk(pixel_values)
        for i, s in enumerate(stages):
            report[f"backbone.stage{i}"] = maxdiff(s.permute(0, 2, 3, 1), g[f"backbone.stage{i}"])
        enc = official.image_encoder(pixel_values)
        for i in range(3):
            report[f"fpn.level{i}"] = maxdiff(enc["backbone_fpn"][i], g[f"fpn.level{i}"])
            report[f"fpn_pos.level{i}"] = maxdiff(enc["vision_pos_enc"][i], g[f"fpn_pos.level{i}"])
        feats = official_embed(official, pixel_values)
        for i, f in enumerate(feats["high_res_feats"] + [feats["image_embed"]]):
            report[f"image_embeddings.{i}"] = maxdiff(f, g[f"image_embeddings.{i}"])
        report["image_pe"] = maxdiff(official.sam_prompt_encoder.get_dense_pe(), g["image_pe"])

        for name, (pts, labels, box, multimask, feed_mask) in CASES.items():
            coords = g[f"{name}.input_points"][0] if pts is not None else None        # [1, N, 2]
            lab = g[f"{name}.input_labels"][0].int() if pts is not None else None     # [1, N]
            bx = g[f"{name}.input_boxes"][0] if box is not None else None             # [1, 4]
            mask_in = g[f"{name}.input_masks"] if feed_mask else None                 # [1, 1, 32, 32]
            sparse, dense, low_res, iou, obj, masks = official_predict(
                official, feats, coords, lab, bx, mask_in, multimask)
            ref_sparse = g[f"{name}.sparse"][0]
            if box is not None and pts is not None:   # official [tl, br, pts..., pad] -> [pts..., tl, br, pad]
                n = len(pts)
                order = list(range(2, 2 + n)) + [0, 1] + list(range(2 + n, sparse.shape[1]))
                sparse = sparse[:, order]
            d = {
                "sparse": maxdiff(sparse, ref_sparse),
                "dense": maxdiff(dense, g[f"{name}.dense"]),
                "pred_masks": maxdiff(low_res, g[f"{name}.pred_masks"][0]),
                "iou_scores": maxdiff(iou, g[f"{name}.iou_scores"][0]),
                "object_score_logits": maxdiff(obj, g[f"{name}.object_score_logits"][0]),
                "masks": maxdiff(masks, g[f"{name}.masks"]),
            }
            assert max(d.values()) < 1e-4, (name, d)
            cases_json[name]["official_vs_transformers_same_inputs"] = d

        # (b) end to end through the official predictor: its own resize and coordinate transform.
        predictor = SAM2ImagePredictor(official)
        predictor._bb_feat_sizes = list(FEAT_SIZES)
        official_px = predictor._transforms(image)[None]
        report["pixel_values_SAM2Transforms_vs_processor"] = maxdiff(official_px, pixel_values)
        predictor.set_image(image)
        for name, (pts, labels, box, multimask, feed_mask) in CASES.items():
            mask_in = g[f"{name}.input_masks"][0].numpy() if feed_mask else None
            masks, iou, low_res = predictor.predict(
                point_coords=np.array(pts) if pts is not None else None,
                point_labels=np.array(labels) if pts is not None else None,
                box=np.array(box) if box is not None else None, mask_input=mask_in,
                multimask_output=multimask, return_logits=True)
            entry = cases_json[name]
            if pts is not None:
                c = predictor._transforms.transform_coords(torch.tensor(pts), normalize=True, orig_hw=(HEIGHT, WIDTH))
                entry["coords_SAM2Transforms_vs_processor"] = maxdiff(c, g[f"{name}.input_points"][0, 0])
            if box is not None:
                c = predictor._transforms.transform_boxes(torch.tensor([box]), normalize=True, orig_hw=(HEIGHT, WIDTH))
                entry["box_SAM2Transforms_vs_processor"] = maxdiff(c.reshape(1, 4), g[f"{name}.input_boxes"][0])
            entry["official_predictor_end_to_end_vs_transformers"] = {
                "pred_masks_clamped_32": maxdiff(torch.from_numpy(low_res),
                                                 g[f"{name}.pred_masks"][0, 0].clamp(-32, 32)),
                "iou_scores": maxdiff(torch.from_numpy(iou), g[f"{name}.iou_scores"][0, 0]),
                "masks": maxdiff(torch.from_numpy(masks), g[f"{name}.masks"][0]),
            }
    return report


# ----------------------------------------------------------------------------------------------

def goldens(model, proc, image):
    g = {}
    enc = proc(images=image, return_tensors="pt")
    pixel_values = enc["pixel_values"]
    g["pixel_values"] = pixel_values
    g["original_size"] = torch.tensor([float(s) for s in enc["original_sizes"][0]])
    with torch.no_grad():
        bb = model.vision_encoder.backbone(pixel_values)
        for i, s in enumerate(bb.intermediate_hidden_states):
            g[f"backbone.stage{i}"] = s
        vis = model.vision_encoder(pixel_values)
        for i in range(3):
            g[f"fpn.level{i}"] = vis.fpn_hidden_states[i]
            g[f"fpn_pos.level{i}"] = vis.fpn_position_encoding[i]
        for i, e in enumerate(model.get_image_embeddings(pixel_values)):
            g[f"image_embeddings.{i}"] = e
        g["image_pe"] = model.get_image_wide_positional_embeddings()
    return g, pixel_values


def main():
    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    FIX.mkdir(parents=True, exist_ok=True)
    hf_dir = FIX / "sam2_tiny"

    model = Sam2Model(config()).eval()
    randomise(model)
    proc = processor()
    model.save_pretrained(hf_dir, safe_serialization=True)
    proc.image_processor.save_pretrained(hf_dir)

    # The saved directory reproduces the model (nothing re-initialised on load).
    reloaded = Sam2Model.from_pretrained(hf_dir).eval()
    sd, sd2 = model.state_dict(), reloaded.state_dict()
    assert sd.keys() == sd2.keys() and all(torch.equal(sd[k], sd2[k]) for k in sd)
    assert Sam2Processor.from_pretrained(hf_dir).image_processor.size.height == IMAGE_SIZE

    make_image().save(FIX / "image.png")
    image = Image.open(FIX / "image.png").convert("RGB")
    assert image.size == (WIDTH, HEIGHT)

    # Original names: load strictly into the official modules.
    official = OfficialImageModel().eval()
    hf_sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    orig_sd, names = original_state_dict(hf_sd, official)
    official.load_state_dict(orig_sd, strict=True)
    pt = FIX / "sam2_tiny_original.pt"
    torch.save({"model": {k: v.half() for k, v in orig_sd.items()}}, pt)
    fix_serialization_id(pt)
    back = torch.load(pt, map_location="cpu", weights_only=True)["model"]
    assert back.keys() == orig_sd.keys() and all(torch.equal(back[k].float(), orig_sd[k]) for k in back)
    (FIX / "sam2_tiny_original_names.json").write_text(json.dumps(names, indent=1) + "\n")

    g, pixel_values = goldens(model, proc, image)
    cases_json = {}
    run_transformers(model, proc, image, pixel_values, g, cases_json)
    report = check_official(official, image, pixel_values, g, cases_json)

    assert cases_json["box"]["dynamic_multimask"]["branch"] == "stable"
    assert cases_json["mask_input"]["dynamic_multimask"]["branch"] == "fallback"
    g = {k: v.detach().float().contiguous() for k, v in g.items()}
    save_file(g, FIX / "sam2_golden.safetensors")
    summary = {
        "image": {"width": WIDTH, "height": HEIGHT, "model_input": IMAGE_SIZE, "low_res_mask": MASK_SIZE},
        "cases": cases_json,
        "official_vs_transformers_image": report,
        "weights": {
            "seed": SEED,
            "original_file_dtype": "float16 (lossless: every weight is fp16-representable)",
            "duplicated_in_transformers": {
                "sam_prompt_encoder.pe_layer.positional_encoding_gaussian_matrix": [
                    "prompt_encoder.shared_embedding.positional_embedding",
                    "shared_image_embedding.positional_embedding"]},
            "stacked_in_transformers": {
                "prompt_encoder.point_embed.weight": [f"sam_prompt_encoder.point_embeddings.{i}.weight" for i in range(4)]},
        },
    }
    (FIX / "sam2_cases.json").write_text(json.dumps(summary, indent=1) + "\n")

    print(json.dumps(report, indent=1))
    for name, c in cases_json.items():
        print(name, c["dynamic_multimask"], c["official_vs_transformers_same_inputs"],
              c["official_predictor_end_to_end_vs_transformers"])
    total = 0
    for p in sorted(FIX.rglob("*")):
        if p.is_file():
            total += p.stat().st_size
            print(f"{p.stat().st_size:>9}  {hashlib.md5(p.read_bytes()).hexdigest()[:8]}  {p.relative_to(FIX)}")
    print(f"{total:>9}  total")


if __name__ == "__main__":
    main()
