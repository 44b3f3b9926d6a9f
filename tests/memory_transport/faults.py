"""Fault hooks of the in-memory Kafka: commits to fail or hold, deliveries to fail.

`MemoryCluster` keeps them and consults them with its lock held.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.memory_transport.cluster import Transaction


@dataclass(slots=True)
class CommitClaim:
    """Which commits a fault hook claims: of one transactional id, writing to some topics,
    with or without consumer offsets."""

    transactional_id: str | None
    writing_to: frozenset[str]
    with_offsets: bool | None = None
    left: int = 1
    """Failures still to inject (fail_commits), or 1 while paused (CommitPause)."""

    def matches(self, txn: Transaction) -> bool:
        if self.left <= 0:
            return False
        if self.transactional_id is not None and txn.transactional_id != self.transactional_id:
            return False
        if self.with_offsets is not None and bool(txn.offsets) != self.with_offsets:
            return False
        return not self.writing_to or any(tp.topic in self.writing_to for tp, _ in txn.writes)


class CommitPause:
    """Holds matching `commit_transaction` calls (their threads blocked) until `resume`."""

    def __init__(self, cond: threading.Condition, commits: CommitClaim) -> None:
        self._cond = cond
        self._commits = commits
        self._waiting = 0
        self.held: list[Transaction] = []
        """The transactions whose commit it held, in order."""

    @property
    def waiting(self) -> int:
        """How many commits it holds now."""
        with self._cond:
            return self._waiting

    def hold(self, txn: Transaction) -> bool:
        """Block while paused if it claims `txn` (with `cond` held; it is let go meanwhile)."""
        if not self._commits.matches(txn):
            return False
        self.held.append(txn)
        self._waiting += 1
        self._cond.notify_all()
        while self._commits.left > 0:
            self._cond.wait()
        self._waiting -= 1
        return True

    def resume(self) -> None:
        """Let the held commits proceed, each checked afresh; later ones are not held."""
        with self._cond:
            self._commits.left = 0
            self._cond.notify_all()


@dataclass(slots=True)
class DeliveryFault:
    """The next `left` records sent (to `topic`, or to any) fail."""

    left: int
    topic: str | None
