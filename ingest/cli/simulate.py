"""`consentgate simulate`: a deterministic synthetic fleet's consent records and events.

Live, the items are published at a steady rate (paced by their nominal send
offsets against a monotonic clock); with `--out` they are written as JSON
lines in exactly the format `consentgate publish` reads, as fast as possible
and, by default, from a fixed start time so the same seed gives the same file.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from ingest.cli.arguments import non_negative_int, port, positive_float, positive_int
from ingest.cli.connection import (
    add_connection_args,
    instant_ms,
    topics_from_args,
    transport_from_args,
)
from ingest.cli.progress import Progress
from ingest.errors import DeliveryError, TransportError, UsageError
from ingest.sdk.publisher import Publisher
from ingest.simulator.fleet import Fleet
from ingest.simulator.simulate import Item, Simulation

NAME = "simulate"
HELP = "publish (or write as JSON lines) a deterministic synthetic fleet's consent and events"

DEFAULT_DURATION_S = 10.0
# Files are reproducible: without --start, `--out` always starts here.
FIXED_START = "2026-01-01T00:00:00Z"
# Pacing: never run more than this far ahead of schedule, and sleep in steps of at most this.
_AHEAD_S = 0.002
_SLEEP_STEP_S = 0.05
# Fallen further behind than this, the schedule slips instead of catching up in a burst.
_MAX_LAG_S = 0.05


def configure(parser: argparse.ArgumentParser) -> None:
    """Add fleet size, bounds, rate, seed, start, output file and connection options."""
    parser.add_argument(
        "--users", type=positive_int, default=2000, help="fleet size (default 2000)"
    )
    bound = parser.add_mutually_exclusive_group()
    bound.add_argument("--events", type=non_negative_int, metavar="N", help="stop after N events")
    bound.add_argument(
        "--duration",
        type=positive_float,
        metavar="SECONDS",
        help=f"stop after SECONDS of traffic at --rate (default {DEFAULT_DURATION_S:g})",
    )
    parser.add_argument(
        "--rate",
        type=positive_float,
        default=1000.0,
        metavar="EVENTS_PER_S",
        help="events per second, held steady (default 1000)",
    )
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument(
        "--start",
        type=instant_ms,
        metavar="TIME",
        help=f"ISO 8601 start of the simulated traffic (default: now; with --out {FIXED_START})",
    )
    parser.add_argument(
        "--out",
        metavar="FILE",
        help="write JSON lines (as `consentgate publish` reads them) instead of publishing; "
        "- for standard output",
    )
    parser.add_argument(
        "--metrics-port",
        type=port,
        metavar="PORT",
        help="serve the publishing metrics for Prometheus on this port while running",
    )
    add_connection_args(parser)


def _json_default(value: object) -> str:
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"cannot write a {type(value).__name__} as JSON")


def json_line(item: Item) -> str:
    """One item as a JSON line with its `event_type`, dates as ISO strings (no newline)."""
    line: dict[str, Any] = {"event_type": item.event_type, **item.record}
    return json.dumps(line, ensure_ascii=False, default=_json_default)


@dataclass(slots=True)
class Tally:
    """What a run did: events and consent records sent, and how long it took."""

    events: int = 0
    consents: int = 0
    undelivered: int = 0
    elapsed_s: float = 0.0
    interrupted: bool = False

    def summary(self, verb: str) -> str:
        """The one-line summary printed at the end."""
        rate = self.events / self.elapsed_s if self.elapsed_s > 0 else 0.0
        text = (
            f"simulate: {verb} {self.events} events and {self.consents} consent records "
            f"in {self.elapsed_s:.1f} s ({rate:,.0f} events/s)"
        )
        if verb == "published":
            text += f", undelivered {self.undelivered}"
        return text + (" (interrupted)" if self.interrupted else "")


class _StopFlag:
    """Set by SIGINT / SIGTERM so the loop ends between two items and flushes."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True


@contextmanager
def _stop_on_signals() -> Iterator[_StopFlag]:
    flag = _StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = {sig: signal.signal(sig, flag) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _items(args: argparse.Namespace, start_ms: int) -> Iterator[Item]:
    simulation = Simulation(Fleet(args.seed, args.users, start_ms))
    if args.events is not None:
        return simulation.items(count=args.events, rate_per_s=args.rate)
    duration_s = DEFAULT_DURATION_S if args.duration is None else args.duration
    return simulation.items(duration_ms=int(duration_s * 1000), rate_per_s=args.rate)


def _serve_metrics(metrics_port: int) -> None:
    from prometheus_client import start_http_server

    try:
        start_http_server(metrics_port)
    except OSError as exc:
        raise UsageError(f"--metrics-port {metrics_port}: {exc.strerror}") from None


def run(args: argparse.Namespace) -> int:
    """Write or publish the simulated items; exit 1 if any record was undelivered."""
    if args.start is not None and args.start < 0:
        raise UsageError("--start must be 1970-01-01 or later")
    if args.metrics_port is not None:
        _serve_metrics(args.metrics_port)
    if args.out is not None:
        start_ms = instant_ms(FIXED_START) if args.start is None else args.start
        tally = _write(args.out, _items(args, start_ms))
        print(tally.summary("wrote"), file=sys.stderr)
        return 130 if tally.interrupted else 0
    start_ms = int(time.time() * 1000) if args.start is None else args.start
    publisher = Publisher(transport_from_args(args), topics_from_args(args))
    tally = publish_paced(publisher, _items(args, start_ms), args.events)
    print(tally.summary("published"), file=sys.stderr)
    if tally.undelivered:
        return 1
    return 130 if tally.interrupted else 0


@contextmanager
def _output(path: str) -> Iterator[TextIO]:
    if path == "-":
        yield sys.stdout
        return
    try:
        handle = Path(path).open("w", encoding="utf-8", newline="\n")  # noqa: SIM115
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None
    with handle:
        yield handle


def _write(path: str, items: Iterator[Item]) -> Tally:
    tally = Tally()
    began = time.monotonic()
    with _stop_on_signals() as stop, _output(path) as out:
        for item in items:
            if stop.requested:
                tally.interrupted = True
                break
            out.write(json_line(item) + "\n")
            if item.event_type == "consent_record":
                tally.consents += 1
            else:
                tally.events += 1
    tally.elapsed_s = time.monotonic() - began
    return tally


def publish_paced(
    publisher: Publisher,
    items: Iterator[Item],
    total: int | None = None,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Tally:
    """Send each item when its send offset is due (monotonic clock); flush and close at the end.

    Never early (by more than _AHEAD_S); after a stall the schedule slips rather than
    catching up in a burst, so the rate is a ceiling, never exceeded.
    """
    tally = Tally()
    progress = Progress("simulate", total=total)
    failure: TransportError | None = None
    started = clock()
    with _stop_on_signals() as stop:
        try:
            publisher.producer  # noqa: B018  connect before the clock starts
            started = began = clock()
            for item in items:
                due = began + item.send_offset_ms / 1000
                late = clock() - due
                if late > _MAX_LAG_S:  # a stall (e.g. the first metadata fetch): slip, no burst
                    began += late
                    due += late
                _wait_until(due, stop, clock, sleep)
                if stop.requested:
                    tally.interrupted = True
                    break
                publisher.send_valid(item.event_type, item.record)
                if item.event_type == "consent_record":
                    tally.consents += 1
                else:
                    tally.events += 1
                    progress.advance(consents=tally.consents)
        except TransportError as exc:
            failure = exc
        finally:
            progress.close()
            try:
                publisher.close()
            except DeliveryError as exc:
                tally.undelivered = exc.failed
                failure = failure or exc
    tally.elapsed_s = clock() - started
    if failure is not None:
        tally.undelivered = max(tally.undelivered, 1)
        print(f"simulate: {failure}", file=sys.stderr)
    return tally


def _wait_until(
    due: float, stop: _StopFlag, clock: Callable[[], float], sleep: Callable[[float], None]
) -> None:
    """Sleep in small steps until `due` (monotonic seconds) or a stop request."""
    while not stop.requested:
        ahead = due - clock()
        if ahead <= _AHEAD_S:
            return
        sleep(min(ahead, _SLEEP_STEP_S))
