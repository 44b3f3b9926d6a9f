"""Keeps the in-memory consent table at the consent topic's end (read-your-consent).

Worker-side I/O: one consumer, assigned every partition of the compacted
consent topic, read from the beginning before the worker reports ready, then
caught up to the topic's end offsets before each batch is processed, so a
consent change Kafka acknowledged before a batch was fetched applies to it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from consumers.consent_table import ConsentRecordError, ConsentTable
from ingest.errors import TransportError
from ingest.kafka import Consumer, ConsumerOptions, TopicPartition, Transport
from ingest.kafka.base import Message
from schemas.codec import Codec
from schemas.errors import DecodeError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Cancellation:
    """An account cancellation seen on the consent topic."""

    user_id: str
    cancelled_at: int
    partition: int


class ConsentFeed:
    """Reads consent records into a ConsentTable and reports cancellations."""

    def __init__(self, transport: Transport, topic: str, codec: Codec) -> None:
        self.table = ConsentTable()
        self._transport = transport
        self._topic = topic
        self._codec = codec
        self._consumer: Consumer | None = None
        self._partitions: list[TopicPartition] = []
        self._cancellations: list[Cancellation] = []
        self.applied = 0
        self.unreadable = 0
        self.lag = 0

    def _open(self) -> Consumer:
        if self._consumer is None:
            consumer = self._transport.consumer(
                ConsumerOptions(group_id=None, read_committed=True, max_poll_records=10_000)
            )
            self._partitions = [
                TopicPartition(self._topic, p) for p in consumer.partitions_for(self._topic)
            ]
            consumer.assign(self._partitions)
            for tp in self._partitions:
                consumer.seek(tp, 0)
            self._consumer = consumer
        return self._consumer

    def catch_up(self, timeout_s: float = 30.0) -> int:
        """Read until every partition reaches the end offsets taken now; returns records read."""
        consumer = self._open()
        ends = consumer.end_offsets(self._partitions)
        behind = {tp for tp, end in ends.items() if consumer.position(tp) < end}
        read = 0
        deadline = time.monotonic() + timeout_s
        while behind:
            if time.monotonic() > deadline:
                self.lag = sum(max(0, ends[tp] - consumer.position(tp)) for tp in behind)
                raise TransportError(f"consent topic {self._topic} not caught up in time")
            for msg in consumer.poll(10_000, 0.2):
                self._apply(msg)
                read += 1
            behind = {tp for tp in behind if consumer.position(tp) < ends[tp]}
        self.lag = 0
        return read

    def _apply(self, msg: Message) -> None:
        where = f"{msg.topic}[{msg.partition}]@{msg.offset}"
        if msg.key is None:
            self.unreadable += 1
            log.warning("consent record without key ignored", extra={"at": where})
            return
        user_id = msg.key.decode("utf-8", errors="replace")
        record = None
        if msg.value is not None:
            try:
                record = self._codec.decode_as(msg.value, "consent_record")
            except DecodeError as exc:
                self.unreadable += 1
                self.table.forget(user_id)
                log.error(
                    "unreadable consent record: user treated as unknown",
                    extra={"at": where, "error": type(exc).__name__},
                )
                return
        try:
            changed = self.table.apply(user_id, record)
        except ConsentRecordError as exc:
            self.unreadable += 1
            self.table.forget(user_id)
            log.error("inconsistent consent record", extra={"at": where, "error": str(exc)})
            return
        self.applied += 1
        if changed and (record is None or record.get("account_status") == "CANCELLED"):
            cancelled_at = msg.timestamp_ms
            if record is not None and record.get("cancelled_at") is not None:
                cancelled_at = int(record["cancelled_at"])
            self._cancellations.append(Cancellation(user_id, cancelled_at, msg.partition))

    def drain_cancellations(self) -> list[Cancellation]:
        """Cancellations seen since the last call."""
        out, self._cancellations = self._cancellations, []
        return out

    def close(self) -> None:
        """Release the consumer."""
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
