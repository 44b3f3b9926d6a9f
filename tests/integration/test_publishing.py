"""The publishing SDK against a real broker: every record comes back, and failures surface."""

from __future__ import annotations

import json
import os
import signal
import struct
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import fastavro
import pytest
from fastavro.schema import fingerprint, to_parsing_canonical_form

from ingest.errors import DeliveryError
from ingest.kafka import (
    ConsumerOptions,
    Message,
    ProducerOptions,
    TopicPartition,
    Transport,
    make_transport,
)
from ingest.kafka.base import Delivery
from ingest.kafka.config import load_settings
from ingest.kafka.topics import Role, TopicSet, load_topic_set
from ingest.local_broker.broker import LocalBroker, free_port
from ingest.sdk.publisher import Publisher
from ingest.simulator.fleet import Fleet
from ingest.simulator.simulate import Simulation
from schemas.codec import Codec
from tests.integration.topic_sets import create_topics
from tests.integration.worker_harness import wait_for

pytestmark = pytest.mark.integration

START_MS = 1_767_225_600_000  # 2026-01-01 00:00 UTC
AVRO_DIR = Path(__file__).resolve().parents[2] / "schemas" / "avro"
RAW_ROLES: dict[Role, str] = {
    "raw_device": "device_event",
    "raw_log": "log_event",
    "consent": "consent_record",
}


def read_all(transport: Transport, topics: Sequence[str], timeout_s: float = 60.0) -> list[Message]:
    """Every committed record of `topics`, from offset 0 to the end offsets seen at the start."""
    consumer = transport.consumer(ConsumerOptions(group_id=None, read_committed=True))
    try:
        parts = [TopicPartition(t, p) for t in topics for p in consumer.partitions_for(t)]
        consumer.assign(parts)
        ends = consumer.end_offsets(parts)
        for tp in parts:
            consumer.seek(tp, 0)
        out: list[Message] = []
        remaining = {tp for tp in parts if ends[tp] > 0}
        deadline = time.monotonic() + timeout_s
        while remaining:
            assert time.monotonic() < deadline, "timed out reading the topics to their end"
            out.extend(consumer.poll(5000, 0.5))
            remaining = {tp for tp in remaining if consumer.position(tp) < ends[tp]}
        return out
    finally:
        consumer.close()


def _latest_schema(name: str) -> dict[str, Any]:
    newest = max(AVRO_DIR.glob(f"{name}.v*.avsc"), key=lambda p: int(p.stem.rsplit(".v", 1)[1]))
    schema: dict[str, Any] = json.loads(newest.read_text())
    return schema


def _float_fields(name: str) -> set[str]:
    """Top-level fields stored as Avro `float` (32 bits), read from the schema file."""
    out = set()
    for field in _latest_schema(name)["fields"]:
        kinds = field["type"] if isinstance(field["type"], list) else [field["type"]]
        if "float" in kinds:
            out.add(field["name"])
    return out


def _as_stored(name: str, record: Mapping[str, Any]) -> dict[str, Any]:
    """`record` as Avro stores it: 32-bit float fields lose their extra precision, and
    fields the record leaves out come back with their schema defaults."""
    out = {
        field["name"]: field["default"]
        for field in _latest_schema(name)["fields"]
        if "default" in field
    }
    out.update(record)
    for field in _float_fields(name):
        if out.get(field) is not None:
            out[field] = struct.unpack("<f", struct.pack("<f", out[field]))[0]
    return out


def _canonical(record: Mapping[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, default=str)


def test_ten_thousand_simulated_events_come_back_decoded_and_equal(
    transport: Transport, topic_set: TopicSet
) -> None:
    items = list(Simulation(Fleet(3, 600, START_MS)).items(count=10_000, rate_per_s=5000.0))
    with Publisher(transport, topic_set) as publisher:
        for item in items:
            if item.event_type == "consent_record":
                publisher.publish_consent(item.record)
            else:
                publisher.publish(item.record, item.event_type)

    topic_of = {name: topic_set.name(role) for role, name in RAW_ROLES.items()}
    sent: dict[str, Counter[str]] = {topic: Counter() for topic in topic_of.values()}
    for item in items:
        sent[topic_of[item.event_type]][_canonical(_as_stored(item.event_type, item.record))] += 1

    messages = read_all(transport, list(topic_of.values()))
    codec = Codec()
    type_of = {topic: name for name, topic in topic_of.items()}
    prints = {
        name: fingerprint(to_parsing_canonical_form(fastavro.parse_schema(_latest_schema(name))),
                          "CRC-64-AVRO")
        for name in topic_of
    }  # fmt: skip
    got: dict[str, Counter[str]] = {topic: Counter() for topic in topic_of.values()}
    partitions: dict[str, set[int]] = {}
    for msg in messages:
        name = type_of[msg.topic]
        assert msg.value is not None
        record = codec.decode_as(msg.value, name)
        got[msg.topic][_canonical(record)] += 1
        assert msg.key == record["user_id"].encode()
        headers = dict(msg.headers)
        assert headers["event-type"] == name.encode()
        assert headers["schema-fingerprint"] == prints[name].encode()
        assert msg.value[2:10].hex() == prints[name]
        partitions.setdefault(record["user_id"], set()).add(msg.partition)

    events = sum(1 for m in messages if type_of[m.topic] != "consent_record")
    assert events == 10_000
    assert got == sent
    assert all(len(got[t]) > 0 for t in got)
    assert all(len(parts) == 1 for parts in partitions.values())
    users_on_two_topics = {json.loads(k)["user_id"] for k in got[topic_of["consent_record"]]} & {
        json.loads(k)["user_id"] for k in got[topic_of["device_event"]]
    }
    assert users_on_two_topics  # the same-partition check covered users on several topics


def _send_paced(
    publisher: Publisher, items: Iterable[tuple[str, dict[str, Any]]], per_ms: int
) -> list[tuple[str, dict[str, Any], Delivery]]:
    sent = []
    for i, (name, record) in enumerate(items):
        sent.append((name, record, publisher.send_valid(name, record)))
        if i % per_ms == 0:
            time.sleep(0.001)
    return sent


@pytest.mark.fault
def test_killing_the_broker_fails_flush_and_every_reported_delivery_is_in_the_log(
    tmp_path: Path,
) -> None:
    broker = LocalBroker(tmp_path / "broker", port=free_port(), heap_mb=384)
    bootstrap = broker.start(timeout_s=120)
    try:
        transport = make_transport(load_settings(bootstrap_servers=bootstrap))
        topics = load_topic_set(prefix="kill.", partitions=3)
        create_topics(transport, topics, RAW_ROLES)
        items = [
            (i.event_type, i.record)
            for i in Simulation(Fleet(5, 300, START_MS)).items(count=8_000, rate_per_s=5000.0)
        ]
        options = ProducerOptions(
            linger_ms=5, delivery_timeout_ms=5_000, request_timeout_ms=2_000, compression="lz4"
        )
        threads_before = set(threading.enumerate())
        publisher = Publisher(transport, topics, options)
        # Warm up: the producer is connected and has taken records before the broker dies.
        first = _send_paced(publisher, items[:500], per_ms=5)
        publisher.flush(30)
        status = broker.status()
        assert status.pid is not None
        killer = threading.Timer(1.0, os.kill, (status.pid, signal.SIGKILL))
        killer.start()
        began = time.monotonic()
        rest = _send_paced(publisher, items[500:], per_ms=3)  # about 2.5 s: the kill lands inside
        killer.join()
        assert time.monotonic() - began > 1.0, "the kill did not land mid-stream"
        # The last records were sent just now and expire only after the 5 s delivery
        # timeout: a 1 s flush times out with them undelivered (a flush that outlasted the
        # timeout would have reported them all, leaving nothing for close to report).
        with pytest.raises(DeliveryError):
            publisher.flush(1)
        with pytest.raises(DeliveryError):
            publisher.close(1)  # still undelivered: closing says so too, and does not hang
        # ... and leaves no client thread behind retrying the dead broker for ever.
        wait_for(
            lambda: not [t for t in threading.enumerate() if t not in threads_before],
            what="the closed producer's threads to end",
        )

        codec = Codec()
        delivered: dict[tuple[str, int, int], bytes] = {}
        failed = 0
        for name, record, delivery in first + rest:
            try:
                partition, offset = delivery.result(0)
            except DeliveryError:  # failed, or never resolved: not reported delivered
                failed += 1
                continue
            topic = topics.name(next(r for r, n in RAW_ROLES.items() if n == name))
            delivered[(topic, partition, offset)] = codec.encode(name, record)
        assert failed > 0
        assert len(delivered) > 500  # the warm-up at least, plus whatever landed before the kill

        broker.stop()
        assert broker.start(timeout_s=120) == bootstrap  # same run folder, same port
        in_log = {
            (m.topic, m.partition, m.offset): m.value
            for m in read_all(transport, [topics.name(role) for role in RAW_ROLES])
        }
        missing = [where for where, value in delivered.items() if in_log.get(where) != value]
        assert missing == []
    finally:
        broker.stop()
