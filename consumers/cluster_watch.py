"""The sink cluster, watched: is it reachable, and may the pipeline still produce to it?

A thread of each worker describes the sink cluster every `interval_s` seconds, and at
once when the worker asks (`request_check`, after a failed transaction: a broker that
restarted may have come back with another rack). Each check sets the health flags
`broker_connected` and `residency_ok` and their gauges. Residency fails closed: a
failed check, or a check the worker asked for and that has not run yet, leaves
`residency_ok` false, and the worker neither produces nor commits until a check passes
(SPEC 10). So a sink broker that leaves the allow-list stops the pipeline within one
interval, or at its next failed transaction, whichever comes first.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Sequence

from consumers import metrics as m
from consumers.health import HealthState
from consumers.residency import ResidencyResult
from ingest.errors import TransportError
from ingest.kafka import Admin, Transport
from ingest.kafka.base import BrokerInfo

log = logging.getLogger(__name__)

Check = Callable[[Sequence[BrokerInfo]], ResidencyResult]


class ClusterWatch:
    """Describes the sink cluster on a schedule and on request; updates health and metrics."""

    def __init__(
        self, sink: Transport, check: Check, health: HealthState, interval_s: float
    ) -> None:
        self._sink = sink
        self._check = check
        self._health = health
        self._interval_s = interval_s
        self._admin: Admin | None = None
        self._wake = threading.Event()
        self._checked = threading.Condition()
        self._generation = 0
        self._requested = 0
        self._problems: tuple[str, ...] = ()

    def request_check(self) -> None:
        """Distrust the residency state until a new check passes (after a failed transaction)."""
        with self._checked:
            self._requested = self._generation + 1
            self._health.residency_ok = False
        m.RESIDENCY_OK.set(0)
        self._wake.set()

    def wake(self) -> None:
        """Cut the wait between checks short: `run` then sees its stop event at once."""
        self._wake.set()

    def wait_checked(self, timeout_s: float) -> bool:
        """Wait until a check ran after the last request; True if the sink passed it."""
        with self._checked:
            self._checked.wait_for(lambda: self._generation >= self._requested, timeout_s)
            return self._health.residency_ok

    def run(self, stop: threading.Event) -> None:
        """Check until `stop` is set."""
        try:
            while not stop.is_set():
                self.check_once()
                self._wake.wait(self._interval_s)
                self._wake.clear()
        finally:
            self._close_admin()

    def check_once(self) -> bool:
        """One check; True if the sink is reachable and passes residency."""
        with self._checked:
            generation = self._requested
        try:
            if self._admin is None:
                self._admin = self._sink.admin()
            brokers = self._admin.brokers()
        except Exception as exc:  # whatever the client raises, the watch must go on
            self._close_admin()
            problem = str(exc) if isinstance(exc, TransportError) else type(exc).__name__
            self._record(generation, connected=False, ok=False, problems=(problem,))
            return False
        result = self._check(brokers)
        self._record(
            generation,
            connected=True,
            ok=result.ok,
            problems=tuple(text for _kind, text in result.problems),
        )
        if not result.ok:
            for kind, _text in result.problems:
                m.RESIDENCY_VIOLATIONS.labels(kind).inc()
        return result.ok

    def _record(
        self, generation: int, *, connected: bool, ok: bool, problems: tuple[str, ...]
    ) -> None:
        with self._checked:
            was_connected = self._health.broker_connected
            was_ok = self._health.residency_ok
            self._health.broker_connected = connected
            # A request made while this check ran needs a check of its own.
            self._health.residency_ok = ok and self._requested <= generation
            self._generation = max(self._generation, generation)
            self._checked.notify_all()
        m.BROKER_CONNECTED.set(1 if connected else 0)
        m.RESIDENCY_OK.set(1 if ok else 0)
        if connected != was_connected:
            if connected:
                log.info("sink cluster reachable")
            else:
                log.error("sink cluster unreachable", extra={"problem": problems[0]})
        if ok and not was_ok:
            log.info("sink passed the residency check")
        if not ok and connected and problems != self._problems:
            for text in problems:
                log.error("residency check failed: refusing to produce", extra={"problem": text})
        self._problems = problems if not ok else ()

    def _close_admin(self) -> None:
        admin, self._admin = self._admin, None
        if admin is not None:
            with contextlib.suppress(Exception):
                admin.close()
