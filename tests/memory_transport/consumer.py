"""The in-memory Kafka's consumer: a group member or a standalone reader of `MemoryCluster` logs.

A member takes part in rebalances (`tests.memory_transport.groups`) inside `poll`, as
the real clients do: it revokes all its partitions, rejoins, and once the group has
moved to the next generation takes its new partitions. The callbacks run on the
polling thread without the cluster's lock, so a callback may call back into its consumer.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from ingest.errors import TransportError
from ingest.kafka.base import ConsumerOptions, Message, PartitionsCallback, TopicPartition
from tests.memory_transport.cluster import MemoryCluster
from tests.memory_transport.groups import GroupMetadata


class MemoryConsumer:
    """A group member (`subscribe`) or a standalone reader (`assign`); auto-commit off."""

    def __init__(self, cluster: MemoryCluster, options: ConsumerOptions) -> None:
        self._cluster = cluster
        self._options = options
        self._group = options.group_id
        self._member: str | None = None
        self._topics: tuple[str, ...] = ()
        self._on_assign: PartitionsCallback | None = None
        self._on_revoke: PartitionsCallback | None = None
        self._generation = -1
        self._assigned: set[TopicPartition] = set()
        self._positions: dict[TopicPartition, int | None] = {}
        self._turn = 0
        self._closed = False

    def subscribe(
        self,
        topics: Sequence[str],
        on_assign: PartitionsCallback | None = None,
        on_revoke: PartitionsCallback | None = None,
    ) -> None:
        """Join the group at the next `poll` (a resubscription rebalances it there too)."""
        if self._group is None:
            raise TransportError("subscribe failed: the consumer has no group id")
        with self._cluster.cond:
            self._topics = tuple(topics)
            self._on_assign, self._on_revoke = on_assign, on_revoke
            if self._member is not None:
                self._cluster.group(self._group).start_rebalance()
                self._cluster.cond.notify_all()

    def assign(self, partitions: Sequence[TopicPartition]) -> None:
        with self._cluster.cond:
            wanted = set(partitions)
            self._positions = {tp: self._positions.get(tp) for tp in wanted}
            self._assigned = wanted

    def assignment(self) -> set[TopicPartition]:
        with self._cluster.cond:
            return set(self._assigned)

    def poll(self, max_records: int, timeout_s: float) -> list[Message]:
        """Take part in a rebalance first; then wait up to `timeout_s` for records. While the
        group waits for other members to rejoin, this member owns nothing and gets nothing.

        A dropped cluster gives nothing, as with the real clients, rather than an error.
        """
        cluster = self._cluster
        deadline = time.monotonic() + timeout_s
        while True:
            if not cluster.down:
                self._rejoin()
            with cluster.cond:
                if self._closed:
                    raise TransportError("poll failed: the consumer is closed")
                if not cluster.down:
                    if self._rebalanced():
                        continue  # rejoin, or take the new generation, first
                    got = self._fetch(max_records)
                    if got:
                        return got
                left = deadline - time.monotonic()
                if left <= 0:
                    return []
                cluster.cond.wait(left)

    def _rebalanced(self) -> bool:
        """True when this member has to rejoin or has a new generation to take."""
        if not self._topics or self._group is None:
            return False
        if self._member is None or self._cluster.must_rejoin(self._group, self._member):
            return True
        settled = self._cluster.group(self._group).settled(self._member)
        return settled is not None and settled[0] != self._generation

    def _rejoin(self) -> None:
        """Eager: revoke every partition and rejoin; take the next generation's partitions
        (positions from the committed offsets) once the group has moved to it."""
        cluster = self._cluster
        with cluster.cond:
            if not self._topics or self._group is None:
                return
            joining = self._member is None or cluster.must_rejoin(self._group, self._member)
            revoked = sorted(self._assigned) if joining else []
            if joining:
                self._assigned, self._positions = set(), {}
        if revoked and self._on_revoke is not None:
            self._on_revoke(revoked)
        with cluster.cond:
            if joining:
                timeout_s = self._options.max_poll_interval_ms / 1000
                self._member = cluster.join(self._group, self._topics, self._member, timeout_s)
            assert self._member is not None
            settled = cluster.group(self._group).settled(self._member)
            if settled is None or settled[0] == self._generation:
                return
            self._generation, assigned = settled
            self._assigned = set(assigned)
            self._positions = dict.fromkeys(assigned)
        if self._on_assign is not None:
            self._on_assign(sorted(assigned))

    def _fetch(self, max_records: int) -> list[Message]:
        """Up to `max_records` deliverable records, partitions taken in turn; positions move
        past markers and records a read_committed consumer skips."""
        cluster = self._cluster
        read_committed = self._options.read_committed
        parts = sorted(tp for tp in self._assigned if cluster.has(tp))
        if not parts:
            return []
        self._turn = (self._turn + 1) % len(parts)
        out: list[Message] = []
        for tp in parts[self._turn :] + parts[: self._turn]:
            entries = cluster.partition(tp).entries
            end = cluster.end(tp, read_committed)
            position = self._resolve(tp)
            while position < end and len(out) < max_records:
                entry = entries[position]
                position += 1
                if entry.visible(read_committed):
                    out.append(
                        Message(
                            tp.topic,
                            tp.partition,
                            entry.offset,
                            entry.key,
                            entry.value,
                            list(entry.headers),
                            entry.timestamp_ms,
                        )
                    )
            self._positions[tp] = position
        return out

    def _resolve(self, tp: TopicPartition) -> int:
        """The position, fetched when unknown: the committed offset, else the reset point."""
        position = self._positions.get(tp)
        if position is None:
            if self._group is not None:
                position = self._cluster.committed(self._group, tp)
            if position is None:
                reset_to_end = not self._options.from_beginning
                position = (
                    self._cluster.end(tp, self._options.read_committed) if reset_to_end else 0
                )
            self._positions[tp] = position
        return position

    def partitions_for(self, topic: str) -> list[int]:
        with self._cluster.cond:
            self._cluster.check_up(f"metadata for {topic} failed")
            return list(range(self._cluster.partition_count(topic)))

    def end_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        """Last stable offsets for read_committed, high watermarks otherwise."""
        with self._cluster.cond:
            self._cluster.check_up("end_offsets failed")
            return {tp: self._cluster.end(tp, self._options.read_committed) for tp in partitions}

    def beginning_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        """Always 0: nothing is deleted or compacted."""
        with self._cluster.cond:
            self._cluster.check_up("beginning_offsets failed")
            for tp in partitions:
                self._cluster.partition(tp)
            return dict.fromkeys(partitions, 0)

    def position(self, partition: TopicPartition) -> int:
        with self._cluster.cond:
            self._cluster.check_up("position failed")
            self._require_assigned(partition, "position")
            return self._resolve(partition)

    def seek(self, partition: TopicPartition, offset: int) -> None:
        with self._cluster.cond:
            self._require_assigned(partition, "seek")
            self._positions[partition] = offset

    def committed(self, partition: TopicPartition) -> int | None:
        with self._cluster.cond:
            self._cluster.check_up("committed failed")
            if self._group is None:
                raise TransportError("committed failed: the consumer has no group id")
            return self._cluster.committed(self._group, partition)

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Commit outside a transaction; refused after a rebalance this member has not joined."""
        what = "offset commit failed"
        with self._cluster.cond:
            self._cluster.check_up(what)
            if self._group is None:
                raise TransportError(f"{what}: the consumer has no group id")
            problem = self._cluster.stale(self.group_metadata())
            if problem is not None:
                raise TransportError(f"{what}: {problem}")
            self._cluster.group(self._group).commit(offsets, None)

    def group_metadata(self) -> GroupMetadata:
        return GroupMetadata(self._group, self._generation, self._member or "")

    def close(self) -> None:
        """Leave the group (the others rebalance at their next poll); never raises."""
        with self._cluster.cond:
            if self._closed:
                return
            self._closed = True
            if self._group is not None and self._member is not None:
                self._cluster.leave(self._group, self._member)

    def _require_assigned(self, partition: TopicPartition, what: str) -> None:
        if partition not in self._assigned:
            raise TransportError(
                f"{what} failed: {partition.topic}[{partition.partition}] "
                "is not assigned to this consumer"
            )
