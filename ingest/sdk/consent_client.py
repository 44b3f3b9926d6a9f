"""The SDK call for recording a user's consent change, beside the event `Publisher` (SPEC 5).

    with ConsentClient.connect() as consent:
        receipt = consent.record("8841920331", WithdrawCategory("precise_location"),
                                 made_at_ms=changed_on_device_at, change_id=request_id)
        consent.wait([receipt])          # until the pipeline applies it (read-your-consent)

A change goes to the consent-changes topic keyed by the user id, with the time the
user made it and an idempotency key; the pipeline's consent writer folds it into the
user's full record on the compacted consent topic, by the time it was made, once per
key. `record` returns when Kafka has acknowledged the change; `wait` returns when the
folded record is on the consent topic, from which moment the pipeline applies it to
every batch it fetches. Services never write the consent topic themselves, so two of
them changing one user's consent at once cannot lose a change.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from pydantic import ValidationError

from consumers.consent_changes import ConsentChange, change_fields
from ingest.errors import PublishError, TransportError
from ingest.kafka import (
    Consumer,
    ConsumerOptions,
    Producer,
    ProducerOptions,
    TopicPartition,
    Transport,
    make_transport,
)
from ingest.kafka.config import KafkaSettings, load_settings
from ingest.kafka.topics import TopicSet, load_topic_set
from schemas.codec import Codec
from schemas.errors import DecodeError
from schemas.models import ConsentChange as ConsentChangeModel
from schemas.registry import default_registry

OPTIONS = ProducerOptions(linger_ms=0)
EVENT_TYPE_HEADER = "event-type"
FINGERPRINT_HEADER = "schema-fingerprint"


class ConsentWaitError(TransportError):
    """The consent writer did not apply a change in time (is the pipeline running?)."""


@dataclass(frozen=True, slots=True)
class ChangeReceipt:
    """A change Kafka acknowledged, and where the consent topic stood before it was sent."""

    user_id: str
    change_id: str
    consent_ends: Mapping[int, int]


class ConsentClient:
    """Publishes consent changes and waits until the consent writer has folded them."""

    def __init__(self, transport: Transport, topics: TopicSet, codec: Codec | None = None) -> None:
        self._transport = transport
        self._topics = topics
        self._codec = codec or Codec(default_registry())
        self._producer: Producer | None = None
        self._reader: Consumer | None = None
        self._headers = [
            (EVENT_TYPE_HEADER, b"consent_change"),
            (FINGERPRINT_HEADER, self._codec.fingerprint("consent_change").hex().encode()),
        ]

    @classmethod
    def connect(
        cls, settings: KafkaSettings | None = None, topics: TopicSet | None = None
    ) -> ConsentClient:
        """A client from environment settings (or the given ones)."""
        return cls(make_transport(settings or load_settings()), topics or load_topic_set())

    def record(
        self,
        user_id: str,
        change: ConsentChange,
        made_at_ms: int,
        change_id: str | None = None,
        timeout_s: float = 30.0,
    ) -> ChangeReceipt:
        """Publish one change the user made at `made_at_ms`; returns once Kafka took it.

        `change_id` is the idempotency key (a fresh one if not given): sending the same
        change again with the same key is harmless. Invalid changes raise.
        """
        fields = change_fields(change, made_at_ms, change_id or str(uuid.uuid4()))
        try:
            model = ConsentChangeModel.model_validate({**fields, "user_id": user_id})
        except ValidationError as exc:
            raise PublishError(f"invalid consent change: {_first_problem(exc)}") from None
        ends = self._consent_ends()
        if self._producer is None:
            self._producer = self._transport.producer(OPTIONS)
        value = self._codec.encode("consent_change", model.model_dump())
        delivery = self._producer.send(
            self._topics.name("consent_changes"),
            value,
            key=user_id.encode(),
            headers=self._headers,
        )
        delivery.result(timeout_s)
        return ChangeReceipt(user_id, model.change_id, ends)

    def wait(
        self, receipts: Iterable[ChangeReceipt], timeout_s: float = 30.0
    ) -> dict[str, dict[str, Any] | None]:
        """Block until every change is folded; the users' records (None: account deleted)."""
        pending: dict[str, set[str]] = {}
        start: dict[int, int] = {}
        for receipt in receipts:
            pending.setdefault(receipt.user_id, set()).add(receipt.change_id)
            for partition, offset in receipt.consent_ends.items():
                start[partition] = min(offset, start.get(partition, offset))
        if not pending:
            return {}
        reader = self._reader_from(start)
        found: dict[str, dict[str, Any] | None] = {}
        deadline = time.monotonic() + timeout_s
        while pending:
            if time.monotonic() > deadline:
                raise ConsentWaitError(
                    f"{sum(len(v) for v in pending.values())} consent change(s) not applied "
                    f"within {timeout_s:g} s: is the pipeline (its consent writer) running?"
                )
            for msg in reader.poll(1000, 0.3):
                user = (msg.key or b"").decode("utf-8", errors="replace")
                if user not in pending:
                    continue
                if msg.value is None:
                    found[user] = None
                    del pending[user]
                    continue
                try:
                    record = self._codec.decode_as(msg.value, "consent_record")
                except DecodeError:
                    continue
                known = {c["change_id"] for c in record.get("changes") or []}
                known.update(record.get("compacted_ids") or [])
                pending[user] -= known
                found[user] = record
                if not pending[user]:
                    del pending[user]
        return found

    def _consent_ends(self) -> dict[int, int]:
        consumer = self._reader_consumer()
        topic = self._topics.name("consent")
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for(topic)]
        return {tp.partition: end for tp, end in consumer.end_offsets(partitions).items()}

    def _reader_consumer(self) -> Consumer:
        if self._reader is None:
            self._reader = self._transport.consumer(
                ConsumerOptions(group_id=None, read_committed=True, max_poll_records=1000)
            )
        return self._reader

    def _reader_from(self, start: Mapping[int, int]) -> Consumer:
        consumer = self._reader_consumer()
        topic = self._topics.name("consent")
        partitions = [TopicPartition(topic, p) for p in sorted(start)]
        consumer.assign(partitions)
        for tp in partitions:
            consumer.seek(tp, start[tp.partition])
        return consumer

    def close(self, timeout_s: float = 30.0) -> None:
        """Release the producer and the reader."""
        if self._producer is not None:
            producer, self._producer = self._producer, None
            producer.close(timeout_s)
        if self._reader is not None:
            reader, self._reader = self._reader, None
            reader.close()

    def __enter__(self) -> ConsentClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _first_problem(exc: ValidationError) -> str:
    error = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(p) for p in error["loc"]) or "change"
    return f"{where}: {error['msg']}"
