"""The confluent-kafka producer: idempotent sends, delivery reports, transactions."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

import confluent_kafka as ck

from ingest.errors import DeliveryError
from ingest.kafka.base import Headers, ProducerOptions, TopicPartition
from ingest.kafka.config import KafkaSettings
from ingest.kafka.confluent_common import (
    POLL_EVERY,
    QUEUE_FULL_WAIT_S,
    build_client,
    common_config,
    map_confluent_error,
    to_confluent_tp,
)
from ingest.kafka.errors import UnreachableError

log = logging.getLogger(__name__)


class _Delivery:
    """Handle on one sent record, resolved by librdkafka's delivery report (inside poll/flush).

    Its bound `_resolve` is the record's report callback: one small Python call per
    record, the price of exact (partition, offset) results as kafka-python gives them.
    `result()` serves reports until this record's arrives; `done()` serves ready ones.
    """

    __slots__ = ("_error", "_offset", "_owner", "_partition", "_resolved")

    def __init__(self, owner: ConfluentProducer) -> None:
        self._owner = owner
        self._resolved = False
        self._error: str | None = None
        self._partition = -1
        self._offset = -1

    def _resolve(self, err: Any, msg: Any) -> None:
        self._resolved = True
        if err is None:
            self._partition, self._offset = msg.partition(), msg.offset()
        else:
            self._error = str(err.name())
            self._owner.record_failure(self._error)

    def result(self, timeout_s: float | None = None) -> tuple[int, int]:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        serve = self._owner.serve
        serve(0)
        while not self._resolved and (deadline is None or time.monotonic() < deadline):
            serve(0.05 if deadline is None else min(0.05, max(0.0, deadline - time.monotonic())))
        if self._error is not None:
            raise DeliveryError(f"record not delivered: {self._error}")
        if not self._resolved:
            raise DeliveryError("record not delivered: no report within the timeout")
        return self._partition, self._offset

    def done(self) -> bool:
        if not self._resolved:
            self._owner.serve(0)
        return self._resolved


class ConfluentProducer:
    """Idempotent, acks=all producer; transactional when given a transactional id."""

    def __init__(self, settings: KafkaSettings, options: ProducerOptions) -> None:
        conf = common_config(settings)
        conf.update(
            {
                "acks": "all",
                "enable.idempotence": True,
                "partitioner": "murmur2_random",  # Java / kafka-python key -> partition
                "linger.ms": options.linger_ms,
                "batch.size": options.batch_size,
                "batch.num.messages": min(1_000_000, max(10_000, options.batch_size // 16)),
                "compression.type": options.compression,
                "delivery.timeout.ms": options.delivery_timeout_ms,
                "request.timeout.ms": options.request_timeout_ms,
                "max.in.flight.requests.per.connection": options.max_in_flight,
            }
        )
        if options.transactional_id:
            conf["transactional.id"] = options.transactional_id
            conf["transaction.timeout.ms"] = options.transaction_timeout_ms
        self._txn_timeout_s = options.transaction_timeout_ms / 1000
        self._full_tries = max(1, int(options.delivery_timeout_ms / 1000 / QUEUE_FULL_WAIT_S))
        self._p = build_client(ck.Producer, conf, "producer")
        self._lock = threading.Lock()
        self._failures = 0
        self._first_failure: str | None = None
        self._unserved = 0

    def record_failure(self, name: str) -> None:
        """Count one record that will never be delivered (reported by the next flush)."""
        if name.startswith("_PURGE"):  # dropped by abort_transaction: the caller's choice
            return
        with self._lock:
            self._failures += 1
            if self._first_failure is None:
                self._first_failure = name

    def serve(self, timeout_s: float) -> None:
        """Run ready delivery reports (and librdkafka's other callbacks)."""
        self._p.poll(timeout_s)

    def send(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        headers: Headers | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
    ) -> _Delivery:
        delivery = _Delivery(self)
        produce = self._p.produce
        extra: dict[str, int] = {}
        if partition is not None:
            extra["partition"] = partition
        if timestamp_ms is not None:
            extra["timestamp"] = timestamp_ms
        for _ in range(self._full_tries):
            try:
                produce(
                    topic,
                    value,
                    key,
                    on_delivery=delivery._resolve,
                    headers=headers or None,
                    **extra,
                )
                break
            except BufferError:  # local queue full: serve reports, then retry
                self._p.poll(QUEUE_FULL_WAIT_S)
            except ck.KafkaException as exc:
                self.record_failure(str(exc.args[0].name()))
                raise map_confluent_error(exc, f"send to {topic} failed") from exc
        else:
            self.record_failure("_QUEUE_FULL")
            raise UnreachableError(f"send to {topic} failed: producer queue stayed full")
        self._unserved += 1
        if self._unserved >= POLL_EVERY:
            self._unserved = 0
            self._p.poll(0)
        return delivery

    def flush(self, timeout_s: float = 30.0) -> None:
        self._raise_failures(int(self._p.flush(timeout_s)))

    def _raise_failures(self, left: int = 0) -> None:
        """DeliveryError(failed=n) for records failed since the last check plus `left` unsent."""
        with self._lock:
            failures, first = self._failures, self._first_failure
            self._failures, self._first_failure = 0, None
        if left or failures:
            raise DeliveryError(
                f"{failures + left} record(s) not delivered "
                f"(first error: {first or 'flush timed out'})",
                failed=failures + left,
            )

    def close(self, timeout_s: float = 30.0) -> None:
        """The last flush (librdkafka clients have no close); never raises.

        A fenced or otherwise fatally failed producer can deliver nothing more, and
        confluent-kafka may then fail inside flush's own delivery reports (seen as a
        SystemError from a report callback): closing it only logs that.
        """
        try:
            left = self._p.flush(timeout_s)
        except (ck.KafkaException, SystemError) as exc:
            log.warning("producer closed in a failed state", extra={"error": type(exc).__name__})
            return
        if left:
            log.warning("producer closed with undelivered records", extra={"records": left})

    def init_transactions(self, timeout_s: float = 60.0) -> None:
        self._txn("init_transactions", self._p.init_transactions, timeout_s)

    def begin_transaction(self) -> None:
        self._txn("begin_transaction", self._p.begin_transaction)

    def send_offsets_to_transaction(
        self, offsets: Mapping[TopicPartition, int], group_metadata: Any
    ) -> None:
        positions = [to_confluent_tp(tp, off) for tp, off in offsets.items()]
        self._txn(
            "send_offsets_to_transaction",
            self._p.send_offsets_to_transaction,
            positions,
            group_metadata,
            self._txn_timeout_s,
        )

    def commit_transaction(self) -> None:
        self._txn("commit_transaction", self._p.commit_transaction, self._txn_timeout_s)
        self._raise_failures()  # as kafka-python's does

    def abort_transaction(self) -> None:
        self._reset_failures()
        try:
            self._txn("abort_transaction", self._p.abort_transaction, self._txn_timeout_s)
        finally:
            self._reset_failures()  # purged records of the aborted batch report as failed

    def _reset_failures(self) -> None:
        with self._lock:
            self._failures, self._first_failure = 0, None

    def _txn(self, what: str, call: Any, *args: Any) -> None:
        try:
            call(*args)
        except ck.KafkaException as exc:
            raise map_confluent_error(exc, f"{what} failed") from exc
