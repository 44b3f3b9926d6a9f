"""The worker: the only part of the pipeline that does I/O.

Order inside one transaction (exactly-once mode):
  poll raw batch → catch the consent table up to the consent topic's end →
  decode/validate/tag/gate/anonymize (pure) → add to the k-anonymity window →
  release what may leave → produce outputs, dead letters, erasure requests →
  at the commit interval: checkpoint what is still held, tombstone what left,
  send the consumed offsets to the transaction, commit.
A failed transaction is aborted and the worker rewinds to the last commit:
consumer positions from the committed offsets, the window from its checkpoint.

No record can stall the worker. Raw records over `max_raw_record_bytes` are
dead-lettered undecoded; held records too large for a checkpoint chunk are
suppressed; the window is capped in records and bytes. After `max_batch_failures`
failed transactions in a row the worker goes careful: one raw record per
transaction, so a record that still fails alone, on a reachable cluster, is known
to be the cause; it is dead-lettered (`unprocessable`) with its offset in a
transaction of its own, and the worker moves on. If even that fails, the worker
stops with exit status 1 rather than loop. The sink's reachability and residency
are re-checked by a `ClusterWatch` thread; nothing is produced or committed while
its last check failed.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Sequence

from consumers import metrics as m
from consumers.anonymization_config import load_policy
from consumers.anonymize import Anonymizer
from consumers.checkpoint import (
    CheckpointBook,
    CheckpointError,
    decode_chunk,
    decode_entry,
    entry_bytes,
    fits_checkpoint,
    source_of,
)
from consumers.cluster_watch import ClusterWatch
from consumers.consent import ConsentRules
from consumers.consent_feed import ConsentFeed
from consumers.consent_writer import ConsentWriter
from consumers.erasure import ErasureLedger
from consumers.health import HealthServer, HealthState
from consumers.kanon import DuplicatePendingError, KAnonymityWindow, PendingEntry
from consumers.pipeline import Pipeline, Rejected
from consumers.regroup import RegroupKeys
from consumers.release_policy import ReleasePlan
from consumers.residency import check_residency
from consumers.route import OutRecord, Router
from consumers.scrub import scrub
from consumers.settings import PipelineSettings
from consumers.txn import Txn
from ingest.consent_store import read_partition
from ingest.errors import TransportError
from ingest.topics import TopicSet
from ingest.transport import Consumer, ConsumerOptions, Producer, ProducerOptions, Transport
from ingest.transport.base import Message, TopicPartition
from ingest.transport.errors import FencedError
from schemas.codec import Codec
from schemas.registry import default_registry

log = logging.getLogger(__name__)

SUPPRESSED_REASON = "kanon_suppressed"
OVERSIZED_HELD_REASON = "kanon_oversized"
REDELIVERED_REASON = "redelivered_duplicate"
UNPROCESSABLE_REASON = "unprocessable"
LAG_EVERY_S = 5.0
COMPANY_GRACE_S = 10.0
"""After a restore with repartitioning, releases wait at most this long for company."""
CAREFUL_MAX_RECORDS = 5_000
"""At most this many raw records are taken one per transaction after repeated failures."""
SAFE_HELD_RAW_BYTES = 48 * 1024
"""A held record from a raw record this small always fits a checkpoint chunk (JSON
escaping grows text at most six-fold); larger ones are measured."""


class WorkerStuckError(Exception):
    """The worker cannot make progress: a record failed alone and could not be set aside."""


class Worker:
    """One pipeline process: consumer group member with its own transactional id."""

    def __init__(
        self,
        source: Transport,
        topics: TopicSet,
        settings: PipelineSettings,
        sink: Transport | None = None,
    ) -> None:
        self.settings = settings
        self.topics = topics
        self._source = source
        self._sink = sink or source
        self._codec = Codec(default_registry())
        policy = (
            load_policy(settings.anonymization_policy)
            if settings.anonymization_policy
            else (load_policy())
        )
        self._router = Router(
            self._codec, topics, {name: sp.output for name, sp in policy.schemas.items()}
        )
        constants = {
            "policy_version": policy.version,
            "min_consent_policy_version": settings.min_policy_version,
        }
        plans = {
            name: ReleasePlan(name, sp.output, sp.release, constants)
            for name, sp in policy.schemas.items()
        }
        self._pipeline = Pipeline(
            self._codec,
            ConsentRules(
                min_policy_version=settings.min_policy_version,
                guardian_age=settings.guardian_age,
                missing_birth_needs_guardian=settings.missing_birth_needs_guardian,
            ),
            Anonymizer(policy, scrub),
            settings.person_key(),
            {topics.name("raw_device"): "device_event", topics.name("raw_log"): "log_event"},
            max_raw_bytes=settings.max_raw_record_bytes,
        )
        self._kanon = KAnonymityWindow(
            plans,
            k=settings.k,
            max_delay_ms=settings.kanon_max_delay_ms,
            rng=random.SystemRandom(),
            max_held=settings.kanon_max_held,
            max_held_bytes=settings.kanon_max_held_bytes,
        )
        self._raw_topics = [topics.name("raw_device"), topics.name("raw_log")]
        # Grouping across workers (consumers.regroup): held records go through the
        # repartition topic, and the window holds what this worker takes from it.
        self._regroup_topic = topics.name("kanon_repartition")
        self._regroup: RegroupKeys | None = None
        self._held_topics = set(self._raw_topics)
        if settings.kanon_grouping == "repartition":
            spec = topics.specs["kanon_repartition"]
            self._regroup = RegroupKeys(plans, hot_share=1 / spec.partitions)
            self._held_topics = {self._regroup_topic}
        self._inputs = sorted({*self._raw_topics, *self._held_topics})
        self.health = HealthState()
        # Read at each scrape, like /readyz: a loop blocked on the cluster cannot leave it stale.
        m.READY.set_function(lambda: 1.0 if self.health.ready() else 0.0)
        self.stop_event = threading.Event()
        self._feed: ConsentFeed | None = None
        self._writer: ConsentWriter | None = None
        self._writer_thread: threading.Thread | None = None
        self._consumer: Consumer | None = None
        self._producer: Producer | None = None
        self._txn: Txn | None = None
        self._assigned: set[TopicPartition] = set()
        self._newly_assigned: list[TopicPartition] = []
        self._rebalance_lock = threading.Lock()
        self._rebalance_events: list[tuple[str, list[TopicPartition]]] = []
        self._book = CheckpointBook()
        self._erasures = ErasureLedger()
        self._last_lag = 0.0
        self.server: HealthServer | None = None
        self._watch: ClusterWatch | None = None
        self._watch_thread: threading.Thread | None = None
        self._producer_broken = False
        self._company_due: float | None = None  # hold releases until restored get company
        self._company_commits = 0
        self._took_regrouped = False
        self._failures = 0  # failed transactions since the last commit
        self._careful = 0  # raw records still to take one per transaction
        self._polled: list[Message] = []  # what the open transaction consumed, when careful

    # -- lifecycle ---------------------------------------------------------

    def run(self) -> int:
        """Run until stop_event is set; returns a process exit status."""
        s = self.settings
        if s.metrics_port is not None:
            port = s.metrics_port + s.worker_index if s.metrics_port else 0
            self.server = HealthServer(self.health, s.metrics_host, port)
            self.server.start()
            log.info("metrics endpoint up", extra={"port": self.server.port})
        m.LAST_COMMIT.set(time.time())
        try:
            if not self._wait_for_residency():
                return 0
            self._router.spread_over(self._output_partitions())
            if self._distinct_sink() and s.exactly_once:
                log.error(
                    "exactly-once needs the sink on the source cluster: one Kafka transaction "
                    "cannot span two clusters; mirror the raw topics to the sink cluster or "
                    "run with --at-least-once"
                )
                return 2
            self._feed = ConsentFeed(self._source, self.topics.name("consent"), self._codec)
            loaded = self._feed.catch_up(timeout_s=120)
            self._note_consent()
            self.health.consent_loaded = True
            log.info(
                "consent table loaded", extra={"records": loaded, "users": len(self._feed.table)}
            )
            if s.consent_writer:
                self._start_consent_writer()
            self._producer = self._new_producer()
            self._consumer = self._source.consumer(
                ConsumerOptions(
                    group_id=s.group_id,
                    read_committed=True,
                    max_poll_records=s.max_poll_records,
                    fetch_max_wait_ms=min(100, s.poll_timeout_ms),
                )
            )
            self._consumer.subscribe(self._inputs, self._on_assign, self._on_revoke)
            self._loop()
            return 0
        except FencedError:
            log.error("fenced: another worker with this transactional id took over")
            return 3
        except WorkerStuckError as exc:
            log.error("worker stopped: it cannot make progress", extra={"problem": str(exc)})
            return 1
        finally:
            self.health.stopping = True
            self._shutdown()

    def _new_producer(self) -> Producer:
        """The sink producer; in exactly-once mode its transactions are initialized, which
        fences any earlier producer of this worker's transactional id."""
        s = self.settings
        producer = self._sink.producer(
            ProducerOptions(
                transactional_id=(
                    s.transactional_id(self.topics.prefix) if s.exactly_once else None
                ),
                linger_ms=5,
                batch_size=1024 * 1024,
            )
        )
        if s.exactly_once:
            producer.init_transactions()
        return producer

    def _renew_producer(self) -> None:
        """Replace a producer that a failed send may have left in a broken state."""
        old, self._producer = self._producer, None
        if old is not None:
            try:
                old.close(0)
            except TransportError:
                log.warning("closing the old producer failed")
        self._producer = self._new_producer()
        self._producer_broken = False

    def _start_consent_writer(self) -> None:
        """Fold published consent changes in a thread of this process (consumers.consent_writer)."""
        s = self.settings
        self._writer = ConsentWriter(
            self._source,
            self.topics,
            self._codec,
            group_id=f"{s.group_id}-consent-writer",
            transactional_id=f"{s.transactional_id(self.topics.prefix)}-consent",
        )
        self._writer_thread = threading.Thread(
            target=self._writer.run, args=(self.stop_event,), name="consent-writer", daemon=True
        )
        self._writer_thread.start()

    def _distinct_sink(self) -> bool:
        """True when outputs go to another cluster than the one consumed from."""
        return self._sink is not self._source and (
            self._sink.bootstrap_servers != self._source.bootstrap_servers
        )

    def _output_partitions(self) -> dict[str, int]:
        """Partition counts of the analyst topics on the sink ({} if they cannot be read).

        Read from topic metadata by a short-lived group-less consumer: that needs
        only DESCRIBE on the topics, which the pipeline's ACLs grant.
        """
        probe = self._sink.consumer(ConsumerOptions(group_id=None))
        try:
            return {
                topic: len(probe.partitions_for(topic)) for topic in self._router.topic_of.values()
            }
        except TransportError as exc:
            log.warning(
                "analyst topics not described; the client picks partitions",
                extra={"error": str(exc)},
            )
            return {}
        finally:
            probe.close()

    def _wait_for_residency(self) -> bool:
        """Start the cluster watch; fail closed: produce nothing until the sink passes."""
        s = self.settings
        targets = self._router.targets()
        self._watch = ClusterWatch(
            self._sink,
            lambda brokers: check_residency(
                brokers, s.residency_allow, targets, self.topics.is_mainland
            ),
            self.health,
            s.residency_recheck_ms / 1000,
        )
        self._watch.request_check()
        self._watch_thread = threading.Thread(
            target=self._watch.run, args=(self.stop_event,), name="cluster-watch", daemon=True
        )
        self._watch_thread.start()
        while not self.stop_event.is_set():
            self.health.last_loop = time.monotonic()  # waiting, not stalled
            if self._watch.wait_checked(1.0):
                return True
            self.stop_event.wait(0.5)
        return False

    def _shutdown(self) -> None:
        try:
            if self._txn is not None:
                self._commit()
        except Exception:  # leaving anyway: the transaction aborts on the broker side
            log.warning("final commit failed; the open transaction will be aborted", exc_info=True)
        self.stop_event.set()
        for thread in (self._writer_thread, self._watch_thread):
            if thread is not None:
                thread.join(15)
        for closer in (self._consumer, self._feed):
            if closer is not None:
                try:
                    closer.close()
                except Exception:
                    log.warning("close failed", exc_info=True)
        if self._producer is not None:
            try:
                self._producer.close(10)
            except Exception:
                log.warning("producer close failed", exc_info=True)
        if self.server is not None:
            self.server.stop()
        log.info("worker stopped", extra=m.outcome_totals())

    # -- the loop ----------------------------------------------------------

    def _loop(self) -> None:
        s = self.settings
        assert self._consumer is not None
        interval = s.commit_interval_ms / 1000
        while not self.stop_event.is_set():
            self.health.last_loop = time.monotonic()
            if not self.health.residency_ok:
                self._hold_off()
                continue
            limit = 1 if self._careful else s.max_poll_records
            messages = self._consumer.poll(limit, s.poll_timeout_ms / 1000)
            try:
                if self._apply_rebalance():
                    # Rewound to the last commit: the positions were reset, so the
                    # records polled above will be fetched again; processing them now
                    # as well would emit them twice.
                    messages = []
                restored = bool(self._newly_assigned)
                if restored:
                    self._restore_assigned()
                    if self._regroup is not None:
                        # Company for restored records comes back through the repartition
                        # topic once stage 1 has re-sent what the last owner left
                        # uncommitted: a commit, then a batch taken from that topic.
                        self._company_due = time.monotonic() + COMPANY_GRACE_S
                        self._company_commits = 0
                        self._took_regrouped = False
                now_ms = int(time.time() * 1000)
                if messages:
                    # Records fetched before a revocation belong to the new owner now.
                    owned = self._consumer.assignment()
                    messages = [m for m in messages if (m.topic, m.partition) in owned]
                if messages:
                    if self._careful:
                        self._polled.extend(messages)
                    self._process(messages, now_ms)
                if self._company_due is not None and (
                    time.monotonic() >= self._company_due
                    or (self._company_commits > 0 and self._took_regrouped)
                ):
                    self._company_due = None
                if (not restored or messages) and self._company_due is None:
                    # Records restored past their deadline (they waited out a restart) get
                    # one polled batch of company before they leave, not an empty window.
                    self._release(now_ms)
                self._emit_erasures(now_ms)
                txn = self._txn
                if txn is not None and (
                    time.monotonic() - txn.started >= interval
                    or txn.records >= s.commit_max_records
                    or (self._careful and txn.records > 0)
                ):
                    self._commit()
            except FencedError:
                raise
            except TransportError as exc:
                self._failed("send", str(exc))
            except WorkerStuckError:
                raise
            except Exception as exc:
                # A record the stages choke on: a defect to fix, never a reason to stop.
                # Logged by class only: an exception's text may quote a personal value.
                self._failed("process", type(exc).__name__)
            self._update_ready()
            if time.monotonic() - self._last_lag > LAG_EVERY_S:
                self._update_lag()

    def _process(self, messages: Sequence[Message], now_ms: int) -> None:
        assert self._feed is not None
        self._feed.catch_up()
        self._note_consent()
        # Opened first, so the batch-duration histogram includes the processing time.
        txn = self._open_txn()
        regroup = self._regroup
        raw = messages
        if regroup is not None:
            raw = [msg for msg in messages if msg.topic != self._regroup_topic]
            regrouped = [m for m in messages if m.topic == self._regroup_topic]
            self._took_regrouped = bool(regrouped)
            self._take_regrouped(txn, regrouped)
        outcome = self._pipeline.process(raw, self._feed.table, now_ms)
        txn.add_outcome(outcome)
        for rejected in outcome.rejected:
            self._send(txn, self._router.dead_letter(rejected, now_ms))
        for entry in outcome.anonymized:
            if entry.size > SAFE_HELD_RAW_BYTES and not fits_checkpoint(entry):
                # It could not be held across a restart; nor could it ever find k peers.
                txn.dropped[OVERSIZED_HELD_REASON] += 1
                continue
            if regroup is not None:
                key = regroup.key(entry.schema, entry.record, now_ms)
                self._send(txn, OutRecord(self._regroup_topic, key, entry_bytes(entry), []))
                txn.regrouped["out"] += 1
                continue
            self._hold(txn, entry, now_ms)
        for msg in messages:
            txn.offsets[TopicPartition(msg.topic, msg.partition)] = msg.offset + 1
        txn.records += len(messages)

    def _hold(self, txn: Txn, entry: PendingEntry, now_ms: int | None) -> bool:
        """Add to the window (stamped `now_ms`, or keeping its own time when None)."""
        try:
            if now_ms is None:
                self._kanon.restore([entry])
            else:
                self._kanon.add(entry, now_ms)
        except DuplicatePendingError:
            # Only at-least-once: a redelivered record whose held copy was already
            # restored from the checkpoint. Counted, never held twice.
            txn.dropped[REDELIVERED_REASON] += 1
            return False
        txn.added[entry.pending_id] = entry
        return True

    def _take_regrouped(self, txn: Txn, messages: Sequence[Message]) -> None:
        """Hold records another stage sent to this worker's region, with their first time."""
        for msg in messages:
            try:
                entry = decode_entry(msg.value or b"")
            except CheckpointError as exc:
                rejected = Rejected(msg, "regroup", type(exc).__name__, "undecodable_held")
                txn.dead[rejected.reason] += 1
                self._send(txn, self._router.dead_letter(rejected, int(time.time() * 1000)))
                txn.regrouped["in"] += 1
                continue
            entry.source = (msg.topic, msg.partition)
            txn.regrouped["in"] += 1
            self._hold(txn, entry, None)

    def _release(self, now_ms: int) -> None:
        batch = self._kanon.release(now_ms)
        if not batch.released and not batch.suppressed:
            return
        log.info(
            "k-anonymity window released",
            extra={"released": len(batch.released), "suppressed": len(batch.suppressed)},
        )
        txn = self._open_txn()
        for released in batch.released:
            entry = released.entry
            self._send(txn, self._router.anonymized(released, now_ms))
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

    def _forget_pending(self, txn: Txn, entry: PendingEntry) -> None:
        if txn.added.pop(entry.pending_id, None) is None and entry.pending_id in self._book:
            txn.removed.add(entry.pending_id)

    def _emit_erasures(self, now_ms: int) -> None:
        ready = self._erasures.take_ready(
            {tp.partition for tp in self._assigned if tp.topic in self._raw_topics}
        )
        if not ready:
            return
        txn = self._open_txn()
        for cancellation in ready:
            self._send(
                txn, self._router.erasure(cancellation.user_id, cancellation.cancelled_at, now_ms)
            )
            txn.erased.append(cancellation)

    # -- transactions ------------------------------------------------------

    def _open_txn(self) -> Txn:
        if self._txn is None:
            if self._producer_broken:
                self._renew_producer()
            if self.settings.exactly_once:
                assert self._producer is not None
                self._producer.begin_transaction()
            assert self._consumer is not None
            # The generation the transaction began in: a commit after a rebalance fails.
            self._txn = Txn(group_metadata=self._consumer.group_metadata())
        return self._txn

    def _send(self, txn: Txn, record: OutRecord) -> None:
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

    def _commit(self) -> None:
        txn = self._txn
        if txn is None:
            return
        assert self._producer is not None and self._consumer is not None
        plan = self._book.plan(txn.added, txn.removed)
        for write in plan.writes:
            self._send(txn, self._router.checkpoint_chunk(write))
        if self.settings.exactly_once:
            if txn.offsets:
                self._producer.send_offsets_to_transaction(txn.offsets, txn.group_metadata)
            self._producer.commit_transaction()
        else:
            self._producer.flush(30)
            if txn.offsets:
                self._consumer.commit(txn.offsets)
        self._txn = None
        self._company_commits += 1
        self._book.apply(plan)
        self._erasures.committed(txn.erased)
        self._failures = 0
        self._polled = []
        if self._careful:
            self._careful = max(0, self._careful - txn.records)
            if not self._careful:
                log.info("batches succeed again: back to full batches")
        with m.UPDATE_LOCK:
            txn.apply_metrics(int(time.time() * 1000), time.monotonic() - txn.started)
            m.PENDING.set(self._kanon.pending_count)
            m.LAST_COMMIT.set(time.time())

    def _abort_and_rewind(self) -> None:
        m.TRANSACTIONS.labels("aborted").inc()
        txn, self._txn = self._txn, None
        if txn is not None and self.settings.exactly_once and self._producer is not None:
            try:
                self._producer.abort_transaction()
            except FencedError:
                raise
            except TransportError:
                # The producer is in an unknown state: a fresh one (same transactional
                # id) fences it and aborts what it left open on the broker side.
                log.error("abort failed; the producer will be renewed")
                self._producer_broken = True
        if txn is not None:
            self._erasures.aborted(txn.erased)
        assert self._consumer is not None
        # The client's own view of what it owns: callbacks may still be on their way.
        owned = set(self._consumer.assignment())
        # Held records of partitions this worker already counted as pending come back
        # from the checkpoint uncounted; those of partitions it handed off or never
        # held are counted as restored, so the accounting identity holds.
        still_counted = frozenset(owned & self._assigned)
        self._forget_held(self._assigned | owned)
        self._assigned = owned
        partitions = sorted(owned)
        self._newly_assigned = partitions
        self._restore_assigned(uncounted=still_counted)
        assert self._consumer is not None
        for tp in partitions:
            committed = self._consumer.committed(tp)
            self._consumer.seek(tp, committed if committed is not None else 0)

    # -- failures ------------------------------------------------------------

    def _failed(self, cause: str, detail: str) -> None:
        """A transaction failed: abort and rewind, back off, and find a record that fails alone.

        After `max_batch_failures` failures in a row the worker takes one raw record per
        transaction; when one of them fails that many times alone while the sink passes
        a fresh check, it is set aside as a dead letter (`_set_aside`). Failures while
        the cluster is unreachable only back off: an outage is not the record's fault.
        """
        m.BATCH_FAILURES.labels(cause).inc()
        self._failures += 1
        txn, polled = self._txn, self._polled
        # Careful: each transaction takes one polled record (it may fail before counting it).
        alone = bool(self._careful) and txn is not None and len(polled) == 1
        log.error(
            "transaction failed; rewinding",
            extra={"cause": cause, "error": detail, "failures": self._failures},
        )
        self._abort_and_rewind()
        self._polled = []
        if self._watch is not None:
            self._watch.request_check()  # a broker that restarted may have moved
        limit = self.settings.max_batch_failures
        if self._failures >= limit and not self._careful:
            self._careful = min(CAREFUL_MAX_RECORDS, max(1, txn.records if txn else 1))
            self._failures = 0
            log.warning(
                "transactions keep failing: taking one record per transaction",
                extra={"records": self._careful},
            )
            self.health.progressing = False
            return
        if alone and self._failures >= limit and self._sink_checked():
            self._set_aside(polled[0])
            return
        self.stop_event.wait(min(5.0, 0.1 * 2**self._failures))

    def _sink_checked(self) -> bool:
        """True when a check made now finds the sink reachable and passing residency."""
        if self._watch is None:
            return True
        self._watch.request_check()
        return self._watch.wait_checked(30.0)

    def _set_aside(self, msg: Message) -> None:
        """Dead-letter a raw record that fails alone, with its offset, in its own transaction."""
        now_ms = int(time.time() * 1000)
        tp = TopicPartition(msg.topic, msg.partition)
        try:
            # A clean producer: after its failures the old one may refuse any further batch.
            self._renew_producer()
            txn = self._open_txn()
            schema = self._pipeline.schema_of(msg.topic)
            if schema is not None:
                txn.consumed[schema] += 1
            txn.dead[UNPROCESSABLE_REASON] += 1
            rejected = Rejected(msg, "worker", "Unprocessable", UNPROCESSABLE_REASON)
            # Stripped: what failed may have been the record's own dead letter.
            self._send(txn, self._router.dead_letter(rejected, now_ms, strip=True))
            txn.offsets[tp] = msg.offset + 1
            txn.records += 1
            self._commit()
        except TransportError as exc:
            self._abort_and_rewind()
            raise WorkerStuckError(
                f"record {msg.topic}[{msg.partition}]@{msg.offset} fails alone and cannot "
                f"be dead-lettered: {exc}"
            ) from None
        assert self._consumer is not None
        self._consumer.seek(tp, msg.offset + 1)
        self._failures = 0
        log.error(
            "record set aside as a dead letter after failing alone",
            extra={"topic": msg.topic, "partition": msg.partition, "offset": msg.offset},
        )

    def _hold_off(self) -> None:
        """The sink failed its last check: abort what is open and wait for a passing one."""
        if self._txn is not None:
            log.error("sink failed its check: aborting the open transaction")
            self._abort_and_rewind()
        self._update_ready()
        self.stop_event.wait(0.2)

    def _forget_held(self, partitions: set[TopicPartition]) -> int:
        """Drop the window's records and chunk bookkeeping of these partitions.

        Returns how many of them the last commit checkpointed: what the partitions' next
        owner restores. Records added by a transaction that failed are not among them
        (the next owner consumes them again), nor are records that left in it.
        """
        sources = {(tp.topic, tp.partition) for tp in partitions}
        committed = self._book.held_from(sources)
        for source in sources:
            self._kanon.drop_partition(source)
        self._book.drop_sources(sources)
        return committed

    # -- rebalances ----------------------------------------------------------

    def _on_assign(self, partitions: list[TopicPartition]) -> None:
        # Called on the client's own thread (kafka-python runs listeners on its IO loop,
        # possibly after poll() returned): only record; the loop applies it.
        with self._rebalance_lock:
            self._rebalance_events.append(("assign", list(partitions)))

    def _on_revoke(self, partitions: list[TopicPartition]) -> None:
        with self._rebalance_lock:
            self._rebalance_events.append(("revoke", list(partitions)))

    def _apply_rebalance(self) -> bool:
        """Apply recorded revocations and assignments, in order, on the loop's thread.

        Before revoked partitions are let go, the open transaction is committed. Its
        offsets carry the group generation from when it began, so if the group has
        already moved on the broker rejects the commit (KIP-447) and the worker aborts
        and rewinds: the partitions' new owner then starts from the last commit.
        Returns True when it rewound.
        """
        rewound = False
        with self._rebalance_lock:
            events, self._rebalance_events = self._rebalance_events, []
        for kind, partitions in events:
            if kind == "assign":
                fresh = [tp for tp in partitions if tp not in self._assigned]
                self._assigned.update(fresh)
                self._newly_assigned.extend(fresh)
                continue
            if not partitions:
                continue
            failed = False
            if self._txn is not None:
                try:
                    self._commit()
                except FencedError:
                    raise
                except TransportError as exc:
                    log.warning("commit before revocation failed", extra={"error": str(exc)})
                    failed = True
            gone = set(partitions)
            handed_off = self._forget_held(gone)
            self._assigned.difference_update(gone)
            self._newly_assigned = [tp for tp in self._newly_assigned if tp not in gone]
            with m.UPDATE_LOCK:
                m.PENDING_HANDED_OFF.inc(handed_off)
                m.PENDING.set(self._kanon.pending_count)
            if failed:
                self._abort_and_rewind()
                rewound = True
        m.ASSIGNED.set(len(self._assigned))
        return rewound

    def _restore_assigned(self, uncounted: frozenset[TopicPartition] = frozenset()) -> None:
        """Reload held records and already-requested erasures for newly assigned partitions.

        Restored records count in `pending_restored` except those of `uncounted`
        partitions, which this worker counts as pending already.
        """
        partitions, self._newly_assigned = self._newly_assigned, []
        holding = [tp for tp in partitions if tp.topic in self._held_topics]
        wanted = {(tp.topic, tp.partition) for tp in holding}
        restored: list[PendingEntry] = []
        pending_topic = self.topics.name("kanon_pending")
        for number in sorted({tp.partition for tp in holding}):
            for key, value in read_partition(self._sink, pending_topic, number).items():
                if value is None:
                    continue
                try:
                    entries = [e for e in decode_chunk(value) if source_of(e) in wanted]
                except CheckpointError:
                    log.error("unreadable checkpoint chunk skipped", extra={"partition": number})
                    continue
                if entries:
                    self._book.load(key.decode(), entries)
                    restored.extend(entries)
        for number in sorted({tp.partition for tp in partitions if tp.topic in self._raw_topics}):
            if self._erasures.needs_loading(number):
                erased = read_partition(self._sink, self.topics.name("erasure"), number)
                self._erasures.loaded(number, (k.decode() for k in erased))
        if restored:
            self._kanon.restore(restored)
        skip = {(tp.topic, tp.partition) for tp in uncounted}
        counted = sum(1 for e in restored if source_of(e) not in skip)
        with m.UPDATE_LOCK:
            m.PENDING_RESTORED.inc(counted)
            m.PENDING.set(self._kanon.pending_count)
        log.info(
            "partitions assigned",
            extra={"partitions": len(partitions), "restored_pending": len(restored)},
        )

    # -- bookkeeping ----------------------------------------------------------

    def _note_consent(self) -> None:
        assert self._feed is not None
        self._erasures.note(self._feed.drain_cancellations())
        m.CONSENT_USERS.set(len(self._feed.table))
        m.CONSENT_LAG.set(self._feed.lag)

    def _update_ready(self) -> None:
        self.health.assigned = bool(self._assigned)
        writer = self._writer
        if writer is not None and writer.failed is not None:
            self.health.consent_writer_ok = False
        txn = self._txn
        stuck = txn is not None and (
            time.monotonic() - txn.started > self.settings.stuck_after_ms / 1000
        )
        self.health.progressing = not stuck and self._failures < self.settings.max_batch_failures

    def _update_lag(self) -> None:
        self._last_lag = time.monotonic()
        if not self._assigned or self._consumer is None:
            return
        try:
            ends = self._consumer.end_offsets(sorted(self._assigned))
            for tp, end in ends.items():
                lag = max(0, end - self._consumer.position(tp))
                m.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(lag)
        except TransportError:
            log.warning("lag update failed")
