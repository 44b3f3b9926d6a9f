"""The two client libraries agree with each other and with Java Kafka on the same broker.

What each client must do on its own (every method of the boundary) is in
test_transport_conformance_*.py, run once per client; this file holds the checks that
need both clients in one test: one writes what the other reads.
"""

from __future__ import annotations

import os
import uuid

import pytest

from ingest.kafka import (
    ConsumerOptions,
    ProducerOptions,
    TopicPartition,
    Transport,
    make_transport,
)
from ingest.kafka.config import KafkaSettings
from ingest.kafka.partitioning import key_partition
from tests.integration.transport_helpers import new_topics, read, reader

pytestmark = pytest.mark.integration

CLIENTS = ("kafka-python", "confluent")


def _transport_for(settings: KafkaSettings, client: str) -> Transport:
    return make_transport(settings.model_copy(update={"client": client}))


def _murmur2(data: bytes) -> int:
    """Kafka's Java murmur2 (seed 0x9747b28c), written from the Java source as the oracle."""
    m, r = 0x5BD1E995, 24
    h = (0x9747B28C ^ len(data)) & 0xFFFFFFFF
    whole = len(data) - len(data) % 4
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    tail = data[whole:]
    if len(tail) >= 3:
        h ^= tail[2] << 16
    if len(tail) >= 2:
        h ^= tail[1] << 8
    if tail:
        h ^= tail[0]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h


def test_a_key_lands_on_the_java_partition_under_both_clients(
    kafka_settings: KafkaSettings,
) -> None:
    partitions = 6
    keys = [f"user-{i:04d}-{uuid.uuid4().hex[:6]}".encode() for i in range(40)]
    transports = {c: _transport_for(kafka_settings, c) for c in CLIENTS}
    (topic,) = new_topics(transports["kafka-python"], partitions=partitions)
    for client, transport in transports.items():
        producer = transport.producer()
        for key in keys:
            producer.send(topic, client.encode(), key=key)
        producer.flush(30)
        producer.close()

    consumer = reader(transports["confluent"], topic, partitions)
    try:
        got = read(consumer, 2 * len(keys))
    finally:
        consumer.close()

    placed = {(m.value, m.key): m.partition for m in got}
    for key in keys:
        expected = (_murmur2(key) & 0x7FFFFFFF) % partitions
        assert placed[(b"kafka-python", key)] == expected
        assert placed[(b"confluent", key)] == expected
        assert key_partition(key, partitions) == expected  # what the repartition hop names


def test_group_offsets_written_by_one_client_are_read_by_the_other(
    kafka_settings: KafkaSettings, group_id: str
) -> None:
    transports = {c: _transport_for(kafka_settings, c) for c in CLIENTS}
    (topic,) = new_topics(transports["kafka-python"], partitions=2)
    p0, p1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
    plain = transports["confluent"].producer()
    for i in range(8):
        plain.send(topic, b"%d" % i, partition=i % 2)
    plain.flush(30)
    plain.close()
    # p0 -> 1 by kafka-python's plain commit, p1 -> 2 by confluent's transaction
    setup = transports["kafka-python"].consumer(ConsumerOptions(group_id=group_id))
    setup.assign([p0])
    setup.commit({p0: 1})
    setup.close()
    setup = transports["confluent"].consumer(ConsumerOptions(group_id=group_id))
    setup.assign([p1])
    txn = transports["confluent"].producer(ProducerOptions(transactional_id=group_id))
    txn.init_transactions(30)
    txn.begin_transaction()
    txn.send_offsets_to_transaction({p1: 2}, setup.group_metadata())
    txn.commit_transaction()
    txn.close()
    setup.close()

    seen: dict[str, tuple[object, ...]] = {}
    for client, transport in transports.items():
        consumer = reader(transport, topic, 2, group_id=group_id)
        try:
            committed = (consumer.committed(p0), consumer.committed(p1))
            got = sorted((m.partition, m.offset) for m in read(consumer, 5))
        finally:
            consumer.close()
        seen[client] = (committed, got)
    expected = ((1, 2), [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3)])
    assert seen == dict.fromkeys(CLIENTS, expected)


def test_brokers_report_their_rack_alike_on_both_clients(kafka_settings: KafkaSettings) -> None:
    found = {}
    for client in CLIENTS:
        admin = _transport_for(kafka_settings, client).admin()
        try:
            found[client] = sorted(admin.brokers(), key=lambda b: b.node_id)
        finally:
            admin.close()
    assert found["kafka-python"]
    assert found["confluent"] == found["kafka-python"]
    if not os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        assert [b.rack for b in found["confluent"]] == ["cn-north-1a"]
