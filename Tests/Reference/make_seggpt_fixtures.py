"""Golden files for the SegGPT / Painter parity tests (Tests/SegGPTTests/Fixtures).

Run by hand in a venv with torch, transformers (5.x), safetensors, pillow, numpy:

    /work/venv/bin/python Tests/Reference/make_seggpt_fixtures.py

Deterministic: rerunning reproduces the same files. Self-contained: the original
baaivision/Painter forward passes (SegGPT/SegGPT_inference/models_seggpt.py and
Painter/models_painter.py need detectron2, fairscale and timm, which are not installed)
are re-stated below in plain torch, reading the ORIGINAL state-dict names.

Writes (Tests/SegGPTTests/Fixtures):
  seggpt_tiny/config.json, preprocessor_config.json, model.safetensors
        a tiny SegGptForImageSegmentation saved by save_pretrained (transformers names),
        every parameter randomised (the default init zeroes biases / identity norms)
  seggpt_tiny_original.pth     the same weights under the original names, torch.save({"model": sd})
  seggpt_tiny_config.json      the config as a standalone SegGptConfig JSON (for the .pth loader)
  painter_tiny.pth             a tiny Painter (original names, no type tokens), {"model": sd}
  seggpt_golden.safetensors    inputs and outputs of every case (see `goldens`)
  query.png, prompt_a.png, prompt_b.png, mask_a.png (binary), classes_a.png (class indices)

Tiny geometry: hidden 32, 6 layers, 2 heads, patch 8, canvas [64, 32] (two 32x32 halves,
an 8x4 token grid), position grid from pretrain_image_size 32 (4x4 + cls, so the bicubic
interpolation 4x4 -> 8x4 is exercised), decoder 8 channels, merge_index 2, features of
layers [2, 3, 4, 5].

Feature ensemble: the original averages the query half of the attention output over the
prompts WITHIN each stream for every layer up to and including the merge layer
(`merge = 1 if merge_idx >= idx else 2`), and across the whole batch after it. transformers
5.24 uses `2 if merge_index > i else 1`, i.e. at the merge layer it averages across both
streams, so two identical prompts stop reproducing the one-prompt output. The goldens for
several prompts come from transformers with the ORIGINAL rule patched in (`patch_encoder`),
and are checked here against the original forward re-stated below.
"""
import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import save_file
from transformers import SegGptConfig, SegGptForImageSegmentation
from transformers.models.seggpt import modeling_seggpt
from transformers.models.seggpt.image_processing_pil_seggpt import SegGptImageProcessorPil
from transformers.models.seggpt.image_processing_seggpt import build_palette

HERE = Path(__file__).resolve().parent
FIX = HERE.parent / "SegGPTTests" / "Fixtures"
MEAN = np.array([0.485, 0.456, 0.406])
STD = np.array([0.229, 0.224, 0.225])

CFG = dict(hidden_size=32, num_hidden_layers=6, num_attention_heads=2, image_size=[64, 32], patch_size=8,
           pretrain_image_size=32, decoder_hidden_size=8, merge_index=2,
           intermediate_hidden_state_indices=[2, 3, 4, 5], layer_norm_eps=1e-6, drop_path_rate=0.0)
HALF = 32
NUM_LABELS = 3


def randomise(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            r = torch.randn(p.shape, generator=g)
            if "layernorm" in name or "norm" in name:
                p.copy_(1 + 0.2 * r if name.endswith("weight") else 0.1 * r)
            elif name.endswith("bias"):
                p.copy_(0.1 * r)
            elif "token" in name or "position" in name or "rel_pos" in name:
                p.copy_(0.5 * r)
            elif p.dim() >= 2:
                p.copy_(r / np.sqrt(int(np.prod(p.shape[1:]))))
            else:
                p.copy_(r)
            # fp16-representable values: the .pth files store float16 (half the bytes, and the
            # loaders' f16 -> f32 conversion is exercised), losslessly.
            p.copy_(p.half().float())


def patch_encoder(original_rule: bool):
    """Swap SegGptEncoder.forward for one whose ensemble rule is the original's
    (`merge_index >= i`) or transformers' own (`merge_index > i`)."""
    def forward(self, hidden_states, feature_ensemble=False, output_attentions=False,
                output_hidden_states=False, return_dict=True):
        intermediate = []
        for i, layer_module in enumerate(self.layers):
            if original_rule:
                ensemble_cond = 2 if self.config.merge_index >= i else 1
            else:
                ensemble_cond = 2 if self.config.merge_index > i else 1
            hidden_states = layer_module(hidden_states, ensemble_cond, feature_ensemble, output_attentions)[0]
            if i == self.config.merge_index:
                hidden_states = (hidden_states[: hidden_states.shape[0] // 2] + hidden_states[hidden_states.shape[0] // 2:]) * 0.5
            if i in self.config.intermediate_hidden_state_indices:
                intermediate.append(self.layernorm(hidden_states))
        return modeling_seggpt.SegGptEncoderOutput(last_hidden_state=hidden_states,
                                                   intermediate_hidden_states=intermediate)
    modeling_seggpt.SegGptEncoder.forward = forward


# ---------------------------------------------------------------- original names

def to_original(sd, n_layers, with_type_tokens=True):
    """transformers SegGptForImageSegmentation names -> models_seggpt.py SegGPT names."""
    m = {
        "model.embeddings.mask_token": "mask_token",
        "model.embeddings.segment_token_input": "segment_token_x",
        "model.embeddings.segment_token_prompt": "segment_token_y",
        "model.embeddings.type_token_semantic": "type_token_cls",
        "model.embeddings.type_token_instance": "type_token_ins",
        "model.embeddings.position_embeddings": "pos_embed",
        "model.embeddings.patch_embeddings.projection.weight": "patch_embed.proj.weight",
        "model.embeddings.patch_embeddings.projection.bias": "patch_embed.proj.bias",
        "model.encoder.layernorm.weight": "norm.weight",
        "model.encoder.layernorm.bias": "norm.bias",
        "decoder.decoder_embed.weight": "decoder_embed.weight",
        "decoder.decoder_embed.bias": "decoder_embed.bias",
        "decoder.decoder_pred.conv.weight": "decoder_pred.0.weight",
        "decoder.decoder_pred.conv.bias": "decoder_pred.0.bias",
        "decoder.decoder_pred.layernorm.weight": "decoder_pred.1.weight",
        "decoder.decoder_pred.layernorm.bias": "decoder_pred.1.bias",
        "decoder.decoder_pred.head.weight": "decoder_pred.3.weight",
        "decoder.decoder_pred.head.bias": "decoder_pred.3.bias",
    }
    per = {"attention.qkv": "attn.qkv", "attention.proj": "attn.proj", "attention.rel_pos_h": "attn.rel_pos_h",
           "attention.rel_pos_w": "attn.rel_pos_w", "layernorm_before": "norm1", "layernorm_after": "norm2",
           "mlp.lin1": "mlp.fc1", "mlp.lin2": "mlp.fc2"}
    out = {}
    for k, v in sd.items():
        if k in m:
            out[m[k]] = v
            continue
        pre = "model.encoder.layers."
        assert k.startswith(pre), k
        i, rest = k[len(pre):].split(".", 1)
        for a, b in per.items():
            if rest.startswith(a):
                out[f"blocks.{i}.{b}{rest[len(a):]}"] = v
                break
        else:
            raise KeyError(k)
    if not with_type_tokens:
        del out["type_token_cls"], out["type_token_ins"]
    assert len(out) == len(sd) - (0 if with_type_tokens else 2)
    return out


# ------------------------------------------- original forward (models_seggpt.py / models_painter.py)

def get_rel_pos(q_size, k_size, rel_pos):
    # ref: SegGPT_inference/util/vitdet_utils.py get_rel_pos
    max_rel_dist = int(2 * max(q_size, k_size) - 1)
    if rel_pos.shape[0] != max_rel_dist:
        rel_pos = F.interpolate(rel_pos.reshape(1, rel_pos.shape[0], -1).permute(0, 2, 1), size=max_rel_dist,
                                mode="linear").reshape(-1, max_rel_dist).permute(1, 0)
    q_coords = torch.arange(q_size)[:, None] * max(k_size / q_size, 1.0)
    k_coords = torch.arange(k_size)[None, :] * max(q_size / k_size, 1.0)
    rel = (q_coords - k_coords) + (k_size - 1) * max(q_size / k_size, 1.0)
    return rel_pos[rel.long()]


def attention(sd, p, x, heads):
    # ref: models_seggpt.py Attention.forward (+ vitdet_utils.add_decomposed_rel_pos)
    B, H, W, C = x.shape
    qkv = F.linear(x, sd[p + "qkv.weight"], sd[p + "qkv.bias"]).reshape(B, H * W, 3, heads, -1).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.reshape(3, B * heads, H * W, -1).unbind(0)
    attn = (q * (C // heads) ** -0.5) @ k.transpose(-2, -1)
    Rh = get_rel_pos(H, H, sd[p + "rel_pos_h"])
    Rw = get_rel_pos(W, W, sd[p + "rel_pos_w"])
    r_q = q.reshape(B * heads, H, W, -1)
    rel_h = torch.einsum("bhwc,hkc->bhwk", r_q, Rh)
    rel_w = torch.einsum("bhwc,wkc->bhwk", r_q, Rw)
    attn = (attn.view(B * heads, H, W, H, W) + rel_h[:, :, :, :, None] + rel_w[:, :, :, None, :]).view(B * heads, H * W, H * W)
    attn = attn.softmax(dim=-1)
    x = (attn @ v).view(B, heads, H, W, -1).permute(0, 2, 3, 1, 4).reshape(B, H, W, -1)
    return F.linear(x, sd[p + "proj.weight"], sd[p + "proj.bias"])


def block(sd, i, x, heads, eps, merge=0):
    # ref: models_seggpt.py Block.forward (window_size 0: the official window_block_indexes is a
    # tuple of lists, so `i in window_block_indexes` is False for every block -> global attention)
    p = f"blocks.{i}."
    shortcut = x
    x = F.layer_norm(x, (x.shape[-1],), sd[p + "norm1.weight"], sd[p + "norm1.bias"], eps)
    x = attention(sd, p + "attn.", x, heads)
    if merge > 0:
        prompt, inputs = x.split(x.shape[1] // 2, dim=1)
        if merge == 1:
            num_prompts = x.shape[0] // 2
            inputs = inputs.reshape(2, num_prompts, -1)
            inputs = inputs.mean(dim=1, keepdim=True).expand_as(inputs)
            inputs = inputs.reshape(*prompt.shape)
        else:
            inputs = inputs.mean(dim=0, keepdim=True).expand_as(inputs)
        x = torch.cat([prompt, inputs], dim=1)
    x = shortcut + x
    h = F.layer_norm(x, (x.shape[-1],), sd[p + "norm2.weight"], sd[p + "norm2.bias"], eps)
    h = F.linear(F.gelu(F.linear(h, sd[p + "mlp.fc1.weight"], sd[p + "mlp.fc1.bias"])), sd[p + "mlp.fc2.weight"], sd[p + "mlp.fc2.bias"])
    return x + h


def get_abs_pos(abs_pos, hw):
    # ref: vitdet_utils.py get_abs_pos (has_cls_token=True)
    h, w = hw
    abs_pos = abs_pos[:, 1:]
    size = int(math.sqrt(abs_pos.shape[1]))
    if size != h or size != w:
        return F.interpolate(abs_pos.reshape(1, size, size, -1).permute(0, 3, 1, 2), size=(h, w), mode="bicubic",
                             align_corners=False).permute(0, 2, 3, 1)
    return abs_pos.reshape(1, h, w, -1)


def original_forward(sd, cfg, imgs, tgts, seg_type=None, merge_between_batch=-1):
    """models_seggpt.SegGPT.forward_encoder + forward_decoder (seg_type None: Painter's, which has
    no type tokens and no ensemble). Returns pred [N, 3, H, W]."""
    heads, eps, p = cfg["num_attention_heads"], cfg["layer_norm_eps"], cfg["patch_size"]
    merge_idx, outs = cfg["merge_index"], cfg["intermediate_hidden_state_indices"]
    conv = lambda t: F.conv2d(t, sd["patch_embed.proj.weight"], sd["patch_embed.proj.bias"], stride=p).permute(0, 2, 3, 1)
    x, y = conv(imgs), conv(tgts)
    B, Hp, Wp, C = x.shape
    bool_masked_pos = torch.zeros(Hp * Wp)
    bool_masked_pos[Hp * Wp // 2:] = 1
    w = bool_masked_pos.unsqueeze(0).unsqueeze(-1).reshape(-1, Hp, Wp, 1)
    y = y * (1 - w) + sd["mask_token"].expand(B, Hp, Wp, -1) * w
    x = x + sd["segment_token_x"]
    y = y + sd["segment_token_y"]
    x = x + get_abs_pos(sd["pos_embed"], (Hp, Wp))
    y = y + get_abs_pos(sd["pos_embed"], (Hp, Wp))
    if seg_type is not None:
        type_emb = torch.zeros(B, 1, 1, C)
        type_emb[seg_type == 0] = sd["type_token_cls"]
        type_emb[seg_type == 1] = sd["type_token_ins"]
        x = x + type_emb
        y = y + type_emb
    x = torch.cat((x, y), dim=0)
    feats = []
    for idx in range(cfg["num_hidden_layers"]):
        merge = 0
        if merge_between_batch >= 0 and idx >= merge_between_batch:
            merge = 1 if merge_idx >= idx else 2
        x = block(sd, idx, x, heads, eps, merge)
        if idx == merge_idx:
            x = (x[: x.shape[0] // 2] + x[x.shape[0] // 2:]) * 0.5
        if idx in outs:
            feats.append(F.layer_norm(x, (C,), sd["norm.weight"], sd["norm.bias"], eps))
    # forward_decoder
    x = F.linear(torch.cat(feats, dim=-1), sd["decoder_embed.weight"], sd["decoder_embed.bias"])
    d = cfg["decoder_hidden_size"]
    h, w_ = x.shape[1], x.shape[2]
    x = x.reshape(x.shape[0], h, w_, p, p, d)
    x = torch.einsum("nhwpqc->nchpwq", x).reshape(x.shape[0], -1, h * p, w_ * p)
    x = F.conv2d(x, sd["decoder_pred.0.weight"], sd["decoder_pred.0.bias"], padding=1)
    u = x.mean(1, keepdim=True)
    s = (x - u).pow(2).mean(1, keepdim=True)
    x = (x - u) / torch.sqrt(s + 1e-6)  # LayerNorm2D's own eps (1e-6)
    x = sd["decoder_pred.1.weight"][:, None, None] * x + sd["decoder_pred.1.bias"][:, None, None]
    x = F.gelu(x)
    return F.conv2d(x, sd["decoder_pred.3.weight"], sd["decoder_pred.3.bias"])


# ---------------------------------------------------------------- inputs

def make_images():
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:45, 0:37]
    def photo(shift):
        base = np.stack([(xx * 5 + shift) % 256, (yy * 4 + 2 * shift) % 256, ((xx + yy) * 3 + shift) % 256], -1)
        return np.clip(base + rng.integers(-25, 26, base.shape), 0, 255).astype(np.uint8)
    query = photo(0)
    prompt_a = np.clip(photo(40)[:, :, ::-1] + 0, 0, 255).astype(np.uint8)[:41, :50 - 15]  # 41x35
    prompt_b = photo(90)[:39, :]  # 39x37
    ya, xa = np.mgrid[0:41, 0:35]
    mask_a = (((ya - 20) ** 2 + (xa - 15) ** 2) < 120).astype(np.uint8) * 255
    classes = np.zeros((41, 35), np.uint8)
    classes[5:20, 3:30] = 1
    classes[22:38, 10:33] = 2
    classes[((ya - 30) ** 2 + (xa - 8) ** 2) < 30] = 3
    return query, prompt_a, prompt_b, mask_a, classes


def processor():
    return SegGptImageProcessorPil(size={"height": HALF, "width": HALF})


def preprocess_images(imgs):
    return processor()(images=[Image.fromarray(i) for i in imgs], return_tensors="pt")["pixel_values"]


def preprocess_hfirst(img):
    """Pillow's published two-pass resample (Resample.c ImagingResampleInner: horizontal pass,
    then vertical, uint8 in between), reproduced with two single-axis PIL resizes (each of
    which is one pass, bit for bit). Pillow 13.0.0's single call sometimes runs the vertical
    pass first (no rule found in its published source), which moves some pixels by a few
    levels; Segflow implements the published order. Then /255 and ImageNet normalisation in
    float32, as the processor does."""
    im = Image.fromarray(img)
    h, w = img.shape[:2]
    r = np.array(im.resize((HALF, h), Image.BICUBIC).resize((HALF, HALF), Image.BICUBIC)).astype(np.float32)
    x = (r / np.float32(255) - MEAN.astype(np.float32)) / STD.astype(np.float32)
    return torch.from_numpy(x.transpose(2, 0, 1).copy())[None]


def preprocess_masks(masks, num_labels=None, rgb=False):
    if rgb:
        return processor().preprocess(images=None, prompt_masks=[Image.fromarray(m) for m in masks],
                                      do_convert_rgb=False, return_tensors="pt")["prompt_masks"]
    return processor().preprocess(images=None, prompt_masks=[m for m in masks], num_labels=num_labels,
                                  return_tensors="pt")["prompt_masks"]


def main():
    FIX.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    config = SegGptConfig(**CFG)
    model = SegGptForImageSegmentation(config).eval()
    randomise(model)
    hf_dir = FIX / "seggpt_tiny"
    model.save_pretrained(hf_dir, safe_serialization=True)
    processor().save_pretrained(hf_dir)
    # Keep only what a loader reads; drop transformers' generation / version noise.
    cfg_json = json.loads((hf_dir / "config.json").read_text())
    (FIX / "seggpt_tiny_config.json").write_text(json.dumps(cfg_json, indent=2, sort_keys=True) + "\n")
    sd = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    orig = to_original(sd, CFG["num_hidden_layers"])
    torch.save({"model": {k: v.half() for k, v in orig.items()}, "epoch": 0}, FIX / "seggpt_tiny_original.pth")

    # Painter: same skeleton, no type tokens. Different weights (seed 1), original names.
    painter_model = SegGptForImageSegmentation(config).eval()
    randomise(painter_model, seed=1)
    painter_sd = to_original({k: v.detach().clone().contiguous() for k, v in painter_model.state_dict().items()},
                             CFG["num_hidden_layers"], with_type_tokens=False)
    torch.save({"model": {k: v.half() for k, v in painter_sd.items()}}, FIX / "painter_tiny.pth")

    query, prompt_a, prompt_b, mask_a, classes = make_images()
    Image.fromarray(query).save(FIX / "query.png")
    Image.fromarray(prompt_a).save(FIX / "prompt_a.png")
    Image.fromarray(prompt_b).save(FIX / "prompt_b.png")
    Image.fromarray(mask_a, mode="L").save(FIX / "mask_a.png")
    Image.fromarray(classes, mode="L").save(FIX / "classes_a.png")
    mask_b = np.zeros((39, 37), np.uint8)
    mask_b[8:30, 5:25] = 255  # a rectangle, built in Swift from the same coordinates

    g = {}
    q = preprocess_images([query])
    pa, pb = preprocess_images([prompt_a]), preprocess_images([prompt_b])
    # Binary masks go in as white-on-black RGB images (what the original reads from its
    # *_target.png files); class maps go through build_palette.
    white = lambda m: np.repeat(m[:, :, None], 3, -1)
    ma = preprocess_masks([white(mask_a)], rgb=True)
    mb = preprocess_masks([white(mask_b)], rgb=True)
    mc = preprocess_masks([classes], num_labels=NUM_LABELS)
    for name, img in [("query", query), ("prompt_a", prompt_a), ("prompt_b", prompt_b)]:
        g[f"{name}_pixel_values_hfirst"] = preprocess_hfirst(img)
    g.update(query_pixel_values=q, prompt_a_pixel_values=pa, prompt_b_pixel_values=pb, mask_a_pixel_values=ma,
             mask_b_pixel_values=mb, classes_a_pixel_values=mc)
    # The original's preprocessing (PIL resize, default BICUBIC for images / NEAREST for masks,
    # /255 and ImageNet normalisation in float64) agrees with the PIL processor to float32 rounding.
    ref = (np.array(Image.fromarray(query).resize((HALF, HALF))) / 255. - MEAN) / STD
    assert np.abs(ref.transpose(2, 0, 1) - q[0].numpy()).max() < 1e-5
    refm = (np.array(Image.fromarray(white(mask_a)).resize((HALF, HALF), Image.NEAREST)) / 255. - MEAN) / STD
    assert np.abs(refm.transpose(2, 0, 1) - ma[0].numpy()).max() < 1e-5

    patch_encoder(original_rule=True)
    with torch.no_grad():
        def run(pix, prompts, masks, etype, ensemble):
            n = prompts.shape[0]
            return model(pixel_values=pix.expand(n, -1, -1, -1), prompt_pixel_values=prompts, prompt_masks=masks,
                         embedding_type=etype, feature_ensemble=ensemble).pred_masks

        cases = {
            "one_shot_instance": (pa, ma, "instance"),
            "one_shot_semantic": (pa, ma, "semantic"),
            "two_prompts_instance": (torch.cat([pa, pb]), torch.cat([ma, mb]), "instance"),
            "classes_semantic": (pa, mc, "semantic"),
        }
        for name, (prompts, masks, etype) in cases.items():
            out = run(q, prompts, masks, etype, ensemble=prompts.shape[0] > 1)
            g[f"{name}.pred_masks"] = out
            g[f"{name}.query_half"] = out[0, :, HALF:, :]
            # The original forward on the original names gives the same result.
            seg_type = torch.full((prompts.shape[0], 1), 1.0 if etype == "instance" else 0.0)
            imgs = torch.cat([prompts, q.expand(prompts.shape[0], -1, -1, -1)], dim=2)
            tgts = torch.cat([masks, masks], dim=2)
            o = original_forward(orig, CFG, imgs, tgts, seg_type, 0 if prompts.shape[0] > 1 else -1)
            err = (o - out).abs().max().item()
            assert err < 1e-4, (name, err)
            print(f"{name}: transformers (original ensemble rule) vs original forward max|d| = {err:.2e}")

        # End to end from the published-order preprocessing (what Segflow's processor computes).
        qh, pah, pbh = g["query_pixel_values_hfirst"], g["prompt_a_pixel_values_hfirst"], g["prompt_b_pixel_values_hfirst"]
        g["e2e_one_shot_instance.query_half"] = run(qh, pah, ma, "instance", False)[0, :, HALF:, :]
        g["e2e_two_prompts_instance.query_half"] = run(qh, torch.cat([pah, pbh]), torch.cat([ma, mb]), "instance", True)[0, :, HALF:, :]
        g["e2e_classes_semantic.query_half"] = run(qh, pah, mc, "semantic", False)[0, :, HALF:, :]

        # Identical prompts: with the original rule two copies reproduce one prompt; with
        # transformers' own rule they do not (recorded, not asserted by the Swift tests).
        one = run(q, pa, ma, "instance", False)
        two = run(q, torch.cat([pa, pa]), torch.cat([ma, ma]), "instance", True)
        d_orig = (two[0] - one[0]).abs().max().item()
        patch_encoder(original_rule=False)
        two_hf = run(q, torch.cat([pa, pa]), torch.cat([ma, ma]), "instance", True)
        two_prompts_hf = run(q, torch.cat([pa, pb]), torch.cat([ma, mb]), "instance", True)
        d_hf = (two_hf[0] - one[0]).abs().max().item()
        d_rules = (two_prompts_hf - g["two_prompts_instance.pred_masks"]).abs().max().item()
        patch_encoder(original_rule=True)
        print(f"identical prompts vs one prompt: original rule {d_orig:.2e}, transformers rule {d_hf:.2e}")
        g["two_prompts_instance_transformers_rule.query_half"] = two_prompts_hf[0, :, HALF:, :]

        # Post-processing goldens (transformers' post_process_semantic_segmentation).
        class Out:  # the processor reads .pred_masks only
            pass
        o = Out()
        o.pred_masks = g["classes_semantic.pred_masks"]
        size = (query.shape[0], query.shape[1])
        cls_map = processor().post_process_semantic_segmentation(o, target_sizes=[size], num_labels=NUM_LABELS)[0]
        g["classes_semantic.class_map"] = cls_map.to(torch.float32)
        # Binary: un-normalise, clip, x255, nearest to the query size, channel mean > 128
        # (seggpt_engine.inference_video: output.mean(-1).gt(128)).
        for name in ["one_shot_instance", "two_prompts_instance"]:
            m = g[f"{name}.pred_masks"][:1, :, HALF:, :]
            m = torch.clip((m.permute(0, 2, 3, 1) * torch.tensor(STD, dtype=torch.float32)
                            + torch.tensor(MEAN, dtype=torch.float32)) * 255, 0, 255).permute(0, 3, 1, 2)
            g[f"{name}.query_rgb"] = m[0]
            m = F.interpolate(m, size=size, mode="nearest")[0]
            g[f"{name}.mask"] = (m.mean(0) > 128).to(torch.float32)

        # Painter: original forward (no type tokens, no ensemble).
        imgs = torch.cat([pa, q], dim=2)
        tgts = torch.cat([ma, ma], dim=2)
        pred = original_forward(painter_sd, CFG, imgs, tgts, None, -1)
        g["painter.pred"] = pred
        # Depth (Painter/eval/nyuv2_depth/painter_inference_depth.py): clip((y*std+mean)*10000),
        # bilinear to the query size, channel mean -> PNG millimetres; metres = /1000.
        y = pred[:, :, HALF:, :].permute(0, 2, 3, 1)[0]
        dep = torch.clip((y * torch.tensor(STD, dtype=torch.float32) + torch.tensor(MEAN, dtype=torch.float32)) * 10000, 0, 10000)
        dep = F.interpolate(dep[None].permute(0, 3, 1, 2), size=size, mode="bilinear").permute(0, 2, 3, 1)[0]
        g["painter.depth_metres"] = dep.mean(-1) / 1000
        # Restoration (Painter/eval/derain/painter_inference_derain.py): y*std+mean, bicubic to
        # the query size, clip to [0, 1], x255, truncated to uint8.
        rs = y * torch.tensor(STD, dtype=torch.float32) + torch.tensor(MEAN, dtype=torch.float32)
        rs = F.interpolate(rs[None].permute(0, 3, 1, 2), size=size, mode="bicubic").permute(0, 2, 3, 1)[0]
        g["painter.restored"] = (torch.clip(rs, 0, 1) * 255).to(torch.uint8).to(torch.float32)

    # Only one case keeps the whole canvas (it pins the decoder on the prompt half too).
    keep_full = {"one_shot_instance.pred_masks", "painter.pred"}
    g = {k: v.detach().to(torch.float32).contiguous() for k, v in g.items()
         if not k.endswith("pred_masks") or k in keep_full}
    save_file(g, FIX / "seggpt_golden.safetensors")
    levels = {n: float((g[f"{n}_pixel_values_hfirst"] - g[f"{n}_pixel_values"]).abs().max() * 0.229 * 255)
              for n in ["query", "prompt_a", "prompt_b"]}
    notes = dict(config=CFG, pillow13_vs_published_pass_order_max_levels=levels, half=HALF, num_labels=NUM_LABELS, palette=build_palette(NUM_LABELS),
                 mask_b_rect=[8, 30, 5, 25], query_size=list(size),
                 identical_prompts_max_abs_diff=dict(original_rule=d_orig, transformers_rule=d_hf),
                 two_prompts_rules_max_abs_diff=d_rules)
    (FIX / "seggpt_cases.json").write_text(json.dumps(notes, indent=2) + "\n")
    print(json.dumps(notes, indent=2))


if __name__ == "__main__":
    main()
