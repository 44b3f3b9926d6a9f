"""Workloads with per-day markers, live feeding and checks for the fault tests.

Analyst outputs cannot be traced to single records (SPEC 7): their whole content is
shared by k persons. What an output always keeps is the day its record was collected
(the record time is never withheld), so the fault workload spreads its events over
MARKER_DAYS past days and gives them one value in every other released field. Counts of
released records per (schema, day) are then the same in every run that loses and
repeats nothing and suppresses nothing, however the window happened to group them.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ingest.kafka import ConsumerOptions, TopicPartition, Transport
from ingest.kafka.consent_store import read_to_end
from ingest.kafka.topics import TopicSet
from ingest.metrics_text import Samples, metric_sum
from ingest.sdk.publisher import Publisher
from ingest.simulator.fleet import Fleet
from ingest.simulator.simulate import Simulation
from schemas.codec import Codec
from schemas.registry import default_registry
from tests.integration.worker_harness import WorkerProcess, read_topic

CLOSER_USERS = 30
CLOSER_EVENTS_PER_USER = 2
DAY_MS = 86_400_000
MARKER_DAYS = 4
"""Main events are collected 1 to MARKER_DAYS days ago; closers today (day 0)."""
# Every event gets the same released values but its time, so only the day tells them apart.
SAME_QI = {
    "brand": "Xiaomi",
    "model": "Mi 11",
    "os_name": "Android",
    "os_version": "12.1.0",
    "time_zone": "Asia/Shanghai",
    "app_version": "3.8.2",
    "page_url": None,
    "message": None,
    "system_event": None,
    "usage_duration_ms": None,
    "log_type": "USAGE",
    "network_status": "WIFI",
    "app_state": "FOREGROUND",
    "battery_level_pct": 60,
    "battery_charging": False,
    "signal_strength_dbm": -60,
    "free_storage_mb": 20_000,
    "screen_width_px": 1080,
    "screen_height_px": 2400,
    "installed_apps": None,
}
ANON_SCHEMAS = {"anon_device": "anonymized_device_event", "anon_log": "anonymized_log_event"}
Marker = tuple[str, int]
"""(analyst schema, days before the run) of a released record."""


@dataclass(slots=True)
class Workload:
    """Consent records, then main events (marked m…), then closer events (marked c…)."""

    consents: list[dict[str, Any]]
    events: list[tuple[str, dict[str, Any]]]
    closers: list[tuple[str, dict[str, Any]]]
    closer_consents: list[dict[str, Any]] = field(default_factory=list)

    now_ms: int = 0

    @property
    def markers(self) -> Counter[Marker]:
        """Main events per (analyst schema, days ago): what an ideal run would release."""
        return Counter(
            (f"anonymized_{event_type}", days_ago(self.now_ms, record["event_time"]))
            for event_type, record in self.events
        )


def days_ago(now_ms: int, time_ms: int) -> int:
    """Whole UTC days between the day of `time_ms` and the day of `now_ms`."""
    return now_ms // DAY_MS - time_ms // DAY_MS


def _full_consent(user_id: str, at_ms: int) -> dict[str, Any]:
    """A consent record that lets every purpose and category through, for an adult."""
    granted = {"granted": True, "since": at_ms}
    return {
        "user_id": user_id,
        "version": 1,
        "updated_at": at_ms,
        "account_status": "ACTIVE",
        "cancelled_at": None,
        "policy_acceptances": [{"version": 3, "accepted_at": at_ms}],
        "purposes": {name: dict(granted) for name in ("analytics", "product_improvement")},
        "categories": {
            name: dict(granted)
            for name in ("device_identifiers", "precise_location", "installed_apps")
        },
        "birth_date": None,
        "birth_year": 1980,
        "declared_minor": False,
        "guardian_consent": None,
    }


def _flatten(record: dict[str, Any], event_time: int) -> dict[str, Any]:
    out = {key: value for key, value in {**record, **SAME_QI}.items() if key in record}
    out["event_time"] = event_time
    if "latitude" in out:
        out["latitude"] = None
        out["longitude"] = None
        out["location_accuracy_m"] = None
    if out.get("app_open_time") is not None:
        out["app_open_time"] = event_time
    return out


def build_workload(seed: int, users: int, count: int, now_ms: int) -> Workload:
    """A simulated fleet's consent and events, marked by day, sharing every other value."""
    fleet = Fleet(seed=seed, users=users, start_ms=now_ms - 5 * 60_000)
    consents: list[dict[str, Any]] = []
    events: list[tuple[str, dict[str, Any]]] = []
    for item in Simulation(fleet).items(count=count, rate_per_s=count / 290):
        if item.event_type == "consent_record":
            consents.append(item.record)
        else:
            back = 1 + len(events) % MARKER_DAYS
            # Inside its marker day whatever the time of day now: no sparse extra day.
            when = now_ms - now_ms % DAY_MS - back * DAY_MS + (len(events) % 97) * 60_000
            events.append((item.event_type, _flatten(item.record, when)))
    template = {t: r for t, r in events}
    closer_consents: list[dict[str, Any]] = []
    closers: list[tuple[str, dict[str, Any]]] = []
    for n in range(CLOSER_USERS):
        user_id = f"77{n:08d}"
        closer_consents.append(_full_consent(user_id, now_ms - 10 * 60_000))
        event_time = now_ms - 1_000
        for i in range(CLOSER_EVENTS_PER_USER):
            for event_type in ("device_event", "log_event"):
                record = {
                    **template[event_type],
                    "user_id": user_id,
                    "event_id": str(uuid.UUID(int=(n << 16) + (i << 1) + len(closers))),
                }
                closers.append((event_type, _flatten(record, event_time)))
    return Workload(consents, events, closers, closer_consents, now_ms)


def publish(
    transport: Transport, topics: TopicSet, records: Sequence[tuple[str, dict[str, Any]]]
) -> None:
    """Send records (event type, dict) and wait until Kafka has them all."""
    with Publisher(transport, topics) as publisher:
        for event_type, record in records:
            publisher.send_valid(event_type, record)


def publish_consents(transport: Transport, topics: TopicSet, workload: Workload) -> None:
    """All consent records of a workload, main users and closer users."""
    publish(
        transport,
        topics,
        [("consent_record", r) for r in (*workload.consents, *workload.closer_consents)],
    )


class Feeder(threading.Thread):
    """Publishes records in small flushed chunks at a steady rate from a background thread.

    With `hold_back`, the last records wait for `finish(hurry=True)` however long the
    rest took: a test that acts "mid-stream" then is mid-stream on any machine.
    """

    def __init__(
        self,
        transport: Transport,
        topics: TopicSet,
        records: Sequence[tuple[str, dict[str, Any]]],
        seconds: float,
        chunk: int = 100,
        hold_back: int = 0,
    ) -> None:
        super().__init__(daemon=True)
        self._transport = transport
        self._topics = topics
        self._records = records
        self._pause = seconds * chunk / max(1, len(records))
        self._chunk = chunk
        self._held_from = len(records) - max(0, min(hold_back, len(records)))
        self._hurry = threading.Event()
        self.error: BaseException | None = None
        self.sent = 0

    def run(self) -> None:
        """Publish every record, pausing between chunks; the held-back ones once hurried."""
        try:
            with Publisher(self._transport, self._topics) as publisher:
                self._send(publisher, 0, self._held_from)
                if self._held_from < len(self._records):
                    self._hurry.wait()
                    self._send(publisher, self._held_from, len(self._records))
        except BaseException as exc:  # reported by finish()
            self.error = exc

    def _send(self, publisher: Publisher, begin: int, end: int) -> None:
        for start in range(begin, end, self._chunk):
            stop = min(end, start + self._chunk)
            for event_type, record in self._records[start:stop]:
                publisher.send_valid(event_type, record)
            publisher.flush()
            self.sent = stop
            self._hurry.wait(self._pause)

    def finish(self, timeout_s: float = 60, hurry: bool = False) -> None:
        """Wait for the last record (sent at once with `hurry`); re-raise a publishing failure."""
        if hurry:
            self._hurry.set()
        self.join(timeout_s)
        assert not self.is_alive(), "feeder did not finish in time"
        if self.error is not None:
            raise self.error


def output_markers(transport: Transport, topics: TopicSet, now_ms: int) -> Counter[Marker]:
    """Committed anonymized records per (schema, days before `now_ms`), counted."""
    codec = Codec(default_registry())
    found: Counter[Marker] = Counter()
    for role, schema in ANON_SCHEMAS.items():
        for msg in read_topic(transport, topics.name(role)):  # type: ignore[arg-type]
            assert msg.value is not None
            record = codec.decode_as(msg.value, schema)
            assert msg.timestamp_ms == record["event_hour"], "timestamp = released time"
            found[(schema, days_ago(now_ms, record["event_hour"]))] += 1
    return found


def live_checkpoint_keys(transport: Transport, topics: TopicSet) -> set[bytes]:
    """Keys of the k-anonymity checkpoint topic whose latest committed value is not a tombstone."""
    latest = read_to_end(transport, topics.name("kanon_pending"))
    return {key for key, value in latest.items() if value is not None}


def end_offsets(transport: Transport, topic: str) -> dict[int, int]:
    """End offset of each partition of a topic."""
    consumer = transport.consumer(ConsumerOptions(group_id=None))
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for(topic)]
        return {tp.partition: end for tp, end in consumer.end_offsets(parts).items()}
    finally:
        consumer.close()


def worker_group(topics: TopicSet, group: str) -> str:
    """The consumer group a worker started with `--group group` joins (it carries the prefix)."""
    return topics.prefix + group


def committed_lag(transport: Transport, topics: TopicSet, group: str) -> int:
    """Records beyond the committed offsets of a worker group (`--group group`): raw ones,
    and held ones on their way to the worker that groups their region.

    The repartition topic is written in transactions, whose commit markers hold offsets
    of their own: its records after the committed offset are read and counted."""
    consumer = transport.consumer(
        ConsumerOptions(group_id=worker_group(topics, group), read_committed=True)
    )
    try:
        lag = 0
        for role in ("raw_device", "raw_log"):
            topic = topics.name(role)
            parts = [TopicPartition(topic, p) for p in consumer.partitions_for(topic)]
            for tp, end in consumer.end_offsets(parts).items():
                lag += end - (consumer.committed(tp) or 0)
        topic = topics.name("kanon_repartition")
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for(topic)]
        behind = {
            tp: (consumer.committed(tp) or 0, end)
            for tp, end in consumer.end_offsets(parts).items()
            if end > (consumer.committed(tp) or 0)
        }
    finally:
        consumer.close()
    return lag + (_records_between(transport, behind) if behind else 0)


def _records_between(transport: Transport, spans: dict[TopicPartition, tuple[int, int]]) -> int:
    """Committed records in [start, end) of each partition (markers are not records)."""
    reader = transport.consumer(ConsumerOptions(group_id=None, read_committed=True))
    try:
        reader.assign(list(spans))
        for tp, (start, _end) in spans.items():
            reader.seek(tp, start)
        count = 0
        deadline = time.monotonic() + 30
        while any(reader.position(tp) < end for tp, (_s, end) in spans.items()):
            assert time.monotonic() < deadline, "timed out reading the repartition topic"
            for m in reader.poll(1000, 0.2):
                count += m.offset < spans[TopicPartition(m.topic, m.partition)][1]
        return count
    finally:
        reader.close()


def accounting(samples: Samples) -> tuple[float, float]:
    """Both sides of SPEC section 9's identity: consumed + restored, and where records went."""
    left = metric_sum(samples, "consentgate_consumed_total") + metric_sum(
        samples, "consentgate_kanon_pending_restored_total"
    )
    right = (
        metric_sum(samples, "consentgate_forwarded_total")
        + metric_sum(samples, "consentgate_dropped_total")
        + metric_sum(samples, "consentgate_dead_lettered_total")
        + metric_sum(samples, "consentgate_kanon_pending_handed_off_total")
        + metric_sum(samples, "consentgate_kanon_pending")
        + in_transit(samples)  # on the repartition topic, not yet taken into a window
    )
    return left, right


def in_transit(samples: Samples) -> float:
    """Held records sent to the repartition topic and not yet taken into a window."""
    regrouped = "consentgate_kanon_regrouped_total"
    return metric_sum(samples, regrouped, direction="out") - metric_sum(
        samples, regrouped, direction="in"
    )


def held(samples: Samples) -> float:
    """Records not yet released or dropped: in a window, or on the repartition topic."""
    return metric_sum(samples, "consentgate_kanon_pending") + in_transit(samples)


def settled_metrics(worker: WorkerProcess, timeout_s: float = 20) -> Samples:
    """Metrics once two scrapes a second apart agree on every accounting term."""
    deadline = time.monotonic() + timeout_s
    previous: tuple[float, float] | None = None
    samples: Samples = {}
    while time.monotonic() < deadline:
        samples = worker.metrics()
        now = accounting(samples)
        if now == previous:
            return samples
        previous = now
        time.sleep(1.0)
    return samples


def assert_accounting(worker: WorkerProcess) -> Samples:
    """The identity holds on a quiet worker's scraped metrics; returns the samples."""
    samples = settled_metrics(worker)
    left, right = accounting(samples)
    assert left == right, f"accounting broken: consumed+restored={left}, outcomes={right}"
    return samples
