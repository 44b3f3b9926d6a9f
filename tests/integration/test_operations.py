"""Operations against a running worker: scraped accounting, dashboard names, health, tail, logs."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ingest.kafka import Transport
from ingest.kafka.topics import TopicSet
from ingest.metrics_text import declared_series, metric_sum
from ingest.sdk.publisher import Publisher
from ingest.simulator.fleet import Fleet
from ingest.simulator.simulate import Simulation
from tests.integration.fault_helpers import accounting, held
from tests.integration.worker_harness import running_worker, wait_for
from tests.unit.deploy.promql import (
    PROMETHEUS_OWN_SERIES,
    dashboard_expressions,
    metric_names_in_promql,
)

pytestmark = pytest.mark.integration

DASHBOARD = Path(__file__).parents[2] / "deploy" / "grafana" / "consentgate-dashboard.json"
EVENTS = 1500


def _publish(transport: Transport, topics: TopicSet) -> tuple[int, set[str]]:
    """Simulated traffic plus three undecodable records; returns events sent and identifiers."""
    sim = Simulation(Fleet(11, 200, int(time.time() * 1000) - 120_000))
    identifiers: set[str] = set()
    events = 0
    with Publisher(transport, topics) as pub:
        for item in sim.items(count=EVENTS, rate_per_s=1000):
            pub.send_valid(item.event_type, item.record)
            if item.event_type != "consent_record":
                events += 1
                for field in ("user_id", "imei", "mac_address", "android_id", "advertising_id"):
                    if item.record.get(field):
                        identifiers.add(str(item.record[field]))
        for n in range(3):
            pub.producer.send(topics.name("raw_log"), b"\x00garbage" + bytes([n]), key=b"u-bad")
    return events + 3, identifiers


def test_scraped_metrics_balance_and_name_every_dashboard_series(
    kafka_bootstrap: str, transport: Transport, topic_set: TopicSet, group_id: str, tmp_path: Path
) -> None:
    with running_worker(
        kafka_bootstrap, topic_set, tmp_path, group=group_id, extra=["--max-delay", "2"]
    ) as worker:
        assert worker.get("/healthz")[0] == 200
        status, body = worker.get("/readyz")
        assert status == 200 and '"ready": true' in body
        sent, identifiers = _publish(transport, topic_set)

        def drained() -> bool:
            m = worker.metrics()
            return metric_sum(m, "consentgate_consumed_total") >= sent and (held(m) == 0)

        wait_for(drained, 90, "the worker to consume and release everything")
        m = worker.metrics()
        consumed = metric_sum(m, "consentgate_consumed_total")
        # The identity as consumers/metrics.py documents it: records of the k-anonymity
        # window handed off at a rebalance and reloaded from the checkpoint count too.
        # (and records through the repartition topic, in and out).
        left, right = accounting(m)
        assert consumed == sent
        shown = ("kanon", "dropped", "forwarded")
        terms = {str(s): v for s, v in m.items() if any(t in s.name for t in shown)}
        assert left == right, f"consumed+restored {left} != {right}: {terms}"
        assert metric_sum(m, "consentgate_dead_lettered_total") == 3
        assert metric_sum(m, "consentgate_dead_lettered_total", reason="undecodable") == 3

        scraped = declared_series(worker.get("/metrics")[1])
        wanted = {
            name
            for expr in dashboard_expressions(DASHBOARD)
            for name in metric_names_in_promql(expr)
        } - set(PROMETHEUS_OWN_SERIES)
        worker_side = {n for n in wanted if not n.startswith("consentgate_publish")}
        missing = sorted(worker_side - scraped)
        assert not missing, f"dashboard names series the worker does not export: {missing}"

        # A hung worker can say where it hangs: SIGUSR1 dumps every thread's stack to its
        # log and it goes on running; the leak check below reads the dump too.
        worker.proc.send_signal(signal.SIGUSR1)
        wait_for(lambda: "consumers/worker.py" in worker.full_log(), 30, "a stack dump")
        assert "Thread 0x" in worker.full_log()
        assert worker.get("/readyz")[0] == 200
    log = worker.log_path.read_text(errors="replace")
    leaked = sorted(i for i in identifiers if i in log)
    assert not leaked, f"{len(leaked)} identifiers appear in the worker log"


def test_tail_refuses_a_raw_topic_with_one_line(kafka_bootstrap: str, topic_set: TopicSet) -> None:
    done = subprocess.run(
        [
            sys.executable, "-m", "ingest.cli.main", "tail", topic_set.name("raw_device"),
            "--bootstrap", kafka_bootstrap, "--prefix", topic_set.prefix,
        ],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "not an anonymized output topic" in lines[0]
    assert "Traceback" not in done.stderr
