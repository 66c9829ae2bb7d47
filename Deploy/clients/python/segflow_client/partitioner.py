"""The key → partition rule every Segflow producer follows.

Embeddings (written by the image-encoder) and prompts (written by clients) are both
keyed by image id, and the prompt-decoder joins them inside one process only because
the same key lands on the same partition number of both topics. The services produce
with librdkafka's ``murmur2_random`` partitioner — the Java client's default:
``(murmur2(key) & 0x7fffffff) % partitions`` — so every client must too. librdkafka's
own default (``consistent_random``, CRC32) would send a prompt to a partition whose
decoder never sees the image's embedding: the prompt waits and is answered
``EMBEDDING_NOT_FOUND``. :class:`segflow_client.SegflowClient` configures
``partitioner: murmur2_random``; this module is the same rule in Python, for tests and
for callers that want to know where a key goes.
"""

from __future__ import annotations

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """MurmurHash2 as Kafka's Java ``Utils.murmur2`` (and librdkafka's ``rd_murmur2``):
    seed 0x9747b28c, little-endian 4-byte blocks. Returns the signed 32-bit value Java
    returns."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    blocks = length // 4
    for i in range(blocks):
        j = 4 * i
        k = data[j] | (data[j + 1] << 8) | (data[j + 2] << 16) | (data[j + 3] << 24)
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = (h * _M) & _MASK
        h ^= k
    tail = 4 * blocks
    rest = length - tail
    if rest == 3:
        h ^= data[tail + 2] << 16
    if rest >= 2:
        h ^= data[tail + 1] << 8
    if rest >= 1:
        h ^= data[tail]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def partition_for(key: bytes | str, partitions: int) -> int:
    """The partition ``murmur2_random`` picks for a non-empty ``key`` among
    ``partitions`` partitions (a str key is its UTF-8 bytes, as the services send it)."""
    if partitions <= 0:
        raise ValueError(f"partitions must be positive, got {partitions}")
    raw = key.encode("utf-8") if isinstance(key, str) else bytes(key)
    return (murmur2(raw) & 0x7FFFFFFF) % partitions
