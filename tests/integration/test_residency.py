"""A sink cluster with brokers outside the mainland racks gets nothing, and the worker says so."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.kafka import Transport, make_transport
from ingest.kafka.config import load_settings
from ingest.kafka.topics import TopicSet
from ingest.local_broker.broker import LocalBroker
from ingest.metrics_text import Series, metric_sum
from tests.integration.fault_helpers import build_workload, end_offsets, publish, publish_consents
from tests.integration.topic_sets import create_topics
from tests.integration.worker_harness import start_worker, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def us_sink(tmp_path: Path) -> Iterator[str]:
    """A second local broker whose rack is outside the mainland allow-list."""
    broker = LocalBroker(run_dir=tmp_path / "sink", rack="us-east-1a")
    try:
        bootstrap = broker.start(timeout_s=180)
    except Exception as exc:  # the run must fail loudly, never skip
        pytest.fail(f"no sink broker: {exc}", pytrace=False)
    try:
        yield bootstrap
    finally:
        broker.stop()


def test_worker_refuses_a_sink_outside_the_mainland_and_is_not_ready(
    transport: Transport,
    kafka_bootstrap: str,
    topic_set: TopicSet,
    us_sink: str,
    group_id: str,
    tmp_path: Path,
) -> None:
    sink = make_transport(load_settings(bootstrap_servers=us_sink))
    create_topics(sink, topic_set)
    workload = build_workload(seed=5, users=20, count=200, now_ms=int(time.time() * 1000))
    publish_consents(transport, topic_set, workload)
    worker = start_worker(
        kafka_bootstrap, topic_set, tmp_path, group=group_id, extra=["--sink-bootstrap", us_sink]
    )
    try:
        wait_for(
            lambda: (
                metric_sum(
                    worker.metrics() if worker.get("/metrics")[0] == 200 else {},
                    "consentgate_residency_violations_total",
                    kind="rack_outside",
                )
                > 0
            ),
            60,
            "a rack_outside residency violation",
        )
        status, body = worker.get("/readyz")
        assert status == 503
        detail = json.loads(body)
        assert detail["residency_ok"] is False and detail["ready"] is False
        assert worker.metrics()[Series("consentgate_residency_ok")] == 0

        publish(transport, topic_set, workload.events)
        time.sleep(5)
        assert worker.proc.poll() is None, worker.log()
        assert worker.get("/readyz")[0] == 503
        for role in ("anon_device", "anon_log", "dead_letter", "erasure", "kanon_pending"):
            topic = topic_set.name(role)
            assert set(end_offsets(sink, topic).values()) == {0}, f"{role} received records"
            assert set(end_offsets(transport, topic).values()) == {0}, f"{role} on the source"
        assert metric_sum(worker.metrics(), "consentgate_consumed_total") == 0
    finally:
        worker.stop()
    log = worker.log_path.read_text(errors="replace")
    refusals = [
        json.loads(line)
        for line in log.splitlines()
        if line.startswith("{") and "refusing to produce" in line
    ]
    assert refusals, log[-2000:]
    assert any("us-east-1a" in str(r.get("problem")) for r in refusals)
    user_ids = {record["user_id"] for _t, record in workload.events}
    assert not [u for u in user_ids if u in log], "a user id reached the log"


def test_exactly_once_to_a_separate_mainland_cluster_fails_closed_with_a_reason(
    kafka_bootstrap: str, topic_set: TopicSet, group_id: str, tmp_path: Path
) -> None:
    """One Kafka transaction cannot span two clusters: refuse instead of aborting forever."""
    broker = LocalBroker(run_dir=tmp_path / "cn-sink", rack="cn-north-1b")
    try:
        sink_bootstrap = broker.start(timeout_s=180)
    except Exception as exc:  # the run must fail loudly, never skip
        pytest.fail(f"no sink broker: {exc}", pytrace=False)
    try:
        create_topics(make_transport(load_settings(bootstrap_servers=sink_bootstrap)), topic_set)
        worker = start_worker(
            kafka_bootstrap,
            topic_set,
            tmp_path,
            group=group_id,
            extra=["--sink-bootstrap", sink_bootstrap],
        )
        assert worker.proc.wait(timeout=90) == 2
        assert "one Kafka transaction cannot span two clusters" in worker.log()
    finally:
        broker.stop()
