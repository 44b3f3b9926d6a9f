"""The worker: the only part of the pipeline that does I/O, and its loop.

Before the loop (consumers/startup.py): the stages built from the policy, the
cluster watch and a passing sink, the consent table, the consent writer, the clients.

One turn of the loop, each step in its own file:
  1. apply rebalances: commit before letting partitions go, restore held records
     and erasures of new ones (consumers/ownership.py);
  2. poll a batch of raw and repartition records;
  3. catch the consent table up to the consent topic's end (consumers/consent_feed.py);
  4. run the batch through the stages into the open transaction: decode, validate,
     tag, consent-gate, anonymize (consumers/pipeline.py), send held records to the
     repartition topic or hold them, dead-letter the rejected (consumers/batch.py);
  5. release what the k-anonymity window's deadline allows (consumers/kanon.py);
  6. send the erasure requests of cancelled accounts (consumers/erasure.py);
  7. at the commit interval: checkpoint what is still held, send the consumed
     offsets, commit (consumers/transactions.py, which writes the order down).
A failed transaction is aborted and the worker rewinds to the last commit:
consumer positions from the committed offsets, the window from its checkpoint.

No record can stall the worker. Raw records over `max_raw_record_bytes` are
dead-lettered undecoded; held records too large for a checkpoint chunk are
suppressed; the window is capped in records and bytes. After `max_batch_failures`
failed transactions in a row the worker goes careful (consumers/narrowing.py):
one raw record per transaction, so a record that still fails alone, on a
reachable cluster, is known to be the cause; it is dead-lettered (`unprocessable`)
with its offset in a transaction of its own, and the worker moves on. If even that
fails, the worker stops with exit status 1 rather than loop. The sink's
reachability and residency are re-checked by a `ClusterWatch` thread; nothing is
produced or committed while its last check failed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from consumers import metrics as m
from consumers import startup
from consumers.batch import BatchStages
from consumers.checkpoint import CheckpointBook
from consumers.cluster_watch import ClusterWatch
from consumers.consent_feed import ConsentFeed
from consumers.consent_writer import ConsentWriter
from consumers.erasure import ErasureLedger
from consumers.health import HealthServer, HealthState
from consumers.held import HeldCodec
from consumers.narrowing import Narrowing, Next
from consumers.ownership import CompanyWait, Ownership
from consumers.pipeline import Rejected
from consumers.regroup import RegroupKeys
from consumers.settings import PipelineSettings
from consumers.transactions import Transactions
from ingest.errors import TransportError
from ingest.kafka import Consumer, Transport
from ingest.kafka.base import Message, TopicPartition
from ingest.kafka.errors import FencedError
from ingest.kafka.topics import TopicSet
from schemas.codec import Codec
from schemas.registry import default_registry

log = logging.getLogger(__name__)

UNPROCESSABLE_REASON = "unprocessable"
LAG_EVERY_S = 5.0


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
        *,
        settle_heap: bool = False,
    ) -> None:
        """`settle_heap`: tune this process's garbage collector once the consent table is
        read (`consumers.startup.settle_heap`); for a worker that owns its process."""
        self.settings = settings
        self._settle_heap = settle_heap
        self.topics = topics
        self._source = source
        self._sink = sink or source
        self._codec = Codec(default_registry())
        parts = startup.build_parts(settings, topics, self._codec)
        self._router, self._pipeline, self._kanon = parts.router, parts.pipeline, parts.window
        plans = parts.plans
        raw_topics = [topics.name("raw_device"), topics.name("raw_log")]
        # Grouping across workers (consumers.regroup): held records go through the
        # repartition topic, and the window holds what this worker takes from it.
        regroup_topic = topics.name("kanon_repartition")
        regroup: RegroupKeys | None = None
        held_topics = set(raw_topics)
        if settings.kanon_grouping == "repartition":
            spec = topics.specs["kanon_repartition"]
            regroup = RegroupKeys(plans, hot_share=1 / spec.partitions)
            held_topics = {regroup_topic}
        self._regroup = regroup
        self._inputs = sorted({*raw_topics, *held_topics})
        book = CheckpointBook(HeldCodec(plans, form=settings.held_format))
        erasures = ErasureLedger()
        self._erasures = erasures
        self._txns = Transactions(
            self._sink,
            settings,
            settings.transactional_id(topics.prefix),
            self._router,
            book,
            erasures,
            lambda: self._kanon.pending_count,
            self._positions,
        )
        self._owned = Ownership(
            self._sink, topics, raw_topics, held_topics, self._kanon, book, erasures
        )
        self._stages = BatchStages(
            self._pipeline,
            self._router,
            self._kanon,
            regroup,
            regroup_topic,
            self._txns,
            book,
            erasures,
        )
        self.health = HealthState()
        # Read at each scrape, like /readyz: a loop blocked on the cluster cannot leave it stale.
        m.READY.set_function(lambda: 1.0 if self.health.ready() else 0.0)
        self.stop_event = threading.Event()
        self._feed: ConsentFeed | None = None
        self._writer: ConsentWriter | None = None
        self._writer_thread: threading.Thread | None = None
        self._consumer: Consumer | None = None
        self._last_lag = 0.0
        self.server: HealthServer | None = None
        self._watch: ClusterWatch | None = None
        self._watch_thread: threading.Thread | None = None
        self._company = CompanyWait()
        self._narrowing = Narrowing(settings.max_batch_failures)
        self._rewind_due = False  # a rewind whose checkpoint read failed

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
            self._watch = startup.cluster_watch(
                self._sink, s, self._router, self.topics, self.health
            )
            self._watch_thread = startup.in_thread(
                self._watch.run, self.stop_event, "cluster-watch"
            )
            if not startup.wait_for_sink(self._watch, self.health, self.stop_event):
                return 0
            repartition = self.topics.name("kanon_repartition")
            counts = startup.output_partitions(
                self._sink, [*self._router.topic_of.values(), repartition]
            )
            self._router.spread_over(counts)
            if self._regroup is not None:
                self._regroup.place(counts.get(repartition))
            if startup.distinct_sink(self._source, self._sink) and s.exactly_once:
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
            if self._settle_heap:
                startup.settle_heap()
            log.info(
                "consent table loaded", extra={"records": loaded, "users": len(self._feed.table)}
            )
            if s.consent_writer:
                self._writer = startup.consent_writer(self._source, self.topics, self._codec, s)
                self._writer_thread = startup.in_thread(
                    self._writer.run, self.stop_event, "consent-writer"
                )
            self._consumer = startup.input_consumer(self._source, s)
            self._txns.start(self._consumer)
            if not startup.wait_for_inputs(
                self._consumer, self._inputs, self.health, self.stop_event
            ):
                return 0
            self._consumer.subscribe(self._inputs, self._owned.on_assign, self._owned.on_revoke)
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

    def _shutdown(self) -> None:
        try:
            if self._txns.current is not None:
                self._commit()
        except Exception:  # leaving anyway: the transaction aborts on the broker side
            log.warning("final commit failed; the open transaction will be aborted", exc_info=True)
        self.stop_event.set()
        if self._watch is not None:
            self._watch.wake()  # not a whole recheck interval's wait at shutdown
        for thread in (self._writer_thread, self._watch_thread):
            if thread is not None:
                thread.join(15)
        for closer in (self._consumer, self._feed):
            if closer is not None:
                try:
                    closer.close()
                except Exception:
                    log.warning("close failed", exc_info=True)
        self._txns.close()
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
            if self._rewind_due:
                self._rewind()
                if self._rewind_due:
                    self._update_ready()
                    self.stop_event.wait(self._narrowing.back_off_s())
                    continue
            limit = self._stages.next_poll_limit(self._narrowing.poll_limit(s.max_poll_records))
            messages = self._consumer.poll(limit, s.poll_timeout_ms / 1000)
            try:
                if self._owned.apply(
                    self._commit, lambda: self._txns.current is not None, self._abort_and_rewind
                ):
                    # Rewound to the last commit: the positions were reset, so the
                    # records polled above will be fetched again; processing them now
                    # as well would emit them twice.
                    messages = []
                restored = bool(self._owned.newly_assigned)
                if restored:
                    self._owned.restore_assigned()
                    if self._regroup is not None:
                        self._company.restored()
                now_ms = int(time.time() * 1000)
                if messages:
                    # Records fetched before a revocation belong to the new owner now.
                    owned = self._consumer.assignment()
                    messages = [m for m in messages if (m.topic, m.partition) in owned]
                if messages:
                    self._narrowing.took(messages)
                    self._process(messages, now_ms)
                # Records restored past their deadline (they waited out a restart) get
                # one polled batch of company before they leave, not an empty window.
                # The window judges deadlines by the clock now, not at the poll: the
                # batch may have taken a good part of the margin. After a release it
                # looks again at once, the release's own time in hand: a pool that came
                # due while another was sent leaves now, not a turn later.
                if (
                    (not restored or messages)
                    and not self._company.waiting()
                    and self._stages.release(int(time.time() * 1000))
                ):
                    self._stages.release(int(time.time() * 1000))
                self._stages.emit_erasures(self._owned.raw_partitions(), now_ms)
                txn = self._txns.current
                if txn is not None and (
                    time.monotonic() - txn.started >= interval
                    or txn.records >= s.commit_max_records
                    or self._narrowing.commit_due(txn.records)
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
        self._company.took(self._stages.process(messages, self._feed.table, now_ms))

    # -- transactions ------------------------------------------------------

    def _commit(self) -> None:
        """Commit the open transaction (consumers.transactions) and note the progress."""
        txn = self._txns.commit()
        if txn is None:
            return
        self._company.committed()
        self._narrowing.committed(txn.records)

    def _abort_and_rewind(self) -> None:
        self._txns.abort()
        self._rewind()

    def _rewind(self) -> None:
        """Back to the last commit; while the checkpoint cannot be read, try again later."""
        assert self._consumer is not None
        try:
            self._owned.rewind(self._consumer)
        except FencedError:
            raise
        except TransportError as exc:
            # Nothing is polled or processed until a later try succeeds.
            log.error("rewind failed; trying again", extra={"error": str(exc)})
            self._rewind_due = True
            return
        self._rewind_due = False

    def _positions(self) -> dict[TopicPartition, int]:
        """The consumer's positions on the owned partitions (known ones only)."""
        if self._consumer is None:
            return {}
        positions = {tp: self._consumer.position(tp) for tp in sorted(self._owned.assigned)}
        return {tp: at for tp, at in positions.items() if at >= 0}

    # -- failures ------------------------------------------------------------

    def _failed(self, cause: str, detail: str) -> None:
        """A transaction failed: abort and rewind, back off, and find a record that fails alone.

        consumers.narrowing decides what comes next; a suspect record is set aside as a
        dead letter (`_set_aside`) only while the sink passes a fresh check: failures
        while the cluster is unreachable only back off, an outage is not the record's fault.
        """
        m.BATCH_FAILURES.labels(cause).inc()
        txn = self._txns.current
        log.error(
            "transaction failed; rewinding",
            extra={"cause": cause, "error": detail, "failures": self._narrowing.failures + 1},
        )
        step, suspect = self._narrowing.failed(txn.records if txn is not None else None)
        self._abort_and_rewind()
        if self._watch is not None:
            self._watch.request_check()  # a broker that restarted may have moved
        if step is Next.GO_CAREFUL:
            self.health.progressing = False
            return
        if suspect is not None and self._sink_checked():
            self._set_aside(suspect)
            return
        self.stop_event.wait(self._narrowing.back_off_s())

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
            self._txns.renew_producer()
            txn = self._txns.open()
            self._stages.count_dead_letter(txn, msg, UNPROCESSABLE_REASON)
            rejected = Rejected(msg, "worker", "Unprocessable", UNPROCESSABLE_REASON)
            # Stripped: what failed may have been the record's own dead letter.
            self._txns.send(txn, self._router.dead_letter(rejected, now_ms, strip=True))
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
        self._narrowing.set_aside()
        log.error(
            "record set aside as a dead letter after failing alone",
            extra={"topic": msg.topic, "partition": msg.partition, "offset": msg.offset},
        )

    def _hold_off(self) -> None:
        """The sink failed its last check: abort what is open and wait for a passing one."""
        if self._txns.current is not None:
            log.error("sink failed its check: aborting the open transaction")
            self._abort_and_rewind()
        self._update_ready()
        self.stop_event.wait(0.2)

    # -- bookkeeping ----------------------------------------------------------

    def _note_consent(self) -> None:
        assert self._feed is not None
        self._erasures.note(self._feed.drain_cancellations())
        m.CONSENT_USERS.set(len(self._feed.table))
        m.CONSENT_LAG.set(self._feed.lag)

    def _update_ready(self) -> None:
        self.health.assigned = bool(self._owned.assigned)
        writer = self._writer
        if writer is not None and writer.failed is not None:
            self.health.consent_writer_ok = False
        txn = self._txns.current
        stuck = txn is not None and (
            time.monotonic() - txn.started > self.settings.stuck_after_ms / 1000
        )
        self.health.progressing = not stuck and self._narrowing.progressing
        down = self.health.overdue(time.monotonic())
        if down:
            log.warning("worker not ready", extra={"down": down})

    def _update_lag(self) -> None:
        self._last_lag = time.monotonic()
        if not self._owned.assigned or self._consumer is None:
            return
        try:
            ends = self._consumer.end_offsets(sorted(self._owned.assigned))
            for tp, end in ends.items():
                lag = max(0, end - self._consumer.position(tp))
                m.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(lag)
        except TransportError:
            log.warning("lag update failed")
