"""End-to-end latency at half the measured maximum rate, measured two ways.

External probe: the harness publishes the workload at a steady rate and
makes every PROBE_EVERY-th record a probe by giving it a key that does not
match its user id (`probe-<n>`, no personal value). The worker rejects it at
validation and writes it to the dead-letter topic inside the same
transaction as the anonymized records of that batch, so it becomes visible
to a `read_committed` consumer at the same commit. A probe consumer in the
harness records when each probe appears; latency = appearance - the wall
time of the publisher's `send` (same clock, same process). This is the
pipeline latency without the k-anonymity hold. The worker's own histograms
give the same figure for anonymized records (raw timestamp → commit, hold
excluded) and the hold on its own; with the hold, latency is their sum.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.pipeline import _drain, summarize
from benchmarks.stats import quantile
from benchmarks.workers import input_partitions, start_workers, wait_assigned
from benchmarks.workload import Workload, prepare_prefix
from ingest.kafka import ConsumerOptions, ProducerOptions, TopicPartition, Transport
from ingest.kafka.topics import TopicSet
from ingest.metrics_text import metric_sum

LATENCY_MAX_DELAY_S = 5.0
"""The hold in the latency run: as in runs before 2 December 2026, so the bound with the
hold compares across them (the throughput runs hold 1 s)."""
PROBE_EVERY = 50
DURATION_S = 15.0
LOAD_SHARE = 0.5
PUBLISH_OPTIONS = ProducerOptions(linger_ms=5, batch_size=256 * 1024)


class _Probe(threading.Thread):
    """Reads the dead-letter topic read_committed and notes when each probe key shows up."""

    def __init__(self, transport: Transport, topic: str) -> None:
        super().__init__(daemon=True)
        self.seen: dict[bytes, float] = {}
        self.stop = threading.Event()
        self.ready = threading.Event()
        self._transport = transport
        self._topic = topic

    def run(self) -> None:
        consumer = self._transport.consumer(
            ConsumerOptions(group_id=None, read_committed=True, fetch_max_wait_ms=10)
        )
        try:
            tps = [TopicPartition(self._topic, p) for p in consumer.partitions_for(self._topic)]
            consumer.assign(tps)
            for tp in tps:
                consumer.seek(tp, 0)
            consumer.poll(100, 0.05)
            self.ready.set()
            while not self.stop.is_set():
                for msg in consumer.poll(2000, 0.05):
                    if msg.key is not None and msg.key.startswith(b"probe-"):
                        self.seen.setdefault(msg.key, time.time())
        finally:
            consumer.close()


def publish_paced(
    transport: Transport, topics: TopicSet, work: Workload, rate: float, duration_s: float
) -> tuple[int, dict[bytes, float]]:
    """Send events at `rate` for `duration_s`; every PROBE_EVERY-th is a probe. (sent, probes)."""
    producer = transport.producer(PUBLISH_OPTIONS)
    names = {role: topics.name(role) for role in ("raw_device", "raw_log")}
    sent_at: dict[bytes, float] = {}
    events = work.events
    began = time.monotonic()
    sent = 0
    try:
        while True:
            elapsed = time.monotonic() - began
            if elapsed >= duration_s:
                break
            due = int(elapsed * rate)
            while sent < due:
                rec = events[sent % len(events)]
                key = rec.key
                if sent % PROBE_EVERY == 0:
                    key = f"probe-{sent}".encode()
                    sent_at[key] = time.time()
                producer.send(names[rec.role], rec.value, key=key, headers=rec.headers)
                sent += 1
            time.sleep(0.002)
        producer.flush(30)
    finally:
        producer.close(10)
    return sent, sent_at


def run_latency(
    loader: Transport, bootstrap: str, work: Workload, prefix: str, log_dir: Path, max_eps: float
) -> dict[str, Any]:
    """One worker at LOAD_SHARE of `max_eps`; probe and histogram latencies in ms."""
    topics = prepare_prefix(loader, prefix, work, with_events=False)
    rate = max(100.0, max_eps * LOAD_SHARE)
    workers = start_workers(
        bootstrap,
        prefix,
        1,
        log_dir,
        group=f"{prefix}pipeline",
        extra=["--max-delay", str(LATENCY_MAX_DELAY_S)],
    )
    probe = _Probe(loader, topics.name("dead_letter"))
    try:
        wait_assigned(workers, input_partitions(topics))
        probe.start()
        probe.ready.wait(30)
        sent, sent_at = publish_paced(loader, topics, work, rate, DURATION_S)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            samples = workers[0].scrape()
            if metric_sum(samples, "consentgate_consumed_total") >= sent and len(probe.seen) >= len(
                sent_at
            ):
                break
            time.sleep(0.2)
        final = _drain(workers)
    finally:
        probe.stop.set()
        for w in workers:
            w.stop()
        probe.join(10)
    latencies = [(probe.seen[k] - t) * 1000 for k, t in sent_at.items() if k in probe.seen]
    counters = summarize(final)
    e2e = counters["e2e_ms_excluding_hold"]
    hold = counters["hold_ms"]
    return {
        "rate_eps": round(rate),
        "duration_s": DURATION_S,
        "sent": sent,
        "consumed": counters["consumed"],
        "probes_sent": len(sent_at),
        "probes_seen": len(latencies),
        "probe_p50_ms": round(quantile(latencies, 0.50), 1),
        "probe_p99_ms": round(quantile(latencies, 0.99), 1),
        "probe_max_ms": round(max(latencies), 1) if latencies else None,
        "worker_e2e_excluding_hold_ms": e2e,
        "worker_hold_ms": hold,
        "with_hold_p99_upper_bound_ms": round(e2e["p99"] + hold["p99"], 1),
        "counters": counters,
    }
