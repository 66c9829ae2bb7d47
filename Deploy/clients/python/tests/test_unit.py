"""Unit tests of the client: no broker needed."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
from google.protobuf import __version__ as protobuf_version
from pycocotools import mask as coco_mask

from conftest import CLIENT_DIR, IMAGING_FIXTURES, REPO, require_or_skip
from segflow_client import (SegflowClient, SegflowReplyError, SegflowRequestError, SegflowTimeoutError, Topics, content_type,
                            error_code_name, murmur2, partition_for)
from segflow_client._proto import segflow_pb2 as pb
from segflow_client.results import decode_runs, mask_from_wire, parse_counts

# The generator and the runtime come from the same protobuf release (21.12): Debian 12's
# protoc 3.21.12 and PyPI's protobuf 4.21.12 (README of the client).
GENERATOR_VERSION = "libprotoc 3.21.12"
RUNTIME_VERSION = "4.21.12"


# -- partitioner -------------------------------------------------------------------------

def test_murmur2_matches_the_java_clients_vectors() -> None:
    # Kafka's clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.testMurmur2.
    cases = {b"21": -973932308, b"foobar": -790332482, b"a-little-bit-long-string": -985981536,
             b"a-little-bit-longer-string": -1486304829,
             b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971, b"abc": 479470107}
    for key, want in cases.items():
        assert murmur2(key) == want, key


def test_partition_for_is_positive_murmur2_modulo() -> None:
    assert partition_for("foobar", 8) == (-790332482 & 0x7FFFFFFF) % 8
    assert partition_for("img-1", 7) == partition_for(b"img-1", 7)
    assert {partition_for(f"image-{i}", 4) for i in range(64)} == {0, 1, 2, 3}
    with pytest.raises(ValueError):
        partition_for("x", 0)


# -- RLE ---------------------------------------------------------------------------------

def rle_cases() -> dict:
    return json.loads((IMAGING_FIXTURES / "rle_cases.json").read_text())


def test_parse_counts_matches_the_pycocotools_goldens() -> None:
    cases = rle_cases()
    assert len(cases) >= 8
    for name, c in cases.items():
        runs = parse_counts(c["counts"])
        assert runs == c["uncompressed"], name
        rle = {"size": [c["height"], c["width"]], "counts": c["counts"].encode()}
        ours = decode_runs(runs, c["height"], c["width"])
        theirs = coco_mask.decode(rle)
        assert theirs.shape == (c["height"], c["width"]), name
        assert np.array_equal(ours, theirs), name
        assert int(ours.sum()) == c["area"] == int(coco_mask.area(rle)), name
        assert [int(v) for v in coco_mask.toBbox(rle)] == c["bbox"], name


def test_random_masks_round_trip_through_pycocotools() -> None:
    rng = np.random.default_rng(7)
    for i in range(200):
        h, w = int(rng.integers(1, 41)), int(rng.integers(1, 41))
        m = (rng.random((h, w)) < rng.random()).astype(np.uint8)
        rle = coco_mask.encode(np.asfortranarray(m))
        runs = parse_counts(rle["counts"].decode())
        assert sum(runs) == h * w, i
        assert np.array_equal(decode_runs(runs, h, w), m), i
        wire = pb.Mask(rle=pb.RLE(counts=rle["counts"].decode(), height=h, width=w), area=int(m.sum()))
        assert np.array_equal(mask_from_wire("r", wire).to_array(), m), i


def test_column_major_order() -> None:
    # [[0,1,1],[0,0,1]] read down the columns: 0,0 | 1,0 | 1,1 -> runs [2,1,1,2].
    m = np.array([[0, 1, 1], [0, 0, 1]], dtype=np.uint8)
    rle = coco_mask.encode(np.asfortranarray(m))
    assert parse_counts(rle["counts"].decode()) == [2, 1, 1, 2]
    assert np.array_equal(decode_runs([2, 1, 1, 2], 2, 3), m)


@pytest.mark.parametrize("counts, reason", [
    ("0", "sum to 0"), ("3", "sum to 3"), ("5\x7f", "outside"), ("5p", "outside"), ("5`", "unterminated"),
    ("`" * 14, "longer than 13"), ("111K", "negative run -4"),  # K = delta -5 from 1
])
def test_malformed_replies_fail_naming_the_request(counts: str, reason: str) -> None:
    wire = pb.Mask(rle=pb.RLE(counts=counts, height=2, width=2), area=0)
    with pytest.raises(SegflowReplyError, match=re.escape(reason)) as e:
        mask_from_wire("req-42", wire)
    assert e.value.request_id == "req-42"
    assert "req-42" in str(e.value)


def test_declared_area_must_match_the_runs() -> None:
    wire = pb.Mask(rle=pb.RLE(counts="121", height=2, width=2), area=3)   # runs [1,2,1]: area 2
    with pytest.raises(SegflowReplyError, match="area 2 differs from the declared area 3"):
        mask_from_wire("r1", wire)
    png = pb.Mask(png=b"\x89PNG", area=0)
    with pytest.raises(SegflowReplyError, match="not RLE"):
        mask_from_wire("r2", png)


# -- names, errors, generated code ---------------------------------------------------------

def test_topic_names_and_headers_follow_the_services() -> None:
    t = Topics.for_prefix("pyc")
    assert (t.images, t.prompts, t.text, t.masks) == ("pyc.images", "pyc.prompts", "pyc.text", "pyc.masks")
    assert Topics.for_prefix().images == "segflow.images"
    assert content_type("PromptRequest") == "application/x-protobuf; messageType=segflow.v1.PromptRequest"


def test_errors_name_the_request_and_the_code() -> None:
    e = SegflowRequestError("prm-7", pb.INVALID_PROMPT, "point (900, 5) is outside the 451x300 image")
    assert (e.request_id, e.code, e.code_name) == ("prm-7", 5, "INVALID_PROMPT")
    assert str(e) == "request prm-7 failed with INVALID_PROMPT (5): point (900, 5) is outside the 451x300 image"
    assert error_code_name(99) == "ERROR_CODE_99"
    assert "a, b" in str(SegflowTimeoutError(["b", "a"], 2.5)) and "2.5 s" in str(SegflowTimeoutError(["a"], 2.5))


def test_generated_module_is_fresh_and_matches_the_runtime() -> None:
    assert protobuf_version == RUNTIME_VERSION, "requirements.txt pins the runtime that matches the generator"
    protoc = shutil.which("protoc")
    if protoc is None:
        require_or_skip("protoc not installed (Deploy/setup.sh installs Debian's protobuf-compiler)")
    version = subprocess.run([protoc, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    assert version == GENERATOR_VERSION, f"regenerate with {GENERATOR_VERSION} (found {version})"
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([str(CLIENT_DIR / "generate.sh"), tmp], check=True)
        for name in ("segflow_pb2.py", "segflow_pb2.pyi"):
            fresh = (Path(tmp) / name).read_text()
            committed = (CLIENT_DIR / "segflow_client" / "_proto" / name).read_text()
            assert fresh == committed, f"{name} is stale: run Deploy/clients/python/generate.sh and commit"
    # And the module is the one the services speak: every message of the .proto is in it.
    proto = (REPO / "Protocols" / "segflow.proto").read_text()
    for message in re.findall(r"^message (\w+)", proto, flags=re.M):
        assert message in pb.DESCRIPTOR.message_types_by_name, message


def test_a_partitioner_other_than_the_services_is_refused() -> None:
    # Checked before any connection is made (no broker needed).
    with pytest.raises(ValueError, match="murmur2_random"):
        SegflowClient("127.0.0.1:1", config={"partitioner": "consistent_random"})
