"""What /readyz reports, and when a worker that stays unready says why."""

from __future__ import annotations

from consumers.health import NOT_READY_REPORT_S, HealthState


def _ready() -> HealthState:
    return HealthState(consent_loaded=True, residency_ok=True, broker_connected=True, assigned=True)


def test_a_worker_with_every_flag_up_is_ready_and_reports_nothing() -> None:
    health = _ready()
    assert health.ready()
    assert health.down() == []
    assert health.overdue(0.0) == []
    assert health.overdue(10 * NOT_READY_REPORT_S) == []


def test_down_names_the_flags_that_keep_a_worker_unready() -> None:
    health = _ready()
    health.assigned = False
    health.progressing = False
    assert not health.ready()
    assert health.down() == ["assigned", "progressing"]


def test_an_unready_worker_reports_after_the_interval_then_once_per_interval() -> None:
    health = _ready()
    health.assigned = False
    assert health.overdue(100.0) == []  # just became unready
    assert health.overdue(100.0 + NOT_READY_REPORT_S - 1) == []
    assert health.overdue(100.0 + NOT_READY_REPORT_S) == ["assigned"]
    assert health.overdue(100.0 + NOT_READY_REPORT_S + 1) == []  # reported just now
    assert health.overdue(100.0 + 2 * NOT_READY_REPORT_S) == ["assigned"]


def test_becoming_ready_restarts_the_count_and_stopping_is_not_reported() -> None:
    health = _ready()
    health.assigned = False
    health.overdue(0.0)
    health.assigned = True
    assert health.overdue(NOT_READY_REPORT_S) == []  # ready again
    health.assigned = False
    assert health.overdue(NOT_READY_REPORT_S + 1) == []  # unready anew: the count restarts
    assert health.overdue(2 * NOT_READY_REPORT_S + 1) == ["assigned"]
    health.stopping = True
    assert health.overdue(10 * NOT_READY_REPORT_S) == []
