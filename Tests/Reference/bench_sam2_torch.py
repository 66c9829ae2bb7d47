"""Time transformers' SAM 2 video model (PyTorch, random weights, full size) for comparison with
Segflow's SAM 2 tracking: the image encoder per frame, and the per-frame tracking cost for 1 and
3 objects with the vision features already computed.

    python Tests/Reference/bench_sam2_torch.py --threads 2 --runs 5 --frames 8 [--precision bf16] [--json]

Model: `Sam2VideoModel(Sam2VideoConfig())`, eval, torch.inference_mode(), no downloads. The default
config is the sam2.1 Hiera-T geometry (asserted below): Hiera hidden 96, blocks [1,2,7,2], global
attention blocks [5,7,9], windows [8,4,14,7], 1024x1024 input (FPN 256 ch at 256/128/64), memory
attention 4 layers, num_maskmem 7, the two sam2.1 flags on.

Stages:
  encoder   `model.get_image_features(pixel_values)` on one random [1,3,1024,1024] input (Hiera +
            FPN + the mask decoder's conv_s0/conv_s1: what the video model computes per frame);
            median of --runs after 1 warm-up.
  track_N   STREAMING session (`Sam2VideoProcessor.init_video_session()` with no video), one box
            per object on frame 0 (1024x1024 coordinates), then frames 1..F with no new prompts,
            every frame the same random pixel tensor. Before each `model(inference_session=s,
            frame=pixel_values)` call the features computed once for that tensor are put in the
            session cache (`session.cache.cache_vision_features(idx, ...)`), so the call takes
            `_prepare_vision_features`' cache path and the timed region is memory attention +
            prompt encoder / mask decoder + memory encoder for every object, nothing else (a
            forward hook on model.vision_encoder counts calls; asserted 0). Median over frames
            2..F of one session (frames 0 and 1 are warm-up: frame 1 has only one memory). Memory
            attention grows with the bank (up to num_maskmem-1 = 6 past memories + cond frame),
            so the median depends on --frames.
  memory    bytes of tracking state for one object after frames 0..F (1-object session): the
            tensors in session.output_dict_per_obj[0] (cond + non-cond outputs: pred_masks,
            high_res_masks, object_pointer, object_score_logits, maskmem_features (bf16),
            maskmem_pos_enc). transformers keeps EVERY frame's output (nothing is evicted outside
            the num_maskmem window), so this grows linearly; per-frame = state / (F+1) stored
            frames. The session also keeps every streamed pixel frame (12 MiB each in fp32, in
            processed_frames, not counted). Peak RSS: VmHWM from /proc/self/status.

Threads: --threads (default 2) via torch.set_num_threads.
"""
import argparse
import contextlib
import json
import statistics
import time

import torch
from transformers import Sam2VideoConfig, Sam2VideoModel
from transformers.models.sam2.image_processing_sam2 import Sam2ImageProcessor
from transformers.models.sam2_video.processing_sam2_video import Sam2VideoProcessor
from transformers.models.sam2_video.video_processing_sam2_video import Sam2VideoVideoProcessor

BOXES = [[100.0, 100.0, 400.0, 400.0], [500.0, 500.0, 800.0, 900.0], [50.0, 600.0, 300.0, 1000.0]]


def check_geometry(cfg):
    bb = cfg.vision_config.backbone_config
    assert bb.hidden_size == 96 and list(bb.blocks_per_stage) == [1, 2, 7, 2], bb
    assert list(bb.global_attention_blocks) == [5, 7, 9] and list(bb.window_size_per_stage) == [8, 4, 14, 7], bb
    assert list(bb.image_size) == [1024, 1024] and cfg.image_size == 1024
    assert cfg.memory_attention_num_layers == 4 and cfg.num_maskmem == 7
    assert cfg.enable_occlusion_spatial_embedding and cfg.enable_temporal_pos_encoding_for_object_pointers


def peak_rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def tensors(obj):
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from tensors(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from tensors(v)


def state_bytes(output_dict):
    """(sum of tensor bytes, bytes of the distinct storages behind them)."""
    ts = list(tensors(output_dict))
    logical = sum(t.numel() * t.element_size() for t in ts)
    storages = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in ts}
    return logical, sum(storages.values())


def track(model, processor, pixel_values, features, n_objects, frames, encoder_calls):
    """One streaming session; returns (per-frame seconds for frames 0..F, session)."""
    session = processor.init_video_session(inference_device="cpu", dtype=torch.float32)
    processor.add_inputs_to_inference_session(session, frame_idx=0, obj_ids=list(range(1, n_objects + 1)),
                                              input_boxes=[BOXES[:n_objects]], original_size=(1024, 1024))
    times = []
    for f in range(frames + 1):
        # The frame index the streamed call will get (add_new_frame appends); cache its features.
        idx = len(session.processed_frames) if session.processed_frames is not None else 0
        session.cache.cache_vision_features(idx, features)
        before = encoder_calls[0]
        t0 = time.perf_counter()
        out = model(inference_session=session, frame=pixel_values)
        times.append(time.perf_counter() - t0)
        assert out.frame_idx == idx == f, (out.frame_idx, idx, f)
        # Cache path taken: the vision encoder never ran inside the timed call.
        assert encoder_calls[0] == before, "vision encoder ran inside the timed region"
    assert out.pred_masks.shape[0] == n_objects
    return times, session


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--frames", type=int, default=8, help="frames tracked after the prompted frame 0 (>= 2)")
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                    help="bf16: torch.autocast('cpu', dtype=torch.bfloat16)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    assert a.frames >= 2, "--frames must be >= 2 (frames 0 and 1 are excluded from the median)"
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    cfg = Sam2VideoConfig()
    check_geometry(cfg)
    model = Sam2VideoModel(cfg).eval()
    processor = Sam2VideoProcessor(image_processor=Sam2ImageProcessor(), video_processor=Sam2VideoVideoProcessor())
    assert processor.target_size == 1024  # boxes given in 1024x1024 coordinates stay as they are
    encoder_calls = [0]
    model.vision_encoder.register_forward_hook(lambda *_: encoder_calls.__setitem__(0, encoder_calls[0] + 1))
    pixel_values = torch.randn(1, 3, 1024, 1024)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if a.precision == "bf16" else contextlib.nullcontext()
    with torch.inference_mode(), autocast:
        model.get_image_features(pixel_values)  # warm-up
        enc = []
        for _ in range(a.runs):
            t0 = time.perf_counter()
            feats = model.get_image_features(pixel_values)
            enc.append(time.perf_counter() - t0)
        # What _prepare_vision_features caches after computing the features itself.
        features = {"vision_feats": feats.fpn_hidden_states, "vision_pos_embeds": feats.fpn_position_encoding}
        calls_before = encoder_calls[0]
        t1, s1 = track(model, processor, pixel_values, features, 1, a.frames, encoder_calls)
        logical, storage = state_bytes(s1.output_dict_per_obj[0])
        stored_frames = len(s1.output_dict_per_obj[0]["cond_frame_outputs"]) + len(s1.output_dict_per_obj[0]["non_cond_frame_outputs"])
        assert stored_frames == a.frames + 1
        del s1
        t3, _ = track(model, processor, pixel_values, features, 3, a.frames, encoder_calls)
        assert encoder_calls[0] == calls_before  # no vision encoder call in any tracking step
    report = {"framework": "pytorch", "precision": a.precision, "threads": torch.get_num_threads(),
              "encoder_median_s": statistics.median(enc),
              "track_1_median_s": statistics.median(t1[2:]), "track_3_median_s": statistics.median(t3[2:]),
              "state_bytes_per_object": logical, "state_bytes_per_object_per_frame": logical / stored_frames,
              "peak_rss_mib": peak_rss_mib(), "frames": a.frames, "runs": a.runs}
    if a.json:
        print(json.dumps(report, indent=1))
        return
    print(f"SAM 2.1 Hiera-T (random weights, 1024x1024)  torch {torch.__version__}  precision {a.precision}  "
          f"threads {report['threads']}  runs {a.runs}  frames {a.frames}\n")
    print("| stage | median s | all s |\n|---|---:|---|")
    print(f"| encoder (get_image_features) | {report['encoder_median_s']:.3f} | {' '.join(f'{t:.3f}' for t in enc)} |")
    print(f"| track 1 object / frame (frames 2..{a.frames}) | {report['track_1_median_s']:.3f} | {' '.join(f'{t:.3f}' for t in t1)} |")
    print(f"| track 3 objects / frame (frames 2..{a.frames}) | {report['track_3_median_s']:.3f} | {' '.join(f'{t:.3f}' for t in t3)} |")
    print(f"\n(\"all s\" for track lists frames 0..{a.frames}; the median excludes frames 0 and 1.)\n")
    print("| memory | value |\n|---|---:|")
    print(f"| state bytes / object after {stored_frames} frames | {logical:,} ({logical / 2**20:.2f} MiB) |")
    print(f"| state bytes / object / frame | {logical / stored_frames:,.0f} ({logical / stored_frames / 2**20:.2f} MiB) |")
    if storage != logical:
        print(f"| (distinct storages behind them) | {storage:,} |")
    print(f"| peak RSS (VmHWM) | {report['peak_rss_mib']:.0f} MiB |")


if __name__ == "__main__":
    main()
