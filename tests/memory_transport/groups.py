"""Consumer groups of the in-memory Kafka: members, the eager rebalance, committed offsets.

A member joining, leaving or resubscribing starts a rebalance. The generation stays
what it was until every member has rejoined (each does so inside its next `poll`,
after revoking all its partitions) or the rebalance timeout has evicted the members
that did not (the longest `max_poll_interval_ms` of the members, or at once with
`MemoryCluster.expire_rebalance`). Then the generation moves on and each subscribed
topic's partitions are given out in ranges over its members, in member id order. As
in Kafka, offsets are accepted from a member of the current generation, also while a
rebalance is on, and refused from any other (KIP-447).

Plain state, no lock: `MemoryCluster` calls it with its own lock held.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ingest.kafka.base import TopicPartition

if TYPE_CHECKING:
    from tests.memory_transport.cluster import Transaction


@dataclass(frozen=True, slots=True)
class GroupMetadata:
    """What a consumer hands a transaction: its group, generation and member id.

    A consumer outside any group (group-less, or `assign` only) has generation -1 and
    member id "": its offsets are accepted whatever the group does, as Kafka accepts a
    standalone consumer's.
    """

    group_id: str | None
    generation: int = -1
    member_id: str = ""


@dataclass(frozen=True, slots=True)
class OffsetCommit:
    """Offsets a group committed: by a transaction, or by a consumer's own `commit`."""

    transaction: Transaction | None
    offsets: Mapping[TopicPartition, int]


@dataclass(slots=True)
class Group:
    """One consumer group's members, generation, assignment and committed offsets."""

    generation: int = 0
    members: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Each member's subscribed topics."""
    timeouts: dict[str, float] = field(default_factory=dict)
    assignment: dict[str, frozenset[TopicPartition]] = field(default_factory=dict)
    joined: set[str] | None = None
    """While a rebalance is on: the members that have rejoined for the next generation."""
    deadline: float = 0.0
    committed: dict[TopicPartition, int] = field(default_factory=dict)
    commits: list[OffsetCommit] = field(default_factory=list)

    def join(
        self,
        member_id: str,
        topics: Iterable[str],
        timeout_s: float,
        partitions: Mapping[str, int],
    ) -> None:
        """A member (re)joins for the next generation, starting a rebalance if none is on."""
        self.members[member_id] = tuple(topics)
        self.timeouts[member_id] = timeout_s
        self.start_rebalance()
        assert self.joined is not None
        self.joined.add(member_id)
        self.complete_if_ready(partitions)

    def leave(self, member_id: str, partitions: Mapping[str, int]) -> None:
        """A member leaves: the others rebalance (at once when it was the last)."""
        if self.members.pop(member_id, None) is None:
            return
        self.timeouts.pop(member_id, None)
        if self.joined is not None:
            self.joined.discard(member_id)
        self.start_rebalance()
        self.complete_if_ready(partitions)

    def start_rebalance(self) -> None:
        """Every member must rejoin; the timeout runs from now."""
        if self.joined is None:
            self.joined = set()
            self.deadline = time.monotonic() + max(self.timeouts.values(), default=0.0)

    def must_rejoin(self, member_id: str, partitions: Mapping[str, int]) -> bool:
        """True when the member has to join (again): evicted, or a rebalance is on without it."""
        self.complete_if_ready(partitions)
        if member_id not in self.members:
            return True
        return self.joined is not None and member_id not in self.joined

    def settled(self, member_id: str) -> tuple[int, frozenset[TopicPartition]] | None:
        """The generation and the member's partitions, once no rebalance waits; else None."""
        if self.joined is not None or member_id not in self.members:
            return None
        return self.generation, self.assignment.get(member_id, frozenset())

    def expire(self, partitions: Mapping[str, int]) -> None:
        """The rebalance timeout runs out now."""
        if self.joined is not None:
            self.deadline = 0.0
            self.complete_if_ready(partitions)

    def complete_if_ready(self, partitions: Mapping[str, int]) -> bool:
        """Move to the next generation once all rejoined, or evict the late at the timeout."""
        if self.joined is None:
            return False
        if not set(self.members) <= self.joined and time.monotonic() < self.deadline:
            return False
        for late in set(self.members) - self.joined:
            del self.members[late]
            self.timeouts.pop(late, None)
        self.joined = None
        self.generation += 1
        self._assign(partitions)
        return True

    def stale(self, metadata: GroupMetadata) -> str | None:
        """Why a member's offsets are refused (its generation is over), or None."""
        if not metadata.member_id:
            return None
        if metadata.member_id not in self.members:
            return f"member {metadata.member_id} is not in group {metadata.group_id}"
        if metadata.generation != self.generation:
            return (
                f"group {metadata.group_id} rebalanced: generation {metadata.generation}, "
                f"now {self.generation}"
            )
        return None

    def commit(self, offsets: Mapping[TopicPartition, int], txn: Transaction | None) -> None:
        self.committed.update(offsets)
        self.commits.append(OffsetCommit(txn, dict(offsets)))

    def _assign(self, partitions: Mapping[str, int]) -> None:
        """Each topic's partitions in ranges over its members (Kafka's range assignor)."""
        assigned: dict[str, set[TopicPartition]] = {m: set() for m in self.members}
        for topic in sorted({t for topics in self.members.values() for t in topics}):
            count = partitions.get(topic, 0)
            members = sorted(m for m, topics in self.members.items() if topic in topics)
            each, extra = divmod(count, len(members))
            start = 0
            for index, member in enumerate(members):
                share = each + (1 if index < extra else 0)
                assigned[member].update(
                    TopicPartition(topic, p) for p in range(start, start + share)
                )
                start += share
        self.assignment = {m: frozenset(parts) for m, parts in assigned.items()}
