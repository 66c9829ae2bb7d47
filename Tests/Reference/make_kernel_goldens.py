#!/usr/bin/env python3
"""Golden values for Segflow's tensor kernels (Shared/Tensor), produced by PyTorch.

Run by hand from the repository root:
    /work/venv/bin/python Tests/Reference/make_kernel_goldens.py
Writes Tests/TensorTests/Fixtures/kernel_goldens.json (deterministic: fixed seeds,
single-threaded torch, fixed float formatting, sorted keys). Commit the output.

Layout: {"meta": {...}, "cases": {name: {"op": str, "params": {...},
         "inputs": {name: {"shape": [...], "data": [...]}},
         "outputs": {name: {"shape": [...], "data": [...]}}}}}
All values are written with 9 significant digits, an exact float32 round trip, so
pure data-movement ops (permute, pad, windows) can be compared bit for bit.
The SAM helpers are imported from segment_anything itself so the goldens track upstream.
"""
import json
import os

import torch
import torch.nn.functional as F
from segment_anything.modeling.common import LayerNorm2d
from segment_anything.modeling.image_encoder import (
    add_decomposed_rel_pos,
    get_rel_pos,
    window_partition,
    window_unpartition,
)

torch.manual_seed(0)
torch.set_num_threads(1)  # reduction order independent of the machine
OUT = os.path.join(os.path.dirname(__file__), "..", "TensorTests", "Fixtures", "kernel_goldens.json")

cases = {}
gen = torch.Generator().manual_seed(1234)


def randn(*shape, scale=1.0):
    return (torch.randn(*shape, generator=gen, dtype=torch.float32) * scale).contiguous()


def enc(t, digits):
    t = t.detach().contiguous().to(torch.float32)
    fmt = "%%.%dg" % digits
    vals = []
    for v in t.reshape(-1).tolist():
        if v != v:
            vals.append("NaN")
        elif v in (float("inf"), float("-inf")):
            vals.append("Infinity" if v > 0 else "-Infinity")
        else:
            vals.append(float(fmt % v))
    return {"shape": list(t.shape), "data": vals}


def add(name, op, inputs, outputs, **params):
    assert name not in cases, name
    cases[name] = {
        "op": op,
        "params": params,
        "inputs": {k: enc(v, 9) for k, v in inputs.items()},
        "outputs": {k: enc(v, 9) for k, v in outputs.items()},
    }


with torch.no_grad():
    # ---- linear / matmul
    x, w, b = randn(2, 3, 7), randn(5, 7), randn(5)
    add("linear_bias", "linear", {"x": x, "weight": w, "bias": b}, {"y": F.linear(x, w, b)})
    x, w = randn(1, 13), randn(4, 13)
    add("linear_nobias", "linear", {"x": x, "weight": w}, {"y": F.linear(x, w)})
    a, bm = randn(2, 3, 5, 7), randn(2, 3, 7, 4)
    add("matmul_batched", "matmul", {"a": a, "b": bm}, {"y": a @ bm}, transposeA=False, transposeB=False)
    a, bm = randn(3, 1, 5, 6), randn(4, 2, 6)
    add("matmul_broadcast_transB", "matmul", {"a": a, "b": bm}, {"y": a @ bm.transpose(-1, -2)},
        transposeA=False, transposeB=True)
    a, bm = randn(2, 6, 5), randn(2, 6, 3)
    add("matmul_transA", "matmul", {"a": a, "b": bm}, {"y": a.transpose(-1, -2) @ bm},
        transposeA=True, transposeB=False)

    # ---- conv2d
    def conv(name, n, cin, h, w_, cout, kh, kw, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1, bias=True):
        x = randn(n, cin, h, w_)
        wt = randn(cout, cin // groups, kh, kw, scale=0.5)
        bt = randn(cout) if bias else None
        y = F.conv2d(x, wt, bt, stride=stride, padding=padding, dilation=dilation, groups=groups)
        ins = {"x": x, "weight": wt}
        if bias:
            ins["bias"] = bt
        add(name, "conv2d", ins, {"y": y}, stride=list(stride), padding=list(padding),
            dilation=list(dilation), groups=groups)

    conv("conv_3x3_pad1", 2, 3, 7, 9, 4, 3, 3, padding=(1, 1))
    conv("conv_stride2_pad1", 1, 3, 13, 7, 5, 3, 3, stride=(2, 2), padding=(1, 1))
    conv("conv_dilation2", 1, 4, 11, 10, 3, 3, 3, padding=(2, 2), dilation=(2, 2))
    conv("conv_groups2", 2, 4, 6, 5, 6, 3, 3, padding=(1, 1), groups=2)
    conv("conv_depthwise_s2", 1, 6, 9, 8, 6, 3, 3, stride=(2, 2), padding=(1, 1), groups=6)
    conv("conv_depthwise_mult2", 1, 3, 7, 7, 6, 5, 5, padding=(2, 2), groups=3, bias=False)
    conv("conv_1x1", 2, 5, 4, 3, 7, 1, 1)
    conv("conv_patch_embed", 1, 3, 16, 12, 8, 4, 4, stride=(4, 4))
    conv("conv_nonsquare", 1, 2, 9, 11, 3, 2, 3, stride=(2, 1), padding=(1, 0), dilation=(1, 2))

    # ---- conv_transpose2d
    def convT(name, n, cin, h, w_, coutg, kh, kw, stride, padding=(0, 0), output_padding=(0, 0), dilation=(1, 1), groups=1):
        x = randn(n, cin, h, w_)
        wt = randn(cin, coutg, kh, kw, scale=0.5)
        bt = randn(coutg * groups)
        y = F.conv_transpose2d(x, wt, bt, stride=stride, padding=padding, output_padding=output_padding,
                               groups=groups, dilation=dilation)
        add(name, "conv_transpose2d", {"x": x, "weight": wt, "bias": bt}, {"y": y}, stride=list(stride),
            padding=list(padding), output_padding=list(output_padding), dilation=list(dilation), groups=groups)

    convT("convT_k2s2_sam", 2, 4, 3, 5, 3, 2, 2, (2, 2))
    convT("convT_k3s2p1op1", 1, 3, 4, 4, 2, 3, 3, (2, 2), (1, 1), (1, 1))
    convT("convT_groups2_dil2", 1, 4, 3, 5, 2, 3, 2, (1, 2), (1, 0), (0, 1), (2, 1), 2)

    # ---- norms
    x, g, bt = randn(3, 5, 7, scale=3.0) + 5.0, randn(7), randn(7)
    add("layer_norm", "layer_norm", {"x": x, "weight": g, "bias": bt},
        {"y": F.layer_norm(x, (7,), g, bt, eps=1e-5)}, eps=1e-5)
    ln2d = LayerNorm2d(6, eps=1e-6)
    ln2d.weight.copy_(randn(6))
    ln2d.bias.copy_(randn(6))
    x = randn(2, 6, 5, 3, scale=2.0) + 1.0
    add("layer_norm2d_sam", "layer_norm2d", {"x": x, "weight": ln2d.weight, "bias": ln2d.bias},
        {"y": ln2d(x)}, eps=1e-6)
    x = randn(2, 5, 4, 3)
    rm, rv, g, bt = randn(5), torch.rand(5, generator=gen) + 0.5, randn(5), randn(5)
    add("batch_norm_eval", "batch_norm", {"x": x, "mean": rm, "var": rv, "weight": g, "bias": bt},
        {"y": F.batch_norm(x, rm, rv, g, bt, training=False, eps=1e-5)}, eps=1e-5)

    # ---- activations
    x = torch.cat([torch.linspace(-8, 8, 161), randn(64, scale=3.0)])
    add("activations", "activations", {"x": x}, {
        "gelu": F.gelu(x), "gelu_tanh": F.gelu(x, approximate="tanh"),
        "quick_gelu": x * torch.sigmoid(1.702 * x), "relu": F.relu(x), "sigmoid": torch.sigmoid(x)})
    x = randn(4, 11, scale=30.0)
    add("softmax_large_logits", "softmax", {"x": x}, {"y": torch.softmax(x, dim=-1)})

    # ---- attention
    q, k, v = randn(2, 3, 5, 4), randn(2, 3, 7, 4), randn(2, 3, 7, 6)
    bias = randn(2, 1, 5, 7)
    add("sdpa_bias", "attention", {"q": q, "k": k, "v": v, "bias": bias},
        {"y": F.scaled_dot_product_attention(q, k, v, attn_mask=bias)})
    mask = torch.zeros(5, 7)
    mask[:, 4:] = float("-inf")
    add("sdpa_mask_scale", "attention", {"q": q, "k": k, "v": v, "bias": mask},
        {"y": F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=0.3)}, scale=0.3)

    # ---- SAM relative position
    for qs, ks, L in [(5, 5, 9), (4, 7, 13), (6, 6, 7), (3, 5, 6), (7, 3, 20)]:
        table = randn(L, 3)
        add(f"get_rel_pos_q{qs}_k{ks}_L{L}", "get_rel_pos", {"rel_pos": table},
            {"y": get_rel_pos(qs, ks, table)}, q_size=qs, k_size=ks)

    def relpos_case(name, B, qhw, khw, C, Lh, Lw):
        q = randn(B, qhw[0] * qhw[1], C)
        attn = randn(B, qhw[0] * qhw[1], khw[0] * khw[1])
        rh, rw = randn(Lh, C), randn(Lw, C)
        y = add_decomposed_rel_pos(attn, q, rh, rw, qhw, khw)
        add(name, "add_decomposed_rel_pos", {"attn": attn, "q": q, "rel_pos_h": rh, "rel_pos_w": rw},
            {"y": y}, q_size=list(qhw), k_size=list(khw))

    relpos_case("rel_pos_same", 2, (3, 4), (3, 4), 5, 5, 7)
    relpos_case("rel_pos_diff_interp", 1, (4, 2), (2, 5), 3, 6, 11)

    # SAM Attention.forward core (image_encoder.Attention) with rel-pos, heads folded in B.
    B, nH, hh, ww, hd = 1, 2, 4, 5, 6
    qkv = randn(3, B * nH, hh * ww, hd)
    q, k, v = qkv.unbind(0)
    rh, rw = randn(2 * hh - 1, hd), randn(2 * ww - 1, hd)
    scale = hd ** -0.5
    attn = (q * scale) @ k.transpose(-2, -1)
    attn = add_decomposed_rel_pos(attn, q, rh, rw, (hh, ww), (hh, ww))
    y = attn.softmax(dim=-1) @ v
    add("sam_attention_relpos", "sam_attention", {"q": q, "k": k, "v": v, "rel_pos_h": rh, "rel_pos_w": rw},
        {"y": y}, size=[hh, ww], scale=scale)

    # ---- windows
    x = randn(2, 7, 10, 3)
    wins, pad_hw = window_partition(x, 4)
    back = window_unpartition(wins, 4, pad_hw, (7, 10))
    add("window_partition", "window", {"x": x}, {"windows": wins, "unpartitioned": back},
        window_size=4, pad_hw=list(pad_hw))

    # ---- interpolation
    x = randn(1, 2, 17, 23)
    for size in [(5, 7), (9, 20), (31, 40)]:
        for aa in [False, True]:
            add(f"bilinear_{size[0]}x{size[1]}_aa{int(aa)}", "bilinear", {"x": x},
                {"y": F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=aa)},
                size=list(size), antialias=aa, align_corners=False)
    add("bilinear_align_corners_up", "bilinear", {"x": x[:, :, :6, :5]},
        {"y": F.interpolate(x[:, :, :6, :5], size=(11, 8), mode="bilinear", align_corners=True)},
        size=[11, 8], antialias=False, align_corners=True)
    x = randn(1, 2, 5, 7)
    add("nearest", "nearest", {"x": x}, {"y": F.interpolate(x, size=(8, 3), mode="nearest")}, size=[8, 3])
    x = randn(1, 3, 7)
    add("linear1d", "linear1d", {"x": x}, {"y": F.interpolate(x, size=13, mode="linear")}, size=13)

    # ---- shape ops
    x = randn(2, 3, 4)
    add("pad_constant", "pad", {"x": x}, {"y": F.pad(x, (1, 2, 0, 3, 2, 0), value=-1.5)},
        pad=[[2, 0], [0, 3], [1, 2]], value=-1.5)
    x = randn(2, 3, 4, 5)
    add("permute", "permute", {"x": x}, {"y": x.permute(2, 0, 3, 1)}, perm=[2, 0, 3, 1])

    # ---- broadcasting / reductions
    a, bb = randn(2, 1, 4), randn(3, 1)
    add("broadcast_binary", "broadcast", {"a": a, "b": bb},
        {"add": a + bb, "sub": a - bb, "mul": a * bb, "div": a / bb})
    x = randn(3, 4, 5)
    add("reductions", "reduce", {"x": x}, {"sum1": x.sum(1), "mean_last": x.mean(-1, keepdim=True)})

meta = {"torch": torch.__version__, "generator": "Tests/Reference/make_kernel_goldens.py"}
os.makedirs(os.path.dirname(OUT), exist_ok=True)
with open(OUT, "w") as f:
    json.dump({"meta": meta, "cases": cases}, f, sort_keys=True, separators=(",", ":"))
print(f"wrote {len(cases)} cases, {os.path.getsize(OUT)} bytes to {os.path.normpath(OUT)}")
