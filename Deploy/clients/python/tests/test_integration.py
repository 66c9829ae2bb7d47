"""The client against running Segflow services (started by the XCTest PythonClientTests).

Writes every answer to $SEGFLOW_TEST_OUT (answers.json + one raw mask file per mask,
decoded by pycocotools) so the XCTest can hold them to what Swift computes in-process
for the same images and prompts, byte for byte.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from conftest import IMAGING_FIXTURES, SAM_FIXTURES, require_or_skip
from segflow_client import (Box, Point, SegflowClient, SegflowRequestError, SegflowTimeoutError, SegmentationResult,
                            content_type, partition_for)


def setting(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        require_or_skip(f"{name} not set: these tests run inside the XCTest PythonClientTests "
                        "(swift test --filter PythonClientTests), which starts the broker and services")
    return value  # type: ignore[return-value]


@pytest.fixture(scope="module")
def env() -> Dict[str, str]:
    return {k: setting(f"SEGFLOW_TEST_{k}") for k in ("BROKERS", "TOPIC_PREFIX", "OUT", "REPLY_TOPIC", "PROBE_TOPIC")}


@pytest.fixture(scope="module")
def client(env: Dict[str, str]):
    with SegflowClient(env["BROKERS"], topic_prefix=env["TOPIC_PREFIX"]) as c:
        yield c


ANSWERS: Dict[str, dict] = {}


def record(env: Dict[str, str], name: str, image: dict, points: List[Point], boxes: List[Box], multimask: bool,
           result: SegmentationResult, text: Optional[str] = None) -> None:
    """Keeps one answer for the XCTest: the wire RLE plus the pycocotools-decoded mask."""
    out = Path(env["OUT"])
    masks = []
    for i, m in enumerate(result.masks):
        a = m.to_array()
        assert a.shape == (m.height, m.width) and a.dtype == np.uint8
        assert int(a.sum()) == m.area
        if m.area:
            ys, xs = np.nonzero(a)
            assert m.bbox == (int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1))
        file = f"{name}-{i}.mask"
        (out / file).write_bytes(a.tobytes())   # row-major, 0/1
        masks.append({"counts": m.rle["counts"].decode(), "height": m.height, "width": m.width, "area": m.area,
                      "bbox": list(m.bbox), "predicted_iou": m.predicted_iou, "file": file})
    ANSWERS[name] = {"image": image, "points": [[p.x, p.y, p.label] for p in points],
                     "boxes": [[b.x0, b.y0, b.x1, b.y1] for b in boxes], "multimask": multimask,
                     "text": text, "model": result.model, "request_id": result.request_id, "masks": masks}
    (out / "answers.json").write_text(json.dumps(ANSWERS, indent=1, sort_keys=True))


def test_png_box_on_a_private_reply_topic(env: Dict[str, str]) -> None:
    boxes = [Box(60, 10, 330, 290)]
    with SegflowClient(env["BROKERS"], topic_prefix=env["TOPIC_PREFIX"], reply_topic=env["REPLY_TOPIC"]) as c:
        r = c.segment((SAM_FIXTURES / "chelsea.png").read_bytes(), boxes=boxes, model="litemedsam", timeout=180)
    assert len(r.masks) == 1 and r.masks[0].area > 10000
    assert r.model == "litemedsam"
    record(env, "png_box", {"file": "Tests/SAMTests/Fixtures/chelsea.png"}, [], boxes, False, r)


def test_jpeg_points_multimask(client: SegflowClient, env: Dict[str, str]) -> None:
    points = [Point(190, 150, 1), Point(20, 20, 0)]
    r = client.segment(SAM_FIXTURES / "chelsea.jpg", points=points, multimask=True, timeout=180)
    assert len(r.masks) == 3
    record(env, "jpeg_points_multimask", {"file": "Tests/SAMTests/Fixtures/chelsea.jpg"}, points, [], True, r)


def test_two_boxes_with_a_point_are_two_prompts(client: SegflowClient, env: Dict[str, str]) -> None:
    points, boxes = [Point(300, 150, 1)], [Box(140, 20, 470, 300), Box(300, 120, 420, 260)]
    r = client.segment((SAM_FIXTURES / "coffee.png").read_bytes(), points=points, boxes=boxes, timeout=180)
    assert len(r.masks) == 2   # prompt-major, one mask per box
    record(env, "png_two_boxes_and_point", {"file": "Tests/SAMTests/Fixtures/coffee.png"}, points, boxes, False, r)


def test_raw_rgb_array(client: SegflowClient, env: Dict[str, str]) -> None:
    case = json.loads((IMAGING_FIXTURES / "png_cases.json").read_text())["pil_written_rgb8"]
    w, h = case["width"], case["height"]
    rgb = np.frombuffer((IMAGING_FIXTURES / case["rgb"]).read_bytes(), dtype=np.uint8).reshape(h, w, 3)
    points = [Point(w / 2, h / 2, 1)]
    r = client.segment(rgb, points=points, timeout=180)
    assert len(r.masks) == 1 and r.masks[0].width == w and r.masks[0].height == h
    record(env, "raw_rgb", {"raw": f"Tests/ImagingTests/Fixtures/{case['rgb']}", "width": w, "height": h}, points, [], False, r)


def test_encode_once_decode_many_by_image_id(client: SegflowClient, env: Dict[str, str]) -> None:
    """A second prompt names the image by id only; the encoder is not asked again (the
    XCTest counts encodes). Both answers are awaited by request id, in reverse order."""
    image_id = f"py-reuse-{uuid.uuid4()}"
    first = client.submit((SAM_FIXTURES / "chelsea_crop.png").read_bytes(), image_id=image_id, boxes=[Box(10, 10, 100, 90)])
    second = client.submit(image_id=image_id, points=[Point(50, 40, 1)], multimask=True)
    assert second.image_request_id is None
    r2 = client.wait(second, timeout=180)
    r1 = client.wait(first, timeout=180)
    assert (len(r1.masks), len(r2.masks)) == (1, 3)
    assert r1.image_id == r2.image_id == image_id
    record(env, "reuse_box", {"file": "Tests/SAMTests/Fixtures/chelsea_crop.png"}, [], [Box(10, 10, 100, 90)], False, r1)
    record(env, "reuse_points", {"file": "Tests/SAMTests/Fixtures/chelsea_crop.png"}, [Point(50, 40, 1)], [], True, r2)


def test_text_prompt_through_the_text_encoder(client: SegflowClient, env: Dict[str, str]) -> None:
    """CLIPSeg (a tiny random checkpoint with the real names) behind the text-encoder: the
    prompt goes to PREFIX.text, the text-encoder forwards it to the decoder. The XCTest
    compares the answer with the Swift client's for the same phrase."""
    png = (SAM_FIXTURES / "chelsea_crop.png").read_bytes()
    r = client.segment(png, text="a photo of a cat", model="clipseg", timeout=180)
    assert r.model == "clipseg" and len(r.masks) == 1
    record(env, "text_clipseg", {"file": "Tests/SAMTests/Fixtures/chelsea_crop.png"}, [], [], False, r,
           text="a photo of a cat")
    # Refused by the text-encoder (no words), against the image already encoded.
    sub = client.submit(image_id=r.image_id, text="   ", model="clipseg")
    with pytest.raises(SegflowRequestError) as e:
        client.wait(sub, timeout=120)
    assert (e.value.request_id, e.value.code_name) == (sub.prompt_request_id, "INVALID_PROMPT")


def test_error_results_name_the_request_and_code(client: SegflowClient) -> None:
    png = (SAM_FIXTURES / "chelsea_crop.png").read_bytes()
    corrupt = png[:40] + bytes(b ^ 0x5A for b in png[40:400]) + png[400:]
    sub = client.submit(corrupt, points=[Point(5, 5, 1)])
    with pytest.raises(SegflowRequestError) as e:
        client.wait(sub, timeout=120)
    assert (e.value.request_id, e.value.code_name) == (sub.image_request_id, "INVALID_IMAGE")
    assert sub.image_request_id in str(e.value) and "INVALID_IMAGE" in str(e.value)

    sub = client.submit(png, points=[Point(900, 5, 1)])
    with pytest.raises(SegflowRequestError) as e:
        client.wait(sub, timeout=120)
    assert (e.value.request_id, e.value.code_name) == (sub.prompt_request_id, "INVALID_PROMPT")

    sub = client.submit(png, points=[Point(5, 5, 1)], model="no-such-model")
    with pytest.raises(SegflowRequestError) as e:
        client.wait(sub, timeout=120)
    assert (e.value.request_id, e.value.code_name) == (sub.image_request_id, "UNKNOWN_MODEL")


def test_bounded_wait_then_embedding_not_found(client: SegflowClient) -> None:
    """A prompt for an image never sent: our bounded wait ends first (SegflowTimeoutError
    naming the id); the decoder then answers EMBEDDING_NOT_FOUND after its --max-wait-ms."""
    sub = client.submit(image_id=f"py-never-{uuid.uuid4()}", points=[Point(5, 5, 1)])
    t0 = time.monotonic()
    with pytest.raises(SegflowTimeoutError) as e:
        client.wait(sub, timeout=1.5)
    assert 1.5 <= time.monotonic() - t0 < 10
    assert e.value.request_ids == [sub.prompt_request_id] and sub.prompt_request_id in str(e.value)
    with pytest.raises(SegflowRequestError) as e2:
        client.wait(sub, timeout=120)
    assert (e2.value.request_id, e2.value.code_name) == (sub.prompt_request_id, "EMBEDDING_NOT_FOUND")


def read_topic(brokers: str, topic: str, want: Dict[str, object], timeout: float = 60) -> Dict[str, object]:
    """Records of ``topic`` (from the beginning) whose request-id header is a key of
    ``want``, by that id; fails when one is missing after ``timeout`` seconds."""
    c = Consumer({"bootstrap.servers": brokers, "group.id": f"py-inspect-{uuid.uuid4()}", "enable.auto.commit": False,
                  "fetch.wait.max.ms": 10})
    try:
        parts = c.list_topics(topic, timeout=30).topics[topic].partitions
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        found: Dict[str, object] = {}
        deadline = time.monotonic() + timeout
        while set(want) - set(found):
            assert time.monotonic() < deadline, f"{sorted(set(want) - set(found))} not on {topic} within {timeout} s"
            m = c.poll(0.2)
            if m is None or m.error() is not None:
                continue
            rid = dict(m.headers() or []).get("request-id", b"").decode()
            if rid in want and rid not in found:
                found[rid] = m
        return found
    finally:
        c.close()


def test_records_carry_the_services_keys_headers_and_partitions(client: SegflowClient, env: Dict[str, str]) -> None:
    trace = f"trace-{uuid.uuid4()}"
    sub = client.submit((SAM_FIXTURES / "chelsea_crop.png").read_bytes(), boxes=[Box(10, 10, 100, 90)], trace_id=trace)
    client.wait(sub, timeout=180)
    prefix = env["TOPIC_PREFIX"]
    for topic, rid, message in [(f"{prefix}.images", sub.image_request_id, "ImageRequest"),
                                (f"{prefix}.prompts", sub.prompt_request_id, "PromptRequest"),
                                (f"{prefix}.masks", sub.prompt_request_id, "MaskResult")]:
        m = read_topic(env["BROKERS"], topic, {rid: None})[rid]
        headers = dict(m.headers())
        assert headers["content-type"].decode() == content_type(message), topic
        assert headers["trace-id"].decode() == trace, topic
        assert m.key().decode() == sub.image_id, topic
        partitions = len(client._consumer.list_topics(topic, timeout=30).topics[topic].partitions)
        assert m.partition() == partition_for(sub.image_id, partitions), topic


def test_partitioner_agrees_with_the_rule_and_differs_from_librdkafkas_default(client: SegflowClient,
                                                                               env: Dict[str, str]) -> None:
    """Delivered partitions of 64 image-id-like keys on an 8-partition topic: the client's
    producer settings give murmur2's; librdkafka's default partitioner would not (so this
    test can tell). The XCTest sends the same keys with Swift's producer and compares."""
    keys = [f"image-{i}-{uuid.UUID(int=i)}" for i in range(64)]

    def delivered(config: Dict[str, object]) -> Dict[str, int]:
        got: Dict[str, int] = {}
        p = Producer(config)
        for k in keys:
            p.produce(env["PROBE_TOPIC"], key=k.encode(), value=b"probe",
                      on_delivery=lambda err, msg: got.__setitem__(msg.key().decode(), -1 if err else msg.partition()))
        assert p.flush(30) == 0
        return got

    ours = delivered(client.producer_config)
    assert ours == {k: partition_for(k, 8) for k in keys}
    default = {k: v for k, v in client.producer_config.items() if k not in ("partitioner", "enable.idempotence")}
    theirs = delivered(default)
    assert sum(ours[k] != theirs[k] for k in keys) > 16, "consistent_random should disagree on most keys"
    (Path(env["OUT"]) / "partitions.json").write_text(json.dumps({"topic": env["PROBE_TOPIC"], "partitions": ours}))


def test_all_answers_recorded(env: Dict[str, str]) -> None:
    assert sorted(ANSWERS) == sorted(["png_box", "jpeg_points_multimask", "png_two_boxes_and_point", "raw_rgb",
                                      "reuse_box", "reuse_points", "text_clipseg"])
