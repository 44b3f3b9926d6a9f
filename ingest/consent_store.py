"""Read and write a user's full consent record on the compacted consent topic."""

from __future__ import annotations

import time
from typing import Any

from ingest.errors import TransportError
from ingest.topics import TopicSet
from ingest.transport import ConsumerOptions, TopicPartition, Transport
from schemas.codec import Codec
from schemas.registry import default_registry


def read_partition(
    transport: Transport, topic: str, partition: int, timeout_s: float = 30.0
) -> dict[bytes, bytes | None]:
    """Latest committed value per key of one partition, read to its end offset."""
    return read_to_end(transport, topic, timeout_s, only=partition)


def read_to_end(
    transport: Transport, topic: str, timeout_s: float = 30.0, only: int | None = None
) -> dict[bytes, bytes | None]:
    """Latest value per key of a topic (or one partition), read to its end offsets."""
    consumer = transport.consumer(
        ConsumerOptions(group_id=None, read_committed=True, max_poll_records=10_000)
    )
    try:
        numbers = consumer.partitions_for(topic) if only is None else [only]
        partitions = [TopicPartition(topic, p) for p in numbers]
        consumer.assign(partitions)
        ends = consumer.end_offsets(partitions)
        for tp in partitions:
            consumer.seek(tp, 0)
        latest: dict[bytes, bytes | None] = {}
        deadline = time.monotonic() + timeout_s
        remaining = {tp for tp, end in ends.items() if end > 0}
        while remaining:
            if time.monotonic() > deadline:
                raise TransportError(f"timed out reading {topic} to its end")
            for msg in consumer.poll(5000, 0.5):
                if msg.key is not None:
                    latest[msg.key] = msg.value
            remaining = {tp for tp in remaining if consumer.position(tp) < ends[tp]}
        return latest
    finally:
        consumer.close()


def read_consent(
    transport: Transport, topics: TopicSet, user_id: str, codec: Codec | None = None
) -> tuple[bool, dict[str, Any] | None]:
    """(found, record) for one user; a tombstone is (True, None)."""
    latest = read_to_end(transport, topics.name("consent"))
    key = user_id.encode()
    if key not in latest:
        return False, None
    value = latest[key]
    if value is None:
        return True, None
    codec = codec or Codec(default_registry())
    return True, codec.decode_as(value, "consent_record")
