"""The privacy report's runs: simulated fleet traffic through the pipeline, and what an
analyst can read of the result.

`run_in_process` runs the stages (consent gate, anonymizer, k-anonymity window) in this
process on a simulated clock, mapping partitions to workers as the broker would;
`run_on_broker` starts a private broker and real `consentgate run` workers and publishes
the events in real time (`run_live` is that run with the report's defaults).
"""

from __future__ import annotations

import random
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.privacy_oracle import Candidate, candidates
from benchmarks.workers import WorkerProc, input_partitions, start_workers, wait_assigned
from benchmarks.workload import create_topics, fast_transport
from consumers.anonymization_config import load_policy
from consumers.anonymize import Anonymizer
from consumers.consent import ConsentRules, GateItem, gate
from consumers.consent_table import ConsentTable
from consumers.kanon import KAnonymityWindow, PendingEntry, level0_of
from consumers.regroup import RegroupKeys
from consumers.release_policy import ReleasePlan
from consumers.scrub import scrub
from ingest.kafka import ProducerOptions, Transport
from ingest.kafka.topic_reader import read_messages
from ingest.kafka.topics import TopicSet, load_topic_set
from ingest.local_broker.broker import LocalBroker
from ingest.metrics_text import merge, metric_sum, quantile_of
from ingest.sdk.publisher import Publisher
from ingest.simulator.fleet import Fleet
from ingest.simulator.simulate import Simulation

ANALYST = {"anon_device": "device_event", "anon_log": "log_event"}
OUTPUT = {"device_event": "anonymized_device_event", "log_event": "anonymized_log_event"}


RELEASE_EVERY_MS = 100
"""The simulated worker lets the window release this often (the live loop: every poll)."""


@dataclass(slots=True)
class Traffic:
    """A fleet's consent records (final per user) and events with their send offsets."""

    start_ms: int
    consents: dict[str, dict[str, Any]]
    consent_records: list[dict[str, Any]]
    events: list[tuple[str, dict[str, Any], int]]

    def candidates(self, min_policy: int = 1) -> list[Candidate]:
        """The events that could reach an analyst (the oracle's view of consent)."""
        pairs = [(schema, record) for schema, record, _at in self.events]
        return candidates(pairs, self.consents, min_policy)


def traffic(seed: int, users: int, rate: float, seconds: float, start_ms: int) -> Traffic:
    """Simulate the fleet: every consent change folded into a final record per user."""
    fleet = Fleet(seed=seed, users=users, start_ms=start_ms)
    consents: dict[str, dict[str, Any]] = {}
    records: list[dict[str, Any]] = []
    events: list[tuple[str, dict[str, Any], int]] = []
    for item in Simulation(fleet).items(duration_ms=int(seconds * 1000), rate_per_s=rate):
        if item.event_type == "consent_record":
            consents[item.record["user_id"]] = item.record
            records.append(item.record)
        else:
            events.append((item.event_type, item.record, item.send_offset_ms))
    return Traffic(start_ms, consents, records, events)


@dataclass(slots=True)
class Outcome:
    """What one run released (as analysts read it), and what it cost."""

    released: list[tuple[str, dict[str, Any], int]] = field(default_factory=list)
    """(event schema, released record without anon_id, Kafka timestamp)"""
    persons: list[str] = field(default_factory=list)
    """The person behind each released record, where the run can know it (in-process)."""
    suppressed: int = 0
    consented: int = 0
    hold_ms: list[int] = field(default_factory=list)
    grouping_us_per_record: float | None = None
    headers: dict[str, set[tuple[tuple[str, bytes], ...]]] = field(default_factory=dict)
    keys: int = 0
    latency_s: dict[str, float | None] = field(default_factory=dict)
    load: list[int] = field(default_factory=list)
    """Records grouped by each (simulated) worker: the skew of the partitioning."""


def _plans(min_policy: int) -> tuple[Any, dict[str, ReleasePlan]]:
    policy = load_policy()
    constants = {"policy_version": policy.version, "min_consent_policy_version": min_policy}
    plans = {
        name: ReleasePlan(name, spec.output, spec.release, constants)
        for name, spec in policy.schemas.items()
    }
    return policy, plans


RAW_PARTITIONS = 6
REPARTITION_PARTITIONS = 12
"""As in ingest/kafka/topics.toml: raw topics keyed by user, the repartition topic by region."""


def _worker_of(
    schema: str,
    level0: tuple[Any, ...],
    user_id: str,
    now: int,
    workers: int,
    keys: RegroupKeys | None,
) -> int:
    """Which simulated worker groups a record: by raw partition (user) or by region key."""
    if keys is None:
        partition = zlib.crc32(user_id.encode()) % RAW_PARTITIONS
    else:
        partition = zlib.crc32(keys.key(schema, level0, now)) % REPARTITION_PARTITIONS
    return partition % workers


def run_in_process(
    data: Traffic,
    k: int,
    delay_ms: int,
    min_policy: int = 1,
    workers: int = 1,
    grouping: str = "local",
) -> Outcome:
    """The gate, the anonymizer and the window in this process, on the traffic's own clock.

    With `workers` > 1 each simulated worker has its own window and gets the records of
    its partitions: raw partitions (by user) with `grouping="local"`, or repartition
    partitions (by the region key of consumers.regroup) with `grouping="repartition"`.
    """
    policy, plans = _plans(min_policy)
    anonymizer = Anonymizer(policy, scrub)
    table = ConsentTable()
    for user_id, record in data.consents.items():
        table.apply(user_id, record)
    rules = ConsentRules(min_policy_version=min_policy)
    windows = [
        KAnonymityWindow(plans, k=k, max_delay_ms=delay_ms, rng=random.Random(1 + n))
        for n in range(workers)
    ]
    keys = RegroupKeys(plans, 1 / REPARTITION_PARTITIONS) if grouping == "repartition" else None
    load = [0] * workers
    out = Outcome()
    grouping_s = 0.0
    next_release = 0

    def release(now: int) -> None:
        nonlocal grouping_s
        for window in windows:
            began = time.process_time()
            batch = window.release(now)
            grouping_s += time.process_time() - began
            for r in batch.released:
                out.released.append((r.entry.schema, r.record, r.timestamp_ms))
                out.persons.append(r.entry.person)
            out.suppressed += len(batch.suppressed)
            out.hold_ms.extend(batch.hold_times)

    for n, (schema, record, at) in enumerate(data.events):
        now = data.start_ms + at
        if now >= next_release:
            release(now)
            next_release = now + RELEASE_EVERY_MS
        event = dict(record)
        if not gate([GateItem(event, schema)], table, now, rules).kept:
            continue
        out.consented += 1
        level0 = anonymizer.anonymize(schema, event).record
        user_id = str(event["user_id"])
        entry = PendingEntry(str(n), schema, user_id, level0, ("raw", 0), now)
        values = level0_of(plans[schema], entry)
        worker = _worker_of(schema, values, user_id, now, workers, keys)
        load[worker] += 1
        began = time.process_time()
        windows[worker].add(entry, now)
        grouping_s += time.process_time() - began
    # The traffic has ended; a worker goes on polling, so the window still meets each deadline.
    while True:
        pending = [t for w in windows if (t := w.oldest_pending_ms()) is not None]
        if not pending:
            break
        release(min(pending) + delay_ms)
    out.grouping_us_per_record = 1e6 * grouping_s / max(out.consented, 1)
    out.load = load
    return out


def _feed(transport: Transport, topics: TopicSet, data: Traffic, began: float) -> None:
    """Publish each event at its send offset (real time), through the SDK."""
    with Publisher(transport, topics, ProducerOptions(linger_ms=20)) as pub:
        for schema, record, at in data.events:
            wait = began + at / 1000 - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            pub.send_valid(schema, record)


def run_live(
    data: Traffic, k: int, delay_ms: int, workers: int, client: str, log_dir: Path
) -> Outcome:
    """Real workers on a private broker; events published at their send times."""
    broker = LocalBroker(log_dir / "broker", heap_mb=768)
    bootstrap = broker.start()
    try:
        return run_on_broker(bootstrap, "privacy.", data, k, delay_ms, workers, client, log_dir)
    finally:
        broker.stop()


def run_on_broker(
    bootstrap: str,
    prefix: str,
    data: Traffic,
    k: int,
    delay_ms: int,
    workers: int,
    client: str,
    log_dir: Path,
) -> Outcome:
    """Real workers on a given broker, topics named with `prefix`; events sent in real time."""
    procs: list[WorkerProc] = []
    try:
        transport = fast_transport(bootstrap)
        topics = load_topic_set(prefix=prefix)
        create_topics(transport, topics)
        with Publisher(transport, topics) as pub:
            for record in data.consent_records:
                pub.send_valid("consent_record", record)
        extra = ["--k", str(k), "--max-delay", str(delay_ms / 1000), "--client", client]
        procs = start_workers(bootstrap, topics.prefix, workers, log_dir, group="p", extra=extra)
        wait_assigned(procs, input_partitions(topics, extra))
        began = time.monotonic()
        feeder = threading.Thread(target=_feed, args=(transport, topics, data, began))
        feeder.start()
        feeder.join()
        total = len(data.events)
        deadline = time.monotonic() + delay_ms / 1000 + 180
        while time.monotonic() < deadline:
            samples = merge(w.scrape() for w in procs)
            done = metric_sum(samples, "consentgate_consumed_total") >= total
            if done and metric_sum(samples, "consentgate_kanon_pending") == 0:
                break
            time.sleep(1)
        else:
            raise RuntimeError("the workers did not release everything in time")
        samples = merge(w.scrape() for w in procs)
        out = Outcome(suppressed=int(metric_sum(samples, "consentgate_kanon_suppressed_total")))
        out.consented = int(metric_sum(samples, "consentgate_forwarded_total")) + out.suppressed
        e2e, hold = "consentgate_end_to_end_latency_seconds", "consentgate_kanon_hold_seconds"
        out.latency_s = {
            "e2e_excl_hold_p50": quantile_of(samples, e2e, 0.5),
            "e2e_excl_hold_p99": quantile_of(samples, e2e, 0.99),
            "hold_p50": quantile_of(samples, hold, 0.5),
            "hold_p99": quantile_of(samples, hold, 0.99),
        }
        reader = fast_transport(bootstrap)
        from schemas.codec import Codec

        codec = Codec()
        for role, schema in ANALYST.items():
            for msg in read_messages(reader, topics.name(role), timeout_s=120):  # type: ignore[arg-type]
                if msg.value is None:
                    raise RuntimeError(f"a tombstone on analyst topic {msg.topic}")
                record = codec.decode_as(msg.value, OUTPUT[schema])
                record.pop("anon_id")
                out.released.append((schema, record, msg.timestamp_ms))
                out.headers.setdefault(schema, set()).add(tuple(msg.headers))
                out.keys += msg.key is not None
        return out
    finally:
        for w in procs:
            w.stop()
