"""SegflowClient: send an image and its prompts through Kafka, await the masks.

The wire is Segflow's own (Protocols/segflow.proto, README "Services and the wire"),
spoken exactly as the Swift ``SegflowClient`` speaks it:

* topics ``PREFIX.images``, ``PREFIX.prompts``, ``PREFIX.text``, ``PREFIX.masks``
  (``--topic-prefix`` of the services, default ``segflow``);
* ``ImageRequest`` and ``PromptRequest`` keyed by image id, partitioned with
  ``murmur2_random`` (see :mod:`segflow_client.partitioner` for why);
* headers ``content-type: application/x-protobuf; messageType=segflow.v1.<Message>``
  and ``request-id: <id>`` (plus ``trace-id`` when given, which the services echo);
* answers are ``MaskResult`` records on the reply topic (``PREFIX.masks`` unless the
  client names another; the requests then carry it in ``reply_topic``), matched by
  request id; duplicates (at-least-once redelivery) are dropped. An error answer to the
  image request (e.g. ``INVALID_IMAGE``) ends the wait for its prompts at once.

Embeddings never pass through a client (the encoder chunks them to the decoders), so
nothing here is chunked: images and masks are single records (the services accept
images up to the broker's record limit, 1 MB on stock brokers).

A client is not thread-safe: use one per thread.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from typing import AbstractSet, Dict, Iterable, List, Optional, Sequence, Set, Tuple, Union

import numpy as np
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from ._proto import segflow_pb2 as pb
from .errors import SegflowKafkaError, SegflowReplyError, SegflowRequestError, SegflowTimeoutError
from .results import Box, Point, SegmentationResult, result_from_wire

#: Header names every Segflow record carries (Shared/Messaging/Kafka/Headers.swift).
CONTENT_TYPE_HEADER = "content-type"
REQUEST_ID_HEADER = "request-id"
#: Optional; the services copy it onto every record they write for the request.
TRACE_ID_HEADER = "trace-id"

ImageInput = Union[bytes, bytearray, memoryview, "os.PathLike[str]", np.ndarray]


def content_type(message_name: str) -> str:
    """The content-type header value for a ``segflow.v1`` message."""
    return f"application/x-protobuf; messageType=segflow.v1.{message_name}"


@dataclass(frozen=True)
class Topics:
    """The topic names of one deployment: ``PREFIX.<role>`` (the services' ``--topic-prefix``)."""

    images: str
    prompts: str
    text: str
    masks: str

    @classmethod
    def for_prefix(cls, prefix: str = "segflow") -> "Topics":
        return cls(*(f"{prefix}.{role}" for role in ("images", "prompts", "text", "masks")))


@dataclass(frozen=True)
class Submission:
    """What :meth:`SegflowClient.submit` sent: await it with :meth:`SegflowClient.wait`.

    ``image_request_id`` is None for prompts sent against an image submitted earlier."""

    image_id: str
    prompt_request_id: str
    image_request_id: Optional[str] = None


def _now_ms() -> int:
    return int(time.time() * 1000)


def _set_image(req: "pb.ImageRequest", image: ImageInput) -> None:
    """Fills the ``ImageRequest.image`` oneof: encoded bytes (PNG/JPEG/WebP, told apart by
    content on the service side) or an HxWx3 uint8 array as RawImage."""
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"a raw image must be an HxWx3 uint8 array, got shape {image.shape} dtype {image.dtype}")
        h, w = image.shape[:2]
        req.raw.CopyFrom(pb.RawImage(rgb8=np.ascontiguousarray(image).tobytes(), width=w, height=h))
        return
    if isinstance(image, (bytes, bytearray, memoryview)):
        data = bytes(image)
    elif isinstance(image, os.PathLike):
        with open(image, "rb") as f:
            data = f.read()
    else:
        raise TypeError(f"image must be bytes, a path-like or a numpy array, not {type(image).__name__}")
    if not data:
        raise ValueError("image is empty")
    req.png = data   # the field's name predates JPEG/WebP; it carries any of the three


class SegflowClient:
    """A Segflow client over Kafka.

    Args:
        brokers: bootstrap servers, ``"host:port[,host:port…]"`` (``segflow broker`` prints one).
        topic_prefix: the services' ``--topic-prefix``.
        reply_topic: where answers are read; default ``PREFIX.masks``. A private reply
            topic (created beforehand, any partition count) keeps other clients' answers
            out of this one's way.
        client_id: Kafka client id.
        fetch_wait_max_ms: longest time a fetch waits at the broker. The embedded broker
            (librdkafka's mock cluster) holds fetches for the full wait even when data
            arrives, so the default is small; raise it against large real clusters.
        config: extra librdkafka properties for both producer and consumer (e.g. security
            settings); they win over the client's own, except ``partitioner`` (ValueError
            unless ``murmur2_random``).
        connect_timeout: bound, in seconds, on reading the reply topic's metadata and end
            offsets when the client opens.

    Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, brokers: str, *, topic_prefix: str = "segflow", reply_topic: Optional[str] = None,
                 client_id: str = "segflow-python", fetch_wait_max_ms: int = 10,
                 config: Optional[Dict[str, str]] = None, connect_timeout: float = 30.0) -> None:
        if not brokers:
            raise ValueError("brokers must be 'host:port[,host:port…]'")
        self.topics = Topics.for_prefix(topic_prefix)
        self.reply_topic = reply_topic or self.topics.masks
        common = {"bootstrap.servers": brokers, "client.id": client_id, "socket.nagle.disable": True}
        extra = dict(config or {})
        if extra.get("partitioner", "murmur2_random") != "murmur2_random":
            raise ValueError(f"partitioner {extra['partitioner']!r} would put prompts on other partitions than their "
                             "embeddings; Segflow's services use murmur2_random (see segflow_client.partitioner)")
        self._producer_config = {
            **common,
            # Same key → same partition as the services (image-encoder writes embeddings with
            # murmur2_random); librdkafka's default consistent_random (CRC32) would split
            # prompts from their embeddings. See segflow_client.partitioner.
            "partitioner": "murmur2_random",
            "enable.idempotence": True,
            "linger.ms": 5,
            "message.timeout.ms": 30000,
            **extra,
        }
        self._producer = Producer(self._producer_config)
        self._consumer = Consumer({
            **common,
            # Never joins a group (partitions are assigned by hand) and never commits: the
            # id only satisfies librdkafka.
            "group.id": f"segflow-pyclient-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "enable.partition.eof": False,
            "auto.offset.reset": "latest",
            "fetch.wait.max.ms": fetch_wait_max_ms,
            **extra,
        })
        self._results: Dict[str, pb.MaskResult] = {}
        self._duplicates = 0
        self._closed = False
        try:
            self._position_replies(connect_timeout)
        except BaseException:
            self.close()
            raise

    # -- lifecycle ---------------------------------------------------------------------

    def __enter__(self) -> "SegflowClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self, timeout: float = 10.0) -> None:
        """Flushes what is still queued (at most ``timeout`` seconds) and closes both handles."""
        if self._closed:
            return
        self._closed = True
        try:
            self._producer.flush(timeout)
        finally:
            self._consumer.close()

    @property
    def producer_config(self) -> Dict[str, object]:
        """The librdkafka producer properties this client sends with (a copy)."""
        return dict(self._producer_config)

    @property
    def duplicates_dropped(self) -> int:
        """Answers seen twice (at-least-once redelivery) and dropped."""
        return self._duplicates

    def _position_replies(self, timeout: float) -> None:
        """Reads the reply topic from its current end: every partition is assigned by hand
        at its high watermark, looked up before anything is sent, so no answer to a later
        request can be skipped and no group join is waited for."""
        try:
            meta = self._consumer.list_topics(self.reply_topic, timeout=timeout)
        except KafkaException as e:
            raise SegflowKafkaError(f"cannot read metadata of reply topic {self.reply_topic}", kafka_error=e.args[0]) from e
        topic = meta.topics.get(self.reply_topic)
        if topic is None or topic.error is not None or not topic.partitions:
            raise SegflowKafkaError(f"reply topic {self.reply_topic} does not exist or has no partitions"
                                    " (create the topics with `segflow topics` or start `segflow up`)",
                                    kafka_error=topic.error if topic is not None else None)
        assignment = []
        for p in sorted(topic.partitions):
            try:
                _, high = self._consumer.get_watermark_offsets(TopicPartition(self.reply_topic, p), timeout=timeout)
            except KafkaException as e:
                raise SegflowKafkaError(f"cannot read the end offset of {self.reply_topic}[{p}]", kafka_error=e.args[0]) from e
            assignment.append(TopicPartition(self.reply_topic, p, high))
        self._consumer.assign(assignment)

    # -- sending -----------------------------------------------------------------------

    def _send(self, topic: str, key: str, message_name: str, value: bytes, request_id: str, timeout: float,
              trace_id: Optional[str]) -> None:
        failures: List[KafkaError] = []

        def delivered(err: Optional[KafkaError], _msg: object) -> None:
            if err is not None:
                failures.append(err)

        headers: List[Tuple[str, Union[str, bytes, None]]] = [
            (CONTENT_TYPE_HEADER, content_type(message_name).encode()), (REQUEST_ID_HEADER, request_id.encode())]
        if trace_id:
            headers.append((TRACE_ID_HEADER, trace_id.encode()))
        try:
            self._producer.produce(topic, value=value, key=key.encode("utf-8"), on_delivery=delivered, headers=headers)
        except (KafkaException, BufferError) as e:
            raise SegflowKafkaError(f"cannot produce {message_name} to {topic}", request_id, e) from e
        remaining = self._producer.flush(timeout)
        if remaining:
            raise SegflowKafkaError(f"{message_name} to {topic} not delivered within {timeout:g} s", request_id)
        if failures:
            raise SegflowKafkaError(f"{message_name} to {topic} not delivered", request_id, failures[0])

    def _reply_field(self) -> str:
        # Empty = the default masks topic (as the Swift client sends it).
        return "" if self.reply_topic == self.topics.masks else self.reply_topic

    def submit(self, image: Optional[ImageInput] = None, *, image_id: Optional[str] = None,
               points: Sequence[Point] = (), boxes: Sequence[Box] = (), text: str = "", multimask: bool = False,
               model: str = "", request_id: Optional[str] = None, trace_id: Optional[str] = None,
               send_timeout: float = 30.0) -> Submission:
        """Sends an image (unless ``image`` is None: then ``image_id`` names one sent before)
        and one prompt request for it; returns at once with the ids to :meth:`wait` on.

        Args:
            image: PNG/JPEG/WebP bytes (or a path to such a file), or an HxWx3 uint8 array.
            image_id: the image's id (embeddings and prompts join on it); default a new UUID.
            points, boxes: SAM prompts in original-image pixels. N boxes = N prompts, each
                with all the points.
            text: a text prompt (CLIPSeg); goes through the text-encoder. Not combinable
                with points or boxes.
            multimask: three masks per prompt instead of one.
            model: model name ("" = the services' default).
            request_id: the prompt request's id; default a new UUID.
            trace_id: optional ``trace-id`` header on both records (echoed on the answer).
            send_timeout: bound on each record's delivery, in seconds.

        Raises:
            ValueError / TypeError: no prompt, or an unusable image argument.
            SegflowKafkaError: a record was not delivered (names the request id).
        """
        if text and (points or boxes):
            raise ValueError("a text prompt cannot be combined with points or boxes in one request")
        if not text and not points and not boxes:
            raise ValueError("no prompt: give points, boxes or text")
        if image is None and image_id is None:
            raise ValueError("give an image, or the image_id of an image submitted before")
        image_id = image_id or f"py-{uuid.uuid4()}"
        prompt_id = request_id or f"py-prm-{uuid.uuid4()}"
        now = _now_ms()
        image_request_id: Optional[str] = None
        if image is not None:
            image_request_id = f"py-img-{uuid.uuid4()}"
            req = pb.ImageRequest(request_id=image_request_id, image_id=image_id, model=model,
                                  reply_topic=self._reply_field(), created_at_ms=now)
            _set_image(req, image)
            self._send(self.topics.images, image_id, "ImageRequest", req.SerializeToString(), image_request_id, send_timeout,
                       trace_id)
        prompt = pb.PromptRequest(request_id=prompt_id, image_id=image_id, multimask=multimask, text=text,
                                  output_format=pb.OUTPUT_FORMAT_RLE, reply_topic=self._reply_field(), model=model,
                                  created_at_ms=now,
                                  points=[pb.Point(x=p.x, y=p.y, label=p.label) for p in points],
                                  boxes=[pb.Box(x0=b.x0, y0=b.y0, x1=b.x1, y1=b.y1) for b in boxes])
        self._send(self.topics.text if text else self.topics.prompts, image_id, "PromptRequest",
                   prompt.SerializeToString(), prompt_id, send_timeout, trace_id)
        return Submission(image_id=image_id, prompt_request_id=prompt_id, image_request_id=image_request_id)

    # -- receiving ---------------------------------------------------------------------

    def wait(self, submission: Submission, timeout: float = 120.0) -> SegmentationResult:
        """Waits at most ``timeout`` seconds for the answer to ``submission``.

        Raises:
            SegflowRequestError: the service answered the prompt (or its image) with an error.
            SegflowTimeoutError: no answer within ``timeout``.
            SegflowReplyError: an answer to this request could not be read.
        """
        fail_fast = {submission.image_request_id} if submission.image_request_id else set()
        got = self.wait_for([submission.prompt_request_id], timeout=timeout, fail_fast=fail_fast)
        if submission.image_request_id in got:
            err = got[submission.image_request_id].error
            raise SegflowRequestError(submission.image_request_id, err.code, err.message, what="image request")
        r = got[submission.prompt_request_id]
        if r.HasField("error"):
            raise SegflowRequestError(r.request_id, r.error.code, r.error.message)
        return result_from_wire(r)

    def wait_for(self, request_ids: Iterable[str], timeout: float, fail_fast: AbstractSet[str] = frozenset()) -> Dict[str, "pb.MaskResult"]:
        """Low level: the raw ``MaskResult`` of every id in ``request_ids`` (error answers
        included), waiting at most ``timeout`` seconds. An error answer to a ``fail_fast``
        id ends the wait early and is returned with whatever arrived. Answers to other
        requests of this client that arrive meanwhile are kept for their own wait."""
        wanted = set(request_ids)
        deadline = time.monotonic() + timeout

        def done() -> bool:
            if any(i in self._results and self._results[i].HasField("error") for i in fail_fast):
                return True
            return wanted.issubset(self._results)

        while not done():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SegflowTimeoutError(wanted - set(self._results), timeout)
            msg = self._consumer.poll(min(remaining, 0.2))
            if msg is None:
                continue
            err = msg.error()
            if err is not None:
                if err.fatal():
                    raise SegflowKafkaError(f"reading {self.reply_topic} failed", kafka_error=err)
                continue   # transient (e.g. a broker reconnect); librdkafka retries
            self._take(msg, wanted | set(fail_fast))
        picked = {i: self._results.pop(i) for i in wanted | set(fail_fast) if i in self._results}
        return picked

    def _take(self, msg: object, waiting: Set[str]) -> None:
        value = msg.value() or b""   # type: ignore[attr-defined]
        header_id = next((v.decode("utf-8", "replace") for k, v in (msg.headers() or [])  # type: ignore[attr-defined]
                          if k == REQUEST_ID_HEADER and v is not None), None)
        result = pb.MaskResult()
        try:
            result.ParseFromString(value)
        except Exception as e:   # google.protobuf.message.DecodeError and friends
            # Never drop a reply silently: one for a request we wait on fails the wait;
            # anything else on the topic (other clients' markers) is not ours.
            if header_id in waiting:
                raise SegflowReplyError(header_id, f"not a MaskResult ({e})") from e
            return
        rid = result.request_id
        if not rid or (header_id is not None and header_id != rid):
            if header_id in waiting:
                raise SegflowReplyError(header_id, f"the record's request id is {rid!r}")
            return
        if rid in self._results:
            self._duplicates += 1
            return
        self._results[rid] = result

    # -- one call ------------------------------------------------------------------------

    def segment(self, image: ImageInput, *, points: Sequence[Point] = (), boxes: Sequence[Box] = (), text: str = "",
                multimask: bool = False, model: str = "", image_id: Optional[str] = None,
                timeout: float = 120.0) -> SegmentationResult:
        """Sends ``image`` and one prompt request, and returns its answer (at most
        ``timeout`` seconds). See :meth:`submit` for the arguments, :meth:`wait` for errors."""
        return self.wait(self.submit(image, image_id=image_id, points=points, boxes=boxes, text=text,
                                     multimask=multimask, model=model), timeout=timeout)
