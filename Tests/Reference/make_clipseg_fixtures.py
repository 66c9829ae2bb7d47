"""Golden files for the CLIPSeg parity tests (Tests/CLIPSegTests/Fixtures).

Run by hand in a venv with torch, transformers (5.x), safetensors, pillow, numpy:

    /work/venv/bin/python Tests/Reference/make_clipseg_fixtures.py

Deterministic: rerunning reproduces the same files.

Writes:
  clipseg_tiny.safetensors          a tiny CLIPSegForImageSegmentation (transformers) with every
                                    parameter randomised (the default init zeroes biases and sets
                                    LayerNorms to identity, which would hide wrong wiring), saved
                                    with the real state-dict names
  clipseg_tiny_golden.safetensors   inputs and outputs of every stage (see `goldens` below)
  clipseg_cases.json                config, token ids and notes the goldens were made with
  visual_prompt.png                 the visual-prompt photo (a crop of skimage's coffee.png, CC0)
  visual_prompt_mask.png            a binary mask for visual_prompt.png (ellipse touching the left edge)
  visual_prompt_b.png, visual_prompt_b_mask.png
                                    a second example pair (a larger coffee.png crop, rectangle mask),
                                    for the averaged two-example embedding
  clipseg_visual_prompt_golden.safetensors
                                    one-shot goldens: engineered prompt pixels, their conditional
                                    embeddings, the mean of both, and the logits of
                                    CLIPSegForImageSegmentation(conditional_pixel_values=...) and of
                                    (conditional_embeddings=mean)
  chelsea_crop.png                  copied from Tests/SAMTests/Fixtures (skimage, CC0)
  rd64_refined_state_dict.json      names and shapes of every tensor of a CLIPSegForImageSegmentation
                                    built with CIDAS/clipseg-rd64-refined's config (on the meta
                                    device: no weights exist offline), for the architecture test

Tiny config: vision 32 wide, 4 layers, 4 heads, patch 16, image_size 64 (4x4 position grid)
run at 96x96 input (6x6 grid), so the bicubic position-embedding interpolation is exercised.
Text 32 wide, 2 layers, vocab 1000 with bos 997 / eos 998 and an "added token" 999 that sorts
above eos: first-occurrence-of-eos pooling (current configs) and argmax pooling (legacy configs
with eos_token_id == 2, which is what CIDAS/clipseg-rd64-refined ships) pick different tokens,
so both rules are pinned. conditional_layer = 1 (rd64 uses 0) so the FiLM step is not tied to
the first decoder layer by accident. use_complex_transposed_convolution = True (as rd64-refined).

Preprocessing (the contract Segflow implements, Shared/CLIPSeg/CLIPSegProcessor.swift):
CIDAS/clipseg-rd64-refined's preprocessor_config.json is a ViTImageProcessor with
size 352x352, resample 2 (PIL BILINEAR), rescale 1/255, ImageNet mean/std
[0.485, 0.456, 0.406] / [0.229, 0.224, 0.225] (not CLIP's). The goldens come from
ViTImageProcessorPil (PIL resize on uint8). transformers 5's default torchvision backend
resizes uint8 tensors with ATen's antialiased kernel, which rounds differently from PIL by
one level at some pixels; the difference is measured and recorded in clipseg_cases.json.

Visual prompt engineering (one-shot; Shared/CLIPSeg/CLIPSegVisualPrompt.swift implements it):
transformers' CLIPSeg takes already-preprocessed conditional_pixel_values, so the mask is
applied here exactly as the CLIPSeg authors' best variant of the paper's visual-prompt ablation
(timojl/clipseg datasets/utils.py mode 'crop_blur_highlight352' -> evaluation_utils.img_preprocess
with blur=3, bg_fac=0.1, center_context=0.1, image_size=352; experiments/phrasecut.yaml trains
rd64-uni-refined with mask 'text_and_crop_blur_highlight352'): on the *normalised* image at the
model's input size, background = 0.1 x a Gaussian blur (cv2.GaussianBlur, 15x15 kernel, sigma 3,
BORDER_REFLECT_101) of it, foreground unchanged; then crop to the mask's bounding box widened by
10% of its extent per side (clamped to the image), zero-pad to a square (centred, extra pixel
right/bottom) and resize nearest back to the input size. The image is preprocessed like every
CLIPSeg image (PIL bilinear to the input size, ImageNet mean/std); the mask is resized nearest
(torch's rule, src = floor(dst * in / out)). The blur is written out in numpy below (cv2 is not in
the venv): the kernel is cv2.getGaussianKernel's (computed in double, stored as float32), rows then
columns, float32 sums.
"""
import json
import shutil
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import save_file
from transformers import CLIPSegConfig, CLIPSegForImageSegmentation, ViTImageProcessor
from transformers.models.vit.image_processing_pil_vit import ViTImageProcessorPil

HERE = Path(__file__).resolve().parent
FIX = HERE.parent / "CLIPSegTests" / "Fixtures"
SAM_FIX = HERE.parent / "SAMTests" / "Fixtures"

MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]
INPUT = 96
THRESHOLD = 0.4


def tiny_config():
    return CLIPSegConfig(
        text_config=dict(vocab_size=1000, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, max_position_embeddings=16, hidden_act="quick_gelu",
                         layer_norm_eps=1e-5, pad_token_id=1, bos_token_id=997, eos_token_id=998),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=4, num_attention_heads=4,
                           image_size=64, patch_size=16, hidden_act="quick_gelu", layer_norm_eps=1e-5),
        projection_dim=16, reduce_dim=16, extract_layers=[1, 2, 3], decoder_num_attention_heads=4,
        decoder_intermediate_size=32, conditional_layer=1, use_complex_transposed_convolution=True,
        attn_implementation="eager",
    )


def randomise(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            r = torch.randn(p.shape, generator=g)
            if "norm" in name or "layrnorm" in name:
                p.copy_(1 + 0.2 * r if name.endswith("weight") else 0.1 * r)
            elif name.endswith("bias"):
                p.copy_(0.1 * r)
            elif "embedding" in name:
                p.copy_(0.5 * r)
            elif p.dim() >= 2:
                fan_in = p.shape[0] if "transposed_convolution" in name and p.dim() == 4 else int(np.prod(p.shape[1:]))
                p.copy_(r / np.sqrt(fan_in))
            else:
                p.copy_(r)


def rd64_refined_config():
    """CIDAS/clipseg-rd64-refined config.json over configuration_clipseg.py's defaults."""
    return CLIPSegConfig(text_config=dict(bos_token_id=0, eos_token_id=2), vision_config=dict(patch_size=16),
                         extract_layers=[3, 6, 9], reduce_dim=64, conditional_layer=0,
                         use_complex_transposed_convolution=True, projection_dim=512)


def preprocess(img, size, backend=ViTImageProcessorPil):
    proc = backend(size={"height": size, "width": size}, resample=2, do_rescale=True, rescale_factor=1 / 255,
                   do_normalize=True, image_mean=MEAN, image_std=STD)
    return proc(img, return_tensors="pt").pixel_values


# --- one-shot visual prompts -------------------------------------------------------------------
VP_KERNEL = 15
VP_SIGMA = 3.0
VP_BACKGROUND = 0.1
VP_CONTEXT = 0.1


def gaussian_kernel(n, sigma):
    """cv2.getGaussianKernel(n, sigma) for sigma > 0, as float32 (it computes in double)."""
    x = np.arange(n, dtype=np.float64) - (n - 1) / 2
    k = np.exp(-(x * x) / (2 * sigma * sigma))
    return (k / k.sum()).astype(np.float32)


def gaussian_blur(chw):
    """cv2.GaussianBlur(hwc, (15, 15), 3) on a float32 image: separable, rows then columns,
    BORDER_REFLECT_101 (numpy's 'reflect'), float32 accumulation in tap order."""
    k = gaussian_kernel(VP_KERNEL, VP_SIGMA)
    r = VP_KERNEL // 2
    _, h, w = chw.shape
    p = np.pad(chw, ((0, 0), (0, 0), (r, r)), mode="reflect")
    rows = np.zeros_like(chw)
    for i in range(VP_KERNEL):
        rows = rows + k[i] * p[:, :, i:i + w]
    p = np.pad(rows, ((0, 0), (r, r), (0, 0)), mode="reflect")
    out = np.zeros_like(chw)
    for i in range(VP_KERNEL):
        out = out + k[i] * p[:, i:i + h, :]
    return out


def nearest_indices(n_in, n_out):
    """torch's 'nearest' source index: floor(dst * (in / out)) in float32, clamped."""
    scale = np.float32(n_in) / np.float32(n_out)
    return np.minimum(np.floor(np.arange(n_out, dtype=np.float32) * scale).astype(np.int64), n_in - 1)


def resize_nearest(a, out_h, out_w):
    """a: [..., H, W] -> [..., out_h, out_w], torch.nn.functional.interpolate(mode='nearest')."""
    ys = nearest_indices(a.shape[-2], out_h)
    xs = nearest_indices(a.shape[-1], out_w)
    return a[..., ys[:, None], xs[None, :]]


def engineer_visual_prompt(img, mask, size):
    """The example image with its mask applied (see the module docstring); returns
    ([3, size, size] float32, info)."""
    pix = preprocess(img, size)[0].numpy()
    m = (np.asarray(mask.convert("L")) > 0).astype(np.uint8)
    m = resize_nearest(m, size, size)
    mt = torch.from_numpy(np.asarray(mask.convert("L")) > 0).to(torch.uint8)[None, None]
    assert np.array_equal(m, F.interpolate(mt, (size, size), mode="nearest")[0, 0].numpy()), "nearest rule != torch"
    assert m.any(), "mask has no foreground at the model's input size"
    mf = m.astype(np.float32)
    blended = pix * mf + np.float32(VP_BACKGROUND) * gaussian_blur(pix) * (1 - mf)
    # crop_mask(img, mask, context=0.1): x extent widens x, y extent widens y (python floats, int()).
    cols, rows = m.max(0), m.max(1)
    x0, x1 = int(cols.argmax()), size - int(cols[::-1].argmax())
    y0, y1 = int(rows.argmax()), size - int(rows[::-1].argmax())
    xe, ye = x1 - x0, y1 - y0
    x0, x1 = int(max(0, x0 - VP_CONTEXT * xe)), int(min(size, x1 + VP_CONTEXT * xe))
    y0, y1 = int(max(0, y0 - VP_CONTEXT * ye)), int(min(size, y1 + VP_CONTEXT * ye))
    crop = blended[:, y0:y1, x0:x1]
    h, w = crop.shape[1:]
    side = max(h, w)
    padded = np.zeros((3, side, side), np.float32)
    oy, ox = (side - h) // 2, (side - w) // 2
    padded[:, oy:oy + h, ox:ox + w] = crop
    out = resize_nearest(padded, size, size)
    ref = F.interpolate(torch.from_numpy(padded)[None], (size, size))[0].numpy()
    assert np.array_equal(out, ref), "nearest resize != torch"
    return out.astype(np.float32), {"crop_xyxy": [x0, y0, x1, y1], "padded_side": side,
                                    "mask_pixels_at_input": int(m.sum())}


def make_visual_prompt_fixtures(coffee):
    a = Image.open(FIX / "visual_prompt.png").convert("RGB")
    yy, xx = np.mgrid[0:a.height, 0:a.width]
    ellipse = ((xx - 18) / 20.0) ** 2 + ((yy - 38) / 15.0) ** 2 <= 1
    Image.fromarray((ellipse * 255).astype(np.uint8)).save(FIX / "visual_prompt_mask.png", optimize=True)
    b = coffee.crop((300, 100, 300 + 150, 100 + 120))
    b.save(FIX / "visual_prompt_b.png", optimize=True)
    rect = np.zeros((b.height, b.width), np.uint8)
    rect[10:110, 60:95] = 1  # nonzero = foreground: 1, not 255, on purpose
    Image.fromarray(rect).save(FIX / "visual_prompt_b_mask.png", optimize=True)
    return [(a, Image.open(FIX / "visual_prompt_mask.png")), (b, Image.open(FIX / "visual_prompt_b_mask.png"))]


def visual_prompt_goldens(model, pixel_values, pairs):
    g, info = {}, []
    with torch.no_grad():
        feats = []
        for k, (img, mask) in enumerate(pairs):
            eng, meta = engineer_visual_prompt(img, mask, INPUT)
            info.append(meta)
            cond = torch.from_numpy(eng)[None]
            feats.append(model.clip.get_image_features(cond).pooler_output)
            g[f"features.{k}"] = feats[-1]
            if k == 0:
                g["engineered.0"] = cond
                out = model(pixel_values=pixel_values, conditional_pixel_values=cond)
                assert torch.equal(out.conditional_embeddings, feats[-1])
                g["logits.0"] = out.logits
            else:
                g[f"engineered.{k}_every3"] = cond[:, :, ::3, ::3]
        mean = torch.stack(feats).mean(0)
        g["features_mean"] = mean
        g["logits_mean"] = model(pixel_values=pixel_values, conditional_embeddings=mean).logits
    g = {k: v.contiguous().float() for k, v in g.items()}
    save_file(g, FIX / "clipseg_visual_prompt_golden.safetensors")
    return g, info


def main():
    FIX.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SAM_FIX / "chelsea_crop.png", FIX / "chelsea_crop.png")
    coffee = Image.open(SAM_FIX / "coffee.png").convert("RGB")
    coffee.crop((150, 60, 150 + 88, 60 + 72)).save(FIX / "visual_prompt.png", optimize=True)

    with torch.device("meta"):
        rd64 = CLIPSegForImageSegmentation(rd64_refined_config())
    names = [{"name": k, "shape": list(v.shape)} for k, v in rd64.state_dict().items()]
    (FIX / "rd64_refined_state_dict.json").write_text("[\n" + ",\n".join(json.dumps(n) for n in names) + "\n]\n")

    image = Image.open(FIX / "chelsea_crop.png").convert("RGB")
    prompt_image = Image.open(FIX / "visual_prompt.png").convert("RGB")

    torch.manual_seed(0)
    config = tiny_config()
    model = CLIPSegForImageSegmentation(config).eval()
    randomise(model)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, FIX / "clipseg_tiny.safetensors")

    pixel_values = preprocess(image, INPUT)
    prompt_values = preprocess(prompt_image, INPUT)
    pv352 = preprocess(image, 352)
    tv352 = preprocess(image, 352, backend=ViTImageProcessor)
    # The same pixels as np/PIL directly: the processor is exactly PIL BILINEAR + affine.
    r = np.asarray(image.resize((352, 352), Image.BILINEAR)).astype(np.float32)
    direct = torch.from_numpy(((r / 255 - np.array(MEAN, np.float32)) / np.array(STD, np.float32)).transpose(2, 0, 1))
    assert torch.equal(direct[None], pv352), "ViTImageProcessorPil is not plain PIL BILINEAR + normalise"

    # Text ids: row 0 ends in eos padding; row 1 holds the "added" token 999 before eos.
    ids = torch.tensor([[997, 12, 500, 33, 71, 998, 998, 998],
                        [997, 999, 42, 7, 998, 998, 998, 998]])

    g = {}
    with torch.no_grad():
        emb = model.clip.vision_model.embeddings
        dummy = torch.zeros(1, (INPUT // 16) ** 2 + 1, 32)
        g["position_embedding_interpolated"] = emb.interpolate_pos_encoding(dummy, INPUT, INPUT)
        # Downscaling and a non-square grid (4x4 -> 3x5) through the same bicubic path.
        g["position_embedding_interpolated_48x80"] = emb.interpolate_pos_encoding(torch.zeros(1, 16, 32), 48, 80)
        g["embeddings"] = emb(pixel_values)

        # Which hidden states are "activations": hook every encoder layer and compare.
        layer_outputs = []
        hooks = [l.register_forward_hook(lambda m, i, o: layer_outputs.append(o if torch.is_tensor(o) else o[0]))
                 for l in model.clip.vision_model.encoder.layers]
        out_text = model(input_ids=ids, pixel_values=pixel_values.repeat(2, 1, 1, 1))
        for h in hooks:
            h.remove()
        vis = out_text.vision_model_output
        acts = [vis.hidden_states[i + 1] for i in config.extract_layers]
        for k, i in enumerate(config.extract_layers):
            # hidden_states[i + 1] is the output of encoder layer i (0-based)
            assert torch.equal(acts[k], layer_outputs[i]), f"activation {k} is not layer {i}'s output"
        for k in range(len(acts)):
            g[f"activations.{k}"] = acts[k][:1]
        g["vision_pooled"] = model.clip.vision_model(pixel_values).pooler_output
        g["image_features"] = model.clip.get_image_features(pixel_values).pooler_output

        g["text_features"] = model.clip.get_text_features(ids).pooler_output
        assert torch.equal(out_text.conditional_embeddings, g["text_features"])
        g["logits_text"] = out_text.logits

        model.clip.text_model.eos_token_id = 2  # legacy argmax pooling, as rd64-refined's config
        g["text_features_legacy_eos"] = model.clip.get_text_features(ids).pooler_output
        model.clip.text_model.eos_token_id = config.text_config.eos_token_id
        assert not torch.allclose(g["text_features_legacy_eos"][1], g["text_features"][1])

        out_vis = model(pixel_values=pixel_values, conditional_pixel_values=prompt_values)
        g["visual_prompt_features"] = out_vis.conditional_embeddings
        g["logits_visual"] = out_vis.logits

        # Postprocessing convention (Segflow's, see CLIPSegProcessor.swift): bilinear resize of the
        # logits to the original size (align_corners=False, no antialias), sigmoid, threshold.
        up = F.interpolate(out_vis.logits[:, None], size=(image.height, image.width), mode="bilinear",
                           align_corners=False)[:, 0]
        g["probabilities_original_size"] = torch.sigmoid(up)

    vp_pairs = make_visual_prompt_fixtures(coffee)
    vg, vp_info = visual_prompt_goldens(model, pixel_values, vp_pairs)

    g["pixel_values"] = pixel_values
    g["prompt_pixel_values"] = prompt_values
    g["pixel_values_352_every5"] = pv352[:, :, ::5, ::5].contiguous()
    g = {k: v.contiguous().float() for k, v in g.items()}
    save_file(g, FIX / "clipseg_tiny_golden.safetensors")

    tv_diff = (tv352 - pv352).abs()
    cases = {
        "config": config.to_diff_dict() if hasattr(config, "to_diff_dict") else {},
        "input_size": INPUT,
        "input_ids": ids.tolist(),
        "threshold": THRESHOLD,
        "image": {"file": "chelsea_crop.png", "width": image.width, "height": image.height},
        "visual_prompt": {"file": "visual_prompt.png", "width": prompt_image.width, "height": prompt_image.height},
        "state_dict_tensors": len(state),
        "visual_prompt_engineering": {
            "variant": "crop_blur_highlight (timojl/clipseg): blur 15x15 sigma 3, background 0.1, context 0.1",
            "pairs": [{"image": i, "mask": m, **meta} for (i, m), meta in
                      zip([("visual_prompt.png", "visual_prompt_mask.png"), ("visual_prompt_b.png", "visual_prompt_b_mask.png")], vp_info)],
        },
        "torchvision_backend_vs_pil_at_352": {
            "max_abs_normalised": float(tv_diff.max()),
            "fraction_of_values_differing": float((tv_diff > 0).float().mean()),
        },
        "versions": {"torch": torch.__version__, "transformers": __import__("transformers").__version__},
    }
    (FIX / "clipseg_cases.json").write_text(json.dumps(cases, indent=1, default=str) + "\n")
    for k, v in list(g.items()) + [("vp." + k, v) for k, v in vg.items()]:
        print(f"{k:36s} {tuple(v.shape)} max|.|={v.abs().max():.4g}")
    print(json.dumps(cases["torchvision_backend_vs_pil_at_352"]))


if __name__ == "__main__":
    main()
