"""The default transport: kafka-python (pure Python), mapped to the project's vocabulary."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import kafka
import kafka.errors as kerr
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.structs import MemberState, OffsetAndMetadata
from kafka.structs import TopicPartition as KTP

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
from ingest.kafka.errors import FencedError, TransactionError, map_error
from ingest.kafka.kafka_python_admin import KafkaPythonAdmin
from ingest.kafka.kafka_python_config import common_config

log = logging.getLogger(__name__)

FORCE_CLOSE_WAIT_S = 10.0
"""How long a forced close waits for kafka-python's sender thread to end."""
_COMPRESSION = {"none": None, "lz4": "lz4", "gzip": "gzip", "snappy": "snappy", "zstd": "zstd"}


class _Delivery:
    """Delivery handle wrapping kafka-python's future."""

    __slots__ = ("_future",)

    def __init__(self, future: Any) -> None:
        self._future = future

    def result(self, timeout_s: float | None = None) -> tuple[int, int]:
        try:
            meta = self._future.get(timeout=timeout_s)
        except kerr.KafkaError as exc:
            raise DeliveryError(f"record not delivered: {type(exc).__name__}") from exc
        return int(meta.partition), int(meta.offset)

    def done(self) -> bool:
        return bool(self._future.is_done)


class KafkaPythonProducer:
    """Idempotent, acks=all producer; transactional when given a transactional id."""

    def __init__(self, settings: KafkaSettings, options: ProducerOptions) -> None:
        conf = common_config(settings)
        conf.update(
            acks="all",
            enable_idempotence=True,
            linger_ms=options.linger_ms,
            batch_size=options.batch_size,
            compression_type=_COMPRESSION[options.compression],
            delivery_timeout_ms=options.delivery_timeout_ms,
            request_timeout_ms=options.request_timeout_ms,
            max_block_ms=options.max_block_ms,
            max_in_flight_requests_per_connection=options.max_in_flight,
            retries=2**31 - 1,
        )
        if options.transactional_id:
            conf["transactional_id"] = options.transactional_id
            conf["transaction_timeout_ms"] = options.transaction_timeout_ms
        try:
            self._p = kafka.KafkaProducer(**conf)
        except kerr.KafkaConfigurationError as exc:
            raise ConfigError(f"invalid producer settings: {exc}") from exc
        except kerr.KafkaError as exc:
            raise map_error(exc, "cannot connect producer") from exc
        except (RuntimeError, ValueError, AssertionError) as exc:  # bad settings
            raise ConfigError(f"invalid producer settings: {exc}") from exc
        self._lock = threading.Lock()
        self._failures = 0
        self._first_failure: str | None = None

    def _on_error(self, exc: BaseException) -> None:
        if isinstance(exc, kerr.TransactionAbortedError):
            return  # records of a transaction we aborted ourselves: not a delivery failure
        with self._lock:
            self._failures += 1
            if self._first_failure is None:
                self._first_failure = type(exc).__name__

    def send(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        headers: Headers | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
    ) -> _Delivery:
        try:
            future = self._p.send(
                topic,
                value=value,
                key=key,
                headers=headers or None,
                partition=partition,
                timestamp_ms=timestamp_ms,
            )
        except kerr.KafkaError as exc:
            self._on_error(exc)
            raise map_error(exc, f"send to {topic} failed") from exc
        future.add_errback(self._on_error)
        return _Delivery(future)

    def flush(self, timeout_s: float = 30.0) -> None:
        try:
            self._p.flush(timeout=timeout_s)
        except kerr.KafkaError as exc:
            raise DeliveryError(f"flush did not complete: {type(exc).__name__}") from exc
        self._raise_failures()

    def _raise_failures(self) -> None:
        with self._lock:
            failures, first = self._failures, self._first_failure
            self._failures, self._first_failure = 0, None
        if failures:
            raise DeliveryError(
                f"{failures} record(s) not delivered (first error: {first})", failed=failures
            )

    def close(self, timeout_s: float = 30.0) -> None:
        try:
            self._p.close(timeout=timeout_s)
        except kerr.KafkaTimeoutError as exc:
            self._force_close()
            raise map_error(exc, "producer close failed") from exc
        except kerr.KafkaError as exc:
            raise map_error(exc, "producer close failed") from exc

    def _force_close(self) -> None:
        """Stop the I/O thread that kafka-python's close left running, and close again.

        kafka-python 3.0.12's close flushes first and, when that flush times out, raises
        before it stops its sender thread, which then retries (a dead broker, say) for
        the life of the process. Force-closing it fails the records still undelivered
        (each counted as a failure) and lets a second close finish.
        """
        sender = getattr(self._p, "_sender", None)
        if sender is not None:
            sender.force_close()
            sender.join(FORCE_CLOSE_WAIT_S)
        with contextlib.suppress(kerr.KafkaError):
            self._p.close(timeout=0)

    def init_transactions(self, timeout_s: float = 60.0) -> None:
        try:
            self._p.init_transactions()
        except kerr.KafkaError as exc:
            raise map_error(exc, "init_transactions failed") from exc

    def begin_transaction(self) -> None:
        try:
            self._p.begin_transaction()
        except kerr.KafkaError as exc:
            raise map_error(exc, "begin_transaction failed") from exc

    def send_offsets_to_transaction(
        self, offsets: Mapping[TopicPartition, int], group_metadata: Any
    ) -> None:
        converted = {
            KTP(tp.topic, tp.partition): OffsetAndMetadata(off, "", -1)
            for tp, off in offsets.items()
        }
        try:
            self._p.send_offsets_to_transaction(converted, group_metadata)
        except kerr.KafkaError as exc:
            raise map_error(exc, "send_offsets_to_transaction failed") from exc

    def commit_transaction(self) -> None:
        try:
            self._p.commit_transaction()
        except kerr.KafkaError as exc:
            raise map_error(exc, "commit_transaction failed") from exc
        self._raise_failures()

    def abort_transaction(self) -> None:
        with self._lock:
            self._failures, self._first_failure = 0, None
        try:
            self._p.abort_transaction()
        except kerr.KafkaError as exc:
            raise map_error(exc, "abort_transaction failed") from exc


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    """Adapts the project's two callbacks to kafka-python's listener class."""

    def __init__(self, on_assign: PartitionsCallback | None, on_revoke: PartitionsCallback | None):
        self._on_assign = on_assign
        self._on_revoke = on_revoke

    def on_partitions_revoked(self, revoked: Iterable[Any]) -> None:
        if self._on_revoke:
            self._on_revoke([TopicPartition(tp.topic, tp.partition) for tp in revoked])

    def on_partitions_assigned(self, assigned: Iterable[Any]) -> None:
        if self._on_assign:
            self._on_assign([TopicPartition(tp.topic, tp.partition) for tp in assigned])


_JOIN_PARTS = ("_join_task", "_generation", "_lock", "_net", "_on_join_complete_async")


def _take_up_finished_join(consumer: Any) -> None:
    """Complete a group join that finished between two polls, as the client's poll would.

    kafka-python 3.0.12 runs a JoinGroup/SyncGroup round as a task that outlives a poll's
    timeout, and a later poll collects its result only if the round is still running when
    that poll awaits it. A round that finishes between polls (the worker is processing a
    batch, or committing before a revocation) is lost: while the member still sees a
    reason to rejoin, the next poll drops it and starts a new round, which a busy member
    loses the same way, poll after poll, while it keeps its old partitions and commits
    under the new generation (two members then release the same records); when it no
    longer does (the leader's own assignment cleared the metadata change that started
    the round, as right after subscribing), the result is never read and the member
    stays without partitions while the broker thinks it owns some. Here a round that
    finished with an assignment is completed before and after each poll, with the steps
    the client's own join loop takes: the rebalance listener is told the assignment and
    heartbeats resume. A round that failed is left to the client, which starts another.
    A no-op on client versions without this state.
    """
    coordinator: Any = getattr(consumer, "_coordinator", None)
    if coordinator is None or not all(hasattr(coordinator, part) for part in _JOIN_PARTS):
        return
    task = coordinator._join_task
    if task is None or not getattr(task, "is_done", False) or task.exception is not None:
        return
    log.info("completing a group join the Kafka client left unread")
    coordinator._join_task = None
    with coordinator._lock:
        coordinator.rejoining = False
        coordinator.rejoin_needed = False
        coordinator.state = MemberState.STABLE
        coordinator._enable_heartbeat()
    generation = coordinator._generation
    coordinator._net.run(
        coordinator._on_join_complete_async,
        generation.generation_id,
        generation.member_id,
        generation.protocol,
        task.value,
    )


def _snapshot_subscribed_metadata(consumer: Any) -> None:
    """Give the group coordinator the subscribed topics' metadata it already has.

    kafka-python 3.0.12 compares the topic metadata a leader assigned from with the
    latest it has seen, and rejoins when they differ. It records that metadata only when
    an update arrives, so right after `subscribe` it still holds the previous, empty
    subscription's: the first join assigns every partition, the update that `subscribe`
    asked for then differs from the empty record, and the member rejoins at once (it
    waits for fresh metadata before joining only for a pattern subscription; KAFKA-3949).
    A worker then revoked its partitions seconds after it started, and the transaction
    it had begun failed. Recording the metadata the client already holds (the worker waits
    until it knows every input topic) before the first join avoids that. A no-op on
    client versions without this state.
    """
    coordinator: Any = getattr(consumer, "_coordinator", None)
    update = getattr(coordinator, "_handle_metadata_update", None)
    cluster = getattr(coordinator, "_cluster", None)
    if update is not None and cluster is not None:
        update(cluster)


class KafkaPythonConsumer:
    """Batch consumer with auto-commit off."""

    def __init__(self, settings: KafkaSettings, options: ConsumerOptions) -> None:
        conf = common_config(settings)
        conf.update(
            group_id=options.group_id,
            enable_auto_commit=False,
            isolation_level="read_committed" if options.read_committed else "read_uncommitted",
            auto_offset_reset="earliest" if options.from_beginning else "latest",
            max_poll_records=options.max_poll_records,
            fetch_max_wait_ms=options.fetch_max_wait_ms,
            fetch_min_bytes=options.fetch_min_bytes,
            max_partition_fetch_bytes=options.max_partition_fetch_bytes,
            session_timeout_ms=options.session_timeout_ms,
            heartbeat_interval_ms=options.heartbeat_interval_ms,
            max_poll_interval_ms=options.max_poll_interval_ms,
        )
        try:
            self._c = kafka.KafkaConsumer(**conf)
        except kerr.KafkaConfigurationError as exc:
            raise ConfigError(f"invalid consumer settings: {exc}") from exc
        except kerr.KafkaError as exc:
            raise map_error(exc, "cannot connect consumer") from exc
        except (RuntimeError, ValueError, AssertionError) as exc:  # bad settings
            raise ConfigError(f"invalid consumer settings: {exc}") from exc

    def subscribe(
        self,
        topics: Sequence[str],
        on_assign: PartitionsCallback | None = None,
        on_revoke: PartitionsCallback | None = None,
    ) -> None:
        self._c.subscribe(topics=list(topics), listener=_Listener(on_assign, on_revoke))
        _snapshot_subscribed_metadata(self._c)

    def assign(self, partitions: Sequence[TopicPartition]) -> None:
        self._c.assign([KTP(tp.topic, tp.partition) for tp in partitions])

    def assignment(self) -> set[TopicPartition]:
        return {TopicPartition(tp.topic, tp.partition) for tp in self._c.assignment()}

    def poll(self, max_records: int, timeout_s: float) -> list[Message]:
        # Before the poll, which would drop a round that finished since the last one and
        # start another; after it, for a round that finished as it returned.
        _take_up_finished_join(self._c)
        try:
            batches = self._c.poll(timeout_ms=int(timeout_s * 1000), max_records=max_records)
        except kerr.KafkaError as exc:
            raise map_error(exc, "poll failed") from exc
        _take_up_finished_join(self._c)
        out: list[Message] = []
        append = out.append
        for records in batches.values():
            for r in records:
                append(
                    Message(r.topic, r.partition, r.offset, r.key, r.value, r.headers, r.timestamp)
                )
        return out

    def partitions_for(self, topic: str) -> list[int]:
        try:
            parts = self._c.partitions_for_topic(topic)
        except kerr.KafkaError as exc:
            raise map_error(exc, f"metadata for {topic} failed") from exc
        if not parts:
            raise TransportError(f"topic {topic} does not exist")
        return sorted(parts)

    def end_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        try:
            got = self._c.end_offsets([KTP(tp.topic, tp.partition) for tp in partitions])
        except kerr.KafkaError as exc:
            raise map_error(exc, "end_offsets failed") from exc
        return {TopicPartition(tp.topic, tp.partition): int(off) for tp, off in got.items()}

    def beginning_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        try:
            got = self._c.beginning_offsets([KTP(tp.topic, tp.partition) for tp in partitions])
        except kerr.KafkaError as exc:
            raise map_error(exc, "beginning_offsets failed") from exc
        return {TopicPartition(tp.topic, tp.partition): int(off) for tp, off in got.items()}

    def position(self, partition: TopicPartition) -> int:
        try:
            return int(self._c.position(KTP(partition.topic, partition.partition)))
        except kerr.KafkaError as exc:
            raise map_error(exc, "position failed") from exc

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self._c.seek(KTP(partition.topic, partition.partition), offset)

    def committed(self, partition: TopicPartition) -> int | None:
        try:
            got = self._c.committed(KTP(partition.topic, partition.partition))
        except kerr.KafkaError as exc:
            raise map_error(exc, "committed failed") from exc
        return None if got is None else int(got)

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        converted = {
            KTP(tp.topic, tp.partition): OffsetAndMetadata(off, "", -1)
            for tp, off in offsets.items()
        }
        try:
            self._c.commit(converted)
        except kerr.KafkaError as exc:
            raise map_error(exc, "offset commit failed") from exc

    def group_metadata(self) -> Any:
        return self._c.group_metadata()

    def close(self) -> None:
        try:
            self._c.close(autocommit=False)
        except kerr.KafkaError as exc:
            log.warning("consumer close failed", extra={"error": type(exc).__name__})


class KafkaPythonTransport:
    """Builds kafka-python clients for one cluster; constructors make no network calls."""

    name = "kafka-python"

    def __init__(self, settings: KafkaSettings) -> None:
        self.settings = settings
        self.bootstrap_servers = settings.bootstrap_servers or ""

    def producer(self, options: ProducerOptions | None = None) -> KafkaPythonProducer:
        return KafkaPythonProducer(self.settings, options or ProducerOptions())

    def consumer(self, options: ConsumerOptions | None = None) -> KafkaPythonConsumer:
        return KafkaPythonConsumer(self.settings, options or ConsumerOptions())

    def admin(self) -> KafkaPythonAdmin:
        return KafkaPythonAdmin(self.settings)


__all__ = ["FencedError", "KafkaPythonTransport", "TransactionError"]
