"""Per-stage cost in µs/record: the pure stages timed in-process, the worker under cProfile.

The pure stages run on the preloaded records in batches of the worker's
`max_poll_records`, single-threaded, in CPU time (process_time: other jobs on
the machine do not inflate it). Produce and consume are timed the same way
(all threads of this process, so the clients' I/O threads count) against the
private broker. The profile is a
real `Worker` run in this process under cProfile (main thread only: the
kafka-python sender thread is not in it); its figures are cProfile-inflated
and serve to rank functions, the timed stages give the costs.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from benchmarks.workload import Encoded, Workload, create_topics, produce
from consumers.anonymization_config import load_policy
from consumers.anonymize import Anonymizer
from consumers.checkpoint import decode_entry, entry_bytes
from consumers.consent import ConsentRules, gate
from consumers.consent_table import ConsentTable
from consumers.kanon import KAnonymityWindow, PendingEntry
from consumers.pipeline import Item, Pipeline, invalid_reason
from consumers.regroup import RegroupKeys
from consumers.release_policy import ReleasePlan
from consumers.route import Router
from consumers.scrub import scrub
from consumers.settings import PipelineSettings
from consumers.tagging import count_levels
from consumers.worker import Worker
from ingest.kafka import ConsumerOptions, Message, ProducerOptions, Transport, make_transport
from ingest.kafka.config import KafkaSettings
from ingest.kafka.topics import TopicSet, load_topic_set
from schemas.codec import Codec
from schemas.registry import default_registry

STAGE_EVENTS = 20_000
PROFILE_EVENTS = 20_000
SCHEMA_OF_ROLE = {"raw_device": "device_event", "raw_log": "log_event"}


def _messages(topics: TopicSet, records: Sequence[Encoded]) -> list[Message]:
    now = int(time.time() * 1000)
    return [
        Message(topics.name(rec.role), i % 6, i, rec.key, rec.value, rec.headers, now)  # type: ignore[arg-type]
        for i, rec in enumerate(records)
    ]


def _per_record(seconds: float, n: int) -> float:
    return round(seconds * 1e6 / n, 2) if n else 0.0


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """CPU seconds of this process spent in `fn` (immune to time-slicing by other jobs)."""
    t = time.process_time()
    out = fn()
    return time.process_time() - t, out


def time_pure_stages(topics: TopicSet, work: Workload, events: int) -> dict[str, Any]:
    """µs/record of each call the worker's hot path makes, in its order.

    `Pipeline.process` (decode, validate, tag counts, gate, anonymize, person token),
    then, as `Worker._process` does with the default repartition grouping, the
    repartition key and the held record's bytes, their decoding on the grouping
    worker, the k-anonymity window, and the encoding of what it releases.
    """
    codec = Codec(default_registry())
    settings = PipelineSettings(demo_mode=True)
    rules = ConsentRules()
    policy = load_policy()
    anonymizer = Anonymizer(policy, scrub)
    schema_of = {topics.name(r): s for r, s in SCHEMA_OF_ROLE.items()}  # type: ignore[arg-type]
    pipeline = Pipeline(codec, rules, anonymizer, settings.person_key(), schema_of)
    table = ConsentTable()
    for rec in work.consents:
        table.apply(rec.key.decode(), codec.decode_as(rec.value, "consent_record"))
    msgs = _messages(topics, work.events[:events])
    n = len(msgs)
    batch = settings.max_poll_records
    now_ms = int(time.time() * 1000)
    costs: dict[str, float] = {}

    decode_as = codec.decode_as
    seconds, events_decoded = _timed(lambda: [decode_as(m.value, schema_of[m.topic]) for m in msgs])  # type: ignore[arg-type]
    costs["decode"] = _per_record(seconds, n)
    pairs = list(zip(events_decoded, msgs, strict=True))
    seconds, _ = _timed(lambda: [invalid_reason(e, m, now_ms) for e, m in pairs])
    costs["validate"] = _per_record(seconds, n)
    items = [Item(e, schema_of[m.topic], m) for e, m in pairs]
    seconds, _ = _timed(lambda: [count_levels(i.schema, i.event) for i in items])
    costs["tag"] = _per_record(seconds, n)

    def gate_all() -> list[Any]:
        kept: list[Any] = []
        for start in range(0, n, batch):
            kept.extend(gate(items[start : start + batch], table, now_ms, rules).kept)
        return kept

    seconds, kept = _timed(gate_all)
    costs["gate"] = _per_record(seconds, n)
    kept_items = [item for item, _decision in kept]
    k = len(kept_items)
    seconds, results = _timed(lambda: [anonymizer.anonymize(i.schema, i.event) for i in kept_items])
    costs["anonymize_per_kept"] = _per_record(seconds, k)
    costs["anonymize"] = _per_record(seconds, n)
    seconds, persons = _timed(lambda: [pipeline.person(i.event["user_id"]) for i in kept_items])
    costs["person_token"] = _per_record(seconds, n)
    entries = [
        PendingEntry(f"t:{i}", item.schema, person, res.record, ("t", i % 6), 0)
        for i, (item, person, res) in enumerate(zip(kept_items, persons, results, strict=True))
    ]
    plans = {
        name: ReleasePlan(name, spec.output, spec.release, {"policy_version": policy.version})
        for name, spec in policy.schemas.items()
    }
    regroup = RegroupKeys(plans, hot_share=1 / topics.specs["kanon_repartition"].partitions)

    def repartition() -> list[PendingEntry]:
        sent = [(regroup.key(e.schema, e.record, now_ms), entry_bytes(e)) for e in entries]
        return [decode_entry(value) for _key, value in sent]

    seconds, entries = _timed(repartition)
    costs["regroup_per_kept"] = _per_record(seconds, k)
    costs["regroup"] = _per_record(seconds, n)
    buffer = KAnonymityWindow(plans, k=settings.k, max_delay_ms=5_000, rng=random.Random(2))

    def hold_and_release() -> Any:
        for entry in entries:
            buffer.add(entry, now_ms)
        return buffer.release(now_ms + 6_000)

    seconds, released = _timed(hold_and_release)
    costs["kanon"] = _per_record(seconds, n)
    router = Router(codec, topics, {name: spec.output for name, spec in policy.schemas.items()})
    out = released.released
    seconds, _ = _timed(lambda: [router.anonymized(e, now_ms) for e in out])
    costs["encode_per_released"] = _per_record(seconds, len(out))
    costs["encode"] = _per_record(seconds, n)
    seconds, _ = _timed(lambda: _whole(pipeline, codec, msgs, table, now_ms, batch))
    costs["pipeline_process_total"] = _per_record(seconds, n)
    return {
        "records": n,
        "kept_by_gate": k,
        "released_by_kanon": len(out),
        "suppressed_by_kanon": len(released.suppressed),
        "us_per_record": costs,
        "note": "per raw record unless named per_kept / per_released; CPU time, one thread",
    }


def _whole(
    pipeline: Pipeline,
    codec: Codec,
    msgs: list[Message],
    table: ConsentTable,
    now_ms: int,
    batch: int,
) -> None:
    for start in range(0, len(msgs), batch):
        pipeline.process(msgs[start : start + batch], table, now_ms)


def time_client(
    bootstrap: str, client: str, topics: TopicSet, work: Workload, events: int
) -> dict[str, float]:
    """CPU µs/record of producing (send + flush) and consuming (poll) with one client."""
    transport = make_transport(KafkaSettings(bootstrap_servers=bootstrap, client=client))
    topic = f"{topics.prefix}bench.produce-{client}"
    create_topics(transport, topics, extra=[topic])
    records = work.events[:events]
    producer = transport.producer(ProducerOptions(linger_ms=5, batch_size=1024 * 1024))
    cpu = time.process_time()
    for rec in records:
        producer.send(topic, rec.value, headers=rec.headers)
    producer.flush(60)
    produce_us = (time.process_time() - cpu) * 1e6 / len(records)
    producer.close(10)
    consumer = transport.consumer(ConsumerOptions(group_id=None, max_poll_records=2000))
    parts = [(topic, p) for p in consumer.partitions_for(topic)]
    from ingest.kafka import TopicPartition

    tps = [TopicPartition(t, p) for t, p in parts]
    consumer.assign(tps)
    for tp in tps:
        consumer.seek(tp, 0)
    got = 0
    cpu = time.process_time()
    deadline = time.monotonic() + 60
    while got < len(records) and time.monotonic() < deadline:
        got += len(consumer.poll(2000, 0.5))
    consume_us = (time.process_time() - cpu) * 1e6 / max(1, got)
    consumer.close()
    return {"produce": round(produce_us, 2), "consume": round(consume_us, 2)}


def profile_worker(
    loader: Transport, bootstrap: str, work: Workload, prefix: str
) -> dict[str, Any]:
    """Run a real Worker in this process under cProfile; top functions in µs/record."""
    from prometheus_client import REGISTRY

    topics = load_topic_set(prefix=prefix + "prof.")
    create_topics(loader, topics)
    produce(loader, topics, work.consents)
    records = work.events[:PROFILE_EVENTS]
    produce(loader, topics, records)
    settings = PipelineSettings(
        demo_mode=True, metrics_port=None, kanon_max_delay_ms=5_000, group_id=f"{prefix}prof"
    )
    transport = make_transport(KafkaSettings(bootstrap_servers=bootstrap))
    worker = Worker(transport, topics, settings)
    n = len(records)

    def consumed() -> float:
        total = 0.0
        for schema in SCHEMA_OF_ROLE.values():
            total += (
                REGISTRY.get_sample_value("consentgate_consumed_total", {"event_type": schema}) or 0
            )
        return total

    base = consumed()

    def watch() -> None:
        deadline = time.monotonic() + 300
        while consumed() - base < n and time.monotonic() < deadline:
            time.sleep(0.1)
        worker.stop_event.set()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    profiler = cProfile.Profile()
    began = time.monotonic()
    profiler.enable()
    worker.run()
    profiler.disable()
    elapsed = time.monotonic() - began
    watcher.join(5)
    stats = pstats.Stats(profiler, stream=io.StringIO())
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    rows = []
    for (filename, line, func), (_cc, calls, tottime, cumtime, _callers) in raw.items():
        rows.append(
            {
                "function": f"{_short(filename)}:{line}({func})",
                "calls": calls,
                "self_us_per_record": round(tottime * 1e6 / n, 2),
                "cum_us_per_record": round(cumtime * 1e6 / n, 2),
            }
        )
    by_self = sorted(rows, key=lambda r: -float(r["self_us_per_record"]))[:25]
    wanted = (
        "pipeline.py", "route.py", "worker.py", "batch.py", "transactions.py", "ownership.py",
        "kanon.py", "consent_feed.py", "txn.py", "kafka_python.py", "codec.py",
    )  # fmt: skip
    ours = [r for r in rows if any(w in str(r["function"]) for w in wanted)]
    by_cum = sorted(ours, key=lambda r: -float(r["cum_us_per_record"]))[:25]
    return {
        "records": n,
        "wall_s_under_profiler": round(elapsed, 1),
        "top_self": by_self,
        "top_cumulative_project": by_cum,
    }


def _short(filename: str) -> str:
    for marker in ("/site-packages/", "/work/main/", "/lib/python3"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def run_stages(loader: Transport, bootstrap: str, work: Workload, prefix: str) -> dict[str, Any]:
    """Stage costs, client costs for each available transport, and the worker profile."""
    topics = load_topic_set(prefix=prefix)
    out: dict[str, Any] = {"pure": time_pure_stages(topics, work, STAGE_EVENTS)}
    clients: dict[str, Any] = {}
    for client in ("kafka-python", "confluent"):
        try:
            clients[client] = time_client(bootstrap, client, topics, work, STAGE_EVENTS)
        except Exception as exc:  # a missing optional client is reported, not fatal
            clients[client] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
    out["clients_cpu_us_per_record"] = clients
    out["profile"] = profile_worker(loader, bootstrap, work, prefix)
    return out
