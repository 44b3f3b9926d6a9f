"""The one owner of the commit order: what a worker's transaction writes, and when it counts.

Exactly-once mode, for each transaction:

1. begin, at the first record a batch produces, keeping the consumer group's
   generation it began in (a commit after a rebalance is then refused, KIP-447);
2. send outputs, dead letters, erasure requests and records for the repartition
   topic, each counted by topic role;
3. at commit: write the checkpoint chunks of the records still held that the last
   commit did not write, and tombstones of chunks whose records all left;
4. send the consumed offsets (raw and repartition partitions) to the transaction;
   a transaction that consumed nothing (a release) sends the owned partitions'
   positions, unchanged, so that an evicted worker's commit is refused too;
5. commit; only then do the checkpoint bookkeeping, the erasure ledger and the
   metrics move (under the metrics lock, so a scrape sees a whole commit or none).

At-least-once mode: steps 2 and 3, then flush, then commit the offsets with the
consumer. A failed transaction is aborted (`abort`); the caller rewinds its
consumer positions and window to the last commit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from consumers import metrics as m
from consumers.checkpoint import CheckpointBook
from consumers.erasure import ErasureLedger
from consumers.route import OutRecord, Router
from consumers.settings import PipelineSettings
from consumers.txn import Txn
from ingest.errors import TransportError
from ingest.kafka import Consumer, Producer, ProducerOptions, Transport
from ingest.kafka.base import TopicPartition
from ingest.kafka.errors import FencedError

log = logging.getLogger(__name__)


class Transactions:
    """The sink producer and the open transaction of one worker."""

    def __init__(
        self,
        sink: Transport,
        settings: PipelineSettings,
        transactional_id: str,
        router: Router,
        book: CheckpointBook,
        erasures: ErasureLedger,
        pending_count: Callable[[], int],
        positions: Callable[[], dict[TopicPartition, int]],
    ) -> None:
        self._sink = sink
        self._exactly_once = settings.exactly_once
        self._transactional_id = transactional_id
        self._router = router
        self._book = book
        self._erasures = erasures
        self._pending_count = pending_count
        self._positions = positions
        self._producer: Producer | None = None
        self._consumer: Consumer | None = None
        self._broken = False
        self.current: Txn | None = None
        """The open transaction, None between a commit (or abort) and the next record."""

    def start(self, consumer: Consumer) -> None:
        """Create the producer (in exactly-once mode this fences any earlier producer of
        the worker's transactional id) and bind the consumer whose offsets commit."""
        self._producer = self._new_producer()
        self._consumer = consumer

    def _new_producer(self) -> Producer:
        producer = self._sink.producer(
            ProducerOptions(
                transactional_id=self._transactional_id if self._exactly_once else None,
                linger_ms=5,
                batch_size=1024 * 1024,
            )
        )
        if self._exactly_once:
            producer.init_transactions()
        return producer

    def renew_producer(self) -> None:
        """Replace a producer that a failed send or abort may have left in a broken state."""
        old, self._producer = self._producer, None
        if old is not None:
            try:
                old.close(0)
            except TransportError:
                log.warning("closing the old producer failed")
        self._producer = self._new_producer()
        self._broken = False

    def open(self) -> Txn:
        """The open transaction; begins one if none is open (step 1)."""
        if self.current is None:
            if self._broken:
                self.renew_producer()
            if self._exactly_once:
                assert self._producer is not None
                self._producer.begin_transaction()
            assert self._consumer is not None
            self.current = Txn(group_metadata=self._consumer.group_metadata())
        return self.current

    def send(self, txn: Txn, record: OutRecord) -> None:
        """Produce one record in `txn`, counted by its topic's role (step 2)."""
        assert self._producer is not None
        self._producer.send(
            record.topic,
            record.value,
            key=record.key,
            headers=record.headers,
            partition=record.partition,
            timestamp_ms=record.timestamp_ms,
        )
        txn.produced[self._router.role_of_topic[record.topic]] += 1

    def commit(self) -> Txn | None:
        """Steps 3 to 5; returns the committed transaction (None if none was open).

        Raises what the client raises; the transaction then stays open for `abort`.
        """
        txn = self.current
        if txn is None:
            return None
        assert self._producer is not None and self._consumer is not None
        plan = self._book.plan(txn.added, txn.removed)
        for write in plan.writes:
            self.send(txn, self._router.checkpoint_chunk(write))
        if self._exactly_once:
            # Offsets go with every transaction, also a release that consumed nothing:
            # the broker checks the group generation only against offsets (KIP-447), so
            # a worker the group has evicted is refused here instead of releasing
            # records their new owner has restored and releases too.
            offsets = txn.offsets or self._positions()
            if offsets:
                self._producer.send_offsets_to_transaction(offsets, txn.group_metadata)
            self._producer.commit_transaction()
        else:
            self._producer.flush(30)
            if txn.offsets:
                self._consumer.commit(txn.offsets)
        self.current = None
        self._book.apply(plan)
        self._erasures.committed(txn.erased)
        with m.UPDATE_LOCK:
            txn.apply_metrics(int(time.time() * 1000), time.monotonic() - txn.started)
            m.PENDING.set(self._pending_count())
            m.LAST_COMMIT.set(time.time())
        if txn.suppressed:
            # The only durable trace of a suppression: its records leave no output, and a
            # killed worker's counters die with it.
            log.info("k-anonymity suppression committed", extra={"suppressed": txn.suppressed})
        return txn

    def abort(self) -> None:
        """Abort the open transaction, if any; its erasure requests will be sent again."""
        m.TRANSACTIONS.labels("aborted").inc()
        txn, self.current = self.current, None
        if txn is not None and self._exactly_once and self._producer is not None:
            try:
                self._producer.abort_transaction()
            except FencedError:
                raise
            except TransportError:
                # The producer is in an unknown state: a fresh one (same transactional
                # id) fences it and aborts what it left open on the broker side.
                log.error("abort failed; the producer will be renewed")
                self._broken = True
        if txn is not None:
            self._erasures.aborted(txn.erased)

    def close(self) -> None:
        """Release the producer."""
        if self._producer is not None:
            try:
                self._producer.close(10)
            except Exception:
                log.warning("producer close failed", exc_info=True)
