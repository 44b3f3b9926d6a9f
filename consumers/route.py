"""Routing: turn the stages' results into output records with their topics and headers.

Analyst outputs carry nothing per record but their content and a fresh random
`anon_id`: no key, headers that are the same for every record of a schema, and
as Kafka timestamp the start of the released time bucket (SPEC section 7).
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from consumers.checkpoint import ChunkWrite, encode_chunk
from consumers.kanon import Released
from consumers.ladders import HOUR_MS
from consumers.pipeline import Rejected
from ingest.topics import TopicSet
from ingest.transport.base import Headers
from schemas.codec import Codec

EVENT_TYPE = "event-type"
FINGERPRINT = "schema-fingerprint"
DLQ_STAGE = "dlq-stage"
DLQ_ERROR = "dlq-error-class"
DLQ_REASON = "dlq-reason"
SOURCE_TOPIC = "source-topic"
SOURCE_PARTITION = "source-partition"
SOURCE_OFFSET = "source-offset"


@dataclass(frozen=True, slots=True)
class OutRecord:
    """One record to produce inside the current transaction."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers
    partition: int | None = None
    timestamp_ms: int | None = None


def new_anon_id() -> str:
    """A fresh random (version 4) UUID string: drawn at release, never derived from input."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40
    raw[8] = raw[8] & 0x3F | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class Router:
    """Knows the output topics and how to encode and label each kind of output."""

    def __init__(self, codec: Codec, topics: TopicSet, outputs: Mapping[str, str]) -> None:
        """`outputs` maps each input schema to the analyst schema it is released as."""
        self._codec = codec
        self._topics = topics
        self._outputs = dict(outputs)
        self.topic_of = {
            "device_event": topics.name("anon_device"),
            "log_event": topics.name("anon_log"),
        }
        self.role_of_topic = {
            topics.name("anon_device"): "anon_device",
            topics.name("anon_log"): "anon_log",
            topics.name("dead_letter"): "dead_letter",
            topics.name("erasure"): "erasure",
            topics.name("kanon_pending"): "kanon_pending",
        }
        self._spread: dict[str, Iterator[int]] = {}
        self._fixed = {
            schema: [
                (EVENT_TYPE, out.encode()),
                (FINGERPRINT, codec.fingerprint(out).hex().encode()),
            ]
            for schema, out in self._outputs.items()
        }

    def spread_over(self, partitions: Mapping[str, int]) -> None:
        """Send released records round-robin over these analyst topics' partition counts.

        Released records have no key. Choosing their partition here spares the
        client's partitioner (kafka-python: 6-13 µs per record, measured); topics
        not given keep the client's own choice.
        """
        self._spread = {
            topic: itertools.cycle(range(count))
            for topic, count in partitions.items()
            if count > 0 and topic in self.topic_of.values()
        }

    def targets(self) -> list[str]:
        """Every topic this worker writes (checked for the mainland marker)."""
        return list(self.role_of_topic)

    def anonymized(self, released: Released, now_ms: int) -> OutRecord:
        """A released record to its analyst topic: no key, the same headers for every record.

        The Kafka timestamp is the start of the record's released time bucket; an event
        dated in the future is stamped with the current hour instead, which a broker
        accepts, and which is the same for every record of the group released with it.
        """
        schema = released.entry.schema
        record = {**released.record, "anon_id": new_anon_id()}
        value = self._codec.encode(self._outputs[schema], record)
        topic = self.topic_of[schema]
        spread = self._spread.get(topic)
        partition = None if spread is None else next(spread)
        stamp = min(released.timestamp_ms, now_ms - now_ms % HOUR_MS)
        return OutRecord(
            topic, None, value, self._fixed[schema], partition=partition, timestamp_ms=stamp
        )

    def dead_letter(self, rejected: Rejected, now_ms: int) -> OutRecord:
        """The raw bytes in an envelope, with stage, error class and source position headers."""
        msg = rejected.msg
        envelope = {
            "stage": rejected.stage,
            "error_class": rejected.error_class,
            "reason": rejected.reason,
            "source_topic": msg.topic,
            "source_partition": msg.partition,
            "source_offset": msg.offset,
            "source_timestamp": msg.timestamp_ms if msg.timestamp_ms >= 0 else None,
            "failed_at": now_ms,
            "key": msg.key,
            "payload": msg.value,
        }
        headers = [
            (EVENT_TYPE, b"dead_letter"),
            (DLQ_STAGE, rejected.stage.encode()),
            (DLQ_ERROR, rejected.error_class.encode()),
            (DLQ_REASON, rejected.reason.encode()),
            (SOURCE_TOPIC, msg.topic.encode()),
            (SOURCE_PARTITION, str(msg.partition).encode()),
            (SOURCE_OFFSET, str(msg.offset).encode()),
        ]
        value = self._codec.encode("dead_letter", envelope)
        return OutRecord(self._topics.name("dead_letter"), msg.key, value, headers)

    def erasure(self, user_id: str, cancelled_at: int, now_ms: int) -> OutRecord:
        """One erasure request for a cancelled account, keyed by its user id."""
        record = {
            "request_id": str(uuid.uuid4()),
            "user_id": user_id,
            "cancelled_at": cancelled_at,
            "requested_at": now_ms,
        }
        value = self._codec.encode("erasure_request", record)
        headers = [(EVENT_TYPE, b"erasure_request")]
        return OutRecord(self._topics.name("erasure"), user_id.encode(), value, headers)

    def checkpoint_chunk(self, write: ChunkWrite) -> OutRecord:
        """A chunk of held records (or its tombstone) to the checkpoint partition of its source."""
        value = None if write.entries is None else encode_chunk(write.entries)
        return OutRecord(
            self._topics.name("kanon_pending"),
            write.key.encode(),
            value,
            [],
            partition=write.partition,
        )
