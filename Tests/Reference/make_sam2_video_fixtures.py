"""Golden files for the SAM 2 VIDEO tracking parity tests (Tests/SAM2Tests/Fixtures).

Run by hand in a venv with torch, transformers (5.24), safetensors, pillow, numpy:

    /work/venv/bin/python Tests/Reference/make_sam2_video_fixtures.py

Deterministic (fixed seeds, one CPU thread; about 10 s): rerunning reproduces the same bytes.
Every golden comes from transformers' own video API, driven as a user drives it:

    processor = Sam2VideoProcessor(image_processor=Sam2ImageProcessor(size={"height": 128, "width": 128}),
                                   video_processor=Sam2VideoVideoProcessor(size={"height": 128, "width": 128}))
    session = processor.init_video_session(video=frames_uint8_THWC, inference_device="cpu")
    processor.add_inputs_to_inference_session(session, frame_idx=f, obj_ids=i, input_boxes=[[box]])
    processor.add_inputs_to_inference_session(session, frame_idx=f, obj_ids=i, input_points=[[pts]], input_labels=[[labels]])
    out = model(inference_session=session, frame_idx=f)          # the frame that got the inputs
    for out in model.propagate_in_video_iterator(session[, start_frame_idx=s]): ...
    masks = processor.post_process_masks([out.pred_masks], original_sizes=[[40, 56]], binarize=False)[0]

Writes (Tests/SAM2Tests/Fixtures):
  sam2_video_tiny/config.json, model.safetensors
        a tiny Sam2VideoModel saved by save_pretrained (transformers names, 357 tensors). Every
        parameter and persistent buffer is randomised (the default init zeroes biases, position
        embeddings, the no-memory / no-object-pointer / occlusion embeddings and the temporal
        encodings, makes norms identity and the memory fuser's layer scale 1e-6): norms
        1 + 0.1 N, biases 0.1 N, weights N * min(0.2, 1/sqrt(fan_in)), tokens and the top-level
        embeddings 0.5 N, Hiera position embeddings 0.2 N, layer scales 0.3 N, random-Fourier
        matrix N. Three deliberate gains keep the tracking non-degenerate (see `randomise`):
        object-score head output bias +1 (object present on every frame), IoU head output x8
        (the multimask argmax is decided by >= 0.02, not by rounding), mask hypernetwork output
        x3 (mask logits about +-2..5 instead of +-0.5). Stored as float16 (`WEIGHTS_DTYPE`,
        halves the file); every value is float16-representable, so widening gives back exactly
        the float32 model the goldens ran on (config.json says float32; from_pretrained loads
        float32). Loading it in transformers needs `patch_memory_kv_dim` (below).
  video_frame{0..3}.png  56 wide x 40 high RGB: smooth colour texture + noise, a bright orange
        blob centred (21 + 3t, 19 + t) (object 1, inside the box on frame 0), a static cyan
        square at (43, 29) (object 2)
  sam2_video_golden.safetensors  float32 tensors (below)
  sam2_video_cases.json  per case and step: the call, frame, object ids, per object the mode
        (reused / init_cond / tracked / correction), cond or non-cond storage, multimask, the
        chosen mask and why (IoU argmax / stability score), the memories and object pointers
        read, how the memory mask was made, object score, positive fraction; tensor names and
        shapes; config values; asserted upstream behaviours (`upstream_notes`).

Tiny geometry -- vision / prompt encoder / mask decoder as prescribed for the SAM 2 fixtures:
  Hiera hidden 16, blocks [1,2,3,1], dims [16,32,64,128], heads [1,2,4,8], windows [4,4,4,2],
  global block 4, window-pos background 7x7, image 128x128 -> FPN 32 channels at 32x32, 16x16,
  8x8 (the 8x8 top level is what the memory modules see); prompt encoder hidden 32, patch 16,
  mask_input_channels 16; mask decoder hidden 32, mlp 64, 2 heads, IoU head 32. Low-res masks
  32x32 (4 x 8); the memory encoder takes the 128x128 high-res mask.
  Memory parts, shrunk consistently:
    memory_attention_hidden_size 32 (= fpn_hidden_size), 2 layers, 1 head, downsample 1,
      feed-forward 64 (relu), rope_feat_sizes [8, 8] (the 8x8 grid), rope_theta 10000 (axial);
    memory_encoder_hidden_size 32; memory_encoder_output_channels (mem_dim) 16, so each 32-d
      object pointer becomes 32/16 = 2 memory tokens (real: 256/64 = 4);
    mask_downsampler kernel 3, stride 2, padding 1, total_stride 16 -> 4 conv layers, channels
      1 -> 4 -> 16 -> 64 -> 256 (fixed by the stride, as in the real model), 128x128 -> 8x8 (real
      1024 -> 64: the same /16), final 1x1 conv 256 -> embed_dim 32;
    memory_fuser 2 ConvNeXt blocks, embed 32, intermediate 64, kernel 7, padding 3;
    num_maskmem 7, max_object_pointers_in_encoder 16 (4 frames: P = min(4, 16) = 4, so temporal
    offsets are normalised by 3), max_cond_frame_num -1.
  sam2.1 flags = the Sam2VideoConfig defaults, which is what convert_sam2_video_to_hf.py writes for
  facebook/sam2.1-hiera-tiny (it sets only the two "sam2.1" flags, both True):
  enable_occlusion_spatial_embedding True, enable_temporal_pos_encoding_for_object_pointers True,
  multimask_output_in_sam True, multimask_min_pt_num 0, multimask_max_pt_num 1,
  multimask_output_for_tracking True, sigmoid_scale_for_mem_enc 20.0, sigmoid_bias_for_mem_enc
  -10.0; mask decoder dynamic_multimask_via_stability True (delta 0.05, threshold 0.98).
  binarize_mask_from_pts_for_mem_enc is no config field: transformers always (at inference)
  binarizes the memory mask of a frame where any object had point/box inputs.

`patch_memory_kv_dim`: transformers 5.24 builds the memory cross-attention as
Sam2VideoRoPEAttention(config, kv_in_dim=64), a literal 64 (the original sam2 yaml's
`kv_in_dim: 64` = mem_dim). With fpn_hidden_size 32 no mem_dim works upstream: 64 makes the
32-d object pointers unsplittable (torch.cat fails), anything else mismatches the 64-wide k/v
projections. The patch makes kv_in_dim = memory_encoder_output_channels: a no-op for every real
checkpoint (64); without it from_pretrained refuses the tiny checkpoint (k/v_proj.weight
[32, 16] vs [32, 64]). A port should take kv_in_dim = mem_dim.

Tied buffers: shared_image_embedding.positional_embedding (the decoder's image-wide PE) and
prompt_encoder.shared_embedding.positional_embedding (points / boxes) are separate buffers in
transformers; convert_sam2_video_to_hf.py copies one into the other, so they are equal here.
Not saved and left alone: memory_attention.position_ids and rotary_emb.inv_freq (computed from
the config). Saved but never read by the video forward: no_memory_positional_encoding, and
mask_downsample (only for mask prompts, not used here).

Cases (every step in sam2_video_cases.json):
  track: object 1, box (12, 10, 30, 28) (x0, y0, x1, y1 in original pixels) on frame 0;
    step0 model(frame_idx=0); steps1-4 propagate_in_video_iterator(session) -> frame 0 again
    (re-yielded from the cond-frame cache), 1, 2, 3; correction on frame 2 (positive (27, 21),
    negative (46, 8)): add_inputs_to_inference_session, step5 model(frame_idx=2) (run with memory,
    stored as a NON-cond frame), step6 propagate_in_video_iterator(session, start_frame_idx=3).
  two_objects: object 1 box on frame 0, step0 model(frame_idx=0); object 2 positive point
    (43, 29) on frame 1, added mid-stream; steps1-3 propagate_in_video_iterator(session,
    start_frame_idx=1) -> 1, 2, 3 (the default start, 0, would run object 2 on frame 0 as a
    prompt-less cond frame: see upstream_notes).
  Object scores stay positive on every step of both cases (about +1.4 .. +1.7), so the
  occlusion path (occlusion embedding, no_object_pointer, NO_OBJ_SCORE masks) is not reached.

Streaming cases (written last, to NEW files; the files above do not depend on them):
  sam2_video_stream_golden.safetensors / sam2_video_stream_cases.json, transformers' streaming API:
    session = processor.init_video_session(inference_device="cpu")            # no video
    inputs = processor(images=frame_uint8_HWC, device="cpu", return_tensors="pt")   # per frame
    processor.add_inputs_to_inference_session(session, frame_idx=0, obj_ids=1, input_boxes=[[box]],
                                              original_size=inputs.original_sizes[0])  # first frame
    out = model(inference_session=session, frame=inputs.pixel_values[0])      # frame_idx = frames so far
  Streaming sets max_object_pointers_to_use = max_object_pointers_in_encoder (16), not
  min(num_frames, 16): pointer offsets are normalised by 15. The streamed pixel_values equal
  pixel_values.{t mod 4} exactly (asserted; none stored).
  stream: object 1 box on frame 0, 8 frames (video_frame0..3, then 0..3 again).
  stream2: object 1 box on frame 0; object 2 positive point (43, 29) added (frame_idx=3) before
    frame 3 is fed; 6 frames (images 0,1,2,3,0,1).
  Per step: {case}.step{k}.pred_masks [num_obj,1,32,32], .masks [num_obj,1,40,56], .object_score_logits
  [num_obj,1], .iou_scores [num_obj,4], .frame [1]; {case}.prompt{j}.input_points / .input_labels.

Golden tensors:
  pixel_values.{0..3} [1,3,128,128] processor output (56x40 stretched to 128x128: no aspect kept);
  original_size [2] = (40, 56).
  {case}.prompt{j}.input_points [1,1,n,2], .input_labels [1,1,n]: as stored in the session
    (processor-normalised: x * 128/56, y * 128/40; a box is 2 points with labels 2, 3).
  {case}.step{k}.frame [1]; .pred_masks [num_obj,1,32,32] the returned low-res logits;
    .masks [num_obj,1,40,56] post_process_masks(binarize=False); .object_score_logits
    [num_obj,1] as returned; .iou_scores [num_obj,4] all four sigmoid IoU predictions of the
    mask decoder (hook; the video output has none), NaN rows for reused (not re-run) objects.
  Intermediates of case track (read-only hooks / session state; nothing in transformers changed):
    track.frame0.memory_encoder.pix_feat [1,32,8,8]  its vision input: the frame's raw top FPN
          level (no memory, no no_memory_embedding)
    track.frame0.memory_encoder.mask_in [1,1,128,128]  its mask input: (high_res > 0) * 20 - 10
          (binarized: frame 0 had a box)
    track.frame0.memory_encoder.features [1,16,8,8]  its output, before the occlusion embedding
          (not added: object present) and the bfloat16 rounding
    track.frame0.maskmem_features [64,1,16]  as stored in the session: (HW, B, C), bfloat16
          (widened here)
    track.frame0.maskmem_pos_enc [64,1,16]  its sine position encoding (float32)
    track.frame0.object_pointer [1,1,32]
    track.frame1.memory_attention.{current_vision_features [64,1,32],
          current_vision_position_embeddings [64,1,32], memory [66,1,16], memory_pos [66,1,16]}
          inputs of memory_attention on frame 1: 64 memory tokens of frame 0 + 2 object-pointer
          tokens (frame 0's pointer split in two); memory_pos includes the temporal encodings
          (memory_temporal_positional_encoding[6] for the cond frame, the projected 1-d sine of
          offset 1/3 for the pointer tokens); .output [1,1,64,32] its output
    track.frame1.pix_feat_with_mem [1,32,8,8]  the same output as the mask decoder gets it
"""
import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file, save_file
from transformers import (
    Sam2HieraDetConfig,
    Sam2VideoConfig,
    Sam2VideoModel,
    Sam2VideoProcessor,
    Sam2VideoVideoProcessor,
    Sam2VisionConfig,
)
from transformers.models.sam2.image_processing_sam2 import Sam2ImageProcessor
from transformers.models.sam2_video import modeling_sam2_video as msv

HERE = Path(__file__).resolve().parent
FIX = HERE.parent / "SAM2Tests" / "Fixtures"
MODEL_DIR = FIX / "sam2_video_tiny"
WEIGHTS_DTYPE = torch.float16
IOU_GAIN = 8.0
MASK_GAIN = 3.0
SEED = 37  # chosen among 0..74: stable (token 0) and fallback branches, IoU margins >= 0.02, scores > 1
SIZE = 128
W, H = 56, 40
NUM_FRAMES = 4
BOX = [12, 10, 30, 28]
CORRECTION = dict(frame=2, points=[[27, 21], [46, 8]], labels=[1, 0])
OBJ2 = dict(frame=1, points=[[43, 29]], labels=[1])
STREAM2_OBJ2 = dict(frame=3, points=[[43, 29]], labels=[1])

BACKBONE = dict(hidden_size=16, num_attention_heads=1, image_size=[128, 128], blocks_per_stage=[1, 2, 3, 1],
                embed_dim_per_stage=[16, 32, 64, 128], num_attention_heads_per_stage=[1, 2, 4, 8],
                window_size_per_stage=[4, 4, 4, 2], global_attention_blocks=[4],
                window_positional_embedding_background_size=[7, 7])
VISION = dict(backbone_channel_list=[128, 64, 32, 16], backbone_feature_sizes=[[32, 32], [16, 16], [8, 8]],
              fpn_hidden_size=32)
PROMPT = dict(hidden_size=32, image_size=128, patch_size=16, mask_input_channels=16)
DECODER = dict(hidden_size=32, mlp_dim=64, num_attention_heads=2, iou_head_hidden_dim=32)
MEMORY = dict(image_size=128, num_maskmem=7, max_object_pointers_in_encoder=16, max_cond_frame_num=-1,
              memory_attention_hidden_size=32, memory_attention_num_layers=2,
              memory_attention_num_attention_heads=1, memory_attention_downsample_rate=1,
              memory_attention_feed_forward_hidden_size=64, memory_attention_rope_feat_sizes=[8, 8],
              memory_encoder_hidden_size=32, memory_encoder_output_channels=16,
              mask_downsampler_embed_dim=32, mask_downsampler_kernel_size=3, mask_downsampler_stride=2,
              mask_downsampler_padding=1, mask_downsampler_total_stride=16,
              memory_fuser_num_layers=2, memory_fuser_embed_dim=32, memory_fuser_intermediate_dim=64,
              memory_fuser_kernel_size=7, memory_fuser_padding=3)
SAM21_FLAGS = ["enable_occlusion_spatial_embedding", "enable_temporal_pos_encoding_for_object_pointers",
               "multimask_output_in_sam", "multimask_min_pt_num", "multimask_max_pt_num",
               "multimask_output_for_tracking", "sigmoid_scale_for_mem_enc", "sigmoid_bias_for_mem_enc"]


def patch_memory_kv_dim():
    """kv_in_dim of the memory cross-attention = memory_encoder_output_channels (upstream: literal 64)."""
    if getattr(msv.Sam2VideoRoPEAttention, "_kv_dim_patched", False):
        return
    original = msv.Sam2VideoRoPEAttention.__init__

    def init(self, config, kv_in_dim=None, rope_k_repeat=False):
        if kv_in_dim == 64:
            kv_in_dim = config.memory_encoder_output_channels
        original(self, config, kv_in_dim=kv_in_dim, rope_k_repeat=rope_k_repeat)

    msv.Sam2VideoRoPEAttention.__init__ = init
    msv.Sam2VideoRoPEAttention._kv_dim_patched = True


def make_config():
    vision = Sam2VisionConfig(backbone_config=Sam2HieraDetConfig(**BACKBONE), **VISION)
    return Sam2VideoConfig(vision_config=vision, prompt_encoder_config=PROMPT, mask_decoder_config=DECODER, **MEMORY)


def randomise(model, seed=0):
    """Every parameter and persistent buffer, deterministic, float16-representable."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            r = torch.randn(p.shape, generator=g)
            leaf = name.split(".")[-2] if name.count(".") else name
            if "norm" in leaf:
                p.copy_(1 + 0.1 * r if name.endswith("weight") else 0.1 * r)
            elif name.endswith(".scale"):  # memory fuser layer scale (default 1e-6)
                p.copy_(0.3 * r)
            elif name.endswith("bias"):
                p.copy_(0.1 * r)
            elif "pos_embed" in name:  # Hiera absolute / window position embeddings
                p.copy_(0.2 * r)
            elif isinstance(model.get_submodule(name.rsplit(".", 1)[0]) if "." in name else None, torch.nn.Embedding):
                p.copy_(0.5 * r)  # iou / mask / object-score tokens, point embeddings, no_mask_embed
            elif "." not in name:  # no_memory_embedding, no_object_pointer, occlusion / temporal encodings
                p.copy_(0.5 * r)
            else:  # linear / conv weights: std min(0.2, 1/sqrt(fan_in)) keeps activations O(1)
                fan_in = int(np.prod(p.shape[1:]))
                p.copy_(r * min(0.2, 1 / math.sqrt(fan_in)))
        # the object-score head decides "present" (> 0) vs "occluded"; a positive prior keeps
        # the tracked object present on every frame of the main case (random weights alone
        # give a coin toss per frame)
        model.mask_decoder.pred_obj_score_head.proj_out.bias.fill_(1.0)
        # the IoU head's inputs are layer-normed tokens: at 1/sqrt(fan_in) its four sigmoid outputs
        # sit within ~1e-3 of each other, and the multimask argmax would hinge on rounding
        model.mask_decoder.iou_prediction_head.proj_out.weight.mul_(IOU_GAIN)
        # mask logits = hypernetwork(token) . upscaled embedding, both 4-wide: at 1/sqrt(fan_in) they
        # stay within about +-0.6; a gain brings them to +-2 (sigmoid for the memory still unsaturated)
        for mlp in model.mask_decoder.output_hypernetworks_mlps:
            mlp.proj_out.weight.mul_(MASK_GAIN)
        # random-Fourier position matrix (the default init is N(0, scale=1) too); the two copies are tied
        pe = torch.randn(model.prompt_encoder.shared_embedding.positional_embedding.shape, generator=g)
        model.prompt_encoder.shared_embedding.positional_embedding.copy_(pe)
        model.shared_image_embedding.positional_embedding.copy_(pe)
        for t in model.state_dict().values():  # saved tensors (shared storage): float16-representable
            t.copy_(t.to(WEIGHTS_DTYPE).float())


def make_frames(seed=1):
    """uint8 [T, H, W, 3]: smooth colour texture + noise, a moving bright blob, a static square."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)
    tex = np.stack([70 + 30 * np.sin(xx / 3.1 + yy / 5.3), 80 + 25 * np.cos(yy / 2.7 - xx / 7.0),
                    90 + 30 * np.sin((xx + yy) / 4.2)], axis=-1)
    frames = []
    for t in range(NUM_FRAMES):
        img = tex + rng.normal(0, 8, tex.shape)
        cx, cy = 21 + 3 * t, 19 + t  # inside BOX on frame 0
        blob = np.clip(1.5 - np.sqrt(((xx - cx) / 8.0) ** 2 + ((yy - cy) / 7.0) ** 2) * 1.5, 0, 1)[..., None]
        img = img * (1 - blob) + blob * np.array([250, 200, 60])
        sq = (np.abs(xx - 43) <= 5) & (np.abs(yy - 29) <= 5)
        img[sq] = [40, 210, 230]
        frames.append(np.clip(np.round(img), 0, 255).astype(np.uint8))
    return np.stack(frames)


class Recorder:
    """Read-only forward hooks on the mask decoder, the memory encoder and the memory attention.

    The stability score is seen by wrapping the decoder instance's `_get_stability_scores`
    (it returns the original's value unchanged)."""

    def __init__(self, model):
        self.calls, self._iou, self._stability = [], None, None
        dec = model.mask_decoder
        dec.iou_prediction_head.register_forward_hook(self._iou_head)
        dec.register_forward_hook(self._decoder, with_kwargs=True)
        original = dec._get_stability_scores

        def stability(mask_logits):
            self._stability = original(mask_logits)
            return self._stability

        dec._get_stability_scores = stability
        model.memory_encoder.register_forward_hook(self._memenc)
        model.memory_attention.register_forward_hook(self._memattn, with_kwargs=True)

    def _iou_head(self, module, args, out):
        self._iou = out.detach().clone()  # all 4 sigmoid IoU predictions, before the selection

    def _decoder(self, module, args, kwargs, out):
        self.calls.append(dict(kind="decoder", multimask=bool(kwargs["multimask_output"]), iou_all=self._iou,
                               stability=None if self._stability is None else self._stability.clone()))
        self._iou, self._stability = None, None

    def _memenc(self, module, args, out):
        self.calls.append(dict(kind="memenc", pix_feat=args[0].clone(), mask_in=args[1].clone(),
                               features=out[0].clone(), pos=out[1].clone()))

    def _memattn(self, module, args, kwargs, out):
        names = ("current_vision_features", "current_vision_position_embeddings", "memory", "memory_posision_embeddings")
        self.calls.append(dict(kind="memattn", out=out.clone(), num_ptr=kwargs.get("num_object_pointer_tokens", 0),
                               **{k: kwargs[k].clone() for k in names}))

    def take(self):
        calls, self.calls = self.calls, []
        return calls


def memory_plan(session, obj_idx, frame, model, streaming=False):
    """Which memories transformers' `_prepare_memory_conditioned_features` reads (forward time only):
    every cond frame (max_cond_frame_num -1), the non-cond frames frame-1 .. frame-(num_maskmem-1),
    object pointers of cond frames <= frame and of non-cond frames frame-1 .. frame-(P-1),
    P = min(num_frames, max_object_pointers_in_encoder); streaming (model(frame=...)):
    P = max_object_pointers_in_encoder."""
    out = session.output_dict_per_obj[obj_idx]
    n = model.config.num_maskmem
    mem = [dict(frame=t, kind="cond", temporal_pos_index=n - 1) for t in out["cond_frame_outputs"]]
    mem += [dict(frame=frame - o, kind="non_cond", temporal_pos_index=o - 1)
            for o in range(n - 1, 0, -1) if frame - o in out["non_cond_frame_outputs"]]
    ptr = [dict(frame=t, kind="cond", offset=frame - t) for t in out["cond_frame_outputs"] if t <= frame]
    p = model.config.max_object_pointers_in_encoder
    if not streaming:
        p = min(session.num_frames, p)
    for o in range(1, p):
        if frame - o < 0:
            break
        if frame - o in out["non_cond_frame_outputs"]:
            ptr.append(dict(frame=frame - o, kind="non_cond", offset=o))
    return dict(memory_frames=mem, object_pointers=ptr, max_object_pointers_to_use=p)


def snapshot(session, frame, model, streaming=False):
    """The per-object decision transformers' forward takes on `frame` (re-stated from its code)."""
    plan = []
    for obj_idx, obj_id in enumerate(session.obj_ids):
        new = obj_id in session.obj_with_new_inputs
        if not new and frame in session.output_dict_per_obj[obj_idx]["cond_frame_outputs"]:
            plan.append(dict(obj_id=obj_id, mode="reused"))
            continue
        is_init = new and frame not in session.frames_tracked_per_obj[obj_idx]
        pts = session.point_inputs_per_obj[obj_idx].get(frame) if new else None
        if is_init:
            mode = "init_cond" if pts is not None else "init_cond_without_prompts"
        else:
            mode = "correction" if pts is not None else "tracked"
        e = dict(obj_id=obj_id, mode=mode, num_points=0 if pts is None else int(pts["point_labels"].shape[2]))
        if not is_init:
            e["memory"] = memory_plan(session, obj_idx, frame, model, streaming)
        plan.append(e)
    return plan


class Case:
    """Drives one session through the user API and records every yielded/returned step."""

    def __init__(self, name, model, processor, session, golden, recorder):
        self.name, self.model, self.proc, self.session, self.golden, self.rec = name, model, processor, session, golden, recorder
        self.steps, self.prompts, self.captured = [], [], {}

    def add(self, frame, obj_id, **inputs):
        self.proc.add_inputs_to_inference_session(self.session, frame_idx=frame, obj_ids=obj_id, **inputs)
        pi = self.session.point_inputs_per_obj[self.session.obj_id_to_idx(obj_id)][frame]
        key = f"{self.name}.prompt{len(self.prompts)}"
        self.golden[key + ".input_points"] = pi["point_coords"].float().clone()
        self.golden[key + ".input_labels"] = pi["point_labels"].float().clone()
        self.prompts.append(dict(index=len(self.prompts), frame=frame, obj_id=obj_id, user_inputs=inputs,
                                 call=f"processor.add_inputs_to_inference_session(session, frame_idx={frame}, "
                                      f"obj_ids={obj_id}, " + ", ".join(f"{k}={v}" for k, v in inputs.items()) + ")",
                                 tensors={key + ".input_points": list(pi["point_coords"].shape),
                                          key + ".input_labels": list(pi["point_labels"].shape)}))

    def run_model(self, frame):
        plan = snapshot(self.session, frame, self.model)
        out = self.model(inference_session=self.session, frame_idx=frame)
        return self._record(f"model(inference_session=session, frame_idx={frame})", out, plan)

    def propagate(self, start=None):
        call = "model.propagate_in_video_iterator(session" + ("" if start is None else f", start_frame_idx={start}") + ")"
        if start is None:  # the iterator's default: the earliest cond frame of any object
            start = min(t for d in self.session.output_dict_per_obj.values() for t in d["cond_frame_outputs"])
        outs, it, frame = [], self.model.propagate_in_video_iterator(self.session, start_frame_idx=start), start
        while frame < self.session.num_frames:
            plan = snapshot(self.session, frame, self.model)  # the iterator runs frame `frame` lazily on next()
            out = next(it)
            assert out.frame_idx == frame
            outs.append(self._record(call, out, plan))
            frame += 1
        assert next(it, None) is None
        return outs

    def _record(self, call, out, plan):
        s, k, f = self.session, len(self.steps), out.frame_idx
        calls = self.rec.take()
        decs = iter([c for c in calls if c["kind"] == "decoder"])
        memattn = [c for c in calls if c["kind"] == "memattn"]
        memenc = [c for c in calls if c["kind"] == "memenc"]
        assert sum(p["mode"] != "reused" for p in plan) == len([c for c in calls if c["kind"] == "decoder"])
        num_obj = len(out.object_ids)
        masks = self.proc.post_process_masks([out.pred_masks], original_sizes=[[H, W]], binarize=False)[0]
        iou = torch.full((num_obj, 4), float("nan"))
        objs, run, ma = [], [], iter(memattn)
        for i, (obj_id, p) in enumerate(zip(out.object_ids, plan)):
            assert p["obj_id"] == obj_id
            obj_idx = s.obj_id_to_idx(obj_id)
            cond = f in s.output_dict_per_obj[obj_idx]["cond_frame_outputs"]
            assert cond == (p["mode"] in ("reused", "init_cond", "init_cond_without_prompts"))
            score = float(out.object_score_logits[i].reshape(-1)[0])
            e = dict(p, stored_as="cond_frame_outputs" if cond else "non_cond_frame_outputs",
                     object_score_logit=score, object_present=score > 0,
                     positive_fraction_low_res=float((out.pred_masks[i] > 0).float().mean()),
                     positive_fraction_40x56=float((masks[i] > 0).float().mean()),
                     pred_masks_range=[float(out.pred_masks[i].min()), float(out.pred_masks[i].max())])
            if p["mode"] != "reused":
                dc = next(decs)
                iou_all = dc["iou_all"].reshape(-1)
                iou[i] = iou_all
                top = torch.sort(iou_all[1:], descending=True).values
                e["multimask"] = dc["multimask"]
                if dc["multimask"]:
                    e.update(selected_mask=int(torch.argmax(iou_all[1:])) + 1, selection="argmax of iou_scores[1:4]",
                             iou_margin_top2=float(top[0] - top[1]))
                else:
                    st = float(dc["stability"].reshape(-1)[0])
                    e.update(stability_score=st, selected_mask=0 if st >= 0.98 else int(torch.argmax(iou_all[1:])) + 1,
                             selection="token 0 (stability >= 0.98)" if st >= 0.98 else
                             "dynamic fallback: argmax of iou_scores[1:4] (stability < 0.98)")
                    if st < 0.98:
                        e["iou_margin_top2"] = float(top[0] - top[1])
                if "memory" in p:
                    c = next(ma)
                    m = p["memory"]
                    expect = 64 * len(m["memory_frames"]) + 2 * len(m["object_pointers"])
                    assert c["memory"].shape[0] == expect and c["num_ptr"] == 2 * len(m["object_pointers"]), (k, obj_id)
                    m["memory_tokens"], m["object_pointer_tokens"] = expect, c["num_ptr"]
                hr = s.output_dict_per_obj[obj_idx][e["stored_as"]][f]["high_res_masks"]
                e["min_abs_high_res_logit"] = float(hr.abs().min())
                run.append(e)
            objs.append(e)
        if run:  # one batched memory-encoder call per frame for the objects that ran
            mi = memenc[0]["mask_in"]
            assert len(memenc) == 1 and mi.shape[0] == len(run)
            for j, e in enumerate(run):
                v = torch.unique(mi[j])
                e["memory_mask"] = "binarized" if bool(torch.all((v == 10) | (v == -10))) else "sigmoid"
                e["memory_occlusion_embedding_added"] = not e["object_present"]
        key = f"{self.name}.step{k}"
        self.golden[key + ".frame"] = torch.tensor([float(f)])
        self.golden[key + ".pred_masks"] = out.pred_masks.float().clone()
        self.golden[key + ".masks"] = masks.float().clone()
        self.golden[key + ".object_score_logits"] = out.object_score_logits.float().reshape(num_obj, -1).clone()
        self.golden[key + ".iou_scores"] = iou
        names = (".frame", ".pred_masks", ".masks", ".object_score_logits", ".iou_scores")
        self.steps.append(dict(step=k, call=call, frame=f, object_ids=list(out.object_ids),
                               conditioning_frame={str(e["obj_id"]): e["stored_as"] == "cond_frame_outputs" for e in objs},
                               objects=objs, tensors={key + n: list(self.golden[key + n].shape) for n in names}))
        self.captured[k] = calls
        return out


class StreamCase(Case):
    """The streaming API: a session without a video, frames fed one at a time with model(frame=...)."""

    def add(self, frame, obj_id, original_size=None, **inputs):
        if original_size is None:
            super().add(frame, obj_id, **inputs)
            return
        orig = self.proc.add_inputs_to_inference_session  # the first prompt also gives the video size
        self.proc.add_inputs_to_inference_session = lambda *a, **k: orig(*a, **k, original_size=original_size)
        try:
            super().add(frame, obj_id, **inputs)
        finally:
            del self.proc.add_inputs_to_inference_session
        self.prompts[-1]["call"] = self.prompts[-1]["call"][:-1] + ", original_size=inputs.original_sizes[0])"

    def feed(self, image, name):
        """inputs = processor(images=frame, ...); model(inference_session=session, frame=inputs.pixel_values[0])"""
        inputs = self.proc(images=image, device="cpu", return_tensors="pt")
        frame = len(self.session.processed_frames or {})  # the index add_new_frame will give it
        plan = snapshot(self.session, frame, self.model, streaming=True)
        out = self.model(inference_session=self.session, frame=inputs.pixel_values[0])
        assert out.frame_idx == frame and self.session.num_frames == frame + 1
        self._record(f"inputs = processor(images={name}, device=\"cpu\", return_tensors=\"pt\"); "
                     "model(inference_session=session, frame=inputs.pixel_values[0])", out, plan)
        self.steps[-1]["image"] = name
        return inputs


def stream_cases(model, processor, frames, recorder, existing):
    """Cases stream and stream2 (sam2_video_stream_golden.safetensors / sam2_video_stream_cases.json).

    Run after the existing goldens are written (nothing they hold depends on this)."""
    golden, cases, pixel_checks = {}, {}, {}

    def feed(case, t):
        image = frames[t % NUM_FRAMES]
        inputs = case.proc(images=image, device="cpu", return_tensors="pt")
        same = torch.equal(inputs.pixel_values, existing[f"pixel_values.{t % NUM_FRAMES}"])
        pixel_checks[f"{case.name}.frame{t}"] = same
        if not same:  # not expected: the image processor reproduces the video processor's pixels
            golden[f"{case.name}.pixel_values.{t}"] = inputs.pixel_values.clone()
        return inputs

    # ---- stream: box on frame 0, frames 0..3 then 0..3 again (8 streamed frames) ----
    s = processor.init_video_session(inference_device="cpu")
    st = StreamCase("stream", model, processor, s, golden, recorder)
    for t in range(2 * NUM_FRAMES):
        inputs = feed(st, t)
        if t == 0:
            st.add(0, 1, original_size=inputs.original_sizes[0], input_boxes=[[BOX]])
        st.feed(frames[t % NUM_FRAMES], f"video_frame{t % NUM_FRAMES}.png")
    assert [(x["frame"], x["objects"][0]["mode"]) for x in st.steps] == [(0, "init_cond")] + [
        (t, "tracked") for t in range(1, 8)]
    # frame 0 has no memory: identical to the offline case; every later frame differs (P = 16, not 4)
    assert torch.equal(golden["stream.step0.pred_masks"], existing["track.step0.pred_masks"])
    assert torch.equal(golden["stream.prompt0.input_points"], existing["track.prompt0.input_points"])
    assert not torch.equal(golden["stream.step1.pred_masks"], existing["track.step2.pred_masks"])
    assert all(x["objects"][0]["memory"]["max_object_pointers_to_use"] == 16 for x in st.steps[1:])
    cases["stream"] = st

    # ---- stream2: object 1 box on frame 0; object 2 point added before frame 3; 6 frames ----
    s2 = processor.init_video_session(inference_device="cpu")
    st2 = StreamCase("stream2", model, processor, s2, golden, recorder)
    for t in range(6):
        inputs = feed(st2, t)
        if t == 0:
            st2.add(0, 1, original_size=inputs.original_sizes[0], input_boxes=[[BOX]])
        if t == STREAM2_OBJ2["frame"]:
            st2.add(t, 2, input_points=[[STREAM2_OBJ2["points"]]], input_labels=[[STREAM2_OBJ2["labels"]]])
        st2.feed(frames[t % NUM_FRAMES], f"video_frame{t % NUM_FRAMES}.png")
    modes = [(x["frame"], [e["mode"] for e in x["objects"]]) for x in st2.steps]
    assert modes == [(0, ["init_cond"]), (1, ["tracked"]), (2, ["tracked"]), (3, ["tracked", "init_cond"]),
                     (4, ["tracked", "tracked"]), (5, ["tracked", "tracked"])], modes
    for k in range(3):  # object 1 alone on frames 0-2: the same as case stream
        assert torch.equal(golden[f"stream2.step{k}.pred_masks"], golden[f"stream.step{k}.pred_masks"])
    # frame 3: object 2's point makes the batched memory encoder binarize object 1's tracked mask too
    assert st2.steps[3]["objects"][0]["memory_mask"] == "binarized"
    assert st.steps[3]["objects"][0]["memory_mask"] == "sigmoid"
    cases["stream2"] = st2
    recorder.take()
    return golden, cases, pixel_checks


def upstream_checks(model, processor, frames, recorder, track):
    """Asserted facts about transformers 5.24's video API that a port must know (nothing stored)."""
    notes = {}
    # 1. the documented refinement flow (add points, then propagate_in_video_iterator(session) from
    #    the default start) loses the click: the default start is the earliest cond frame (0), the
    #    object still "has new inputs" there, frame 0 is re-run with its box and that clears the
    #    flag, so frame 2 is re-run as a plain tracked frame.
    s = processor.init_video_session(video=frames, inference_device="cpu")
    c = Case("docs_flow", model, processor, s, {}, recorder)
    c.add(0, 1, input_boxes=[[BOX]])
    c.run_model(0)
    before = {o.frame_idx: o.pred_masks.clone() for o in c.propagate()}
    c.add(CORRECTION["frame"], 1, input_points=[[CORRECTION["points"]]], input_labels=[[CORRECTION["labels"]]])
    after = {o.frame_idx: o.pred_masks.clone() for o in c.propagate()}
    modes = [(st["frame"], st["objects"][0]["mode"]) for st in c.steps[len(before) + 1:]]
    assert modes == [(0, "init_cond"), (1, "tracked"), (2, "tracked"), (3, "tracked")], modes
    assert all(torch.equal(before[t], after[t]) for t in after)
    corrected = track.golden["track.step5.pred_masks"]
    assert not torch.equal(after[CORRECTION["frame"]], corrected)
    notes["documented_refine_flow"] = (
        "add_inputs_to_inference_session(frame 2) then propagate_in_video_iterator(session) re-runs frame 0 as an "
        "init-cond frame (its box is still stored; this clears obj_with_new_inputs) and frames 1-3 as tracked frames: "
        "the frame-2 click is ignored (outputs identical to before the click). A correction needs "
        "model(session, frame_idx=2) first, then propagation from frame 3 (a propagation that includes frame 2 "
        "re-runs it without the points and overwrites the correction: it is a non-cond frame).")
    # 2. a mid-stream object with the default propagation start gets a prompt-less cond frame
    s = processor.init_video_session(video=frames, inference_device="cpu")
    c = Case("default_start", model, processor, s, {}, recorder)
    c.add(0, 1, input_boxes=[[BOX]])
    c.run_model(0)
    c.add(OBJ2["frame"], 2, input_points=[[OBJ2["points"]]], input_labels=[[OBJ2["labels"]]])
    c.propagate()
    o2 = [(st["frame"], st["objects"][1]["mode"]) for st in c.steps[1:3]]
    assert o2 == [(0, "init_cond_without_prompts"), (1, "init_cond")], o2
    assert sorted(s.output_dict_per_obj[1]["cond_frame_outputs"]) == [0, 1]
    notes["mid_stream_object_default_start"] = (
        "object 2 added on frame 1, then propagate_in_video_iterator(session) (default start = frame 0): frame 0 runs "
        "object 2 as an init-cond frame WITHOUT prompts (obj_with_new_inputs is only cleared on a frame with inputs) "
        "and stores it in cond_frame_outputs; frame 1 is a second cond frame. The two_objects case avoids this "
        "with start_frame_idx=1.")
    recorder.take()
    return notes


def processor_notes(frames, pixel_values):
    """The processor stretches 56x40 to 128x128 (no aspect kept) with torchvision's uint8 bilinear."""
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
    r = F.interpolate(x, size=(SIZE, SIZE), mode="bilinear", align_corners=False).round().clamp(0, 255)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    u8 = ((pixel_values * std + mean) * 255).round()
    # pixel_values = (v / 255 - mean) / std of a uint8 128x128 image
    assert ((u8 / 255 - mean) / std - pixel_values).abs().max() < 1e-5
    return dict(resize="each frame is stretched to 128x128 (x scale 128/56, y scale 128/40, no aspect kept, no "
                       "padding); torchvision resize of the uint8 tensor (bilinear, antialias=True: identical to "
                       "plain bilinear when upsampling) yields uint8, then (v/255 - mean)/std",
                uint8_levels_differing_from_rounded_float_bilinear=float((u8 != r).float().mean()),
                max_level_difference=float((u8 - r).abs().max()),
                points="x * 128/56, y * 128/40 (processor._normalize_coordinates); box = 2 points, labels 2, 3",
                post_process_masks="F.interpolate(pred_masks 32x32 -> 40x56, bilinear, align_corners=False), "
                                   "no crop (nothing padded)")


def main():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    patch_memory_kv_dim()
    MODEL_DIR.mkdir(parents=True, exist_ok=True)

    model = Sam2VideoModel(make_config()).eval()
    randomise(model, seed=SEED)
    sd = model.state_dict()
    assert torch.equal(sd["shared_image_embedding.positional_embedding"],
                       sd["prompt_encoder.shared_embedding.positional_embedding"])
    model.save_pretrained(MODEL_DIR, state_dict={k: v.to(WEIGHTS_DTYPE) for k, v in sd.items()})
    # what a loader reads back is exactly the float32 model (the goldens run on the reloaded one)
    model = Sam2VideoModel.from_pretrained(MODEL_DIR, dtype=torch.float32).eval()
    for k, v in model.state_dict().items():
        assert v.dtype == torch.float32 and torch.equal(v, sd[k]), k
    assert set(load_file(MODEL_DIR / "model.safetensors")) == set(sd)

    for t, frame in enumerate(make_frames()):
        Image.fromarray(frame).save(FIX / f"video_frame{t}.png")
    # the goldens start from the PNGs as a user would load them
    frames = np.stack([np.array(Image.open(FIX / f"video_frame{t}.png").convert("RGB")) for t in range(NUM_FRAMES)])

    processor = Sam2VideoProcessor(image_processor=Sam2ImageProcessor(size={"height": SIZE, "width": SIZE}),
                                   video_processor=Sam2VideoVideoProcessor(size={"height": SIZE, "width": SIZE}))
    recorder = Recorder(model)
    golden = {}

    # ---- case track: box on frame 0, propagate, correction on frame 2, frame 3 again ----
    session = processor.init_video_session(video=frames, inference_device="cpu")
    assert (int(session.video_height), int(session.video_width)) == (H, W)
    pixel_values = torch.stack([session.processed_frames[t] for t in range(NUM_FRAMES)])
    for t in range(NUM_FRAMES):
        golden[f"pixel_values.{t}"] = pixel_values[t:t + 1].clone()
    golden["original_size"] = torch.tensor([float(H), float(W)])
    track = Case("track", model, processor, session, golden, recorder)
    track.add(0, 1, input_boxes=[[BOX]])
    track.run_model(0)
    track.propagate()
    track.add(CORRECTION["frame"], 1, input_points=[[CORRECTION["points"]]], input_labels=[[CORRECTION["labels"]]])
    track.run_model(CORRECTION["frame"])
    track.propagate(start=CORRECTION["frame"] + 1)
    assert [(st["frame"], st["objects"][0]["mode"]) for st in track.steps] == [
        (0, "init_cond"), (0, "reused"), (1, "tracked"), (2, "tracked"), (3, "tracked"), (2, "correction"), (3, "tracked")]
    assert all(e["object_present"] for st in track.steps for e in st["objects"]), "main case must keep the object"

    # intermediates: the memory of frame 0 (step 0) and the memory attention of frame 1 (step 2)
    me = [c for c in track.captured[0] if c["kind"] == "memenc"][0]
    c0 = session.output_dict_per_obj[0]["cond_frame_outputs"][0]
    assert c0["maskmem_features"].dtype == torch.bfloat16
    ma = [c for c in track.captured[2] if c["kind"] == "memattn"]
    assert track.steps[2]["frame"] == 1 and len(ma) == 1
    ma = ma[0]
    inter = {
        "track.frame0.memory_encoder.pix_feat": me["pix_feat"],
        "track.frame0.memory_encoder.mask_in": me["mask_in"],
        "track.frame0.memory_encoder.features": me["features"],
        "track.frame0.maskmem_features": c0["maskmem_features"].float(),
        "track.frame0.maskmem_pos_enc": c0["maskmem_pos_enc"].float(),
        "track.frame0.object_pointer": c0["object_pointer"].float(),
        "track.frame1.memory_attention.current_vision_features": ma["current_vision_features"],
        "track.frame1.memory_attention.current_vision_position_embeddings": ma["current_vision_position_embeddings"],
        "track.frame1.memory_attention.memory": ma["memory"],
        "track.frame1.memory_attention.memory_pos": ma["memory_posision_embeddings"],
        "track.frame1.memory_attention.output": ma["out"],
        "track.frame1.pix_feat_with_mem": ma["out"].reshape(1, 64, 32).transpose(1, 2).reshape(1, 32, 8, 8),
    }
    golden.update({k: v.clone() for k, v in inter.items()})
    # stored memory = encoder output rounded to bfloat16 (object present: no occlusion embedding), (HW, B, C)
    assert torch.equal(me["features"].to(torch.bfloat16).float().flatten(2).permute(2, 0, 1), inter["track.frame0.maskmem_features"])
    assert torch.equal(me["pos"].flatten(2).permute(2, 0, 1), inter["track.frame0.maskmem_pos_enc"])
    # frame-0 mask for the memory: the box frame's high-res mask, binarized, * 20 - 10
    hr = c0["high_res_masks"]
    assert torch.equal(me["mask_in"], (hr > 0).float() * 20 - 10)
    # the frame-1 memory: frame 0's 64 tokens, then the frame-0 pointer split into 2 tokens of 16
    assert torch.equal(ma["memory"][:64], inter["track.frame0.maskmem_features"])
    assert torch.equal(ma["memory"][64:, 0], c0["object_pointer"].reshape(2, 16))
    assert ma["num_ptr"] == 2

    # ---- case two_objects: object 1 box on frame 0, object 2 point on frame 1 (mid-stream) ----
    session2 = processor.init_video_session(video=frames, inference_device="cpu")
    two = Case("two_objects", model, processor, session2, golden, recorder)
    two.add(0, 1, input_boxes=[[BOX]])
    two.run_model(0)
    two.add(OBJ2["frame"], 2, input_points=[[OBJ2["points"]]], input_labels=[[OBJ2["labels"]]])
    two.propagate(start=OBJ2["frame"])
    # batched memory encoding: one `is_mask_from_pts = any(...)` for all objects of a frame, so on
    # frame 1 object 1's tracked mask is binarized too (in case track, the same frame: sigmoid)
    o1 = two.steps[1]["objects"][0]
    assert o1["mode"] == "tracked" and o1["memory_mask"] == "binarized"
    assert track.steps[2]["objects"][0]["memory_mask"] == "sigmoid"
    assert torch.equal(golden["two_objects.step1.pred_masks"][:1], golden["track.step2.pred_masks"])

    notes = upstream_checks(model, processor, frames, recorder, track)
    notes["batched_memory_binarization"] = (
        "forward() encodes the memories of all objects of a frame in one batch with is_mask_from_pts = any(objects "
        "with inputs on this frame): two_objects frame 1 binarizes object 1's tracked mask because object 2 has a "
        "point there (case track, same frame: sigmoid * 20 - 10). Later frames of object 1 differ between the cases.")
    notes["maskmem_bfloat16"] = "maskmem_features are stored as bfloat16 (maskmem_pos_enc float32); memory attention " \
                                "reads them widened to float32"
    notes["correction_frames"] = "a click on a frame the object was already tracked on is run with memory and the " \
                                 "points, stored as a NON-cond frame, without the previous mask logits as a mask " \
                                 "prompt (transformers never passes prev_sam_mask_logits)"

    for k, v in golden.items():
        golden[k] = v.detach().float().contiguous()
    save_file(golden, FIX / "sam2_video_golden.safetensors")

    cfg = json.loads((MODEL_DIR / "config.json").read_text())
    cases = dict(
        generator="Tests/Reference/make_sam2_video_fixtures.py",
        transformers_version=cfg.get("transformers_version"),
        model_dir="sam2_video_tiny", weights_dtype=str(WEIGHTS_DTYPE).replace("torch.", ""), seed=SEED,
        frames=[f"video_frame{t}.png" for t in range(NUM_FRAMES)], original_size=[H, W],
        processor=dict(size=[SIZE, SIZE], image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225],
                       tensors={f"pixel_values.{t}": [1, 3, SIZE, SIZE] for t in range(NUM_FRAMES)} | {"original_size": [2]},
                       **processor_notes(frames, pixel_values)),
        memory_config={k: cfg[k] for k in MEMORY} | {"rope_parameters": cfg["rope_parameters"]},
        sam21_flags={k: cfg[k] for k in SAM21_FLAGS},
        mask_decoder_flags={k: cfg["mask_decoder_config"][k] for k in (
            "dynamic_multimask_via_stability", "dynamic_multimask_stability_delta", "dynamic_multimask_stability_thresh")},
        kv_in_dim_patch="memory_attention.layers.*.cross_attn_image.{k,v}_proj read memory_encoder_output_channels "
                        "(16) features; transformers 5.24 hard-codes 64 (see the generator's docstring)",
        modes=dict(
            reused="no new inputs and the frame has a cond output: the cached pred_masks are returned, nothing runs",
            init_cond="new inputs on a frame never tracked for this object: no memory (features + no_memory_embedding), "
                      "stored in cond_frame_outputs",
            tracked="no inputs: memory attention over the memories listed in `memory`; stored in non_cond_frame_outputs",
            correction="new inputs on an already tracked frame: run WITH memory and the points; stored in "
                       "non_cond_frame_outputs (not a conditioning frame)"),
        tensor_layout=dict(
            pred_masks="[num_obj, 1, 32, 32] low-res logits as returned (objects in session.obj_ids order)",
            masks="[num_obj, 1, 40, 56] processor.post_process_masks(binarize=False)",
            object_score_logits="[num_obj, 1] as returned",
            iou_scores="[num_obj, 4] all four sigmoid IoU predictions of the decoder (hook); NaN for reused objects",
            input_points="[1, 1, n, 2] session point_coords in the 128x128 frame", input_labels="[1, 1, n]"),
        cases=dict(track=dict(prompts=track.prompts, steps=track.steps),
                   two_objects=dict(prompts=two.prompts, steps=two.steps)),
        intermediates=dict(tensors={k: list(v.shape) for k, v in inter.items()},
                           frame1_object_pointer_tokens=int(ma["num_ptr"]), note="see the generator's docstring"),
        upstream_notes=notes,
    )
    (FIX / "sam2_video_cases.json").write_text(json.dumps(cases, indent=1) + "\n")

    for case in (track, two):
        for st in case.steps:
            print(f"{case.name} step{st['step']} frame {st['frame']}  {st['call']}")
            for e in st["objects"]:
                extra = {k: (round(e[k], 4) if isinstance(e[k], float) else e[k]) for k in (
                    "multimask", "selected_mask", "stability_score", "iou_margin_top2", "memory_mask") if k in e}
                print(f"   obj {e['obj_id']} {e['mode']:<10} score {e['object_score_logit']:+.3f}  positive "
                      f"{e['positive_fraction_low_res']:.3f} (32x32) {e['positive_fraction_40x56']:.3f} (40x56)  "
                      f"range [{e['pred_masks_range'][0]:+.2f}, {e['pred_masks_range'][1]:+.2f}]  {extra}")
    total = 0
    for p in sorted(FIX.glob("video_frame*.png")) + [FIX / "sam2_video_golden.safetensors", FIX / "sam2_video_cases.json",
                                                      MODEL_DIR / "config.json", MODEL_DIR / "model.safetensors"]:
        total += p.stat().st_size
        print(f"{p.stat().st_size:>9}  {p.relative_to(FIX)}")
    print(f"{total:>9}  total")

    # ---- streaming cases: new files only (the ones above stay byte-identical) ----
    write_stream_files(model, processor, frames, recorder, load_file(FIX / "sam2_video_golden.safetensors"), cfg)


def write_stream_files(model, processor, frames, recorder, existing, cfg):
    golden, cases, pixel_checks = stream_cases(model, processor, frames, recorder, existing)
    for k, v in golden.items():
        golden[k] = v.detach().float().contiguous()
    save_file(golden, FIX / "sam2_video_stream_golden.safetensors")

    def summary(case):
        rows = []
        for x in case.steps:
            rows.append(dict(step=x["step"], frame=x["frame"], image=x["image"], objects=[dict(
                obj_id=e["obj_id"], mode=e["mode"], object_score_logit=e["object_score_logit"],
                positive_fraction_low_res=e["positive_fraction_low_res"],
                positive_fraction_40x56=e["positive_fraction_40x56"], memory_mask=e.get("memory_mask"),
                min_abs_high_res_logit=e.get("min_abs_high_res_logit"),
                object_pointers_read=[p["frame"] for p in e.get("memory", {}).get("object_pointers", [])],
                memory_frames_read=[m["frame"] for m in e.get("memory", {}).get("memory_frames", [])])
                for e in x["objects"]]))
        binarized = [e["min_abs_high_res_logit"] for x in case.steps for e in x["objects"]
                     if e.get("memory_mask") == "binarized"]
        return dict(min_abs_high_res_logit_on_binarized_memory_frames=min(binarized),
                    all_objects_present=all(e["object_present"] for x in case.steps for e in x["objects"]),
                    per_step=rows)

    api = [
        'session = processor.init_video_session(inference_device="cpu")  # no video: streaming',
        'for each frame: inputs = processor(images=frame_uint8_HWC, device="cpu", return_tensors="pt")',
        "first frame: processor.add_inputs_to_inference_session(session, frame_idx=0, obj_ids=1, "
        "input_boxes=[[[12, 10, 30, 28]]], original_size=inputs.original_sizes[0])",
        "stream2, before feeding frame 3: processor.add_inputs_to_inference_session(session, frame_idx=3, obj_ids=2, "
        "input_points=[[[[43, 29]]]], input_labels=[[[1]]])",
        "out = model(inference_session=session, frame=inputs.pixel_values[0])  # frame_idx = len(processed_frames)",
        "masks = processor.post_process_masks([out.pred_masks], original_sizes=[[40, 56]], binarize=False)[0]",
    ]
    doc = dict(
        generator="Tests/Reference/make_sam2_video_fixtures.py",
        transformers_version=cfg.get("transformers_version"), model_dir="sam2_video_tiny",
        golden="sam2_video_stream_golden.safetensors", api_calls=api,
        streaming_difference=(
            "model(frame=...) runs _run_single_frame_inference(streaming=True): max_object_pointers_to_use = "
            "max_object_pointers_in_encoder (16), not min(num_frames, 16), so pointer temporal offsets are "
            "normalised by 15 (offline 4-frame cases: by 3), and no num_frames bound on the pointer look-back. "
            "Memory frames (cond + num_maskmem-1 recent) are chosen as offline. Frame 0 (no memory) equals "
            "track.step0 exactly; frames >= 1 differ from the offline goldens."),
        frames_fed=dict(stream=[f"video_frame{t % NUM_FRAMES}.png" for t in range(2 * NUM_FRAMES)],
                        stream2=[f"video_frame{t % NUM_FRAMES}.png" for t in range(6)]),
        pixel_values=("processor(images=frame) (Sam2ImageProcessor) reproduces the existing pixel_values.{t mod 4} "
                      "of sam2_video_golden.safetensors exactly on every streamed frame; no stream pixel_values stored"
                      if all(pixel_checks.values()) else "DIFFER: stored as {case}.pixel_values.{k}"),
        pixel_values_equal_existing=pixel_checks,
        tensor_layout={"{case}.step{k}.pred_masks": "[num_obj, 1, 32, 32] low-res logits (session.obj_ids order)",
                       "{case}.step{k}.masks": "[num_obj, 1, 40, 56] post_process_masks(binarize=False)",
                       "{case}.step{k}.object_score_logits": "[num_obj, 1]",
                       "{case}.step{k}.iou_scores": "[num_obj, 4] all four sigmoid IoU predictions (hook)",
                       "{case}.step{k}.frame": "[1]",
                       "{case}.prompt{j}.input_points / .input_labels": "[1, 1, n, 2] / [1, 1, n] as stored in the session"},
        cases={name: dict(prompts=c.prompts, summary=summary(c), steps=c.steps) for name, c in cases.items()},
        notes=dict(
            stream2_frame3=("object 2 is added (frame_idx=3) before frame 3 is fed: on frame 3 object 1 is tracked, "
                            "object 2 is an init-cond frame; the batched memory encoder binarizes BOTH objects' "
                            "masks (object 2 has a point there), while case stream's frame 3 uses sigmoid"),
            stream2_frames_0_2="object 1 alone: identical to stream steps 0-2"),
    )
    (FIX / "sam2_video_stream_cases.json").write_text(json.dumps(doc, indent=1) + "\n")
    for name, c in cases.items():
        for x in c.steps:
            print(f"{name} step{x['step']} frame {x['frame']} ({x['image']})", "  ".join(
                f"obj {e['obj_id']} {e['mode']:<9} score {e['object_score_logit']:+.3f} pos {e['positive_fraction_low_res']:.3f} "
                f"mem {e.get('memory_mask')} min|hr| {e.get('min_abs_high_res_logit', float('nan')):.2e}" for e in x["objects"]))
    for p in (FIX / "sam2_video_stream_golden.safetensors", FIX / "sam2_video_stream_cases.json"):
        print(f"{p.stat().st_size:>9}  {p.relative_to(FIX)}")


if __name__ == "__main__":
    main()
