"""`consentgate run --at-least-once` on both clients: every record accounted for, offsets committed.

Without transactions the worker flushes its outputs and then commits the consumed offsets
itself (`Consumer.commit`). Run undisturbed, it must consume each input record once,
account for it (forwarded, dropped, dead-lettered or still held), and commit every raw
partition to its end, so that a restarted worker resumes after what it already handled.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ingest.kafka import ConsumerOptions, TopicPartition, Transport
from ingest.kafka.topics import TopicSet
from ingest.metrics_text import Samples, metric_sum
from ingest.sdk.publisher import Publisher
from ingest.simulator.fleet import Fleet
from ingest.simulator.simulate import Simulation
from tests.integration.fault_helpers import (
    accounting,
    end_offsets,
    held,
    settled_metrics,
    worker_group,
)
from tests.integration.worker_harness import (
    WorkerProcess,
    read_topic,
    running_worker,
    wait_for,
)

pytestmark = pytest.mark.integration

GARBAGE = 3
"""Undecodable raw records per publishing round: they must reach the dead-letter topic."""


def _publish(transport: Transport, topics: TopicSet, seed: int, count: int) -> int:
    """Simulated consent and events, plus GARBAGE undecodable records; returns raw records sent."""
    sim = Simulation(Fleet(seed, 120, int(time.time() * 1000) - 120_000))
    raw = 0
    with Publisher(transport, topics) as pub:
        for item in sim.items(count=count, rate_per_s=1000):
            pub.send_valid(item.event_type, item.record)
            if item.event_type != "consent_record":
                raw += 1
        for n in range(GARBAGE):
            pub.producer.send(topics.name("raw_log"), b"\x00garbage" + bytes([n]), key=b"u-bad")
    return raw + GARBAGE


def _committed(transport: Transport, topics: TopicSet, group: str) -> dict[TopicPartition, int]:
    """The group's committed offset of every raw partition (0 where none is committed)."""
    consumer = transport.consumer(ConsumerOptions(group_id=worker_group(topics, group)))
    try:
        return {
            TopicPartition(topic, p): consumer.committed(TopicPartition(topic, p)) or 0
            for topic in (topics.name("raw_device"), topics.name("raw_log"))
            for p in consumer.partitions_for(topic)
        }
    finally:
        consumer.close()


def _raw_ends(transport: Transport, topics: TopicSet) -> dict[TopicPartition, int]:
    return {
        TopicPartition(topic, p): end
        for topic in (topics.name("raw_device"), topics.name("raw_log"))
        for p, end in end_offsets(transport, topic).items()
    }


def _drain(
    worker: WorkerProcess, transport: Transport, topics: TopicSet, group: str, sent: int
) -> Samples:
    """Wait until the worker consumed `sent` records, released them and committed to the end."""
    ends = _raw_ends(transport, topics)
    assert sum(ends.values()) >= sent

    def done() -> bool:
        m = worker.metrics()
        return (
            metric_sum(m, "consentgate_consumed_total") >= sent
            and held(m) == 0
            and _committed(transport, topics, group) == ends
        )

    wait_for(done, 120, f"the worker to handle {sent} records and commit every raw offset")
    return settled_metrics(worker)


def _assert_accounted(samples: Samples, sent: int) -> None:
    consumed = metric_sum(samples, "consentgate_consumed_total")
    left, right = accounting(samples)
    assert consumed == sent, f"consumed {consumed} of {sent}: lost or repeated records"
    assert left == right, f"accounting broken: consumed+restored={left}, outcomes={right}"
    assert held(samples) == 0
    assert metric_sum(samples, "consentgate_transactions_total", outcome="aborted") == 0
    dead = metric_sum(samples, "consentgate_dead_lettered_total", reason="undecodable")
    assert dead == GARBAGE


def test_at_least_once_worker_accounts_for_every_record_and_commits_to_the_end(
    kafka_bootstrap: str,
    transport: Transport,
    topic_set: TopicSet,
    group_id: str,
    client: str,
    tmp_path: Path,
) -> None:
    extra = ["--at-least-once", "--client", client, "--max-delay", "2"]
    sent = _publish(transport, topic_set, seed=31, count=1200)
    with running_worker(
        kafka_bootstrap, topic_set, tmp_path, group=group_id, extra=extra
    ) as worker:
        first = _drain(worker, transport, topic_set, group_id, sent)
        assert worker.stop() == 0, worker.log()
    _assert_accounted(first, sent)
    forwarded = metric_sum(first, "consentgate_forwarded_total")
    assert 0 < forwarded < sent  # consent lets some records through, not all
    outputs = sum(
        len(read_topic(transport, topic_set.name(r))) for r in ("anon_device", "anon_log")
    )
    assert outputs == forwarded
    dead = read_topic(transport, topic_set.name("dead_letter"))
    assert len(dead) == metric_sum(first, "consentgate_dead_lettered_total")

    # A restarted worker resumes at the committed offsets: it consumes only what is new.
    more = _publish(transport, topic_set, seed=32, count=300)
    with running_worker(
        kafka_bootstrap, topic_set, tmp_path, group=group_id, extra=extra
    ) as worker:
        second = _drain(worker, transport, topic_set, group_id, more)
        assert worker.stop() == 0, worker.log()
    _assert_accounted(second, more)
    outputs = sum(
        len(read_topic(transport, topic_set.name(r))) for r in ("anon_device", "anon_log")
    )
    assert outputs == forwarded + metric_sum(second, "consentgate_forwarded_total")
