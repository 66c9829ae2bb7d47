"""The tiny SAM 2 VIDEO model under facebookresearch/sam2's names, checked against the official predictor.

Run by hand (after make_sam2_video_fixtures.py, whose outputs it reads and never writes), in the venv
of make_sam2_fixtures.py (torch, transformers 5.24, safetensors, omegaconf, the sam2 1.1.0 sdist built
with SAM2_BUILD_CUDA=0):

    /work/venv/bin/python Tests/Reference/make_sam2_video_original_fixtures.py

Deterministic (one CPU thread; the random `.data/serialization_id` torch.save puts in the zip is
overwritten with a constant, as in make_sam2_fixtures.py): reruns give identical bytes.

Reads  Tests/SAM2Tests/Fixtures/sam2_video_tiny/ (transformers Sam2VideoModel, 357 tensors),
       sam2_video_golden.safetensors (pixel_values.{t}, prompts, per-step outputs, intermediates).
Writes (Tests/SAM2Tests/Fixtures, new files only):
  sam2_video_tiny_original.pt  the same weights under the official names, the WHOLE SAM2Base (image
        encoder, prompt encoder, mask decoder, memory attention, memory encoder and the top-level
        parameters), torch.save({"model": sd}) like the official sam2.1_hiera_*.pt; float16 (every
        value is float16-representable, asserted: lossless)
  sam2_video_tiny_original_names.json  {original name: transformers name} for every original tensor
        ("prompt_encoder.point_embed.weight[i]" = row i of the stacked transformers table)

Official model: the sam2.1 config sam2/configs/sam2.1/sam2.1_hiera_t.yaml itself (read with
OmegaConf, no hydra), with ONLY the size entries replaced (`SIZES`; every other flag is the yaml's,
and the script asserts that each replaced key exists in the yaml or is a constructor default the yaml
does not set), instantiated recursively (`instantiate`), with the overrides build_sam2_video_predictor
adds (`PREDICTOR_OVERRIDES`: _target_ SAM2VideoPredictor, dynamic multimask via stability 0.05/0.98,
binarize_mask_from_pts_for_mem_enc) except fill_hole_area 8 -> 0 (transformers fills no holes; the
official filler needs the CUDA extension and is skipped with a warning on CPU anyway; the script checks
that no official low-res mask has a background component <= 8 px, so it could not change anything).
Two widths cannot be set through constructor arguments and are replaced after construction:
  - SAM2Base._build_sam_heads hard-codes the mask decoder's mlp_dim 2048, 8 heads, IoU head 256 (for
    d_model 256): `TinySAM2VideoPredictor` rebuilds it with 64 / 2 / 32 and the same flags.
  - CXBlock hard-codes pwconv1/pwconv2 = Linear(dim, 4*dim) / Linear(4*dim, dim): the tiny transformers
    model has memory_fuser_intermediate_dim 64 = 2*32 (real checkpoints: 1024 = 4*256), so both
    Linears of each fuser block are replaced by Linear(32, 64) / Linear(64, 32) (forward unchanged).
The mapped state dict is saved, read back from the .pt and loaded with strict=True.

Official run (SAM2VideoPredictor's own init_state / add_new_points_or_box / propagate_in_video).
`sam2.sam2_video_predictor.load_video_frames` is replaced so that init_state receives transformers'
pixel_values.{0..3} (the official loader wants a JPEG folder and resizes with PIL bicubic); prompts are
passed as the session's 128x128 coordinates / 128 with normalize_coords=False (x/128*128 is exact), so
both sides see bit-identical inputs. Compared with the goldens (max abs diff):
  A track: box on frame 0, propagate 0..3 -> low-res logits / object score (+ 40x56 masks and the
    frame-0 memory / frame-1 memory-attention intermediates) vs track.step0, 2, 3, 4 (step1 = frame 0
    re-yielded, equal to step0). Asserted < 1e-4.
  A' track correction: points on frame 2, then propagate from 3 (transformers steps 5, 6). The official
    add_new_points_or_box feeds the frame's previous low-res logits (clamped to +-32) to the decoder
    as a mask prompt (prev_sam_mask_logits); transformers never does. Run both ways: official as is
    (differs), and with prev_sam_mask_logits dropped (must match: asserted < 1e-4).
  B end to end: the official loader's preprocessing of the PNGs (PIL bicubic on uint8, /255,
    normalise) and the box in original pixels (x / W * 128): frames 0..3, reported only.
  C two_objects: object 1 box on frame 0, object 2 point on frame 1, propagate from 1. Transformers
    encodes the memories of all objects of a frame in one batch and binarizes when ANY object has
    inputs there, so object 1's TRACKED frame-1 memory is binarized; the official predictor encodes
    per object (object 1 tracked -> sigmoid). Run official as is (object 1 differs from frame 2 on) and
    with object 1's frame-1 memory binarized (must match: asserted < 1e-4).

Results (max abs diff vs the goldens): A 1e-6 .. 4e-6 on logits, <= 1.2e-7 on object scores, every
intermediate 0 .. 2e-6; A' official 1.98 (frame 2) / 0.023 (frame 3), without prev_sam_mask_logits
<= 4e-6; C official object 1 0.14 / 0.08 on frames 2 / 3 (object 2 and frame 1 ~1e-6), binarized
<= 3e-6; B: pixels differ by up to 0.44 (after /std), frame 0's stability drops to 0.976 < 0.98, so
the dynamic fallback picks a multimask token: logits differ by ~20 on frame 0, ~0.3-0.5 later.
fill_hole_area 8 (build_sam2_video_predictor's default, with the CUDA extension; restated in Python in
`fill_holes_in_mask_scores`) is NOT a no-op on these random-weight masks: frame 0 has 13 background
components <= 8 px (26 pixels set to 0.1): logits differ by up to 5.3 there, 0.3 .. 0.8 on later
frames. Hence fill_hole_area 0 for the comparison (transformers fills no holes).

Object pointers (offline, all cases here): both sides use min(num_frames, max_obj_ptrs_in_encoder) =
min(4, 16) = 4 pointers max, temporal offsets normalised by 3. transformers' streaming mode (16, /15)
has no official counterpart (the official predictor always knows num_frames).
"""
import hashlib
import importlib
import json
import os
import re
import sys
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")
sys.dont_write_bytecode = True

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402
from safetensors.torch import load_file  # noqa: E402
from transformers import Sam2VideoModel  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from make_sam2_fixtures import RULES as IMAGE_RULES, fix_serialization_id  # noqa: E402
from make_sam2_video_fixtures import FIX, H, MODEL_DIR, NUM_FRAMES, W, patch_memory_kv_dim  # noqa: E402

import sam2  # noqa: E402
import sam2.sam2_video_predictor as svp  # noqa: E402
from sam2.modeling.sam.mask_decoder import MaskDecoder  # noqa: E402
from sam2.modeling.sam.transformer import TwoWayTransformer  # noqa: E402
from sam2.utils.misc import _load_img_as_tensor  # noqa: E402

YAML = Path(sam2.__file__).parent / "configs" / "sam2.1" / "sam2.1_hiera_t.yaml"
PT = FIX / "sam2_video_tiny_original.pt"
NAMES = FIX / "sam2_video_tiny_original_names.json"
SIZE = 128

# The tiny geometry (make_sam2_video_fixtures.py) as replacements of the yaml's sizes. True: the key is
# in the yaml (its value replaced); False: a constructor default the yaml leaves alone (added here).
SIZES = {
    "image_size": (SIZE, True),
    "image_encoder.trunk.embed_dim": (16, True),
    "image_encoder.trunk.stages": ([1, 2, 3, 1], True),
    "image_encoder.trunk.global_att_blocks": ([4], True),
    "image_encoder.trunk.window_spec": ([4, 4, 4, 2], False),  # Hiera default (8, 4, 14, 7)
    "image_encoder.neck.position_encoding.num_pos_feats": (32, True),
    "image_encoder.neck.d_model": (32, True),
    "image_encoder.neck.backbone_channel_list": ([128, 64, 32, 16], True),
    "memory_attention.d_model": (32, True),
    "memory_attention.num_layers": (2, True),
    "memory_attention.layer.d_model": (32, True),
    "memory_attention.layer.dim_feedforward": (64, True),
    "memory_attention.layer.self_attention.feat_sizes": ([8, 8], True),
    "memory_attention.layer.self_attention.embedding_dim": (32, True),
    "memory_attention.layer.cross_attention.feat_sizes": ([8, 8], True),
    "memory_attention.layer.cross_attention.embedding_dim": (32, True),
    "memory_attention.layer.cross_attention.kv_in_dim": (16, True),  # = memory_encoder out_dim (real 64)
    "memory_encoder.out_dim": (16, True),
    "memory_encoder.in_dim": (32, False),  # MemoryEncoder default 256
    "memory_encoder.position_encoding.num_pos_feats": (16, True),
    "memory_encoder.mask_downsampler.embed_dim": (32, False),  # MaskDownSampler default 256
    "memory_encoder.fuser.layer.dim": (32, True),
}
FUSER_INTERMEDIATE = 64  # CXBlock hard-codes 4 * dim (= 128 here)
DECODER = dict(mlp_dim=64, num_heads=2, iou_head_hidden_dim=32)  # _build_sam_heads: 2048 / 8 / 256
# build_sam2_video_predictor(apply_postprocessing=True)'s hydra overrides (fill_hole_area: 8 upstream)
PREDICTOR_OVERRIDES = {
    "sam_mask_decoder_extra_args": {"dynamic_multimask_via_stability": True,
                                    "dynamic_multimask_stability_delta": 0.05,
                                    "dynamic_multimask_stability_thresh": 0.98},
    "binarize_mask_from_pts_for_mem_enc": True,
    "fill_hole_area": 0,
}


# ----------------------------------------------------------------------------------------------
# The official model.

class TinySAM2VideoPredictor(svp.SAM2VideoPredictor):
    """SAM2VideoPredictor with the tiny mask-decoder widths, plus two switches used only by the
    explanatory variants (both off = the official predictor unchanged)."""

    drop_prev_sam_mask_logits = False  # A': the decoder gets no previous-mask prompt on corrections
    binarize_memory_frames = ()  # C: frames whose (tracked) memory mask is binarized for every object

    def _build_sam_heads(self):
        super()._build_sam_heads()
        self.sam_mask_decoder = MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=2, embedding_dim=self.sam_prompt_embed_dim,
                                          mlp_dim=DECODER["mlp_dim"], num_heads=DECODER["num_heads"]),
            transformer_dim=self.sam_prompt_embed_dim, iou_head_depth=3,
            iou_head_hidden_dim=DECODER["iou_head_hidden_dim"],
            use_high_res_features=self.use_high_res_features_in_sam,
            iou_prediction_use_sigmoid=self.iou_prediction_use_sigmoid,
            pred_obj_scores=self.pred_obj_scores, pred_obj_scores_mlp=self.pred_obj_scores_mlp,
            use_multimask_token_for_obj_ptr=self.use_multimask_token_for_obj_ptr,
            **(self.sam_mask_decoder_extra_args or {}))

    def _run_single_frame_inference(self, *args, prev_sam_mask_logits=None, **kwargs):
        if self.drop_prev_sam_mask_logits:
            prev_sam_mask_logits = None
        return super()._run_single_frame_inference(*args, prev_sam_mask_logits=prev_sam_mask_logits, **kwargs)

    def track_step(self, frame_idx, *args, **kwargs):
        self._frame = frame_idx
        return super().track_step(frame_idx, *args, **kwargs)

    def _encode_new_memory(self, *args, is_mask_from_pts, **kwargs):
        if getattr(self, "_frame", None) in self.binarize_memory_frames:
            is_mask_from_pts = True
        return super()._encode_new_memory(*args, is_mask_from_pts=is_mask_from_pts, **kwargs)


def instantiate(node):
    """hydra.utils.instantiate for plain containers (recursive, `_target_` = import path)."""
    if isinstance(node, list):
        return [instantiate(v) for v in node]
    if not isinstance(node, dict):
        return node
    node = {k: instantiate(v) for k, v in node.items()}
    target = node.pop("_target_", None)
    if target is None:
        return node
    module, name = target.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)(**node)


def official_config():
    cfg = OmegaConf.to_container(OmegaConf.load(YAML), resolve=True)["model"]
    for path, (value, in_yaml) in SIZES.items():
        *parents, leaf = path.split(".")
        d = cfg
        for p in parents:
            d = d[p]
        assert (leaf in d) == in_yaml, path
        d[leaf] = value
    assert cfg.pop("_target_") == "sam2.modeling.sam2_base.SAM2Base"
    for k in PREDICTOR_OVERRIDES:
        assert k not in cfg, k
    return cfg | PREDICTOR_OVERRIDES


def build_official():
    torch.manual_seed(0)  # the constructors' random init is overwritten by the checkpoint anyway
    cfg = official_config()
    kwargs = {k: instantiate(v) for k, v in cfg.items()}
    model = TinySAM2VideoPredictor(**kwargs)
    for block in model.memory_encoder.fuser.layers:
        dim = block.pwconv1.in_features
        block.pwconv1 = nn.Linear(dim, FUSER_INTERMEDIATE)
        block.pwconv2 = nn.Linear(FUSER_INTERMEDIATE, dim)
    return model.eval(), cfg


# ----------------------------------------------------------------------------------------------
# Names.

MASK_DOWNSAMPLER_LAYERS = 4  # log2(total_stride 16) / log2(stride 2); Sequential [conv, LN, GELU] x 4 + conv


def mask_downsampler_index(m):
    i = int(m.group(1))
    if i == 3 * MASK_DOWNSAMPLER_LAYERS:
        return "memory_encoder.mask_downsampler.final_conv."
    kind = {0: "conv", 1: "layer_norm"}[i % 3]  # i % 3 == 2 is the GELU (no tensors)
    return f"memory_encoder.mask_downsampler.layers.{i // 3}.{kind}."


# (pattern, replacement) in order, first match only; the image-mode rules of make_sam2_fixtures.py after.
MEMORY_RULES = [
    (r"^no_mem_pos_enc$", "no_memory_positional_encoding"),
    (r"^maskmem_tpos_enc$", "memory_temporal_positional_encoding"),  # [7,1,1,mem_dim], same index order
    (r"^no_obj_ptr$", "no_object_pointer"),
    (r"^no_obj_embed_spatial$", "occlusion_spatial_embedding_parameter"),
    (r"^mask_downsample\.", "mask_downsample."),
    (r"^obj_ptr_proj\.layers\.0\.", "object_pointer_proj.proj_in."),
    (r"^obj_ptr_proj\.layers\.1\.", "object_pointer_proj.layers.0."),
    (r"^obj_ptr_proj\.layers\.2\.", "object_pointer_proj.proj_out."),
    (r"^obj_ptr_tpos_proj\.", "temporal_positional_encoding_projection_layer."),
    (r"^memory_attention\.layers\.(\d+)\.norm(\d)\.", r"memory_attention.layers.\1.layer_norm\2."),
    (r"^memory_attention\.layers\.(\d+)\.(self_attn|cross_attn_image)\.out_proj\.",
     r"memory_attention.layers.\1.\2.o_proj."),
    (r"^memory_attention\.layers\.", "memory_attention.layers."),  # q/k/v_proj, linear1, linear2
    (r"^memory_attention\.norm\.", "memory_attention.layer_norm."),
    (r"^memory_encoder\.mask_downsampler\.encoder\.(\d+)\.", mask_downsampler_index),
    (r"^memory_encoder\.pix_feat_proj\.", "memory_encoder.feature_projection."),
    (r"^memory_encoder\.fuser\.layers\.(\d+)\.dwconv\.", r"memory_encoder.memory_fuser.layers.\1.depthwise_conv."),
    (r"^memory_encoder\.fuser\.layers\.(\d+)\.norm\.", r"memory_encoder.memory_fuser.layers.\1.layer_norm."),
    (r"^memory_encoder\.fuser\.layers\.(\d+)\.pwconv(\d)\.", r"memory_encoder.memory_fuser.layers.\1.pointwise_conv\2."),
    (r"^memory_encoder\.fuser\.layers\.(\d+)\.gamma$", r"memory_encoder.memory_fuser.layers.\1.scale"),
    (r"^memory_encoder\.out_proj\.", "memory_encoder.projection."),
]
RULES = MEMORY_RULES + IMAGE_RULES


def to_transformers_name(name):
    for pattern, repl in RULES:
        if re.match(pattern, name):
            return re.sub(pattern, repl, name, count=1)
    raise KeyError(name)


def original_state_dict(hf_sd, official):
    names, sd, used = {}, {}, set()
    for k, ref in official.state_dict().items():
        t = to_transformers_name(k)
        m = re.match(r"^(.*)\[(\d+)\]$", t)
        src = hf_sd[m.group(1)][int(m.group(2))].reshape(ref.shape) if m else hf_sd[t]
        assert src.shape == ref.shape, (k, t, src.shape, ref.shape)
        assert t not in names.values(), t
        names[k] = t
        used.add(m.group(1) if m else t)
        sd[k] = src.clone()
    only_hf = sorted(set(hf_sd) - used)
    assert only_hf == ["shared_image_embedding.positional_embedding"], only_hf
    assert torch.equal(hf_sd[only_hf[0]], hf_sd["prompt_encoder.shared_embedding.positional_embedding"])
    return sd, names


# ----------------------------------------------------------------------------------------------
# Running the official predictor.

class Hooks:
    """Read-only forward hooks: inputs/outputs of the memory encoder and the memory attention."""

    def __init__(self, model):
        self.memenc, self.memattn = [], []
        model.memory_encoder.register_forward_hook(self._enc)
        model.memory_attention.register_forward_hook(self._attn, with_kwargs=True)

    def _enc(self, module, args, out):
        self.memenc.append(dict(pix_feat=args[0].clone(), mask_in=args[1].clone(),
                                features=out["vision_features"].clone()))  # before the in-place no-obj add

    def _attn(self, module, args, kwargs, out):
        self.memattn.append(dict(curr=kwargs["curr"][0].clone(), curr_pos=kwargs["curr_pos"][0].clone(),
                                 memory=kwargs["memory"].clone(), memory_pos=kwargs["memory_pos"].clone(),
                                 num_ptr=kwargs["num_obj_ptr_tokens"], out=out.clone()))

    def clear(self):
        self.memenc.clear()
        self.memattn.clear()


def init_state(predictor, images):
    """The official init_state, its frame loader replaced by the given [T, 3, 128, 128] images."""
    original = svp.load_video_frames
    svp.load_video_frames = lambda **kw: (images.clone(), H, W)
    try:
        state = predictor.init_state(video_path="<pixel_values>")
    finally:
        svp.load_video_frames = original
    assert state["num_frames"] == NUM_FRAMES and (state["video_height"], state["video_width"]) == (H, W)
    return state


def output(state, obj_idx, frame):
    d = state["output_dict_per_obj"][obj_idx]
    out = d["cond_frame_outputs"].get(frame)
    return out if out is not None else d["non_cond_frame_outputs"][frame]


def snapshot(state, frame):
    n = len(state["obj_ids"])
    outs = [output(state, i, frame) for i in range(n)]
    return dict(pred_masks=torch.cat([o["pred_masks"] for o in outs]).clone(),
                object_score_logits=torch.cat([o["object_score_logits"] for o in outs]).clone())


def propagate(predictor, state, start=None):
    snaps = {}
    for frame, _, video_res in predictor.propagate_in_video(state, start_frame_idx=start):
        snaps[frame] = snapshot(state, frame) | dict(masks=video_res.clone())
    return snaps


def session_box(g, key):
    """The box as transformers stored it (128x128 frame), normalised for normalize_coords=False."""
    return g[key + ".input_points"][0, 0].reshape(4) / SIZE


def maxdiff(a, b):
    assert a.numel() == b.numel(), (a.shape, b.shape)
    return float((a.float().reshape(-1) - b.float().reshape(-1)).abs().max())


def compare(snap, g, step):
    k = f"{step}."
    return dict(pred_masks=maxdiff(snap["pred_masks"], g[k + "pred_masks"]),
                object_score_logits=maxdiff(snap["object_score_logits"], g[k + "object_score_logits"]),
                masks=maxdiff(snap["masks"], g[k + "masks"]))


def run_track(predictor, hooks, pixel_values, g, drop_prev):
    predictor.drop_prev_sam_mask_logits = drop_prev
    hooks.clear()
    state = init_state(predictor, pixel_values)
    _, _, video_res = predictor.add_new_points_or_box(state, frame_idx=0, obj_id=1,
                                                      box=session_box(g, "track.prompt0"), normalize_coords=False)
    first = state["temp_output_dict_per_obj"][0]["cond_frame_outputs"][0]["pred_masks"].clone()
    snaps = propagate(predictor, state)
    assert sorted(snaps) == list(range(NUM_FRAMES))
    assert torch.equal(first, snaps[0]["pred_masks"]) and torch.equal(video_res, snaps[0]["masks"])
    report = {f"frame{t}_vs_track.step{s}": compare(snaps[t], g, f"track.step{s}")
              for t, s in zip(range(NUM_FRAMES), (0, 2, 3, 4))}
    report["frame0_vs_track.step1"] = compare(snaps[0], g, "track.step1")

    # intermediates: frame-0 memory (encoded in propagate_in_video_preflight), frame-1 memory attention
    me, ma = hooks.memenc[0], hooks.memattn[0]
    c0 = state["output_dict_per_obj"][0]["cond_frame_outputs"][0]
    seq = lambda x: x.float().flatten(2).permute(2, 0, 1)  # [B, C, H, W] -> [HW, B, C]
    inter = {
        "track.frame0.memory_encoder.pix_feat": me["pix_feat"],
        "track.frame0.memory_encoder.mask_in": me["mask_in"],
        "track.frame0.memory_encoder.features": me["features"],
        "track.frame0.maskmem_features": seq(c0["maskmem_features"]),
        "track.frame0.maskmem_pos_enc": seq(c0["maskmem_pos_enc"][-1]),
        "track.frame0.object_pointer": c0["obj_ptr"],
        "track.frame1.memory_attention.current_vision_features": ma["curr"],
        "track.frame1.memory_attention.current_vision_position_embeddings": ma["curr_pos"],
        "track.frame1.memory_attention.memory": ma["memory"],
        "track.frame1.memory_attention.memory_pos": ma["memory_pos"],
        "track.frame1.memory_attention.output": ma["out"].transpose(0, 1),
        "track.frame1.pix_feat_with_mem": ma["out"].permute(1, 2, 0).reshape(1, 32, 8, 8),
    }
    assert c0["maskmem_features"].dtype == torch.bfloat16 and ma["num_ptr"] == 2
    report["intermediates"] = {k: maxdiff(v, g[k]) for k, v in inter.items()}

    # correction on frame 2 (transformers steps 5, 6)
    pts = g["track.prompt1.input_points"][0, 0] / SIZE
    labels = g["track.prompt1.input_labels"][0, 0].int()
    predictor.add_new_points_or_box(state, frame_idx=2, obj_id=1, points=pts, labels=labels, normalize_coords=False)
    corrected = state["temp_output_dict_per_obj"][0]["non_cond_frame_outputs"][2]["pred_masks"].clone()
    after = propagate(predictor, state, start=3)
    assert sorted(after) == [3]
    assert torch.equal(corrected, output(state, 0, 2)["pred_masks"])  # stored as a non-cond frame
    assert 2 in state["output_dict_per_obj"][0]["non_cond_frame_outputs"]
    correction = {
        "frame2_vs_track.step5": dict(pred_masks=maxdiff(corrected, g["track.step5.pred_masks"]),
                                      object_score_logits=maxdiff(output(state, 0, 2)["object_score_logits"],
                                                                  g["track.step5.object_score_logits"])),
        "frame3_vs_track.step6": compare(after[3], g, "track.step6"),
    }
    return report, correction, snaps


def run_two_objects(predictor, pixel_values, g, binarize_frames):
    predictor.binarize_memory_frames = binarize_frames
    try:
        state = init_state(predictor, pixel_values)
        predictor.add_new_points_or_box(state, frame_idx=0, obj_id=1, box=session_box(g, "two_objects.prompt0"),
                                        normalize_coords=False)
        predictor.add_new_points_or_box(state, frame_idx=1, obj_id=2,
                                        points=g["two_objects.prompt1.input_points"][0, 0] / SIZE,
                                        labels=g["two_objects.prompt1.input_labels"][0, 0].int(),
                                        normalize_coords=False)
        snaps = propagate(predictor, state, start=1)
    finally:
        predictor.binarize_memory_frames = ()
    assert sorted(snaps) == [1, 2, 3]
    rep = {}
    for t in (1, 2, 3):
        for i in range(2):
            s = {k: v[i:i + 1] for k, v in snaps[t].items()}
            gi = {k: g[f"two_objects.step{t}.{k}"][i:i + 1] for k in ("pred_masks", "object_score_logits", "masks")}
            rep[f"frame{t}.obj{i + 1}"] = {k: maxdiff(s[k], gi[k]) for k in gi}
    return rep


def background_components(mask, connectivity=8):
    """Labels and areas of the background (logit <= 0) components of a [h, w] mask, like
    sam2.utils.misc.get_connected_components (8-connectivity) on `mask <= 0`."""
    bg = (mask <= 0).tolist()
    h, w = len(bg), len(bg[0])
    steps = [(1, 0), (-1, 0), (0, 1), (0, -1)]
    if connectivity == 8:
        steps += [(1, 1), (1, -1), (-1, 1), (-1, -1)]
    label = [[0] * w for _ in range(h)]
    areas = [0]
    for y0 in range(h):
        for x0 in range(w):
            if not bg[y0][x0] or label[y0][x0]:
                continue
            n = len(areas)
            stack, area = [(y0, x0)], 0
            label[y0][x0] = n
            while stack:
                y, x = stack.pop()
                area += 1
                for dy, dx in steps:
                    yy, xx = y + dy, x + dx
                    if 0 <= yy < h and 0 <= xx < w and bg[yy][xx] and not label[yy][xx]:
                        label[yy][xx] = n
                        stack.append((yy, xx))
            areas.append(area)
    labels = torch.tensor(label)
    return labels, torch.tensor(areas)[labels] * (labels > 0)


def fill_holes_in_mask_scores(mask, max_area):
    """sam2.utils.misc.fill_holes_in_mask_scores with the CUDA connected-components kernel restated
    in Python (the extension is not built here): background components of area <= max_area -> 0.1."""
    out = mask.clone()
    for i in range(mask.shape[0]):
        labels, areas = background_components(mask[i, 0])
        out[i, 0] = torch.where((labels > 0) & (areas <= max_area), torch.tensor(0.1), mask[i, 0])
    return out


def run_track_filled(predictor, pixel_values, g, area=8):
    """Case track frames 0..3 with build_sam2_video_predictor's fill_hole_area 8 (as with the extension)."""
    original = svp.fill_holes_in_mask_scores
    svp.fill_holes_in_mask_scores, predictor.fill_hole_area = fill_holes_in_mask_scores, area
    try:
        state = init_state(predictor, pixel_values)
        predictor.add_new_points_or_box(state, frame_idx=0, obj_id=1, box=session_box(g, "track.prompt0"),
                                        normalize_coords=False)
        snaps = propagate(predictor, state)
    finally:
        svp.fill_holes_in_mask_scores, predictor.fill_hole_area = original, 0
    return {f"frame{t}_vs_track.step{s}": compare(snaps[t], g, f"track.step{s}")
            for t, s in zip(range(NUM_FRAMES), (0, 2, 3, 4))}


def official_pixels():
    """What the official loader makes of the PNG frames: PIL resize (bicubic) of uint8, /255, normalise."""
    imgs = torch.stack([_load_img_as_tensor(str(FIX / f"video_frame{t}.png"), SIZE)[0] for t in range(NUM_FRAMES)])
    mean = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
    std = torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    return ((imgs.float() - mean) / std).float()


# ----------------------------------------------------------------------------------------------

def main():
    torch.set_num_threads(1)
    patch_memory_kv_dim()
    g = load_file(FIX / "sam2_video_golden.safetensors")

    # transformers weights (float32, as the goldens ran on them)
    hf = Sam2VideoModel.from_pretrained(MODEL_DIR, dtype=torch.float32).eval()
    hf_sd = {k: v.detach().clone() for k, v in hf.state_dict().items()}
    saved = load_file(MODEL_DIR / "model.safetensors")
    assert set(saved) == set(hf_sd) and all(torch.equal(saved[k].float(), hf_sd[k]) for k in saved)
    del hf

    official, cfg = build_official()
    orig_sd, names = original_state_dict(hf_sd, official)
    official.load_state_dict(orig_sd, strict=True)
    fp16_exact = all(torch.equal(v, v.half().float()) for v in orig_sd.values())
    assert fp16_exact
    torch.save({"model": {k: v.half() for k, v in orig_sd.items()}}, PT)
    fix_serialization_id(PT)
    NAMES.write_text(json.dumps(names, indent=1) + "\n")

    # the file is what the official model runs on: read back, strict load into a fresh model
    back = torch.load(PT, map_location="cpu", weights_only=True)["model"]
    assert back.keys() == orig_sd.keys() and all(torch.equal(back[k].float(), orig_sd[k]) for k in back)
    predictor, _ = build_official()
    missing, unexpected = predictor.load_state_dict(back, strict=True)
    assert not missing and not unexpected
    predictor.eval()
    hooks = Hooks(predictor)
    stability = []  # the dynamic-multimask stability score of every single-mask decoder call
    get_stability = predictor.sam_mask_decoder._get_stability_scores
    predictor.sam_mask_decoder._get_stability_scores = lambda x: stability.append(get_stability(x)) or stability[-1]
    pixel_values = torch.cat([g[f"pixel_values.{t}"] for t in range(NUM_FRAMES)])

    with torch.no_grad():
        # A, A': same pixels, same prompt coordinates
        track, correction_official, snaps = run_track(predictor, hooks, pixel_values, g, drop_prev=False)
        _, correction_no_prev, _ = run_track(predictor, hooks, pixel_values, g, drop_prev=True)
        assert max(max(v.values()) for k, v in track.items() if k != "intermediates") < 1e-4, track
        assert max(track["intermediates"].values()) < 1e-4, track["intermediates"]
        assert max(max(v.values()) for v in correction_no_prev.values()) < 1e-4, correction_no_prev
        holes = {}
        for t in snaps:
            labels, areas = background_components(snaps[t]["pred_masks"][0, 0])
            small = (labels > 0) & (areas <= 8)
            holes[f"frame{t}"] = dict(components=len(set(labels[small].tolist())), pixels=int(small.sum()))
        filled = run_track_filled(predictor, pixel_values, g)

        # B: the official preprocessing and coordinate transform, end to end
        px = official_pixels()
        state = init_state(predictor, px)
        stability.clear()
        predictor.add_new_points_or_box(state, frame_idx=0, obj_id=1, box=[12.0, 10.0, 30.0, 28.0])
        frame0_stability = float(stability[0].flatten()[0])  # golden (same pixels): 0.9904 -> token 0
        box_coords = state["point_inputs_per_obj"][0][0]["point_coords"]
        e2e = propagate(predictor, state)
        end_to_end = {"pixel_values_official_loader_vs_processor": maxdiff(px, pixel_values),
                      "frame0_stability_score": frame0_stability,
                      "box_x/W*128_vs_x*(128/W)": maxdiff(box_coords, g["track.prompt0.input_points"])}
        end_to_end |= {f"frame{t}_vs_track.step{s}": compare(e2e[t], g, f"track.step{s}")
                       for t, s in zip(range(NUM_FRAMES), (0, 2, 3, 4))}

        # C: two objects, official as is and with object 1's frame-1 memory binarized (as transformers)
        two_official = run_two_objects(predictor, pixel_values, g, binarize_frames=())
        two_binarized = run_two_objects(predictor, pixel_values, g, binarize_frames=(1,))
        assert max(max(v.values()) for v in two_binarized.values()) < 1e-4, two_binarized

    report = {
        "tensors": {"official": len(orig_sd), "transformers": len(hf_sd),
                    "transformers_only": ["shared_image_embedding.positional_embedding (copy of "
                                          "prompt_encoder.shared_embedding.positional_embedding)"],
                    "stacked": "sam_prompt_encoder.point_embeddings.{0..3}.weight [1,32] = rows of "
                               "prompt_encoder.point_embed.weight [4,32]",
                    "fp16_exact": fp16_exact},
        "A_track_same_inputs": track,
        "A'_correction_official_prev_sam_mask_logits": correction_official,
        "A'_correction_without_prev_sam_mask_logits": correction_no_prev,
        "B_end_to_end_official_preprocessing": end_to_end,
        "C_two_objects_official": two_official,
        "C_two_objects_obj1_frame1_memory_binarized": two_binarized,
        "background_components_le_8px_in_official_low_res_masks": holes,
        "A_track_with_fill_hole_area_8": filled,
        "official_flags": {k: v for k, v in cfg.items() if not isinstance(v, nn.Module) and k not in (
            "image_encoder", "memory_attention", "memory_encoder")},
    }
    print(json.dumps(report, indent=1, default=str))
    for p in (PT, NAMES):
        print(f"{p.stat().st_size:>9}  {hashlib.md5(p.read_bytes()).hexdigest()[:8]}  {p.relative_to(FIX)}")


if __name__ == "__main__":
    main()
