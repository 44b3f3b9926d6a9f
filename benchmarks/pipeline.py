"""Pipeline scenarios: real worker processes on the preloaded workload, rate from /metrics.

Method: a fresh topic set per scenario with the consent records loaded; the
workers start and wait until they hold every raw partition (start-up and
rebalances excluded); then the raw events are produced as fast as possible.
The window opens once that producer has flushed (no harness CPU in it) and
closes when the workers' committed `consentgate_consumed_total` reaches the
event count; rate = records consumed inside the window / its length.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.stats import histogram_summary
from benchmarks.workers import (
    WorkerFailed,
    WorkerProc,
    input_partitions,
    start_workers,
    wait_assigned,
)
from benchmarks.workload import Workload, prepare_prefix, produce
from ingest.kafka import Transport
from ingest.metrics_text import Samples, by_label, merge, metric_sum

RAW_PARTITIONS = 12
SCRAPE_EVERY_S = 0.1
MAX_DELAY_S = 1.0
"""The k-anonymity hold δ in the throughput runs: well under a run's length, so the
windows release (group, encode, produce) inside the measured window as they do in a
steady stream. A hold longer than the run would leave every release after it."""


def _scrape_all(workers: Sequence[WorkerProc]) -> Samples:
    for w in workers:
        if w.proc.poll() is not None:
            raise WorkerFailed(f"worker exited during the run:\n{w.log_tail()}")
    return merge(w.scrape() for w in workers)


def run_pipeline(
    loader: Transport,
    bootstrap: str,
    work: Workload,
    prefix: str,
    log_dir: Path,
    *,
    processes: int = 1,
    extra: Sequence[str] = (),
    timeout_s: float = 240,
) -> dict[str, Any]:
    """One scenario: returns eps, CPU µs/record, RSS samples and the final counters."""
    topics = prepare_prefix(loader, prefix, work, with_events=False)
    flags = ["--max-delay", str(MAX_DELAY_S), *extra]
    workers = start_workers(
        bootstrap, prefix, processes, log_dir, group=f"{prefix}pipeline", extra=flags
    )
    try:
        wait_assigned(workers, input_partitions(topics, flags))
        cpu_before = sum(w.cpu() for w in workers)
        produce_s = produce(loader, topics, work.events)
        total = len(work.events)
        t0 = time.monotonic()
        c0 = metric_sum(_scrape_all(workers), "consentgate_consumed_total")
        cpu0 = sum(w.cpu() for w in workers)
        consumed = c0
        deadline = t0 + timeout_s
        while consumed < total:
            if time.monotonic() > deadline:
                raise WorkerFailed(f"{prefix}: only {consumed:.0f}/{total} consumed in time")
            time.sleep(SCRAPE_EVERY_S)
            consumed = metric_sum(_scrape_all(workers), "consentgate_consumed_total")
            for w in workers:
                w.sample_rss()
        t1 = time.monotonic()
        cpu1 = sum(w.cpu() for w in workers)
        final = _drain(workers)
        cpu_drained = sum(w.cpu() for w in workers)
    finally:
        for w in workers:
            w.stop()
    window = total - c0
    seconds = t1 - t0
    return {
        "processes": processes,
        "flags": flags,
        "events": total,
        "produce_s": round(produce_s, 2),
        "window_records": int(window),
        "window_s": round(seconds, 3),
        "eps": round(window / seconds) if seconds > 0 else 0,
        "cpu_us_per_record": round((cpu1 - cpu0) * 1e6 / window, 1) if window else None,
        # Everything the records cost, their last releases included: from before the
        # first was produced until the windows were drained, over all of them.
        "cpu_us_per_record_drained": round((cpu_drained - cpu_before) * 1e6 / total, 1),
        "rss_mb": [_rss_summary(w.rss) for w in workers],
        "counters": summarize(final),
    }


def _drained(samples: Samples) -> bool:
    """Nothing held in a window and nothing in transit on the repartition topic."""
    regrouped = "consentgate_kanon_regrouped_total"
    in_transit = metric_sum(samples, regrouped, direction="out") - metric_sum(
        samples, regrouped, direction="in"
    )
    return metric_sum(samples, "consentgate_kanon_pending") == 0 and in_transit == 0


def _drain(workers: Sequence[WorkerProc], timeout_s: float = MAX_DELAY_S + 30) -> Samples:
    """Wait until the k-anonymity windows and the repartition topic are empty (every
    held record released or suppressed); final samples."""
    deadline = time.monotonic() + timeout_s
    samples = _scrape_all(workers)
    while not _drained(samples) and time.monotonic() < deadline:
        time.sleep(0.2)
        samples = _scrape_all(workers)
    time.sleep(1.0)  # one more commit interval so the last releases are counted
    return _scrape_all(workers)


def _rss_summary(values: list[float]) -> dict[str, float]:
    """First, last, and min / max after the first fifth of the samples (warm-up)."""
    if not values:
        return {}
    steady = values[len(values) // 5 :] or values
    return {
        "first": values[0],
        "min": min(steady),
        "max": max(steady),
        "last": values[-1],
        "samples": len(values),
    }


def summarize(samples: Samples) -> dict[str, Any]:
    """The counters that say what a run did (for comparing scenarios and transports)."""
    return {
        "consumed": metric_sum(samples, "consentgate_consumed_total"),
        "forwarded": metric_sum(samples, "consentgate_forwarded_total"),
        "dropped": by_label(samples, "consentgate_dropped_total", "reason"),
        "dead_lettered": metric_sum(samples, "consentgate_dead_lettered_total"),
        "pending": metric_sum(samples, "consentgate_kanon_pending"),
        "suppressed": metric_sum(samples, "consentgate_kanon_suppressed_total"),
        "produced": by_label(samples, "consentgate_produced_total", "role"),
        "transactions": by_label(samples, "consentgate_transactions_total", "outcome"),
        "e2e_ms_excluding_hold": histogram_summary(
            samples, "consentgate_end_to_end_latency_seconds"
        ),
        "hold_ms": histogram_summary(samples, "consentgate_kanon_hold_seconds"),
        "batch_ms": histogram_summary(samples, "consentgate_batch_duration_seconds"),
    }
