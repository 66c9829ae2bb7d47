#!/usr/bin/env python3
"""Generate the Checkpoint test fixtures (run by hand; outputs are committed).

    /work/venv/bin/python Tests/Reference/make_checkpoint_fixtures.py

Writes into Tests/CheckpointTests/Fixtures/:
  dtypes.pth, views.pth, nested.pth      torch.save (zip format) checkpoints
  mixed.safetensors                       safetensors.torch.save_file, f32/f16/bf16
  evil_*.pth, bad_*.pth, legacy.pth       malformed / hostile inputs for the error tests
  expected.json                           names, dtypes, shapes, sums, first values
  lite_medsam_listing.json                listing of the real LiteMedSAM checkpoint
                                          (only if the cached checkpoint exists)

The expected values come from torch.load(weights_only=True) / safetensors.torch.load_file,
i.e. from the reference readers, never from the Swift code under test.
"""
import collections
import hashlib
import io
import json
import os
import pathlib
import struct
import sys
import zipfile

import torch
from safetensors.torch import save_file, load_file

HERE = pathlib.Path(__file__).resolve().parent
OUT = HERE.parent / "CheckpointTests" / "Fixtures"
LITE_MEDSAM_SHA256 = "79d8c9dca6db4d69d3f905579e5250af05e859fff9c1f543e89a513c3028ce76"

DTYPE_NAMES = {
    torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
    torch.uint8: "U8", torch.bool: "BOOL",
}


def describe(name, t):
    """Expected-value record for one tensor; values converted to float32 exactly as the
    Swift reader does (every dtype is widened/rounded to Float32)."""
    f = t.detach().to(torch.float32)
    flat = f.reshape(-1)
    return {
        "name": name,
        "dtype": DTYPE_NAMES[t.dtype],
        "shape": list(t.shape),
        # float64 accumulation of the float32 values: the Swift test sums in Double too.
        "sum": float(flat.to(torch.float64).sum().item()),
        "first": [float(x) for x in flat[:4].tolist()],
    }


def flatten(obj, prefix=""):
    """Mirror of the Swift flattening rule: nested dicts/lists are joined with '.',
    non-tensor leaves are skipped."""
    out = []
    if isinstance(obj, torch.Tensor):
        out.append((prefix, obj))
    elif isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(k, (str, int)) and not isinstance(k, bool):
                out += flatten(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += flatten(v, f"{prefix}.{i}" if prefix else str(i))
    return out


def listing(path):
    obj = torch.load(path, map_location="cpu", weights_only=True)
    return [describe(n, t) for n, t in flatten(obj)]


def make_dtypes():
    g = torch.Generator().manual_seed(1)
    sd = collections.OrderedDict()
    sd["f32"] = torch.randn(3, 4, generator=g)
    sd["f16"] = torch.randn(5, generator=g).to(torch.float16)
    sd["bf16"] = torch.randn(2, 3, generator=g).to(torch.bfloat16)
    sd["i64"] = torch.tensor([0, -3, 7, 1 << 20], dtype=torch.int64)
    sd["i32"] = torch.tensor([[1, -2, 3]], dtype=torch.int32)
    sd["f64"] = torch.tensor([0.5, -1.25], dtype=torch.float64)
    sd["scalar"] = torch.tensor(2.5)
    sd["empty"] = torch.zeros(0, 3)
    torch.save(sd, OUT / "dtypes.pth")


def make_views():
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6) / 4 - 2
    sd = collections.OrderedDict()
    sd["base"] = base
    sd["transposed"] = base.t()             # non-contiguous, shares storage with base
    sd["row2"] = base[2]                    # storage offset 12
    sd["col3"] = base[:, 3]                 # offset 3, stride 6
    sd["strided"] = base[1:4:2, ::2]        # offset 6, strides (12, 2)
    sd["expanded"] = torch.tensor([1.5, -0.5]).view(2, 1).expand(2, 3)  # stride 0
    h = torch.linspace(-1, 1, 10, dtype=torch.float32).to(torch.float16)
    sd["half_view"] = h.view(2, 5).t()[1:]  # f16, non-contiguous with offset
    sd["unit_dims"] = base[1:2, :].unsqueeze(2)       # shape (1, 6, 1), dense
    sd["permuted"] = torch.arange(6.0).reshape(2, 3, 1).permute(2, 0, 1)  # (1, 2, 3), strides (1, 3, 1)
    torch.save(sd, OUT / "views.pth")


def make_nested():
    torch.manual_seed(3)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    model[1].running_mean.fill_(0.25)
    ckpt = {
        "epoch": 7,
        "model": model.state_dict(),        # OrderedDict with _metadata (BUILD opcode)
        "arch": "tiny",
        "lr": 1e-3,
        "flags": [True, None, "x"],
        "extra": {"scale": torch.nn.Parameter(torch.tensor([2.0, 3.0])), "steps": 10},
    }
    torch.save(ckpt, OUT / "nested.pth")


def make_safetensors():
    g = torch.Generator().manual_seed(2)
    tensors = {
        "weight": torch.randn(4, 3, generator=g),
        "bias_f16": torch.randn(3, generator=g).to(torch.float16),
        "proj.bf16": torch.randn(2, 2, 2, generator=g).to(torch.bfloat16),
        "count": torch.tensor([5, -6], dtype=torch.int64),
    }
    save_file(tensors, OUT / "mixed.safetensors", metadata={"format": "pt"})
    loaded = load_file(OUT / "mixed.safetensors")
    return [describe(n, t) for n, t in loaded.items()]


def rewrite_zip(src, dst, edit):
    """Copy a torch zip checkpoint entry by entry (stored, like torch.save), letting
    `edit(name, data)` replace (bytes), or drop (None) an entry."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            data = edit(info.filename, zin.read(info.filename))
            if data is not None:
                zout.writestr(info.filename, data)


def pickle_of(path):
    with zipfile.ZipFile(path) as z:
        return z.read(next(n for n in z.namelist() if n.endswith("/data.pkl")))


def make_hostile():
    small = collections.OrderedDict(w=torch.tensor([1.0, 2.0, 3.0]))
    torch.save(small, OUT / "small.pth")
    pkl = pickle_of(OUT / "small.pth")
    src = OUT / "small.pth"

    def replace_pickle(payload):
        return lambda name, data: payload if name.endswith("/data.pkl") else data

    # GLOBAL 'os system' ; ('echo pwned',) ; REDUCE  -- classic pickle RCE.
    rce = b"\x80\x02cos\nsystem\nq\x00X\x0a\x00\x00\x00echo pwnedq\x01\x85q\x02Rq\x03."
    rewrite_zip(src, OUT / "evil_os_system.pth", replace_pickle(rce))
    ev = b"\x80\x02cbuiltins\neval\nq\x00X\x0b\x00\x00\x00print(1234)\x85R."
    rewrite_zip(src, OUT / "evil_eval.pth", replace_pickle(ev))
    # An opcode outside the allow-list ('i' = INST) right after PROTO.
    rewrite_zip(src, OUT / "bad_opcode.pth", replace_pickle(b"\x80\x02}q\x00i" + pkl[4:]))
    # Storage record missing from the archive.
    rewrite_zip(src, OUT / "bad_missing_storage.pth",
                lambda name, data: None if name.endswith("/data/0") else data)
    # Tensor claims 5 elements (size (5,)) but the storage holds 3.
    assert b"K\x03\x85" in pkl
    rewrite_zip(src, OUT / "bad_numel.pth", replace_pickle(pkl.replace(b"K\x03\x85", b"K\x05\x85", 1)))
    # Size (2^62,) with LONG1 -- must be rejected before any allocation.
    huge = pkl.replace(b"K\x03\x85", b"\x8a\x08" + struct.pack("<q", 1 << 62) + b"\x85", 1)
    rewrite_zip(src, OUT / "bad_huge.pth", replace_pickle(huge))
    # Storage numel in the persistent id disagrees with the record size.
    assert b"K\x03t" in pkl
    rewrite_zip(src, OUT / "bad_storage_size.pth", replace_pickle(pkl.replace(b"K\x03t", b"K\x04t", 1)))
    # Deflate-compressed entries (torch.save never does this).
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(OUT / "bad_compressed.pth", "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info.filename))
    # Legacy (pre-1.6) non-zip serialization.
    torch.save(small, OUT / "legacy.pth", _use_new_zipfile_serialization=False)


def make_lite_medsam_listing():
    home = os.environ.get("SEGFLOW_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "segflow")
    path = pathlib.Path(home) / "weights" / "lite_medsam.pth"
    if not path.exists():
        print(f"skip lite_medsam_listing.json: {path} missing (run Deploy/setup.sh)", file=sys.stderr)
        return
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest == LITE_MEDSAM_SHA256, f"unexpected sha256 {digest}"
    entries = listing(path)
    doc = {"file": "lite_medsam.pth", "sha256": digest, "tensors": entries}
    (OUT / "lite_medsam_listing.json").write_text(json.dumps(doc, separators=(",", ":")) + "\n")
    print(f"lite_medsam_listing.json: {len(entries)} tensors")


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    make_dtypes()
    make_views()
    make_nested()
    st = make_safetensors()
    make_hostile()
    expected = {
        "dtypes.pth": listing(OUT / "dtypes.pth"),
        "views.pth": listing(OUT / "views.pth"),
        "nested.pth": listing(OUT / "nested.pth"),
        "small.pth": listing(OUT / "small.pth"),
        "mixed.safetensors": st,
    }
    (OUT / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    make_lite_medsam_listing()
    total = sum(p.stat().st_size for p in OUT.iterdir() if p.name != "lite_medsam_listing.json")
    print(f"fixtures: {total} bytes (excluding the listing)")


if __name__ == "__main__":
    main()
