"""The one narrow Kafka interface every part of the project talks through.

Implementations (kafka-python by default, confluent-kafka optional) map this
vocabulary to their library. Nothing outside `ingest.kafka` imports a
Kafka client library.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

Headers = list[tuple[str, bytes]]


class TopicPartition(NamedTuple):
    """A topic and a partition number."""

    topic: str
    partition: int


class Message(NamedTuple):
    """One consumed record, as plain data."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers
    timestamp_ms: int


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """What a topic should look like: partitions, replication and topic configs."""

    name: str
    partitions: int
    replication: int
    configs: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TopicInfo:
    """What a topic looks like on the cluster."""

    name: str
    partitions: int
    replication: int
    configs: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class BrokerInfo:
    """One broker of a cluster and its rack (None when unset)."""

    node_id: int
    host: str
    port: int
    rack: str | None


@dataclass(frozen=True, slots=True)
class AclSpec:
    """Allow one principal one operation on a topic, group or transactional id (or prefix)."""

    principal: str
    resource_type: str  # "topic" | "group" | "transactional_id" | "cluster"
    name: str
    operation: str  # "read" | "write" | "describe" | "create" | "all" | ...
    prefixed: bool = False


@dataclass(frozen=True, slots=True)
class ProducerOptions:
    """Producer settings in the project's own vocabulary."""

    transactional_id: str | None = None
    linger_ms: int = 5
    batch_size: int = 256 * 1024
    compression: str = "none"  # none | lz4 | gzip | snappy | zstd
    delivery_timeout_ms: int = 30_000
    request_timeout_ms: int = 10_000
    max_in_flight: int = 5
    transaction_timeout_ms: int = 60_000
    # How long kafka-python's send() may block for topic metadata or buffer space, and
    # init_transactions() for the coordinator. librdkafka never blocks there: it fails
    # the delivery after delivery_timeout_ms instead.
    max_block_ms: int = 60_000


@dataclass(frozen=True, slots=True)
class ConsumerOptions:
    """Consumer settings in the project's own vocabulary."""

    group_id: str | None = None
    read_committed: bool = True
    from_beginning: bool = True
    max_poll_records: int = 2000
    fetch_max_wait_ms: int = 100
    fetch_min_bytes: int = 1
    max_partition_fetch_bytes: int = 4 * 1024 * 1024
    max_prefetch_bytes: int | None = None
    """What the client may hold fetched ahead of the polls, over all partitions (librdkafka's
    queue; kafka-python holds one fetch of `max_partition_fetch_bytes` per partition).
    None: the client's default (64 MiB in librdkafka)."""
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 3_000
    max_poll_interval_ms: int = 300_000


class Delivery(Protocol):
    """Handle on one sent record: resolves to its partition and offset, or raises."""

    def result(self, timeout_s: float | None = None) -> tuple[int, int]: ...

    def done(self) -> bool: ...


PartitionsCallback = Callable[[list[TopicPartition]], None]


class Producer(Protocol):
    """Idempotent producer (acks=all), optionally transactional."""

    def send(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        headers: Headers | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
    ) -> Delivery:
        """Queue one record; `timestamp_ms` (epoch ms) is its CreateTime, the send time if None."""
        ...

    def flush(self, timeout_s: float = 30.0) -> None:
        """Wait for every sent record; raise DeliveryError if any was not acknowledged."""
        ...

    def close(self, timeout_s: float = 30.0) -> None: ...

    def init_transactions(self, timeout_s: float = 60.0) -> None: ...

    def begin_transaction(self) -> None: ...

    def send_offsets_to_transaction(
        self, offsets: Mapping[TopicPartition, int], group_metadata: Any
    ) -> None: ...

    def commit_transaction(self) -> None: ...

    def abort_transaction(self) -> None: ...


class Consumer(Protocol):
    """Batch consumer; auto-commit is always off."""

    def subscribe(
        self,
        topics: Sequence[str],
        on_assign: PartitionsCallback | None = None,
        on_revoke: PartitionsCallback | None = None,
    ) -> None: ...

    def assign(self, partitions: Sequence[TopicPartition]) -> None: ...

    def assignment(self) -> set[TopicPartition]: ...

    def poll(self, max_records: int, timeout_s: float) -> list[Message]: ...

    def partitions_for(self, topic: str) -> list[int]: ...

    def end_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]: ...

    def beginning_offsets(
        self, partitions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, int]: ...

    def position(self, partition: TopicPartition) -> int: ...

    def seek(self, partition: TopicPartition, offset: int) -> None: ...

    def committed(self, partition: TopicPartition) -> int | None: ...

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Commit offsets outside a transaction (at-least-once mode only)."""
        ...

    def group_metadata(self) -> Any: ...

    def close(self) -> None: ...


class Admin(Protocol):
    """Cluster administration: topics, brokers, ACLs."""

    def create_topics(self, specs: Iterable[TopicSpec]) -> dict[str, bool]:
        """Create missing topics; map each name to True if created, False if it existed."""
        ...

    def describe_topics(self, names: Iterable[str]) -> dict[str, TopicInfo]: ...

    def list_topics(self) -> list[str]: ...

    def delete_topics(self, names: Iterable[str]) -> None: ...

    def brokers(self) -> list[BrokerInfo]: ...

    def create_acls(self, acls: Iterable[AclSpec]) -> None: ...

    def close(self) -> None: ...


class Transport(Protocol):
    """Factory of clients for one cluster, built from one configuration."""

    name: str
    bootstrap_servers: str

    def producer(self, options: ProducerOptions | None = None) -> Producer: ...

    def consumer(self, options: ConsumerOptions | None = None) -> Consumer: ...

    def admin(self) -> Admin: ...
