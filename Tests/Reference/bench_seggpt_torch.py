"""Time transformers' SegGptForImageSegmentation (PyTorch fp32, random weights, official
ViT-L config: 896x448 canvas, one prompt) for comparison with Segflow's
`SegGPTBenchmark.randomFullSize` (SegGPTBenchmarkTests with SEGFLOW_SEGGPT_BENCH=1).

    python Tests/Reference/bench_seggpt_torch.py --threads 2 --runs 3 [--precision bf16] [--json]

Prints per-run seconds and the median. transformers decodes the whole canvas; Segflow
decodes only the query half (same pixels), so the FLOP counts differ slightly.
"""
import argparse
import contextlib
import json
import statistics
import time

import torch
from transformers import SegGptConfig, SegGptForImageSegmentation


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--prompts", type=int, default=1)
    ap.add_argument("--precision", choices=["f32", "bf16"], default="f32",
                    help="bf16: torch.autocast('cpu', dtype=torch.bfloat16)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = SegGptForImageSegmentation(SegGptConfig()).eval()
    n = a.prompts
    x = torch.randn(n, 3, 448, 448)
    p = torch.randn(n, 3, 448, 448)
    m = torch.randn(n, 3, 448, 448)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if a.precision == "bf16" else contextlib.nullcontext()
    with torch.inference_mode(), autocast:
        model(pixel_values=x, prompt_pixel_values=p, prompt_masks=m, feature_ensemble=n > 1)  # warm-up
        times = []
        for _ in range(a.runs):
            t0 = time.perf_counter()
            model(pixel_values=x, prompt_pixel_values=p, prompt_masks=m, feature_ensemble=n > 1)
            times.append(time.perf_counter() - t0)
    if a.json:
        print(json.dumps({"torch": torch.__version__, "precision": a.precision, "threads": torch.get_num_threads(),
                          "seconds": times, "medianSeconds": statistics.median(times)}))
        return
    print(f"torch {torch.__version__} precision {a.precision} threads {torch.get_num_threads()} runs {[round(t, 2) for t in times]} "
          f"median {statistics.median(times):.2f} s")


if __name__ == "__main__":
    main()
