"""One polled batch through the stages, into the open transaction: the data path of a worker.

    raw records ── decode, validate, tag, consent-gate, anonymize (consumers.pipeline)
        │             └─ rejected ──────────────────────────────→ dead-letter topic
        ├─ repartitioned grouping: held records bundled by key ─→ repartition topic
        └─ local grouping: held record ──┐
    repartition records (stage 2) ───────┴─→ k-anonymity window (consumers.kanon)
    window, at its deadline ── released groups ─────────────────→ analyst topics
                             └─ suppressed (counted)
    cancelled accounts, once their partition is owned ──────────→ erasure topic

Everything is produced in the open transaction of `consumers.transactions`, and
counted in it; nothing counts until it commits.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from consumers.checkpoint import CheckpointBook
from consumers.consent_table import ConsentTable
from consumers.erasure import ErasureLedger
from consumers.held import HeldRecordError, bundle_size
from consumers.kanon import DuplicatePendingError, KAnonymityWindow, PendingEntry
from consumers.pipeline import Pipeline, Rejected
from consumers.regroup import RegroupKeys
from consumers.route import OutRecord, Router
from consumers.transactions import Transactions
from consumers.txn import Txn
from ingest.kafka.base import Message, TopicPartition

log = logging.getLogger(__name__)

SUPPRESSED_REASON = "kanon_suppressed"
OVERSIZED_HELD_REASON = "kanon_oversized"
REDELIVERED_REASON = "redelivered_duplicate"
SAFE_HELD_RAW_BYTES = 48 * 1024
"""A held record from a raw record this small always fits a checkpoint chunk (JSON
escaping grows text at most six-fold); larger ones are measured (`CheckpointBook.fits`)."""


class BatchStages:
    """The stages a worker runs on each batch, writing into its open transaction."""

    def __init__(
        self,
        pipeline: Pipeline,
        router: Router,
        window: KAnonymityWindow,
        regroup: RegroupKeys | None,
        regroup_topic: str,
        transactions: Transactions,
        book: CheckpointBook,
        erasures: ErasureLedger,
    ) -> None:
        self._pipeline = pipeline
        self._router = router
        self._window = window
        self._regroup = regroup
        self._regroup_topic = regroup_topic
        self._txns = transactions
        self._book = book
        self._erasures = erasures
        self._taken = (0, 0)
        """The last processed batch's records, and the raw and held records they carried
        (a bundle counts its held records); read once by `next_poll_limit`."""

    def process(self, messages: Sequence[Message], table: ConsentTable, now_ms: int) -> bool:
        """Run a polled batch through the stages; True when it had repartitioned records."""
        # Opened first, so the batch-duration histogram includes the processing time.
        txn = self._txns.open()
        regroup, held = self._regroup, self._book.codec
        raw = messages
        took_regrouped = False
        if regroup is not None:
            raw = [msg for msg in messages if msg.topic != self._regroup_topic]
            regrouped = [m for m in messages if m.topic == self._regroup_topic]
            took_regrouped = bool(regrouped)
            carried = len(raw) + self._take_regrouped(txn, regrouped)
        else:
            carried = len(raw)
        outcome = self._pipeline.process(raw, table, now_ms)
        txn.add_outcome(outcome)
        for rejected in outcome.rejected:
            self._txns.send(txn, self._router.dead_letter(rejected, now_ms))
        by_key: dict[bytes, list[bytes]] = {}
        for entry in outcome.anonymized:
            if entry.size > SAFE_HELD_RAW_BYTES and not self._book.fits(entry):
                # It could not be held across a restart; nor could it ever find k peers.
                txn.dropped[OVERSIZED_HELD_REASON] += 1
                continue
            if regroup is not None:
                # The level-0 values are computed once: for the key, the bytes and,
                # carried in them, the window of the worker that groups the record.
                key = regroup.key(entry.schema, held.level0(entry), now_ms)
                lines = by_key.get(key)
                if lines is None:
                    lines = by_key[key] = []
                lines.append(held.encode(entry))
                continue
            self._hold(txn, entry, now_ms)
        for key, lines in by_key.items():
            partition = regroup.partition(key) if regroup is not None else None
            for value in held.bundles(lines):
                self._txns.send(txn, OutRecord(self._regroup_topic, key, value, [], partition))
            txn.regrouped["out"] += len(lines)
        for msg in messages:
            txn.offsets[TopicPartition(msg.topic, msg.partition)] = msg.offset + 1
        txn.records += len(messages)
        self._taken = (len(messages), carried)
        return took_regrouped

    def _hold(self, txn: Txn, entry: PendingEntry, now_ms: int | None) -> bool:
        """Add to the window (stamped `now_ms`, or keeping its own time when None)."""
        try:
            if now_ms is None:
                self._window.restore([entry])
            else:
                self._window.add(entry, now_ms)
        except DuplicatePendingError:
            # Only at-least-once: a redelivered record whose held copy was already
            # restored from the checkpoint. Counted, never held twice.
            txn.dropped[REDELIVERED_REASON] += 1
            return False
        txn.added[entry.pending_id] = entry
        return True

    def _take_regrouped(self, txn: Txn, messages: Sequence[Message]) -> int:
        """Hold records another stage sent to this worker's region, with their first time;
        returns how many held records the bundles carried.

        A bundle that cannot be read is dead-lettered whole, as one record, and counted
        once per held record it carried, as the sender counted them out.
        """
        taken = 0
        decode = self._book.codec.decode_bundle
        for msg in messages:
            try:
                entries = decode(msg.value or b"", (msg.topic, msg.partition))
            except HeldRecordError as exc:
                rejected = Rejected(msg, "regroup", type(exc).__name__, exc.reason)
                taken += self.count_dead_letter(txn, msg, rejected.reason)
                self._txns.send(txn, self._router.dead_letter(rejected, int(time.time() * 1000)))
                continue
            txn.regrouped["in"] += len(entries)
            taken += len(entries)
            for entry in entries:
                self._hold(txn, entry, None)
        return taken

    def count_dead_letter(self, txn: Txn, msg: Message, reason: str) -> int:
        """Count a record dead-lettered whole, unread or set aside (consumers.narrowing): a
        raw record as consumed; a repartition record's held records as taken from the hop,
        as the worker that sent them counted them out. Each counts as one dead letter;
        returns how many that is."""
        schema = self._pipeline.schema_of(msg.topic)
        carried = 1
        if schema is not None:
            txn.consumed[schema] += 1
        elif self._regroup is not None and msg.topic == self._regroup_topic:
            carried = bundle_size(msg.value or b"")
            txn.regrouped["in"] += carried
        txn.dead[reason] += carried
        return carried

    def next_poll_limit(self, limit: int) -> int:
        """`poll_limit` judged by the last processed batch, once: after a poll that took
        nothing (or failed) the usual limit holds again."""
        records, carried = self._taken
        self._taken = (0, 0)
        return self.poll_limit(limit, records, carried)

    @staticmethod
    def poll_limit(limit: int, records: int, entries: int) -> int:
        """How many records the next poll may take so that its batch holds about `limit`
        held and raw records, judged by the last poll (`records` records that carried
        `entries`): a repartition record carries a bundle of held records, so a backlog
        of bundles is taken in batches of the usual work, not `limit` bundles at once."""
        if records <= 0 or entries <= records:
            return limit
        return max(1, limit * records // entries)

    def release(self, now_ms: int) -> bool:
        """Let out what the window's deadline allows: released groups and suppressed
        records; True when anything left."""
        batch = self._window.release(now_ms)
        if not batch.released and not batch.suppressed:
            return False
        log.info(
            "k-anonymity window released",
            extra={"released": len(batch.released), "suppressed": len(batch.suppressed)},
        )
        txn = self._txns.open()
        for released in batch.released:
            entry = released.entry
            self._txns.send(txn, self._router.anonymized(released, now_ms))
            txn.forwarded[entry.schema] += 1
            txn.generalized.update(released.generalized)
            if entry.raw_timestamp_ms >= 0:
                txn.e2e_base.append((entry.raw_timestamp_ms, now_ms - entry.added_ms))
            self._forget_pending(txn, entry)
        for entry in batch.suppressed:
            txn.dropped[SUPPRESSED_REASON] += 1
            txn.suppressed += 1
            self._forget_pending(txn, entry)
        txn.hold_ms.extend(batch.hold_times)
        if batch.capped_released:
            txn.capped["released"] += batch.capped_released
        if batch.capped_suppressed:
            txn.capped["suppressed"] += batch.capped_suppressed
        return True

    def _forget_pending(self, txn: Txn, entry: PendingEntry) -> None:
        if txn.added.pop(entry.pending_id, None) is None and entry.pending_id in self._book:
            txn.removed.add(entry.pending_id)

    def emit_erasures(self, owned_raw_partitions: set[int], now_ms: int) -> None:
        """Send the erasure requests of cancelled accounts whose raw partition is owned."""
        ready = self._erasures.take_ready(owned_raw_partitions)
        if not ready:
            return
        txn = self._txns.open()
        for cancellation in ready:
            self._txns.send(
                txn, self._router.erasure(cancellation.user_id, cancellation.cancelled_at, now_ms)
            )
            txn.erased.append(cancellation)
