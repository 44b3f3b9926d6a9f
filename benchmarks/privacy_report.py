"""`python -m benchmarks.privacy_report` (`make privacy-report`): what analysts get, at what risk.

Simulated fleet traffic (by default 2,000 users at 1,000 events/s for 180 s, k = 10,
δ = 60 s) goes through the pipeline, and everything an analyst can read of the result
is measured against the input with `benchmarks.privacy_oracle`, which shares no code
with the pipeline:

- privacy: records whose whole visible content (every field but anon_id, the headers,
  the key and the Kafka timestamp) could have come from fewer than k distinct persons;
- suppression, and utility: located records keeping geohash precision 5 / 4 / 3, records
  keeping brand, model and OS, the median relative error of COUNT queries at selectivity
  0.05 or more against the consented input;
- the hold (time in the k-anonymity window) and, live, the latency without it.

Every consent record is published before the events (the oracle judges each event by
its user's final consent record, as the pipeline then does).

Modes: live (default) starts a private broker and real `consentgate run` workers and
publishes the events in real time; `--in-process` runs the same stages (consent gate,
anonymizer, k-anonymity window) in this process on a simulated clock, so minutes of
traffic take seconds, which is what `--sweep` uses to show how k and δ move the figures.
Writes benchmarks/results/privacy.json (or --out) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import threading
import time
import zlib
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.privacy_oracle import Candidate, Index, candidates
from benchmarks.privacy_utility import utility
from benchmarks.workers import WorkerProc, input_partitions, start_workers, wait_assigned
from benchmarks.workload import create_topics, fast_transport
from consumers.anonymization_config import load_policy
from consumers.anonymize import Anonymizer
from consumers.consent import ConsentRules, GateItem, gate
from consumers.consent_table import ConsentTable
from consumers.kanon import KAnonymityWindow, PendingEntry
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

RESULTS = Path(__file__).resolve().parent / "results" / "privacy.json"
ANALYST = {"anon_device": "device_event", "anon_log": "log_event"}
OUTPUT = {"device_event": "anonymized_device_event", "log_event": "anonymized_log_event"}
DAY_OF_REPORT = 1_795_996_800_000
"""2026-11-30T00:00Z: in-process runs at given hours of the day start on this day."""
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
    level0: dict[str, Any],
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
        worker = _worker_of(schema, level0, user_id, now, workers, keys)
        load[worker] += 1
        entry = PendingEntry(str(n), schema, user_id, level0, ("raw", 0), now)
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
                record = codec.decode_as(msg.value, OUTPUT[schema])
                record.pop("anon_id")
                out.released.append((schema, record, msg.timestamp_ms))
                out.headers.setdefault(schema, set()).add(tuple(msg.headers))
                out.keys += msg.key is not None
        return out
    finally:
        for w in procs:
            w.stop()


def measure(data: Traffic, out: Outcome, k: int, min_policy: int = 1) -> dict[str, Any]:
    """Privacy and utility of one outcome, against the input."""
    truth = data.candidates(min_policy)
    index = Index(truth)
    contents: dict[tuple[Any, ...], tuple[str, dict[str, Any], int]] = {}
    per_content: Counter[tuple[Any, ...]] = Counter()
    actual: dict[tuple[Any, ...], set[str]] = defaultdict(set)
    stamp_mismatch = 0
    for i, (schema, record, stamp) in enumerate(out.released):
        key = (schema, stamp, tuple(sorted(record.items(), key=lambda kv: kv[0])))
        contents.setdefault(key, (schema, record, stamp))
        per_content[key] += 1
        stamp_mismatch += stamp != record["event_hour"]
        if out.persons:
            actual[key].add(out.persons[i])
    under = 0
    for key, (schema, record, _stamp) in contents.items():
        if index.persons_behind(schema, record, k) < k:
            under += per_content[key]
    under_actual = sum(per_content[key] for key, p in actual.items() if len(p) < k)
    found = utility([(s, r) for s, r, _t in out.released], truth)
    hold = sorted(out.hold_ms)
    return {
        "events": len(data.events),
        "consented_by_oracle": len(truth),
        "consented_by_pipeline": out.consented,
        "released": len(out.released),
        "distinct_contents": len(contents),
        "under_k_from_input": under,
        "under_k_actual_persons": under_actual if out.persons else None,
        "timestamp_not_the_released_time": stamp_mismatch,
        "keys": out.keys,
        "header_sets_per_schema": {s: len(h) for s, h in out.headers.items()},
        "suppression": out.suppressed / max(out.consented, 1),
        "located": found.located,
        "geohash_at_least": {str(p): v for p, v in found.geohash_at_least.items()},
        "kept": found.kept,
        "count_error_median": found.count_error_median,
        "count_queries": found.count_queries,
        "count_error_by_query": found.count_error_by_query,
        "hold_s": ({"p50": hold[len(hold) // 2] / 1000, "max": hold[-1] / 1000} if hold else None),
        "grouping_us_per_record": out.grouping_us_per_record,
        "latency_s": out.latency_s,
        "load_per_worker": out.load,
    }


def _row(label: str, m: Mapping[str, Any]) -> str:
    geo = m["geohash_at_least"]
    error = m["count_error_median"]
    return (
        f"{label:<26} {m['under_k_from_input']:>6} {100 * m['suppression']:>6.1f} "
        f"{100 * geo['5']:>5.1f} {100 * geo['4']:>5.1f} {100 * geo['3']:>5.1f} "
        f"{100 * m['kept']['brand']:>6.1f} {100 * m['kept']['model']:>6.1f} "
        f"{100 * m['kept']['os_name']:>5.1f} {100 * m['kept']['hour']:>5.1f} "
        f"{'-' if error is None else f'{100 * error:.1f}':>6} {m['count_queries']:>4}"
    )


HEADER = (
    f"{'run':<26} {'<k':>6} {'supp%':>6} {'gh5%':>5} {'gh4%':>5} {'gh3%':>5} "
    f"{'brand%':>6} {'model%':>6} {'OS%':>5} {'hour%':>5} {'cnt%':>6} {'qs':>4}"
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the report; print a table and write the JSON results."""
    parser = argparse.ArgumentParser(prog="benchmarks.privacy_report", description=__doc__)
    parser.add_argument("--users", type=int, default=2_000)
    parser.add_argument("--rate", type=float, default=1_000.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=180.0, help="seconds of traffic")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--delay", type=float, default=60.0, help="δ, the hold bound (s)")
    parser.add_argument("--workers", type=int, nargs="*", default=[1], help="live worker counts")
    parser.add_argument("--client", default="kafka-python", choices=["kafka-python", "confluent"])
    parser.add_argument("--in-process", action="store_true", help="simulated clock, no broker")
    parser.add_argument("--sweep", action="store_true", help="in-process over k and δ")
    parser.add_argument(
        "--day-hours",
        type=int,
        nargs="*",
        default=None,
        help="in-process, the traffic starting at these UTC hours of 2026-11-30",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    start_ms = int(time.time() * 1000)
    data = traffic(args.seed, args.users, args.rate, args.seconds, start_ms)
    runs: dict[str, Any] = {}
    print(HEADER)
    if args.day_hours:
        for hour in args.day_hours:
            start = DAY_OF_REPORT + hour * 3_600_000 + 10 * 60_000
            day = traffic(args.seed, args.users, args.rate, args.seconds, start)
            label = f"in-process from {hour:02d}:10 UTC"
            outcome = run_in_process(day, args.k, int(args.delay * 1000))
            runs[label] = measure(day, outcome, args.k)
            print(_row(label, runs[label]), flush=True)
    elif args.in_process and not args.sweep:
        for count in args.workers:
            for grouping in ("local", "repartition") if count > 1 else ("local",):
                label = f"in-process x{count} {grouping}"
                outcome = run_in_process(
                    data, args.k, int(args.delay * 1000), workers=count, grouping=grouping
                )
                runs[label] = measure(data, outcome, args.k)
                print(_row(label, runs[label]), outcome.load, flush=True)
    elif args.sweep:
        grid = [(args.k, args.delay)]
        if args.sweep:
            grid = [(k, d) for k in (5, 10, 20) for d in (15.0, 30.0, 60.0, 120.0)]
        for k, delay in grid:
            label = f"in-process k={k} δ={delay:g}s"
            runs[label] = measure(data, run_in_process(data, k, int(delay * 1000)), k)
            print(_row(label, runs[label]), flush=True)
    else:
        for count in args.workers:
            label = f"live {args.client} x{count}"
            with tempfile.TemporaryDirectory(prefix="consentgate-privacy-") as tmp:
                delay_ms = int(args.delay * 1000)
                outcome = run_live(data, args.k, delay_ms, count, args.client, Path(tmp))
            runs[label] = measure(data, outcome, args.k)
            print(_row(label, runs[label]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    settings = {k: v for k, v in vars(args).items() if k not in ("out",)}
    args.out.write_text(json.dumps({"settings": settings, "runs": runs}, indent=2, default=str))
    print(f"results: {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
