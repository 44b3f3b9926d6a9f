"""The cluster watch: reachability and residency from each check, failing closed in between."""

from __future__ import annotations

import threading
from typing import Any

from consumers.cluster_watch import ClusterWatch
from consumers.health import HealthState
from consumers.residency import check_residency
from ingest.errors import TransportError
from ingest.kafka.base import BrokerInfo


class _Admin:
    """Answers `brokers()` from a script: a rack per broker, or an error for an outage."""

    def __init__(self, cluster: _Cluster) -> None:
        self.cluster = cluster

    def brokers(self) -> list[BrokerInfo]:
        if self.cluster.down:
            raise TransportError("describe cluster failed: KafkaTimeoutError")
        return [BrokerInfo(1, "127.0.0.1", 9092, self.cluster.rack)]

    def close(self) -> None:
        self.cluster.closed += 1


class _Cluster:
    """Only the admin side of a transport, which is all the watch uses."""

    def __init__(self) -> None:
        self.rack: str | None = "cn-north-1a"
        self.down = False
        self.closed = 0

    def admin(self) -> Any:
        return _Admin(self)


def _watch(cluster: _Cluster, health: HealthState, interval_s: float = 60) -> ClusterWatch:
    return ClusterWatch(
        cluster,  # type: ignore[arg-type]
        lambda brokers: check_residency(
            brokers, ("cn-north-*",), ["mainland.x"], lambda t: t.startswith("mainland.")
        ),
        health,
        interval_s=interval_s,
    )


def test_each_check_sets_reachability_and_residency() -> None:
    cluster, health = _Cluster(), HealthState()
    watch = _watch(cluster, health)
    assert watch.check_once() is True
    assert health.broker_connected and health.residency_ok
    cluster.down = True
    assert watch.check_once() is False
    assert not health.broker_connected and not health.residency_ok
    assert cluster.closed == 1  # a failed admin is dropped and built again
    cluster.down, cluster.rack = False, "us-west-1a"
    assert watch.check_once() is False
    assert health.broker_connected and not health.residency_ok
    cluster.rack = "cn-north-1b"
    assert watch.check_once() is True and health.residency_ok


def test_a_requested_check_distrusts_residency_until_it_has_run() -> None:
    cluster, health = _Cluster(), HealthState()
    watch = _watch(cluster, health)
    watch.check_once()
    watch.request_check()
    assert health.residency_ok is False
    assert watch.wait_checked(0.01) is False  # nothing ran yet: still closed
    watch.check_once()
    assert watch.wait_checked(0.01) is True


def test_a_woken_watch_stops_without_waiting_out_its_interval() -> None:
    """A worker's shutdown wakes the watch: an hour's interval is not waited out (if it
    were, the join below would outlast the suite's per-test timeout)."""
    cluster, health = _Cluster(), HealthState()
    watch = _watch(cluster, health, interval_s=3600)
    stop = threading.Event()
    thread = threading.Thread(target=watch.run, args=(stop,), daemon=True)
    thread.start()
    watch.request_check()
    assert watch.wait_checked(3600) is True  # the first check ran; now it waits an hour
    stop.set()
    watch.wake()
    thread.join()
    assert cluster.closed == 1  # the admin client was released on the way out


def test_readiness_needs_the_broker_and_progress() -> None:
    health = HealthState(
        consent_loaded=True, residency_ok=True, broker_connected=True, assigned=True
    )
    assert health.ready()
    health.broker_connected = False
    assert not health.ready()
    health.broker_connected, health.progressing = True, False
    assert not health.ready()
    assert health.detail()["progressing"] is False
