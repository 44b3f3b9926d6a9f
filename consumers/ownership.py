"""Which partitions a worker owns, and what moves with them: rebalances, restores, rewinds.

The consumer group hands partitions to workers. Each raw partition carries the
erasure requests of its users; each partition whose records the worker holds in
its k-anonymity window (the repartition partitions, or the raw ones with local
grouping) carries those held records, checkpointed at every commit.

- **Revoked**: the open transaction is committed first, so the next owner starts
  where this worker stopped; then the partitions' held records are dropped here
  (counted as handed off: the next owner restores them from the checkpoint).
  A commit the group refuses (it moved on) means abort and rewind instead.
- **Assigned**: held records and erasure requests are restored from their
  compacted topics before the partitions' records are processed.
- **Rewind** (after an aborted transaction): what the window held of every owned
  partition is dropped and restored from the last checkpoint, and the consumer
  goes back to the committed offsets.

Client callbacks only record events (kafka-python runs them on its own thread);
the worker's loop applies them in order with `apply`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from consumers import metrics as m
from consumers.checkpoint import CheckpointBook, source_of
from consumers.erasure import ErasureLedger
from consumers.held import HeldRecordError
from consumers.kanon import KAnonymityWindow, PendingEntry
from ingest.errors import TransportError
from ingest.kafka import Consumer, Transport
from ingest.kafka.base import TopicPartition
from ingest.kafka.consent_store import read_partition
from ingest.kafka.errors import FencedError
from ingest.kafka.topics import TopicSet

log = logging.getLogger(__name__)


class Ownership:
    """The partitions one worker owns, and the held state and erasures that go with them."""

    def __init__(
        self,
        sink: Transport,
        topics: TopicSet,
        raw_topics: list[str],
        held_topics: set[str],
        window: KAnonymityWindow,
        book: CheckpointBook,
        erasures: ErasureLedger,
    ) -> None:
        self._sink = sink
        self._topics = topics
        self._raw_topics = raw_topics
        self._held_topics = held_topics
        self._window = window
        self._book = book
        self._erasures = erasures
        self.assigned: set[TopicPartition] = set()
        self.newly_assigned: list[TopicPartition] = []
        """Assigned since the last restore: their held records are still to be loaded."""
        self._lock = threading.Lock()
        self._events: list[tuple[str, list[TopicPartition]]] = []

    # -- client callbacks (any thread) ---------------------------------------

    def on_assign(self, partitions: list[TopicPartition]) -> None:
        """Record an assignment; the loop applies it."""
        with self._lock:
            self._events.append(("assign", list(partitions)))

    def on_revoke(self, partitions: list[TopicPartition]) -> None:
        """Record a revocation; the loop applies it."""
        with self._lock:
            self._events.append(("revoke", list(partitions)))

    # -- the loop's thread ---------------------------------------------------

    def raw_partitions(self) -> set[int]:
        """Numbers of the raw partitions owned (where erasure requests are emitted)."""
        return {tp.partition for tp in self.assigned if tp.topic in self._raw_topics}

    def apply(
        self,
        commit: Callable[[], None],
        has_open: Callable[[], bool],
        abort_and_rewind: Callable[[], None],
    ) -> bool:
        """Apply recorded revocations and assignments, in order.

        Before revoked partitions are let go, the open transaction is committed
        (`commit`). Its offsets carry the group generation from when it began, so if
        the group has already moved on the broker rejects the commit (KIP-447) and the
        worker aborts and rewinds (`abort_and_rewind`) right there: the partitions' new
        owner starts from the last commit. Returns True when it rewound.
        """
        rewound = False
        with self._lock:
            events, self._events = self._events, []
        for kind, partitions in events:
            if kind == "assign":
                fresh = [tp for tp in partitions if tp not in self.assigned]
                self.assigned.update(fresh)
                self.newly_assigned.extend(fresh)
                continue
            if not partitions:
                continue
            failed = False
            if has_open():
                try:
                    commit()
                except FencedError:
                    raise
                except TransportError as exc:
                    log.warning("commit before revocation failed", extra={"error": str(exc)})
                    failed = True
            gone = set(partitions)
            handed_off = self.forget_held(gone)
            self.assigned.difference_update(gone)
            self.newly_assigned = [tp for tp in self.newly_assigned if tp not in gone]
            with m.UPDATE_LOCK:
                m.PENDING_HANDED_OFF.inc(handed_off)
                m.PENDING.set(self._window.pending_count)
            if failed:
                abort_and_rewind()
                rewound = True
        m.ASSIGNED.set(len(self.assigned))
        return rewound

    def forget_held(self, partitions: set[TopicPartition]) -> int:
        """Drop the window's records and chunk bookkeeping of these partitions.

        Returns how many of them the last commit checkpointed: what the partitions' next
        owner restores. Records added by a transaction that failed are not among them
        (the next owner consumes them again), nor are records that left in it.
        """
        sources = {(tp.topic, tp.partition) for tp in partitions}
        committed = self._book.held_from(sources)
        for source in sources:
            self._window.drop_partition(source)
        self._book.drop_sources(sources)
        return committed

    def restore_assigned(self, uncounted: frozenset[TopicPartition] = frozenset()) -> None:
        """Reload held records and already-requested erasures for newly assigned partitions.

        Restored records count in `pending_restored` except those of `uncounted`
        partitions, which this worker counts as pending already.
        """
        partitions, self.newly_assigned = self.newly_assigned, []
        holding = [tp for tp in partitions if tp.topic in self._held_topics]
        wanted = {(tp.topic, tp.partition) for tp in holding}
        restored: list[PendingEntry] = []
        pending_topic = self._topics.name("kanon_pending")
        for number in sorted({tp.partition for tp in holding}):
            for key, value in read_partition(self._sink, pending_topic, number).items():
                if value is None:
                    continue
                try:
                    entries = [e for e in self._book.read(value) if source_of(e) in wanted]
                except HeldRecordError:
                    log.error("unreadable checkpoint chunk skipped", extra={"partition": number})
                    continue
                if entries:
                    self._book.load(key.decode(), entries)
                    restored.extend(entries)
        for number in sorted({tp.partition for tp in partitions if tp.topic in self._raw_topics}):
            if self._erasures.needs_loading(number):
                erased = read_partition(self._sink, self._topics.name("erasure"), number)
                self._erasures.loaded(number, (k.decode() for k in erased))
        if restored:
            self._window.restore(restored)
        skip = {(tp.topic, tp.partition) for tp in uncounted}
        counted = sum(1 for e in restored if source_of(e) not in skip)
        with m.UPDATE_LOCK:
            m.PENDING_RESTORED.inc(counted)
            m.PENDING.set(self._window.pending_count)
        log.info(
            "partitions assigned",
            extra={"partitions": len(partitions), "restored_pending": len(restored)},
        )

    def rewind(self, consumer: Consumer) -> None:
        """Back to the last commit, after an abort: held state and consumer positions."""
        # The client's own view of what it owns: callbacks may still be on their way.
        owned = set(consumer.assignment())
        # Held records of partitions this worker already counted as pending come back
        # from the checkpoint uncounted; those of partitions it handed off or never
        # held are counted as restored, so the accounting identity holds.
        still_counted = frozenset(owned & self.assigned)
        self.forget_held(self.assigned | owned)
        self.assigned = owned
        partitions = sorted(owned)
        self.newly_assigned = partitions
        self.restore_assigned(uncounted=still_counted)
        for tp in partitions:
            committed = consumer.committed(tp)
            consumer.seek(tp, committed if committed is not None else 0)


COMPANY_GRACE_S = 10.0
"""After a restore with repartitioning, releases wait at most this long for company."""


class CompanyWait:
    """After a restore with repartitioning, the window's releases wait for company.

    Records restored past their deadline (they waited out a restart or a handover)
    would otherwise leave at once, alone. Their company comes back through the
    repartition topic once stage 1 has re-sent what the last owner left uncommitted:
    releases wait for a commit and then a batch taken from that topic, or for
    COMPANY_GRACE_S, whichever comes first.
    """

    def __init__(self) -> None:
        self._due: float | None = None
        self._commits = 0
        self._took_regrouped = False

    def restored(self) -> None:
        """Held records were restored: start waiting."""
        self._due = time.monotonic() + COMPANY_GRACE_S
        self._commits = 0
        self._took_regrouped = False

    def committed(self) -> None:
        """A transaction committed."""
        self._commits += 1

    def took(self, regrouped: bool) -> None:
        """A batch was processed; `regrouped` when it had repartition records."""
        self._took_regrouped = regrouped

    def waiting(self) -> bool:
        """True while releases must still wait."""
        if self._due is not None and (
            time.monotonic() >= self._due or (self._commits > 0 and self._took_regrouped)
        ):
            self._due = None
        return self._due is not None
