"""The confluent-kafka consumer: batches, assignment, offsets and commits, as kafka-python's."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import confluent_kafka as ck
from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]

from ingest.errors import ConfigError, TransportError
from ingest.kafka.base import ConsumerOptions, Message, PartitionsCallback, TopicPartition
from ingest.kafka.config import KafkaSettings
from ingest.kafka.confluent_common import (
    METADATA_TIMEOUT_S,
    build_client,
    common_config,
    map_confluent_error,
    to_confluent_tp,
)
from ingest.kafka.errors import UnreachableError

log = logging.getLogger(__name__)


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
        if options.max_prefetch_bytes is not None:
            conf["queued.max.messages.kbytes"] = max(1, options.max_prefetch_bytes // 1024)
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
