"""The pure chain of stages for one batch: decode → validate → tag → gate → anonymize.

No Kafka, no clocks, no metrics: the worker hands in raw messages, the
consent table and the time, and gets back anonymized records for the
k-anonymity window, rejects for the dead-letter topic, and counts.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from consumers.anonymize import TOO_LONG, AnonymizationError, Anonymizer
from consumers.consent import ConsentRules, gate
from consumers.consent_table import ConsentTable
from consumers.kanon import PendingEntry
from consumers.tagging import count_levels
from ingest.kafka.base import Message
from schemas.codec import Codec
from schemas.errors import DecodeError

MAX_FUTURE_SKEW_MS = 24 * 3600 * 1000
MAX_RAW_RECORD_BYTES = 512 * 1024
"""A raw record larger than this is dead-lettered undecoded (settings.max_raw_record_bytes)."""


@dataclass(slots=True)
class Item:
    """One decoded raw record moving through the stages."""

    event: dict[str, Any]
    schema: str
    msg: Message


@dataclass(frozen=True, slots=True)
class Rejected:
    """A raw record the pipeline cannot process: it goes to the dead-letter topic."""

    msg: Message
    stage: str
    error_class: str
    reason: str


@dataclass(slots=True)
class StageCounts:
    """What the stages count: the one list of these counters, for a batch or a transaction."""

    consumed: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)
    removed_fields: Counter[str] = field(default_factory=Counter)
    tags: Counter[str] = field(default_factory=Counter)
    pii_found: Counter[str] = field(default_factory=Counter)
    minors: Counter[str] = field(default_factory=Counter)
    text_withheld: Counter[str] = field(default_factory=Counter)

    def add_counts(self, other: StageCounts) -> None:
        """Add every stage counter of `other` to this one's."""
        for counter in fields(StageCounts):
            getattr(self, counter.name).update(getattr(other, counter.name))


@dataclass(slots=True)
class BatchOutcome(StageCounts):
    """Everything one batch produced, for the worker to route, hold and count."""

    anonymized: list[PendingEntry] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)


class Pipeline:
    """Chains the stages; holds only what is fixed at start (codec, rules, policy, key)."""

    def __init__(
        self,
        codec: Codec,
        rules: ConsentRules,
        anonymizer: Anonymizer,
        person_key: bytes,
        schema_of_topic: Mapping[str, str],
        max_raw_bytes: int = MAX_RAW_RECORD_BYTES,
    ) -> None:
        self._codec = codec
        self._rules = rules
        self._anonymizer = anonymizer
        # BLAKE2b takes keys of up to 64 bytes; a longer secret is condensed first.
        self._person_key = (
            person_key if len(person_key) <= 64 else hashlib.blake2b(person_key).digest()
        )
        self._schema_of_topic = dict(schema_of_topic)
        self._max_raw_bytes = max_raw_bytes

    def schema_of(self, topic: str) -> str | None:
        """The input schema of a raw topic (None for a topic the pipeline does not read)."""
        return self._schema_of_topic.get(topic)

    def person(self, user_id: str) -> str:
        """Opaque keyed token for a user: distinct persons stay distinct, ids never appear."""
        return hashlib.blake2b(user_id.encode(), key=self._person_key, digest_size=16).hexdigest()

    def process(
        self, messages: Sequence[Message], table: ConsentTable, now_ms: int
    ) -> BatchOutcome:
        """Run one batch through every stage."""
        out = BatchOutcome()
        items = self._decode_and_validate(messages, now_ms, out)
        tags = out.tags
        for item in items:
            for level, n in count_levels(item.schema, item.event):
                tags[level] += n
        gated = gate(items, table, now_ms, self._rules)
        out.dropped.update(gated.dropped_by_reason)
        out.removed_fields.update(gated.removed_fields)
        minors_passed = sum(1 for _item, decision in gated.kept if decision.minor)
        if minors_passed:
            out.minors["passed"] += minors_passed
        if gated.minors > minors_passed:
            out.minors["dropped"] += gated.minors - minors_passed
        for item, _decision in gated.kept:
            try:
                result = self._anonymizer.anonymize(item.schema, item.event)
            except AnonymizationError as exc:
                out.rejected.append(Rejected(item.msg, "anonymize", type(exc).__name__, exc.reason))
                continue
            out.pii_found.update(result.pii_found)
            if result.issues:
                for name, issue in result.issues.items():
                    if issue == TOO_LONG:
                        out.text_withheld[name] += 1
            msg = item.msg
            out.anonymized.append(
                PendingEntry(
                    pending_id=f"{msg.topic}:{msg.partition}:{msg.offset}",
                    schema=item.schema,
                    person=self.person(item.event["user_id"]),
                    record=result.record,
                    source=(msg.topic, msg.partition),
                    raw_timestamp_ms=msg.timestamp_ms,
                    added_ms=now_ms,
                    size=len(msg.value or b""),
                )
            )
        return out

    def _decode_and_validate(
        self, messages: Sequence[Message], now_ms: int, out: BatchOutcome
    ) -> list[Item]:
        items: list[Item] = []
        decode_as = self._codec.decode_as
        for msg in messages:
            schema = self._schema_of_topic.get(msg.topic)
            if schema is None:
                out.rejected.append(Rejected(msg, "route", "UnknownTopic", "unknown_topic"))
                continue
            out.consumed[schema] += 1
            if msg.value is None:
                out.rejected.append(Rejected(msg, "decode", "EmptyValue", "empty_value"))
                continue
            if len(msg.value) > self._max_raw_bytes:
                out.rejected.append(Rejected(msg, "decode", "OversizedRecord", "oversized_record"))
                continue
            try:
                event = decode_as(msg.value, schema)
            except DecodeError as exc:
                out.rejected.append(Rejected(msg, "decode", type(exc).__name__, "undecodable"))
                continue
            problem = invalid_reason(event, msg, now_ms)
            if problem:
                out.rejected.append(Rejected(msg, "validate", "InvalidRecord", problem))
                continue
            items.append(Item(event, schema, msg))
        return items


def invalid_reason(event: Mapping[str, Any], msg: Message, now_ms: int) -> str | None:
    """Why a decoded event cannot be judged (a reason code), or None."""
    user_id = event.get("user_id")
    if not user_id:
        return "missing_user_id"
    if msg.key is None or msg.key != user_id.encode():
        return "key_mismatch"
    event_time = event.get("event_time")
    if not isinstance(event_time, int) or event_time <= 0:
        return "bad_event_time"
    if event_time > now_ms + MAX_FUTURE_SKEW_MS:
        return "event_time_in_future"
    return None
