"""The optional fast transport: confluent-kafka (librdkafka), with kafka-python's behaviour.

Differences that callers may notice are listed in `ConfluentTransport`'s docstring.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import confluent_kafka as ck
from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]

from ingest.errors import ConfigError, DeliveryError, TransportError
from ingest.kafka.base import (
    ConsumerOptions,
    Headers,
    Message,
    PartitionsCallback,
    ProducerOptions,
    TopicPartition,
)
from ingest.kafka.config import KafkaSettings
from ingest.kafka.confluent_admin import ConfluentAdmin
from ingest.kafka.confluent_common import (
    METADATA_TIMEOUT_S,
    POLL_EVERY,
    QUEUE_FULL_WAIT_S,
    build_client,
    common_config,
    map_confluent_error,
    to_confluent_tp,
)
from ingest.kafka.errors import (
    UnreachableError,
)

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


class ConfluentConsumer:
    """Batch consumer with auto-commit and auto offset store off."""

    def __init__(self, settings: KafkaSettings, options: ConsumerOptions) -> None:
        conf = common_config(settings)
        # librdkafka needs a group id even for assign(); a private throwaway one keeps
        # group_metadata() usable and never joins a group unless subscribe() is called.
        self._grouped = options.group_id is not None
        self._from_beginning = options.from_beginning
        conf.update(
            {
                "group.id": options.group_id or f"{settings.client_id}-assign-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "enable.partition.eof": False,
                "isolation.level": "read_committed"
                if options.read_committed
                else "read_uncommitted",
                "auto.offset.reset": "earliest" if options.from_beginning else "latest",
                "fetch.wait.max.ms": options.fetch_max_wait_ms,
                "fetch.min.bytes": options.fetch_min_bytes,
                "max.partition.fetch.bytes": options.max_partition_fetch_bytes,
                "session.timeout.ms": options.session_timeout_ms,
                "heartbeat.interval.ms": options.heartbeat_interval_ms,
                "max.poll.interval.ms": options.max_poll_interval_ms,
            }
        )
        self._c = build_client(ck.Consumer, conf, "consumer")
        self._deferred: TransportError | None = None
        self._settings = settings
        self._isolation = (
            ck.IsolationLevel.READ_COMMITTED
            if options.read_committed
            else ck.IsolationLevel.READ_UNCOMMITTED
        )
        self._offsets_admin: Any = None

    def subscribe(
        self,
        topics: Sequence[str],
        on_assign: PartitionsCallback | None = None,
        on_revoke: PartitionsCallback | None = None,
    ) -> None:
        def assigned(_consumer: Any, parts: list[Any]) -> None:
            if on_assign:
                on_assign([TopicPartition(p.topic, p.partition) for p in parts])

        def revoked(_consumer: Any, parts: list[Any]) -> None:
            if on_revoke:
                on_revoke([TopicPartition(p.topic, p.partition) for p in parts])

        # the library assigns / unassigns itself after these return; lost = revoked
        self._c.subscribe(list(topics), on_assign=assigned, on_revoke=revoked, on_lost=revoked)

    def assign(self, partitions: Sequence[TopicPartition]) -> None:
        """Grouped: start at the committed offset; group-less: at the reset point."""
        start = None
        if not self._grouped:
            start = ck.OFFSET_BEGINNING if self._from_beginning else ck.OFFSET_END
        self._c.assign([to_confluent_tp(tp, start) for tp in partitions])

    def assignment(self) -> set[TopicPartition]:
        return {TopicPartition(p.topic, p.partition) for p in self._c.assignment()}

    def poll(self, max_records: int, timeout_s: float) -> list[Message]:
        if self._deferred is not None:
            exc, self._deferred = self._deferred, None
            raise exc
        try:
            batch = self._c.consume(num_messages=max_records, timeout=timeout_s)
        except (ck.KafkaException, RuntimeError) as exc:
            raise map_confluent_error(exc, "poll failed") from exc
        out: list[Message] = []
        append = out.append
        for m in batch:
            err = m.error()
            if err is None:
                append(
                    Message(
                        m.topic(),
                        m.partition(),
                        m.offset(),
                        m.key(),
                        m.value(),
                        m.headers() or [],
                        m.timestamp()[1],
                    )
                )
            else:
                self._consume_error(err, m)
        if self._deferred is not None and not out:
            exc, self._deferred = self._deferred, None
            raise exc
        return out

    def _consume_error(self, err: Any, m: Any) -> None:
        """Fatal and authorization errors raise (after the good records); others are logged."""
        name = str(err.name())
        where = f"{m.topic()}[{m.partition()}]"
        if err.fatal() or "AUTHORIZATION" in name:
            if self._deferred is None:
                self._deferred = map_confluent_error(ck.KafkaException(err), f"poll {where} failed")
        elif err.code() != ck.KafkaError._PARTITION_EOF:
            log.warning("consume error on %s: %s", where, name)

    def partitions_for(self, topic: str) -> list[int]:
        try:
            meta = self._c.list_topics(topic, timeout=METADATA_TIMEOUT_S)
        except ck.KafkaException as exc:
            raise map_confluent_error(exc, f"metadata for {topic} failed") from exc
        t = meta.topics.get(topic)
        if t is None or t.error is not None or not t.partitions:
            raise TransportError(f"topic {topic} does not exist")
        return sorted(t.partitions)

    def _watermarks(
        self, partitions: Sequence[TopicPartition], what: str
    ) -> dict[TopicPartition, tuple[int, int]]:
        out: dict[TopicPartition, tuple[int, int]] = {}
        for tp in partitions:
            try:
                got = self._c.get_watermark_offsets(to_confluent_tp(tp), timeout=METADATA_TIMEOUT_S)
            except ck.KafkaException as exc:
                raise self._topic_error(tp.topic, what) or map_confluent_error(
                    exc, f"{what} failed"
                ) from exc
            if got is None:
                raise UnreachableError(f"{what} failed: timed out")
            out[TopicPartition(tp.topic, tp.partition)] = (int(got[0]), int(got[1]))
        return out

    def _topic_error(self, topic: str, what: str) -> TransportError | None:
        """The topic-level metadata error (librdkafka hides a denied topic as unknown)."""
        try:
            t = self._c.list_topics(topic, timeout=METADATA_TIMEOUT_S).topics.get(topic)
        except ck.KafkaException:
            return None
        if t is None or t.error is None:
            return None
        return map_confluent_error(ck.KafkaException(t.error), f"{what} failed")

    def end_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        """End offsets (for read_committed: the last stable offsets) in one request."""
        return self._list_offsets(partitions, "end_offsets", latest=True)

    def beginning_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        return self._list_offsets(partitions, "beginning_offsets", latest=False)

    def _list_offsets(
        self, partitions: Sequence[TopicPartition], what: str, *, latest: bool
    ) -> dict[TopicPartition, int]:
        """First or end offsets of all partitions in one ListOffsets request, on its own connection.

        End offsets are asked before every batch (read-your-consent). The consumer's own
        broker connection carries its long-poll fetches, and a broker answers one
        connection's requests in order, so a ListOffsets sent there waits behind a fetch
        for up to fetch.wait.max.ms (measured: ~90 ms per call at 100 ms). An admin
        client with the same settings and isolation level answers in one round trip.
        Errors fall back to per-partition watermarks, which map them as before.
        """
        if not partitions:
            return {}
        spec = OffsetSpec.latest() if latest else OffsetSpec.earliest()  # type: ignore[no-untyped-call]
        query = {to_confluent_tp(tp): spec for tp in partitions}
        out: dict[TopicPartition, int] = {}
        try:
            futures = self._admin().list_offsets(
                query, isolation_level=self._isolation, request_timeout=METADATA_TIMEOUT_S
            )
            for ctp, future in futures.items():
                info = future.result(timeout=METADATA_TIMEOUT_S + 1)
                if info.offset < 0:
                    raise TransportError("no offset")
                out[TopicPartition(ctp.topic, ctp.partition)] = int(info.offset)
        except (ck.KafkaException, TransportError, TimeoutError, ConfigError):
            index = 1 if latest else 0
            return {tp: pair[index] for tp, pair in self._watermarks(partitions, what).items()}
        return out

    def _admin(self) -> Any:
        if self._offsets_admin is None:
            self._offsets_admin = build_client(AdminClient, common_config(self._settings), "admin")
        return self._offsets_admin

    def position(self, partition: TopicPartition) -> int:
        """Next offset to read; before the first fetch, resolved as kafka-python does."""
        try:
            got = self._c.position([to_confluent_tp(partition)])[0].offset
        except ck.KafkaException as exc:
            raise map_confluent_error(exc, "position failed") from exc
        if got >= 0:
            return int(got)
        if self._grouped and (committed := self.committed(partition)) is not None:
            return committed
        return self._list_offsets([partition], "position", latest=not self._from_beginning)[
            partition
        ]

    def seek(self, partition: TopicPartition, offset: int) -> None:
        try:
            self._c.seek(to_confluent_tp(partition, offset))
        except ck.KafkaException as exc:
            if exc.args[0].code() != ck.KafkaError._STATE:
                raise map_confluent_error(exc, "seek failed") from exc
            # assigned but not fetching yet: restart the partition at the offset instead
            self._c.incremental_unassign([to_confluent_tp(partition)])
            self._c.incremental_assign([to_confluent_tp(partition, offset)])

    def committed(self, partition: TopicPartition) -> int | None:
        if not self._grouped:
            raise TransportError("committed failed: the consumer has no group id")
        try:
            got = self._c.committed([to_confluent_tp(partition)], timeout=METADATA_TIMEOUT_S)[0]
        except ck.KafkaException as exc:
            raise map_confluent_error(exc, "committed failed") from exc
        if got.error is not None:
            raise map_confluent_error(ck.KafkaException(got.error), "committed failed")
        return None if got.offset < 0 else int(got.offset)

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Commit offsets outside a transaction, synchronously, as kafka-python's does."""
        if not self._grouped:
            raise TransportError("offset commit failed: the consumer has no group id")
        if not offsets:
            return  # librdkafka would commit the current positions instead
        positions = [to_confluent_tp(tp, off) for tp, off in offsets.items()]
        try:
            done = self._c.commit(offsets=positions, asynchronous=False)
        except ck.KafkaException as exc:
            raise map_confluent_error(exc, "offset commit failed") from exc
        for tp in done or ():
            if tp.error is not None:
                raise map_confluent_error(
                    ck.KafkaException(tp.error),
                    f"offset commit failed on {tp.topic}[{tp.partition}]",
                )

    def group_metadata(self) -> Any:
        return self._c.consumer_group_metadata()

    def close(self) -> None:
        self._offsets_admin = None  # an AdminClient has no close(); dropping it stops it
        try:
            self._c.close()
        except (ck.KafkaException, RuntimeError) as exc:
            log.warning("consumer close failed", extra={"error": type(exc).__name__})


class ConfluentTransport:
    """Builds confluent-kafka clients for one cluster; constructors make no network calls.

    Differences from kafka-python a caller may notice: constructors never fail on an
    unreachable cluster (failures show at flush, poll or the first metadata call);
    records to a missing topic fail at flush (DeliveryError) rather than at send;
    poll() raises AuthorizationError and fatal errors instead of only logging them;
    group_metadata() of a group-less consumer names a private throwaway group.
    """

    name = "confluent"

    def __init__(self, settings: KafkaSettings) -> None:
        self.settings = settings
        self.bootstrap_servers = settings.bootstrap_servers or ""

    def producer(self, options: ProducerOptions | None = None) -> ConfluentProducer:
        return ConfluentProducer(self.settings, options or ProducerOptions())

    def consumer(self, options: ConsumerOptions | None = None) -> ConfluentConsumer:
        return ConfluentConsumer(self.settings, options or ConsumerOptions())

    def admin(self) -> ConfluentAdmin:
        return ConfluentAdmin(self.settings)


__all__ = ["ConfluentTransport"]
