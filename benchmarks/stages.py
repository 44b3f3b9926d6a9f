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

import argparse
import cProfile
import gc
import io
import json
import pstats
import random
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.workload import (
    START_AGO_MS,
    Encoded,
    Workload,
    create_topics,
    generate,
    produce,
)
from consumers.anonymization_config import load_policy
from consumers.anonymize import Anonymizer
from consumers.checkpoint import CheckpointBook
from consumers.consent import ConsentRules, gate
from consumers.consent_table import ConsentTable
from consumers.held import HeldCodec
from consumers.kanon import KAnonymityWindow, PendingEntry, ReleaseBatch
from consumers.pipeline import Item, Pipeline, invalid_reason
from consumers.regroup import RegroupKeys
from consumers.release_policy import ReleasePlan
from consumers.route import OutRecord, Router
from consumers.scrub import CleanTextMemo
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


def _messages(topics: TopicSet, records: Sequence[Encoded], now: int) -> list[Message]:
    return [
        Message(topics.name(rec.role), i % 6, i, rec.key, rec.value, rec.headers, now)  # type: ignore[arg-type]
        for i, rec in enumerate(records)
    ]


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """CPU seconds of this process spent in `fn` (immune to time-slicing by other jobs)."""
    t = time.process_time()
    out = fn()
    return time.process_time() - t, out


class HotPath:
    """The calls the worker's hot path makes, one method per stage, each on the last one's output.

    Built once on `events` preloaded raw records (no broker): `Pipeline.process` and its
    parts (decode, validate, tag counts, gate, anonymize, person token), then, as
    `BatchStages` does with the default repartition grouping, the repartition key and
    the held record's bytes (`regroup_send`), their decoding on the grouping worker and
    its hold in the k-anonymity window (`regroup_take`), the checkpoint chunks of what
    is held at commit, the window's release, and the encoding of what it releases.
    `benchmarks.instructions` runs the same methods under callgrind.
    """

    def __init__(
        self, topics: TopicSet, work: Workload, events: int, now_ms: int | None = None
    ) -> None:
        self.now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        codec = self.codec = Codec(default_registry())
        settings = self.settings = PipelineSettings(demo_mode=True)
        self.rules = ConsentRules()
        policy = load_policy()
        self.anonymizer = Anonymizer(policy, CleanTextMemo())  # as the worker's
        self.schema_of = {topics.name(r): s for r, s in SCHEMA_OF_ROLE.items()}  # type: ignore[arg-type]
        self.pipeline = Pipeline(
            codec, self.rules, self.anonymizer, settings.person_key(), self.schema_of
        )
        self.table = ConsentTable()
        for rec in work.consents:
            self.table.apply(rec.key.decode(), codec.decode_as(rec.value, "consent_record"))
        self.msgs = _messages(topics, work.events[:events], self.now_ms)
        self.batch = settings.max_poll_records
        self.plans = {
            name: ReleasePlan(name, spec.output, spec.release, {"policy_version": policy.version})
            for name, spec in policy.schemas.items()
        }
        self.regroup = RegroupKeys(
            self.plans, hot_share=1 / topics.specs["kanon_repartition"].partitions
        )
        self.regroup.place(topics.specs["kanon_repartition"].partitions)  # as the worker does
        self.regroup_topic = topics.name("kanon_repartition")
        self.window = KAnonymityWindow(
            self.plans, k=settings.k, max_delay_ms=5_000, rng=random.Random(2)
        )
        self.router = Router(
            codec, topics, {name: spec.output for name, spec in policy.schemas.items()}
        )
        self.held_codec = HeldCodec(self.plans)
        self.book = CheckpointBook(self.held_codec)
        self.items: list[Item] = []
        self.kept: list[Item] = []
        self.entries: list[PendingEntry] = []
        self.sent: list[OutRecord] = []
        self.held: list[dict[str, PendingEntry]] = []
        self.released: ReleaseBatch = ReleaseBatch()

    # -- Pipeline.process, whole and in its parts --------------------------------

    def pipeline_process(self) -> None:
        """`Pipeline.process` on every poll batch: its anonymized entries are held next."""
        msgs, batch = self.msgs, self.batch
        self.entries = []
        for start in range(0, len(msgs), batch):
            out = self.pipeline.process(msgs[start : start + batch], self.table, self.now_ms)
            self.entries.extend(out.anonymized)

    def decode(self) -> None:
        decode_as, schema_of = self.codec.decode_as, self.schema_of
        events = [decode_as(m.value, schema_of[m.topic]) for m in self.msgs]  # type: ignore[arg-type]
        self.items = [
            Item(e, schema_of[m.topic], m) for e, m in zip(events, self.msgs, strict=True)
        ]

    def validate(self) -> None:
        now_ms = self.now_ms
        for item in self.items:
            invalid_reason(item.event, item.msg, now_ms)

    def tag(self) -> None:
        for item in self.items:
            count_levels(item.schema, item.event)

    def gate(self) -> None:
        items, batch = self.items, self.batch
        kept: list[Item] = []
        for start in range(0, len(items), batch):
            gated = gate(items[start : start + batch], self.table, self.now_ms, self.rules)
            kept.extend(item for item, _decision in gated.kept)
        self.kept = kept

    def anonymize(self) -> None:
        anonymize = self.anonymizer.anonymize
        for item in self.kept:
            anonymize(item.schema, item.event)

    def person_token(self) -> None:
        person = self.pipeline.person
        for item in self.kept:
            person(item.event["user_id"])

    # -- the repartition hop, the window, its checkpoint and release ------------

    def regroup_send(self) -> None:
        """Stage 1 (`BatchStages.process`): each held record's key and bytes, bundled by key."""
        key, topic, now_ms = self.regroup.key, self.regroup_topic, self.now_ms
        level0, encode, partition = (
            self.held_codec.level0,
            self.held_codec.encode,
            self.regroup.partition,
        )
        bundles = self.held_codec.bundles
        sent = self.sent = []
        # Bundled per key and polled batch: the held records of `batch` raw records.
        per_batch = max(1, round(self.batch * len(self.entries) / max(1, len(self.msgs))))
        for start in range(0, len(self.entries), per_batch):
            by_key: dict[bytes, list[bytes]] = {}
            for e in self.entries[start : start + per_batch]:
                k = key(e.schema, level0(e), now_ms)
                by_key.setdefault(k, []).append(encode(e))
            for k, lines in by_key.items():
                to = partition(k)
                sent.extend(OutRecord(topic, k, value, [], to) for value in bundles(lines))

    def regroup_take(self) -> None:
        """Stage 2 (`BatchStages._take_regrouped`): decode, and hold with its first time."""
        restore, batch, sent = self.window.restore, self.batch, self.sent
        decode = self.held_codec.decode_bundle
        self.held = []
        for start in range(0, len(sent), batch):
            added: dict[str, PendingEntry] = {}
            for i in range(start, min(start + batch, len(sent))):
                out = sent[i]
                for entry in decode(out.value or b"", (out.topic, i % 6)):
                    restore([entry])
                    added[entry.pending_id] = entry
            self.held.append(added)

    def checkpoint(self) -> None:
        """What each commit writes: chunks of the records it added to the window."""
        book = self.book
        for added in self.held:
            plan = book.plan(added, ())
            book.apply(plan)

    def release(self) -> None:
        self.released = self.window.release(self.now_ms + 6_000)

    def encode(self) -> None:
        anonymized, now_ms = self.router.anonymized, self.now_ms
        for released in self.released.released:
            anonymized(released, now_ms)


STAGES: tuple[tuple[str, str], ...] = (
    ("decode", "raw"),
    ("validate", "raw"),
    ("tag", "raw"),
    ("gate", "raw"),
    ("anonymize", "kept"),
    ("person_token", "kept"),
    ("pipeline_process", "raw"),
    ("regroup_send", "kept"),
    ("regroup_take", "kept"),
    ("checkpoint", "kept"),
    ("release", "kept"),
    ("encode", "released"),
)
"""`HotPath` methods in the order they run, and what their cost is counted per besides raw
records: `pipeline_process` is the whole of the five before it (and builds the entries
the later stages hold); each later stage works on the previous one's output."""


def counts(path: HotPath) -> dict[str, int]:
    """How many raw, kept (held) and released records the stages saw."""
    return {
        "raw": len(path.msgs),
        "kept": len(path.entries),
        "released": len(path.released.released),
    }


def per_record(
    totals: dict[str, float], seen: dict[str, int], scale: float, ndigits: int | None = 2
) -> dict[str, float]:
    """Each stage's total over its records: per raw record, and per kept or released one."""
    out: dict[str, float] = {}
    for name, per in STAGES:
        total = totals[name] * scale
        if per != "raw":
            out[f"{name}_per_{per}"] = round(total / seen[per], ndigits) if seen[per] else 0.0
        out[name] = round(total / seen["raw"], ndigits) if seen["raw"] else 0.0
    return out


def simulated(events: int, now_ms: int | None = None) -> HotPath:
    """A `HotPath` on `events` freshly simulated raw records (benchmark topic names, no broker).

    The traffic starts a few minutes before `now_ms` (the clock's time when None): a
    fixed `now_ms` gives the same records, the same consent decisions, every run.
    """
    work = generate(events, start_ms=None if now_ms is None else now_ms - START_AGO_MS)
    return HotPath(load_topic_set(prefix="bench."), work, events, now_ms)


def time_pure_stages(topics: TopicSet, work: Workload, events: int) -> dict[str, Any]:
    """CPU µs/record of each call the worker's hot path makes, in its order (`HotPath`)."""
    return timed_stages(HotPath(topics, work, events))


def timed_stages(path: HotPath) -> dict[str, Any]:
    """Run every stage of `path` once, timed in CPU time.

    A full garbage collection before each stage, not timed: what one stage left behind
    is not collected inside the next one's time (as in `benchmarks.instructions`).
    """
    seconds: dict[str, float] = {}
    for name, _per in STAGES:
        gc.collect()
        seconds[name] = _timed(getattr(path, name))[0]
    seen = counts(path)
    return {
        "records": seen["raw"],
        "kept_by_gate": seen["kept"],
        "released_by_kanon": seen["released"],
        "suppressed_by_kanon": len(path.released.suppressed),
        "us_per_record": per_record(seconds, seen, 1e6),
        "note": "per raw record unless named per_kept / per_released; CPU time, one thread",
    }


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


_REPO = str(Path(__file__).resolve().parents[1]) + "/"


def _short(filename: str) -> str:
    """A profiled function's file, relative to the repository or the library folders."""
    for marker in ("/site-packages/", _REPO, "/lib/python3"):
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


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m benchmarks.stages`: the pure stages' µs/record in-process, without a broker."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--events", type=int, default=STAGE_EVENTS)
    parser.add_argument(
        "--repeat", type=int, default=3, help="fresh runs; each figure is the lowest seen"
    )
    args = parser.parse_args(argv)
    runs = [timed_stages(simulated(args.events)) for _ in range(args.repeat)]
    best = runs[0]
    for key in best["us_per_record"]:
        best["us_per_record"][key] = min(run["us_per_record"][key] for run in runs)
    best["note"] += f"; lowest of {args.repeat} runs"
    print(json.dumps(best, indent=2))


if __name__ == "__main__":
    main()
