"""Real workers in threads of the test process, on the in-memory transport, and checks of
a finished run (tests/unit/consumers/test_worker.py).

A run ends drained: no raw or repartitioned record left unconsumed by the group, no held
record left in the checkpoint. Prometheus counters are process-global: a run measures
their change while its workers ran.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal

from prometheus_client import REGISTRY

from consumers import metrics as m
from consumers.held import HeldCodec
from consumers.route import SOURCE_OFFSET, SOURCE_PARTITION, SOURCE_TOPIC
from consumers.settings import PipelineSettings
from consumers.worker import Worker
from ingest.kafka import TopicPartition
from ingest.kafka.base import Headers
from ingest.kafka.consent_store import read_partition
from ingest.kafka.topics import ROLES, TopicSet, load_topic_set
from tests.integration.fault_helpers import (
    Marker,
    Workload,
    output_markers,
    publish_consents,
)
from tests.integration.worker_harness import read_topic, wait_for
from tests.memory_transport import MemoryCluster, MemoryTransport, Transaction
from tests.unit.consumers.level0_records import PLANS

PARTITIONS = 3
HELD = HeldCodec(PLANS)
"""Reads the held records the workers write (their policy is the default one)."""
GROUP = "g"
SETTLE_S = 120
"""Generous: the machine may be busy. A drained run usually takes a few seconds."""


@dataclass
class Run:
    """A finished run: its cluster, the counters' change, and the released records per marker."""

    cluster: MemoryCluster
    transport: MemoryTransport
    topics: TopicSet
    transactional_ids: list[str]
    counted: dict[str, int]
    found: Counter[Marker]


class WorkerThread:
    """A real `Worker` running in a thread of this process, stopped through its stop_event."""

    started: ClassVar[list[WorkerThread]] = []
    """Every one started and not yet halted (`halt_all`)."""

    def __init__(
        self,
        transport: MemoryTransport,
        topics: TopicSet,
        index: int = 0,
        max_delay_ms: int = 2_000,
        held_format: Literal["bundled", "compact", "named"] = "bundled",
        settle_heap: bool = False,
    ) -> None:
        self.settings = PipelineSettings(
            held_format=held_format,
            demo_mode=True,
            metrics_port=None,
            group_id=topics.prefix + GROUP,
            worker_index=index,
            k=2,
            kanon_max_delay_ms=max_delay_ms,
            commit_interval_ms=100,
            max_poll_records=100,  # small batches and transactions: many of each
            commit_max_records=150,
            poll_timeout_ms=50,
            residency_recheck_ms=1_000,  # the watch thread sleeps this long before it stops
        )
        self.worker = Worker(transport, topics, self.settings, settle_heap=settle_heap)
        self.transactional_id = self.settings.transactional_id(topics.prefix)
        self.status: int | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"worker-{index}", daemon=True)

    def start(self) -> WorkerThread:
        """Run the worker until `stop`."""
        self._thread.start()
        WorkerThread.started.append(self)
        return self

    def _run(self) -> None:
        try:
            self.status = self.worker.run()
        except BaseException as exc:  # re-raised by stop()
            self.error = exc

    def stop(self) -> None:
        """Stop the loop (it commits what is open) and check it ended cleanly."""
        self.halt()
        assert not self._thread.is_alive(), "the worker did not stop"
        if self.error is not None:
            raise self.error
        assert self.status == 0

    def check_running(self) -> None:
        """Raise what ended the worker, if it ended."""
        if not self._thread.is_alive():
            if self.error is not None:
                raise self.error
            raise AssertionError(f"the worker ended on its own with status {self.status}")

    def run_on(self, seconds: float) -> None:
        """Let the worker run on for a while (returns early if it ends)."""
        self._thread.join(seconds)

    def halt(self) -> None:
        """Stop the loop and wait for it."""
        self.worker.stop_event.set()
        self._thread.join(SETTLE_S)

    @classmethod
    def halt_all(cls) -> None:
        """Stop every worker started and not yet halted."""
        while cls.started:
            cls.started.pop().halt()


def counters() -> dict[str, int]:
    """This process's accounting terms (consumers/metrics.py), the repartition hop included,
    and the counters of aborted transactions, failed batches and misplaced racks."""
    counted = m.outcome_totals()
    for direction in ("out", "in"):
        value = REGISTRY.get_sample_value(
            "consentgate_kanon_regrouped_total", {"direction": direction}
        )
        counted[f"regrouped_{direction}"] = int(value or 0)
    for name, labels, key in (
        ("consentgate_transactions_total", {"outcome": "aborted"}, "aborted"),
        ("consentgate_residency_violations_total", {"kind": "rack_outside"}, "rack_outside"),
    ):
        counted[key] = int(REGISTRY.get_sample_value(name, labels) or 0)
    counted["batch_failures"] = sum(
        int(sample.value)
        for family in m.BATCH_FAILURES.collect()
        for sample in family.samples
        if sample.name.endswith("_total")
    )
    return counted


def changed_since(before: dict[str, int]) -> dict[str, int]:
    return {name: value - before[name] for name, value in counters().items()}


def fresh_cluster(workload: Workload) -> tuple[MemoryCluster, MemoryTransport, TopicSet]:
    """A cluster with the topic set created and the workload's consent records published."""
    cluster = MemoryCluster()
    transport = cluster.transport()
    topics = load_topic_set(prefix=f"u{uuid.uuid4().hex[:8]}.", partitions=PARTITIONS)
    transport.admin().create_topics(topics.specs[r] for r in ROLES)
    publish_consents(transport, topics, workload)
    return cluster, transport, topics


def held(transport: MemoryTransport, topics: TopicSet) -> list[int]:
    """Records the committed checkpoint holds per partition: what the windows held at their
    last commit, by the repartition partition they were taken from."""
    topic = topics.name("kanon_pending")
    return [
        sum(len(HELD.decode_chunk(v)) for v in read_partition(transport, topic, p).values() if v)
        for p in range(PARTITIONS)
    ]


def unconsumed(cluster: MemoryCluster, topics: TopicSet) -> int:
    """Committed raw and repartitioned records past the group's committed offsets."""
    committed = cluster.committed_offsets(topics.prefix + GROUP)
    left = 0
    for role in ("raw_device", "raw_log", "kanon_repartition"):
        topic = topics.name(role)  # type: ignore[arg-type]
        for partition in range(PARTITIONS):
            start = committed.get(TopicPartition(topic, partition), 0)
            entries = cluster.entries(topic, partition)[start:]
            left += sum(1 for entry in entries if entry.visible(read_committed=True))
    return left


def _settle(
    cluster: MemoryCluster,
    transport: MemoryTransport,
    topics: TopicSet,
    workers: Sequence[WorkerThread],
) -> None:
    """Wait until the group consumed everything and its windows let everything out."""

    def settled() -> bool:
        for worker in workers:
            worker.check_running()
        return unconsumed(cluster, topics) == 0 and not any(held(transport, topics))

    wait_for(settled, SETTLE_S, "the workers to consume and release every record")


def _balance(counted: dict[str, int], still_held: int) -> tuple[int, int]:
    """Both sides of the accounting identity in consumers/metrics.py's docstring."""
    left = counted["consumed"] + counted["pending_restored"]
    right = (
        counted["forwarded"]
        + counted["dropped"]
        + counted["dead_lettered"]
        + counted["pending_handed_off"]
        + still_held
        + counted["regrouped_out"]
        - counted["regrouped_in"]
    )
    return left, right


def _raw_sources(
    topics: TopicSet, topic: str, value: bytes | None, headers: Headers
) -> list[tuple[str, int, int]]:
    """The raw (topic, partition, offset)s a stage-1 output came from: several for a
    bundle of held records, none for a dead letter of stage 2."""
    if topic == topics.name("kanon_repartition"):
        sources = []
        for entry in HELD.decode_bundle(value or b"", (topic, 0)):
            raw_topic, partition, offset = entry.pending_id.rsplit(":", 2)
            sources.append((raw_topic, int(partition), int(offset)))
        return sources
    named = dict(headers)
    source = named.get(SOURCE_TOPIC, b"").decode()
    if source not in (topics.name("raw_device"), topics.name("raw_log")):
        return []  # a dead letter of stage 2
    return [(source, int(named[SOURCE_PARTITION]), int(named[SOURCE_OFFSET]))]


def stage_one_outputs(run: Run) -> int:
    """How many raw records' outputs (to the repartition topic, or dead letters) were
    committed, checking that none was committed twice and each in the transaction that
    committed its raw record's offset.

    Also checks that the group's offsets moved only, and only forwards, by the workers'
    committed transactions.
    """
    cluster, topics, transactional_ids = run.cluster, run.topics, run.transactional_ids
    raw = {topics.name("raw_device"), topics.name("raw_log")}
    committed_by: dict[tuple[str, int, int], int] = {}
    reached: dict[TopicPartition, int] = {}
    for commit in cluster.offset_commits(topics.prefix + GROUP):
        txn = commit.transaction
        assert txn is not None, "offsets committed outside a transaction"
        assert txn.state == "committed" and txn.transactional_id in transactional_ids
        for tp, end in commit.offsets.items():
            if tp.topic in raw:
                start = reached.get(tp, 0)
                assert end >= start, f"{tp} committed backwards"
                committed_by.update(
                    ((tp.topic, tp.partition, o), txn.serial) for o in range(start, end)
                )
                reached[tp] = end
    outputs = {topics.name("kanon_repartition"), topics.name("dead_letter")}
    seen: set[tuple[str, int, int]] = set()
    for txn in _committed(cluster, transactional_ids):
        for tp, offset in txn.writes:
            if tp.topic not in outputs:
                continue
            entry = cluster.entries(tp.topic, tp.partition)[offset]
            for source in _raw_sources(topics, tp.topic, entry.value, entry.headers):
                assert source not in seen, f"{source} produced twice"
                seen.add(source)
                assert committed_by.get(source) == txn.serial, f"{source} left without its offset"
    return len(seen)


def _committed(cluster: MemoryCluster, transactional_ids: Sequence[str]) -> list[Transaction]:
    return [
        t for tid in transactional_ids for t in cluster.transactions(tid) if t.state == "committed"
    ]


def finish(
    cluster: MemoryCluster,
    transport: MemoryTransport,
    topics: TopicSet,
    workers: Sequence[WorkerThread],
    before: dict[str, int],
    now_ms: int,
) -> Run:
    """Settle, stop the workers, and check the accounting identity over the whole run."""
    _settle(cluster, transport, topics, workers)
    for worker in workers:
        worker.stop()
    counted = changed_since(before)
    still_held = sum(held(transport, topics))
    assert still_held == 0
    left, right = _balance(counted, still_held)
    assert left == right, f"accounting broken: {counted}"
    assert counted["regrouped_out"] == counted["regrouped_in"], "records left in transit"
    found = output_markers(transport, topics, now_ms)
    ids = [worker.transactional_id for worker in workers]
    return Run(cluster, transport, topics, ids, counted, found)


def visible_writes(
    transport: MemoryTransport, txn: Transaction, topics: Sequence[str]
) -> tuple[int, int]:
    """Records a transaction wrote to these topics, and how many a read_committed reader sees."""
    written = {(tp, offset) for tp, offset in txn.writes if tp.topic in topics}
    seen = {
        (TopicPartition(msg.topic, msg.partition), msg.offset)
        for topic in topics
        for msg in read_topic(transport, topic)
    }
    return len(written), len(written & seen)


def committed_suppressions(records: Sequence[logging.LogRecord]) -> int:
    """Records suppressed in committed transactions, as the workers logged them."""
    return sum(
        int(getattr(r, "suppressed", 0))
        for r in records
        if r.getMessage() == "k-anonymity suppression committed"
    )


def restores(records: Sequence[logging.LogRecord], thread: str) -> list[int]:
    """Held records restored at each assignment, as one worker thread logged them."""
    return [
        int(getattr(r, "restored_pending", 0))
        for r in records
        if r.threadName == thread and r.getMessage() == "partitions assigned"
    ]
