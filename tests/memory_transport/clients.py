"""The in-memory Kafka's producer and admin, and the transport that builds its clients.

Each call holds the cluster's condition variable for its whole length (the consumer is
in `tests.memory_transport.consumer`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from ingest.errors import DeliveryError, TransportError
from ingest.kafka.base import (
    AclSpec,
    BrokerInfo,
    ConsumerOptions,
    Headers,
    ProducerOptions,
    TopicInfo,
    TopicPartition,
    TopicSpec,
)
from ingest.kafka.errors import FencedError, TransactionError
from ingest.kafka.partitioning import key_partition
from tests.memory_transport.cluster import MemoryCluster, Transaction
from tests.memory_transport.consumer import MemoryConsumer
from tests.memory_transport.groups import GroupMetadata


class MemoryDelivery:
    """A record's delivery, known at once: its partition and offset, or why it failed."""

    __slots__ = ("_error", "_offset", "_partition")

    def __init__(self, partition: int, offset: int, error: str | None = None) -> None:
        self._partition = partition
        self._offset = offset
        self._error = error

    def result(self, timeout_s: float | None = None) -> tuple[int, int]:
        if self._error is not None:
            raise DeliveryError(f"record not delivered: {self._error}")
        return self._partition, self._offset

    def done(self) -> bool:
        return True


class MemoryProducer:
    """Appends at `send`; transactional when given a transactional id, fenced by a newer one."""

    def __init__(self, cluster: MemoryCluster, options: ProducerOptions) -> None:
        self._cluster = cluster
        self._tid = options.transactional_id
        self._epoch: int | None = None
        self._txn: Transaction | None = None
        self._unkeyed: dict[str, int] = {}
        self._failed = 0
        self._closed = False

    def send(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        headers: Headers | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
    ) -> MemoryDelivery:
        cluster = self._cluster
        with cluster.cond:
            what = f"send to {topic} failed"
            cluster.check_up(what)
            if self._closed:
                raise TransportError(f"{what}: the producer is closed")
            txn = self._open_txn(what) if self._tid is not None else None
            count = cluster.partition_count(topic)
            if partition is None:
                partition = self._partition(topic, key, count)
            elif not 0 <= partition < count:
                raise TransportError(f"{what}: no partition {partition}")
            if cluster.take_delivery_fault(topic):
                self._failed += 1
                if txn is not None:
                    txn.doomed = "a record was not delivered"
                return MemoryDelivery(partition, -1, "injected delivery failure")
            stamp = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
            tp = TopicPartition(topic, partition)
            offset = cluster.append(tp, key, value, list(headers or []), stamp, txn)
            return MemoryDelivery(partition, offset)

    def _partition(self, topic: str, key: bytes | None, count: int) -> int:
        """Keyed: Kafka's murmur2 partitioner. Unkeyed: round-robin (deterministic, unlike
        kafka-python's random choice and librdkafka's sticky batches)."""
        if key is not None:
            return key_partition(key, count)
        turn = self._unkeyed.get(topic, 0)
        self._unkeyed[topic] = turn + 1
        return turn % count

    def flush(self, timeout_s: float = 30.0) -> None:
        with self._cluster.cond:
            if self._cluster.down:
                raise DeliveryError("flush did not complete: the cluster does not answer")
            failed, self._failed = self._failed, 0
        if failed:
            raise DeliveryError(f"{failed} record(s) not delivered", failed=failed)

    def close(self, timeout_s: float = 30.0) -> None:
        """Never raises. An open transaction is aborted, as the broker would after its timeout."""
        with self._cluster.cond:
            self._closed = True
            txn, self._txn = self._txn, None
            if txn is not None and txn.state == "open" and not self._cluster.down:
                self._cluster.finish(txn, commit=False)

    def init_transactions(self, timeout_s: float = 60.0) -> None:
        with self._cluster.cond:
            self._cluster.check_up("init_transactions failed")
            if self._tid is None:
                raise TransactionError("init_transactions failed: no transactional id")
            self._epoch = self._cluster.init_producer(self._tid)
            self._txn = None

    def begin_transaction(self) -> None:
        with self._cluster.cond:
            self._check_epoch("begin_transaction failed")
            if self._txn is not None and self._txn.state == "open":
                raise TransactionError("begin_transaction failed: a transaction is open")
            assert self._tid is not None and self._epoch is not None
            self._txn = self._cluster.begin(self._tid, self._epoch)

    def send_offsets_to_transaction(
        self, offsets: Mapping[TopicPartition, int], group_metadata: Any
    ) -> None:
        what = "send_offsets_to_transaction failed"
        with self._cluster.cond:
            self._cluster.check_up(what)
            txn = self._open_txn(what)
            if not isinstance(group_metadata, GroupMetadata):
                raise TransactionError(f"{what}: not a memory consumer's group metadata")
            problem = self._cluster.stale(group_metadata)
            if problem is not None:
                txn.doomed = problem
                raise TransactionError(f"{what}: {problem}")
            txn.offsets.update(offsets)
            txn.group = group_metadata

    def commit_transaction(self) -> None:
        """Commit records and offsets at once; refused if the group rebalanced since
        `send_offsets_to_transaction`. Kafka checks the generation only there and holds the
        offsets pending until the commit; checking again here spares modelling them."""
        what = "commit_transaction failed"
        cluster = self._cluster
        with cluster.cond:
            cluster.check_up(what)
            cluster.wait_if_paused(self._open_txn(what))
            cluster.check_up(what)
            txn = self._open_txn(what)  # it may have been fenced meanwhile
            if cluster.take_commit_fault(txn):
                txn.doomed = "injected commit failure"
            elif txn.group is not None:
                txn.doomed = cluster.stale(txn.group)
            if txn.doomed is not None:
                raise TransactionError(f"{what}: {txn.doomed}")
            cluster.finish(txn, commit=True)
            self._txn = None

    def abort_transaction(self) -> None:
        what = "abort_transaction failed"
        with self._cluster.cond:
            self._cluster.check_up(what)
            self._check_epoch(what)
            txn, self._txn = self._txn, None
            self._failed = 0
            if txn is None or txn.state != "open":
                raise TransactionError(f"{what}: no open transaction")
            self._cluster.finish(txn, commit=False)

    def _check_epoch(self, what: str) -> None:
        if self._tid is None or self._epoch is None:
            raise TransactionError(f"{what}: init_transactions was not called")
        if self._cluster.epoch(self._tid) != self._epoch:
            raise FencedError(f"{what}: a newer producer of {self._tid} fenced this one")

    def _open_txn(self, what: str) -> Transaction:
        self._check_epoch(what)
        txn = self._txn
        if txn is None or txn.state != "open":
            raise TransactionError(f"{what}: no open transaction")
        if txn.doomed is not None:
            raise TransactionError(f"{what}: {txn.doomed}")
        return txn


class MemoryAdmin:
    """Topics (created, described, deleted), brokers with the cluster's rack, ACLs recorded."""

    def __init__(self, cluster: MemoryCluster) -> None:
        self._cluster = cluster

    def create_topics(self, specs: Iterable[TopicSpec]) -> dict[str, bool]:
        with self._cluster.cond:
            self._cluster.check_up("create topics failed")
            return {spec.name: self._cluster.create(spec) for spec in specs}

    def describe_topics(self, names: Iterable[str]) -> dict[str, TopicInfo]:
        with self._cluster.cond:
            self._cluster.check_up("describe topics failed")
            out: dict[str, TopicInfo] = {}
            for name in names:
                spec = self._cluster.spec(name)
                if spec is not None:
                    configs = dict(spec.configs)
                    out[name] = TopicInfo(name, spec.partitions, spec.replication, configs)
            return out

    def list_topics(self) -> list[str]:
        with self._cluster.cond:
            self._cluster.check_up("list topics failed")
            return self._cluster.topic_names()

    def delete_topics(self, names: Iterable[str]) -> None:
        with self._cluster.cond:
            self._cluster.check_up("delete topics failed")
            for name in names:
                self._cluster.delete(name)

    def brokers(self) -> list[BrokerInfo]:
        with self._cluster.cond:
            self._cluster.check_up("describe cluster failed")
            rack = self._cluster.rack
            return [
                BrokerInfo(node_id=n, host="memory", port=9092 + n, rack=rack)
                for n in range(self._cluster.broker_count)
            ]

    def create_acls(self, acls: Iterable[AclSpec]) -> None:
        with self._cluster.cond:
            self._cluster.check_up("create ACLs failed")
            self._cluster.acls.extend(acls)

    def close(self) -> None:
        return None


class MemoryTransport:
    """Builds clients of one `MemoryCluster`; transports of one cluster share its address."""

    name = "memory"

    def __init__(self, cluster: MemoryCluster) -> None:
        self.cluster = cluster
        self.bootstrap_servers = cluster.bootstrap_servers

    def producer(self, options: ProducerOptions | None = None) -> MemoryProducer:
        return MemoryProducer(self.cluster, options or ProducerOptions())

    def consumer(self, options: ConsumerOptions | None = None) -> MemoryConsumer:
        return MemoryConsumer(self.cluster, options or ConsumerOptions())

    def admin(self) -> MemoryAdmin:
        return MemoryAdmin(self.cluster)
