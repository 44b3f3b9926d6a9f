"""Read and write a user's full consent record on the compacted consent topic."""

from __future__ import annotations

from typing import Any

from ingest.kafka import Transport
from ingest.kafka.topic_reader import read_messages
from ingest.kafka.topics import TopicSet
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
    return {
        msg.key: msg.value
        for msg in read_messages(transport, topic, timeout_s, only)
        if msg.key is not None
    }


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
