"""Routing: turn the stages' results into output records with their topics and headers."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from consumers.checkpoint import ChunkWrite, encode_chunk
from consumers.kanon import PendingEntry
from consumers.pipeline import Rejected
from ingest.topics import TopicSet
from ingest.transport.base import Headers
from schemas.codec import Codec

EVENT_TYPE = "event-type"
FINGERPRINT = "schema-fingerprint"
PROVENANCE = "consent-provenance"
DLQ_STAGE = "dlq-stage"
DLQ_ERROR = "dlq-error-class"
DLQ_REASON = "dlq-reason"
SOURCE_TOPIC = "source-topic"
SOURCE_PARTITION = "source-partition"
SOURCE_OFFSET = "source-offset"

OUTPUT_SCHEMA = {
    "device_event": "anonymized_device_event",
    "log_event": "anonymized_log_event",
}


@dataclass(frozen=True, slots=True)
class OutRecord:
    """One record to produce inside the current transaction."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers
    partition: int | None = None


class Router:
    """Knows the output topics and how to encode and label each kind of output."""

    def __init__(self, codec: Codec, topics: TopicSet) -> None:
        self._codec = codec
        self._topics = topics
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
            for schema, out in OUTPUT_SCHEMA.items()
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

    def anonymized(self, entry: PendingEntry) -> OutRecord:
        """A released record to its analyst topic, with consent provenance (no key: no id).

        The anonymization policy version is a field of the record itself, not a header:
        each header costs the pure-Python client measurable time per record.
        """
        out_schema = OUTPUT_SCHEMA[entry.schema]
        provenance = entry.meta[0] if isinstance(entry.meta, (tuple, list)) else ""
        headers = [*self._fixed[entry.schema], (PROVENANCE, str(provenance).encode())]
        value = self._codec.encode(out_schema, entry.record)
        topic = self.topic_of[entry.schema]
        spread = self._spread.get(topic)
        partition = None if spread is None else next(spread)
        return OutRecord(topic, None, value, headers, partition=partition)

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
