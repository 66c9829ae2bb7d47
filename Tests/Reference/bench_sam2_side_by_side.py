"""Issue 11's speed target measured as ratios, not as two absolute tables: rounds that run
Segflow's `bench` (bf16, and f32 with --with-f32) and transformers' SAM 2 video model
(`bench_sam2_torch.py`, fp32) back to back on the same machine, so each round's ratio shares
the machine's state. A shared build machine's speed drifts by 15-30 % between minutes
(measured: the same Segflow encoder 1.45 s and 1.9 s ten minutes apart), which moves
absolute medians taken at different times more than the differences being measured; the
median of per-round ratios does not move with it.

    python Tests/Reference/bench_sam2_side_by_side.py [--segflow .build/release/segflow]
        [--threads 2] [--rounds 3] [--runs 5] [--frames 4] [--with-f32] [--json]

Each round: Segflow bf16 (`segflow bench --model sam2.1-hiera-t --random-weights --frames F`),
then PyTorch fp32, in alternating order (odd rounds start with PyTorch), each the median of
--runs encoder calls and of tracked frames 2..F for 1 and 3 objects. Prints every round and
the median ratio per stage (target: <= 0.5).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
STAGES = [("encoder", "encoderMedianSeconds", "encoder_median_s"),
          ("track 1 object", ("trackMedianSeconds", "1"), "track_1_median_s"),
          ("track 3 objects", ("trackMedianSeconds", "3"), "track_3_median_s")]


def run_json(cmd):
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} exited with {done.returncode}:\n{done.stderr[-4000:]}")
    out = done.stdout
    return json.loads(out[out.index("{"):])


def segflow_value(report, key):
    return report[key[0]][key[1]] if isinstance(key, tuple) else report[key]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--segflow", default=os.path.join(HERE, "..", "..", ".build", "release", "segflow"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--frames", type=int, default=4)
    p.add_argument("--with-f32", action="store_true", help="also run Segflow f32 each round")
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    if a.frames < 2:
        p.error("--frames must be >= 2 (frames 0 and 1 are warm-up in both benchmarks)")
    precisions = ["bf16", "f32"] if a.with_f32 else ["bf16"]

    def segflow(precision):
        return run_json([a.segflow, "bench", "--model", "sam2.1-hiera-t", "--random-weights", "--threads", str(a.threads),
                         "--runs", str(a.runs), "--frames", str(a.frames), "--precision", precision, "--json", "--quiet"])

    def torch():
        return run_json([sys.executable, os.path.join(HERE, "bench_sam2_torch.py"), "--threads", str(a.threads),
                         "--runs", str(a.runs), "--frames", str(a.frames), "--json"])

    rounds = []
    for r in range(a.rounds):
        print(f"round {r + 1}/{a.rounds}…", file=sys.stderr, flush=True)
        got = {}
        order = ["torch"] + precisions if r % 2 else precisions + ["torch"]
        for what in order:
            got[what] = torch() if what == "torch" else segflow(what)
        row = {"round": r + 1, "pytorch_fp32": {}, **{f"segflow_{pr}": {} for pr in precisions}, "ratio": {}}
        for name, sk, tk in STAGES:
            row["pytorch_fp32"][name] = got["torch"][tk]
            for pr in precisions:
                row[f"segflow_{pr}"][name] = segflow_value(got[pr], sk)
            row["ratio"][name] = row["segflow_bf16"][name] / got["torch"][tk]
        rounds.append(row)
        print("  " + ", ".join(f"{n}: {row['segflow_bf16'][n]:.2f} s / {row['pytorch_fp32'][n]:.2f} s = {row['ratio'][n]:.3f}"
                               for n, _, _ in STAGES), file=sys.stderr, flush=True)
    summary = {n: statistics.median(r["ratio"][n] for r in rounds) for n, _, _ in STAGES}
    if a.json:
        print(json.dumps({"threads": a.threads, "runs": a.runs, "frames": a.frames, "rounds": rounds,
                          "median_ratio_bf16_vs_pytorch_fp32": summary}, indent=1))
        return
    cols = ["PyTorch fp32"] + [f"Segflow {pr}" for pr in precisions] + ["bf16 ÷ PyTorch"]
    print("| round | stage | " + " | ".join(cols) + " |")
    print("|---|---|" + "---:|" * len(cols))
    for row in rounds:
        for n, _, _ in STAGES:
            vals = [row["pytorch_fp32"][n]] + [row[f"segflow_{pr}"][n] for pr in precisions]
            print(f"| {row['round']} | {n} | " + " | ".join(f"{v:.2f} s" for v in vals) + f" | {row['ratio'][n]:.3f} |")
    print()
    print("median ratio, Segflow bf16 ÷ PyTorch fp32: " + ", ".join(f"{n} {v:.3f}" for n, v in summary.items()))


if __name__ == "__main__":
    main()
