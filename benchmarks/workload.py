"""The benchmark input: simulated fleet traffic, encoded once, loaded into per-scenario topics."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ingest.kafka import ProducerOptions, Transport, make_transport
from ingest.kafka.base import Headers, TopicSpec
from ingest.kafka.config import KafkaSettings
from ingest.kafka.topics import TopicSet, load_topic_set
from ingest.sdk.publisher import EVENT_TYPE_HEADER, FINGERPRINT_HEADER, PUBLISHABLE
from ingest.simulator.fleet import Fleet
from ingest.simulator.simulate import Simulation
from schemas.codec import Codec
from schemas.registry import default_registry

SEED = 11
USERS = 2_000
START_AGO_MS = 5 * 60_000
NOMINAL_RATE = 2_000.0
ROLE = {"device_event": "raw_device", "log_event": "raw_log", "consent_record": "consent"}
PRELOAD_OPTIONS = ProducerOptions(linger_ms=20, batch_size=1024 * 1024, compression="none")


@dataclass(frozen=True, slots=True)
class Encoded:
    """One record ready to send: its topic role, key, framed Avro value and headers."""

    role: str
    key: bytes
    value: bytes
    headers: Headers


@dataclass(slots=True)
class Workload:
    """The encoded consent records (published first) and raw events of one simulated run."""

    consents: list[Encoded] = field(default_factory=list)
    events: list[Encoded] = field(default_factory=list)
    start_ms: int = 0
    generate_s: float = 0.0

    def sizes(self) -> dict[str, float]:
        """Mean value size in bytes per event type, over the raw events."""
        total: Counter[str] = Counter()
        count: Counter[str] = Counter()
        for rec in self.events:
            total[rec.role] += len(rec.value)
            count[rec.role] += 1
        out = {role: round(total[role] / count[role], 1) for role in count}
        out["all"] = round(sum(total.values()) / max(1, len(self.events)), 1)
        return out

    def counts(self) -> dict[str, int]:
        """Raw events per topic role, and consent records."""
        out = dict(Counter(rec.role for rec in self.events))
        out["consent"] = len(self.consents)
        return out


def generate(
    events: int, seed: int = SEED, users: int = USERS, start_ms: int | None = None
) -> Workload:
    """Simulate `events` raw events (from `start_ms`, or a few minutes ago) and encode them once."""
    began = time.monotonic()
    if start_ms is None:
        start_ms = int(time.time() * 1000) - START_AGO_MS
    sim = Simulation(Fleet(seed, users, start_ms))
    codec = Codec(default_registry())
    headers = {
        name: [
            (EVENT_TYPE_HEADER, name.encode()),
            (FINGERPRINT_HEADER, codec.fingerprint(name).hex().encode()),
        ]
        for name in PUBLISHABLE
    }
    work = Workload(start_ms=start_ms)
    for item in sim.items(count=events, rate_per_s=NOMINAL_RATE):
        rec = Encoded(
            ROLE[item.event_type],
            str(item.record["user_id"]).encode(),
            codec.encode(item.event_type, item.record),
            headers[item.event_type],
        )
        (work.consents if item.event_type == "consent_record" else work.events).append(rec)
    work.generate_s = time.monotonic() - began
    return work


def fast_transport(bootstrap: str) -> Transport:
    """The quickest available transport for loading data (confluent if installed)."""
    try:
        return make_transport(KafkaSettings(bootstrap_servers=bootstrap, client="confluent"))
    except Exception:  # not installed or not importable: fall back to the default
        return make_transport(KafkaSettings(bootstrap_servers=bootstrap))


def create_topics(transport: Transport, topics: TopicSet, extra: Sequence[str] = ()) -> None:
    """Create the whole topic set of a prefix plus extra 6-partition topics."""
    specs = list(topics.specs.values())
    specs += [TopicSpec(name, 6, 1, {}) for name in extra]
    admin = transport.admin()
    try:
        admin.create_topics(specs)
    finally:
        admin.close()


def produce(
    transport: Transport,
    topics: TopicSet,
    records: Sequence[Encoded],
    on_send: Callable[[int], None] | None = None,
) -> float:
    """Send records to the prefix's topics and flush; returns the seconds it took."""
    began = time.monotonic()
    producer = transport.producer(PRELOAD_OPTIONS)
    names = {role: topics.name(role) for role in ("raw_device", "raw_log", "consent")}
    try:
        for i, rec in enumerate(records):
            producer.send(names[rec.role], rec.value, key=rec.key, headers=rec.headers)
            if on_send is not None:
                on_send(i)
        producer.flush(60)
    finally:
        producer.close(10)
    return time.monotonic() - began


def prepare_prefix(
    transport: Transport, prefix: str, work: Workload, *, with_events: bool = True
) -> TopicSet:
    """A fresh topic set under `prefix` with the consent records (and the events) loaded."""
    topics = load_topic_set(prefix=prefix)
    create_topics(transport, topics)
    produce(transport, topics, work.consents)
    if with_events:
        produce(transport, topics, work.events)
    return topics
