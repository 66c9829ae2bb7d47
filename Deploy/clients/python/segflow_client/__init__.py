"""Segflow's Python client: promptable segmentation over Kafka.

>>> from segflow_client import SegflowClient, Box
>>> with SegflowClient("127.0.0.1:9092") as client:
...     result = client.segment(open("cat.jpg", "rb").read(), boxes=[Box(60, 10, 330, 290)])
...     mask = result.best().to_array()   # (height, width) uint8, decoded by pycocotools
"""

from .client import CONTENT_TYPE_HEADER, REQUEST_ID_HEADER, TRACE_ID_HEADER, SegflowClient, Submission, Topics, content_type
from .errors import (SegflowError, SegflowKafkaError, SegflowReplyError, SegflowRequestError, SegflowTimeoutError,
                     error_code_name)
from .partitioner import murmur2, partition_for
from .results import Box, Point, SegmentationMask, SegmentationResult

__version__ = "0.1.0"

__all__ = [
    "SegflowClient", "Submission", "Topics", "Point", "Box", "SegmentationMask", "SegmentationResult",
    "SegflowError", "SegflowRequestError", "SegflowTimeoutError", "SegflowReplyError", "SegflowKafkaError",
    "error_code_name", "murmur2", "partition_for", "content_type", "CONTENT_TYPE_HEADER", "REQUEST_ID_HEADER", "TRACE_ID_HEADER",
]
