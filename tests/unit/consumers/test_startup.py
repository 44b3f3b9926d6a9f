"""What a worker process does to its own runtime at start-up: the garbage collector's tuning."""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator

import pytest

from consumers.startup import YOUNG_GENERATION_OBJECTS, settle_heap
from tests.integration.fault_helpers import Workload, build_workload
from tests.integration.worker_harness import wait_for
from tests.unit.consumers.worker_runs import WorkerThread, fresh_cluster


@pytest.fixture(scope="module")
def workload() -> Workload:
    """Consent records for a few users: the workers here only start and read them."""
    return build_workload(seed=20262, users=20, count=100, now_ms=int(time.time() * 1000))


@pytest.fixture
def collector() -> Iterator[None]:
    """The test process's collector as it was, whatever the test did to it."""
    thresholds = gc.get_threshold()
    gc.unfreeze()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def _tracked(obj: object) -> bool:
    """Whether the collector's generations (not the frozen objects) hold `obj`."""
    return any(o is obj for o in gc.get_objects())


def test_settling_the_heap_hides_what_exists_and_widens_the_young_generation(
    collector: None,
) -> None:
    built_at_start = [{"user": n} for n in range(3)]
    assert _tracked(built_at_start)
    settle_heap()
    assert not _tracked(built_at_start)
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[0] == YOUNG_GENERATION_OBJECTS > 700
    made_later = [{"user": 4}]
    assert _tracked(made_later)  # cycles formed while running are still collected


def test_a_worker_owning_its_process_settles_the_heap_once_consent_is_read(
    collector: None,
    workload: Workload,
) -> None:
    _cluster, transport, topics = fresh_cluster(workload)
    worker = WorkerThread(transport, topics, settle_heap=True)
    assert gc.get_freeze_count() == 0
    worker.start()
    wait_for(lambda: worker.worker.health.consent_loaded, what="the consent table read")
    wait_for(gc.get_freeze_count, what="the heap settled")
    assert gc.get_threshold()[0] == YOUNG_GENERATION_OBJECTS
    worker.stop()


def test_a_worker_inside_another_program_leaves_its_collector_alone(
    collector: None,
    workload: Workload,
) -> None:
    _cluster, transport, topics = fresh_cluster(workload)
    thresholds = gc.get_threshold()
    worker = WorkerThread(transport, topics).start()
    wait_for(lambda: worker.worker.health.consent_loaded, what="the consent table read")
    worker.stop()
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == thresholds
