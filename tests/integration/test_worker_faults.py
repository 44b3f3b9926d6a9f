"""Exactly once under faults: SIGKILL and restart, scale-out and SIGTERM, the N-worker supervisor.

Analyst outputs cannot be traced to single records, so events are marked by the day they
were collected (see `fault_helpers`) and share every other released value: with k = 2
nothing is suppressed, and the released records per (schema, day) of an uninterrupted
reference run on a copy of the input are what every faulted run must release, no more and
no fewer. Closer events of fresh users (collected today) follow the main events.
"""

from __future__ import annotations

import json
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.kafka import Transport
from ingest.kafka.topics import TopicSet
from ingest.metrics_text import metric_sum
from tests.integration.fault_helpers import (
    Feeder,
    Marker,
    Workload,
    assert_accounting,
    build_workload,
    committed_lag,
    live_checkpoint_keys,
    output_markers,
    publish,
    publish_consents,
)
from tests.integration.topic_sets import fresh_topic_set
from tests.integration.worker_harness import (
    WorkerProcess,
    free_port,
    start_worker,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.fault]

KANON = ["--k", "2", "--max-delay", "10"]
EVENTS = 6_000


def _main(markers: Counter[Marker]) -> Counter[Marker]:
    """The counts of the main events' days (closers are collected today, day 0)."""
    return Counter({m: n for m, n in markers.items() if m[1] > 0})


def _diff(found: Counter[Marker], reference: Counter[Marker]) -> str:
    missing = reference - found
    extra = found - reference
    return f"missing {sum(missing.values())} {dict(missing)}, extra {sum(extra.values())}"


def _released_all(worker: WorkerProcess) -> None:
    """Wait until the worker's window has let everything out (it waits at most --max-delay)."""
    wait_for(
        lambda: metric_sum(worker.metrics(), "consentgate_kanon_pending") == 0,
        60,
        "the k-anonymity window to release what it held",
    )


def _stopped_totals(worker: WorkerProcess) -> dict[str, int]:
    """The outcome totals a worker logs as it stops (its metrics are gone with it)."""
    for line in reversed(worker.log().splitlines()):
        if '"worker stopped"' in line:
            entry = json.loads(line)
            return {key: int(entry[key]) for key in ("consumed", "forwarded", "suppressed")}
    raise AssertionError(f"no final totals in the worker log:\n{worker.log()}")


def _committed_suppressions(workers: list[WorkerProcess]) -> int:
    """Records the workers suppressed in transactions that committed, from their logs.

    A killed worker's counters die with it, and a suppressed record leaves no output: the
    line each commit that suppressed logs is the only trace. After a restart a worker
    groups the held records it restored with what came back by then (`CompanyWait`), so a
    marker that only one person has there is suppressed, which the reference never does.
    """
    return sum(
        int(entry["suppressed"])
        for worker in workers
        for entry in worker.events()
        if entry.get("event") == "k-anonymity suppression committed"
    )


def _assert_released_or_suppressed(
    found: Counter[Marker], reference: Counter[Marker], workers: list[WorkerProcess]
) -> None:
    """Nothing repeated, and nothing missing but what a commit suppressed, counted exactly
    (closers included: a loss beside a suppression would make the totals differ)."""
    suppressed = _committed_suppressions(workers)
    told = Counter(f"{e['level']}: {e['event']}" for w in workers for e in w.problems())
    detail = f"{_diff(found, reference)}, suppressed {suppressed}; workers said {dict(told)}"
    assert not found - reference, detail
    assert sum((reference - found).values()) == suppressed, detail


def _caught_up(transport: Transport, topics: TopicSet, group: str) -> None:
    wait_for(
        lambda: committed_lag(transport, topics, group) == 0,
        90,
        "the group to commit every raw offset",
    )


@pytest.fixture(scope="module")
def workload() -> Workload:
    """One marked workload for every test of this module."""
    return build_workload(seed=20261, users=150, count=EVENTS, now_ms=int(time.time() * 1000))


@pytest.fixture(scope="module")
def reference(
    transport: Transport,
    kafka_bootstrap: str,
    workload: Workload,
    tmp_path_factory: pytest.TempPathFactory,
) -> Counter[Marker]:
    """Records per marker an uninterrupted worker forwards from a copy of the workload."""
    logs = tmp_path_factory.mktemp("reference")
    with fresh_topic_set(transport) as topics:
        publish_consents(transport, topics, workload)
        publish(transport, topics, [*workload.events, *workload.closers])
        worker = start_worker(kafka_bootstrap, topics, logs, group="ref", extra=KANON)
        try:
            worker.wait_ready()
            _caught_up(transport, topics, "ref")
            _released_all(worker)
            samples = assert_accounting(worker)
        finally:
            worker.stop()
        found = output_markers(transport, topics, workload.now_ms)
    assert metric_sum(samples, "consentgate_kanon_suppressed_total") == 0
    forwarded = metric_sum(samples, "consentgate_forwarded_total")
    assert sum(found.values()) == forwarded, "the reference run released each record once"
    expected = _main(found)
    # Consent lets most but not all of the fleet through, on every day: not vacuous.
    assert set(expected) == set(workload.markers)
    assert all(0 < expected[m] < n for m, n in workload.markers.items())
    return found


def test_worker_killed_and_restarted_repeatedly_loses_and_repeats_nothing(
    transport: Transport,
    kafka_bootstrap: str,
    workload: Workload,
    reference: Counter[Marker],
    group_id: str,
    tmp_path: Path,
    client: str,
) -> None:
    """The reference ran on kafka-python: on confluent this also proves equal outputs."""
    rng = random.Random()
    on_client = [*KANON, "--client", client]
    with fresh_topic_set(transport) as topics:
        publish_consents(transport, topics, workload)
        # Hurried after the kills; the last tenth waits for that on a slow machine.
        tail = len(workload.events) // 10
        feeder = Feeder(transport, topics, workload.events, seconds=120, hold_back=tail)
        feeder.start()
        sent_at_kill: list[int] = []
        workers: list[WorkerProcess] = []
        for _ in range(3):
            worker = start_worker(
                kafka_bootstrap, topics, tmp_path, group=group_id, extra=on_client
            )
            workers.append(worker)
            worker.wait_ready()
            time.sleep(rng.uniform(1, 3))
            worker.kill()
            sent_at_kill.append(feeder.sent)
        feeder.finish(hurry=True)  # the rest arrives while no worker runs
        publish(transport, topics, workload.closers)
        final = start_worker(kafka_bootstrap, topics, tmp_path, group=group_id, extra=on_client)
        workers.append(final)
        try:
            final.wait_ready()
            _caught_up(transport, topics, group_id)
            _released_all(final)
            assert_accounting(final)
        finally:
            assert final.stop() == 0, final.log()
        found = output_markers(transport, topics, workload.now_ms)
        _assert_released_or_suppressed(found, reference, workers)
        # The kills landed while events were still arriving.
        assert sum(1 for sent in sent_at_kill if sent < len(workload.events)) >= 2, sent_at_kill

        # A worker with no hold limit settles whatever closers the window still held.
        drain = start_worker(
            kafka_bootstrap,
            topics,
            tmp_path,
            group=group_id,
            extra=["--k", "2", "--max-delay", "0", "--client", client],
        )
        try:
            drain.wait_ready()
            wait_for(
                lambda: live_checkpoint_keys(transport, topics) == set(),
                30,
                "the checkpoint topic to hold no live pending entry",
            )
            samples = assert_accounting(drain)
            assert metric_sum(samples, "consentgate_kanon_pending") == 0
        finally:
            assert drain.stop() == 0, drain.log()
        workers.append(drain)
        found = output_markers(transport, topics, workload.now_ms)
        _assert_released_or_suppressed(found, reference, workers)


def test_second_worker_joining_and_first_leaving_mid_stream_loses_and_repeats_nothing(
    transport: Transport,
    kafka_bootstrap: str,
    workload: Workload,
    reference: Counter[Marker],
    group_id: str,
    tmp_path: Path,
) -> None:
    with fresh_topic_set(transport) as topics:
        publish_consents(transport, topics, workload)
        # Paced over two minutes; the last tenth waits for the SIGTERM however slow the
        # machine, and goes at once after it.
        tail = len(workload.events) // 10
        feeder = Feeder(transport, topics, workload.events, seconds=120, hold_back=tail)
        feeder.start()
        first = start_worker(
            kafka_bootstrap, topics, tmp_path, index=0, group=group_id, extra=KANON
        )
        second: WorkerProcess | None = None
        try:
            first.wait_ready()
            time.sleep(2)
            alone = metric_sum(first.metrics(), "consentgate_assigned_partitions")
            second = start_worker(
                kafka_bootstrap, topics, tmp_path, index=1, group=group_id, extra=KANON
            )
            second.wait_ready()
            wait_for(
                lambda: metric_sum(first.metrics(), "consentgate_assigned_partitions") < alone,
                120,
                "the first worker to give partitions up",
            )
            time.sleep(2)
            sent_at_stop = feeder.sent
            assert first.stop() == 0, first.log()
            assert sent_at_stop < len(workload.events), "the stream ended before the SIGTERM"
            feeder.finish(hurry=True)
            publish(transport, topics, workload.closers)
            _caught_up(transport, topics, group_id)
            _released_all(second)
            samples = assert_accounting(second)
            assert metric_sum(samples, "consentgate_assigned_partitions") == alone  # all
        finally:
            for worker in (first, second):
                if worker is not None and worker.proc.poll() is None:
                    worker.stop()
        found = output_markers(transport, topics, workload.now_ms)
        # While both ran, each grouped only the repartition partitions it owned: a record
        # whose marker had one person in its owner's window was suppressed (k = 2), which
        # the one-worker reference never does. Suppressed is counted, never lost: what
        # both workers released plus what they suppressed is the reference, and no
        # marker was released more often than in the reference.
        suppressed = _stopped_totals(first)["suppressed"] + metric_sum(
            samples, "consentgate_kanon_suppressed_total"
        )
        assert not found - reference, _diff(found, reference)
        assert sum(found.values()) + suppressed == sum(reference.values()), (
            f"{_diff(found, reference)}, suppressed {suppressed}"
        )


@pytest.fixture
def two_ports() -> Iterator[int]:
    """A base port whose next port is free too."""
    for _ in range(20):
        base = free_port()
        try:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", base + 1))
        except OSError:
            continue
        yield base
        return
    raise AssertionError("no two consecutive free ports")


def _get(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


def test_run_with_two_workers_starts_two_ready_processes_that_stop_on_sigterm(
    transport: Transport,
    kafka_bootstrap: str,
    workload: Workload,
    group_id: str,
    two_ports: int,
    tmp_path: Path,
) -> None:
    with fresh_topic_set(transport) as topics:
        publish_consents(transport, topics, workload)
        publish(transport, topics, workload.closers)
        cmd = [
            sys.executable, "-m", "ingest.cli.main", "run", "--workers", "2",
            "--bootstrap", kafka_bootstrap, "--prefix", topics.prefix, "--group", group_id,
            "--metrics-port", str(two_ports), "--demo", *KANON,
        ]  # fmt: skip
        log_path = tmp_path / "supervisor.log"
        with log_path.open("wb") as handle:
            parent = subprocess.Popen(cmd, stdout=handle, stderr=subprocess.STDOUT)
        try:
            ports = (two_ports, two_ports + 1)
            wait_for(
                lambda: all(_get(p, "/readyz") == 200 for p in ports),
                60,
                "both supervised workers to be ready",
            )
            _caught_up(transport, topics, group_id)
            for port in ports:
                worker = WorkerProcess(parent, port, log_path)
                assert_accounting(worker)
            consumed = sum(
                metric_sum(
                    WorkerProcess(parent, p, log_path).metrics(), "consentgate_consumed_total"
                )
                for p in ports
            )
            assert consumed == len(workload.closers)
            parent.send_signal(signal.SIGTERM)
            assert parent.wait(timeout=40) == 0, log_path.read_text(errors="replace")[-3000:]
            assert all(_get(p, "/healthz") == 0 for p in ports)
        finally:
            if parent.poll() is None:
                parent.kill()
                parent.wait(timeout=10)
