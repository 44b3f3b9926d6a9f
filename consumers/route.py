"""Routing: turn the stages' results into output records with their topics and headers.

Analyst outputs carry nothing per record but their content and a fresh random
`anon_id`: no key, headers that are the same for every record of a schema, and
as Kafka timestamp the start of the released time bucket (SPEC section 7).
"""

from __future__ import annotations

import hashlib
import itertools
import struct
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from consumers.checkpoint import ChunkWrite
from consumers.kanon import Released
from consumers.ladders import HOUR_MS
from consumers.pipeline import Rejected
from consumers.randomness import random_bytes
from ingest.kafka.base import Headers
from ingest.kafka.topics import TopicSet
from schemas.codec import Codec

EVENT_TYPE = "event-type"
FINGERPRINT = "schema-fingerprint"
DLQ_STAGE = "dlq-stage"
DLQ_ERROR = "dlq-error-class"
DLQ_REASON = "dlq-reason"
SOURCE_TOPIC = "source-topic"
SOURCE_PARTITION = "source-partition"
SOURCE_OFFSET = "source-offset"

# The dead letter's byte budget (SPEC 9): whatever a rejected record holds, its dead
# letter stays far below the producer's 1 MiB request limit, so sending it cannot fail
# and the worker can never abort, rewind and meet the same record again forever.
DEAD_LETTER_PAYLOAD_CAP = 256 * 1024
"""A rejected value of at most this many bytes is kept (and can be replayed); a larger
one leaves only its size and SHA-256 digest (`payload_truncated`)."""
DEAD_LETTER_KEY_CAP = 4 * 1024
"""A key (a user id: at most 512 characters) of at most this many bytes is kept, and keys
the dead letter; a larger one leaves its size and digest, and the digest keys the letter."""
DEAD_LETTER_HEADERS_CAP = 16 * 1024
"""Headers are kept when their names and values, plus 8 bytes per header, fit this."""
DEAD_LETTER_TEXT_CAP = 256
"""Stage, error class and reason are cut to this many UTF-8 bytes (they never hold values)."""
DEAD_LETTER_MAX_BYTES = 320 * 1024
"""Upper bound of a dead letter's key + value + headers: the caps above plus metadata."""
_HEADER_OVERHEAD = 8
_NULL_LENGTH = b"\xff\xff\xff\xff"


@dataclass(frozen=True, slots=True)
class OutRecord:
    """One record to produce inside the current transaction."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers
    partition: int | None = None
    timestamp_ms: int | None = None


def _capped_text(text: str) -> str:
    """`text` cut to DEAD_LETTER_TEXT_CAP UTF-8 bytes, never inside a character."""
    data = text.encode()
    if len(data) <= DEAD_LETTER_TEXT_CAP:
        return text
    return data[:DEAD_LETTER_TEXT_CAP].decode(errors="ignore")


def _headers_digest(headers: Headers) -> bytes:
    """SHA-256 of headers as the dead-letter schema documents it (length-prefixed, in order)."""
    digest = hashlib.sha256()
    for name, value in headers:
        encoded = name.encode()
        digest.update(struct.pack(">I", len(encoded)) + encoded)
        digest.update(_NULL_LENGTH if value is None else struct.pack(">I", len(value)) + value)
    return digest.digest()


_ANON_ID_A = "00000000-0000-4000-8000-000000000000"
_ANON_ID_B = "11111111-1111-4111-9111-111111111111"
"""Two anon_ids that differ in their first and last characters: where the encodings of a
content with each differ is where every record of that content has its own anon_id."""
MAX_FRAMES = 8_192
"""Contents whose encoding around the anon_id is remembered (a release's groups, at most)."""


def new_anon_id() -> str:
    """A fresh random (version 4) UUID string: drawn at release, never derived from input."""
    raw = bytearray(random_bytes(16))
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
            topics.name("kanon_repartition"): "kanon_repartition",
        }
        self._spread: dict[str, Iterator[int]] = {}
        self._frames: dict[int, tuple[Mapping[str, Any], bytes, bytes]] = {}
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
        anon_id = new_anon_id()
        frame = self._frame(schema, released.record)
        if frame is None:
            record = {**released.record, "anon_id": anon_id}
            value = self._codec.encode(self._outputs[schema], record)
        else:
            value = frame[0] + anon_id.encode() + frame[1]
        topic = self.topic_of[schema]
        spread = self._spread.get(topic)
        partition = None if spread is None else next(spread)
        stamp = min(released.timestamp_ms, now_ms - now_ms % HOUR_MS)
        return OutRecord(
            topic, None, value, self._fixed[schema], partition=partition, timestamp_ms=stamp
        )

    def _frame(self, schema: str, content: Mapping[str, Any]) -> tuple[bytes, bytes] | None:
        """The encoding of a released content before and after its anon_id's characters.

        Every record of a group shares one content (the same dict) and differs only in
        its anon_id, so the content is encoded once per group, not once per record: with
        two anon_ids of the same length, the bytes where the encodings differ are the
        anon_id's. None (encode each record whole) if they do not differ in exactly one
        anon_id's length of bytes, as the Avro encoding of a string always does.
        """
        got = self._frames.get(id(content))
        if got is not None and got[0] is content:
            return got[1], got[2]
        output = self._outputs[schema]
        a = self._codec.encode(output, {**content, "anon_id": _ANON_ID_A})
        b = self._codec.encode(output, {**content, "anon_id": _ANON_ID_B})
        if len(a) != len(b):
            return None
        differ = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
        start, end = (differ[0], differ[-1] + 1) if differ else (0, 0)
        if end - start != len(_ANON_ID_A):
            return None
        if len(self._frames) >= MAX_FRAMES:
            self._frames.clear()
        self._frames[id(content)] = (content, a[:start], a[end:])
        return a[:start], a[end:]

    def dead_letter(self, rejected: Rejected, now_ms: int, *, strip: bool = False) -> OutRecord:
        """The rejected record in an envelope within DEAD_LETTER_MAX_BYTES, with position headers.

        Key, headers and payload are kept as they were when they fit their caps, so the
        record can be replayed; otherwise only their size and SHA-256 digest remain. The
        letter is keyed by the raw key (the user id), or by its digest when the key was cut,
        and carries the raw record's timestamp: it expires with the raw record. `strip`
        keeps only sizes and digests of payload and headers (a record set aside because
        even its dead letter failed).
        """
        msg = rejected.msg
        stage = _capped_text(rejected.stage)
        error_class = _capped_text(rejected.error_class)
        reason = _capped_text(rejected.reason)
        key = msg.key
        key_cut = key is not None and len(key) > DEAD_LETTER_KEY_CAP
        key_sha256 = hashlib.sha256(key).digest() if key is not None and key_cut else None
        payload = msg.value
        payload_cut = payload is not None and (strip or len(payload) > DEAD_LETTER_PAYLOAD_CAP)
        raw_headers = msg.headers or []
        headers_size = sum(
            len(name.encode()) + len(value or b"") + _HEADER_OVERHEAD for name, value in raw_headers
        )
        headers_cut = headers_size > DEAD_LETTER_HEADERS_CAP or (strip and bool(raw_headers))
        kept_headers = [] if headers_cut else [{"name": n, "value": v} for n, v in raw_headers]
        envelope = {
            "stage": stage,
            "error_class": error_class,
            "reason": reason,
            "source_topic": msg.topic,
            "source_partition": msg.partition,
            "source_offset": msg.offset,
            "source_timestamp": msg.timestamp_ms if msg.timestamp_ms >= 0 else None,
            "failed_at": now_ms,
            "key": None if key_cut else key,
            "payload": None if payload_cut else payload,
            "key_size": None if key is None else len(key),
            "key_truncated": key_cut,
            "key_sha256": key_sha256,
            "headers": kept_headers,
            "headers_size": headers_size,
            "headers_truncated": headers_cut,
            "headers_sha256": _headers_digest(raw_headers) if headers_cut else None,
            "payload_size": None if payload is None else len(payload),
            "payload_truncated": payload_cut,
            "payload_sha256": None if payload is None else hashlib.sha256(payload).digest(),
        }
        headers = [
            (EVENT_TYPE, b"dead_letter"),
            (DLQ_STAGE, stage.encode()),
            (DLQ_ERROR, error_class.encode()),
            (DLQ_REASON, reason.encode()),
            (SOURCE_TOPIC, msg.topic.encode()),
            (SOURCE_PARTITION, str(msg.partition).encode()),
            (SOURCE_OFFSET, str(msg.offset).encode()),
        ]
        value = self._codec.encode("dead_letter", envelope)
        stamp = msg.timestamp_ms if msg.timestamp_ms >= 0 else None
        letter_key = key_sha256 if key_cut else key
        return OutRecord(
            self._topics.name("dead_letter"), letter_key, value, headers, timestamp_ms=stamp
        )

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
        return OutRecord(
            self._topics.name("kanon_pending"),
            write.key.encode(),
            write.value,
            [],
            partition=write.partition,
        )
