"""The Kafka boundary behaves the same on both client libraries (kafka-python, confluent)."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator

import pytest

from ingest.config import KafkaSettings
from ingest.errors import DeliveryError, TransportError
from ingest.transport import (
    Consumer,
    ConsumerOptions,
    Message,
    Producer,
    ProducerOptions,
    TopicPartition,
    TopicSpec,
    Transport,
    make_transport,
)
from ingest.transport.errors import FencedError

pytestmark = pytest.mark.integration

CLIENTS = ("kafka-python", "confluent")


def _transport_for(settings: KafkaSettings, client: str) -> Transport:
    return make_transport(settings.model_copy(update={"client": client}))


def _new_topics(transport: Transport, count: int = 1, partitions: int = 3) -> list[str]:
    names = [f"tr-{uuid.uuid4().hex[:12]}" for _ in range(count)]
    admin = transport.admin()
    try:
        created = admin.create_topics(TopicSpec(n, partitions, 1) for n in names)
    finally:
        admin.close()
    assert created == dict.fromkeys(names, True)
    return names


@pytest.fixture
def topic(client_transport: Transport) -> Iterator[str]:
    """One fresh 3-partition topic, created and deleted through the transport under test."""
    (name,) = _new_topics(client_transport)
    yield name
    admin = client_transport.admin()
    try:
        admin.delete_topics([name])
    finally:
        admin.close()


def _read(consumer: Consumer, count: int, timeout_s: float = 60.0) -> list[Message]:
    """Poll until `count` records arrived (or time is up), then briefly for any extra."""
    got: list[Message] = []
    deadline = time.monotonic() + timeout_s
    while len(got) < count and time.monotonic() < deadline:
        got.extend(consumer.poll(500, 0.5))
    got.extend(consumer.poll(500, 1.0))
    return got


def _reader(transport: Transport, topic: str, partitions: int = 3, **opts: bool) -> Consumer:
    consumer = transport.consumer(ConsumerOptions(**opts))  # type: ignore[arg-type]
    consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
    return consumer


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


def test_keyed_records_with_headers_come_back_with_identical_fields(
    client_transport: Transport, topic: str
) -> None:
    sent: list[tuple[bytes, bytes | None, list[tuple[str, bytes]]]] = [
        (f"user-{i % 4}".encode(), f"value-{i}".encode(), [("event-type", b"t"), ("n", b"%d" % i)])
        for i in range(12)
    ]
    sent.append((b"user-9", b"no-headers", []))
    sent.append((b"user-8", None, []))  # tombstone
    before_ms = int(time.time() * 1000)
    producer = client_transport.producer()
    for key, value, headers in sent:
        producer.send(topic, value, key=key, headers=headers)
    handle = producer.send(topic, b"pinned", key=b"user-7", partition=1)
    sent.append((b"user-7", b"pinned", []))
    pinned_at = handle.result(30)
    assert handle.done()
    producer.flush(30)
    producer.close()

    consumer = _reader(client_transport, topic)
    try:
        got = _read(consumer, len(sent))
        with pytest.raises(TransportError):  # a group-less consumer has no committed offsets
            consumer.committed(TopicPartition(topic, 0))
    finally:
        consumer.close()

    assert sorted((m.key, m.value or b"", m.headers) for m in got) == sorted(
        (k, v or b"", h) for k, v, h in sent
    )
    assert [(m.partition, m.offset) for m in got if m.value == b"pinned"] == [pinned_at]
    assert pinned_at[0] == 1
    assert all(isinstance(m.headers, list) for m in got)
    assert all(m.topic == topic and before_ms - 5000 <= m.timestamp_ms for m in got)
    for p in {m.partition for m in got}:
        offsets = [m.offset for m in got if m.partition == p]
        assert offsets == list(range(len(offsets)))
    keys_per_partition = {m.key: m.partition for m in got}
    assert all(keys_per_partition[m.key] == m.partition for m in got)


def test_a_record_keeps_the_create_time_its_producer_gave_it(
    client_transport: Transport, topic: str
) -> None:
    """Analyst outputs are stamped with their released time bucket, not the send instant."""
    hour_start = int(time.time() * 1000) // 3_600_000 * 3_600_000 - 3 * 3_600_000
    producer = client_transport.producer()
    producer.send(topic, b"stamped", key=b"k", timestamp_ms=hour_start)
    producer.send(topic, b"now", key=b"k")
    producer.flush(30)
    producer.close()
    consumer = _reader(client_transport, topic)
    try:
        got = {m.value: m.timestamp_ms for m in _read(consumer, 2)}
    finally:
        consumer.close()
    assert got[b"stamped"] == hour_start
    assert got[b"now"] > hour_start + 3 * 3_600_000 - 60_000


def test_a_key_lands_on_the_java_partition_under_both_clients(
    kafka_settings: KafkaSettings,
) -> None:
    partitions = 6
    keys = [f"user-{i:04d}-{uuid.uuid4().hex[:6]}".encode() for i in range(40)]
    transports = {c: _transport_for(kafka_settings, c) for c in CLIENTS}
    (topic,) = _new_topics(transports["kafka-python"], partitions=partitions)
    for client, transport in transports.items():
        producer = transport.producer()
        for key in keys:
            producer.send(topic, client.encode(), key=key)
        producer.flush(30)
        producer.close()

    consumer = _reader(transports["confluent"], topic, partitions)
    try:
        got = _read(consumer, 2 * len(keys))
    finally:
        consumer.close()

    placed = {(m.value, m.key): m.partition for m in got}
    for key in keys:
        expected = (_murmur2(key) & 0x7FFFFFFF) % partitions
        assert placed[(b"kafka-python", key)] == expected
        assert placed[(b"confluent", key)] == expected


def test_unreachable_broker_is_reported_never_silent(
    kafka_settings: KafkaSettings, client: str
) -> None:
    bogus = kafka_settings.model_copy(update={"client": client, "bootstrap_servers": "127.0.0.1:1"})
    options = ProducerOptions(delivery_timeout_ms=3000, request_timeout_ms=2000, linger_ms=0)
    # kafka-python fails in the constructor (after 10 s); librdkafka at flush
    with pytest.raises(TransportError) as raised:
        producer = make_transport(bogus).producer(options)
        for i in range(3):
            producer.send("anything", b"v", key=b"%d" % i)
        producer.flush(15)
    if isinstance(raised.value, DeliveryError):
        assert raised.value.failed == 3


def test_records_to_a_missing_topic_raise_instead_of_vanishing(
    client_transport: Transport,
) -> None:
    options = ProducerOptions(delivery_timeout_ms=3000, request_timeout_ms=2000, linger_ms=0)
    producer = client_transport.producer(options)
    missing = f"missing-{uuid.uuid4().hex}"
    # kafka-python raises from send (after its 60 s metadata wait); librdkafka from flush
    with pytest.raises(TransportError) as raised:
        producer.send(missing, b"v", key=b"k1")
        producer.send(missing, b"v", key=b"k2")
        producer.flush(15)
    if isinstance(raised.value, DeliveryError):
        assert raised.value.failed == 2
    producer.close(5)


def _forward(
    producer: Producer, consumer: Consumer, got: list[Message], sink: str, tag: bytes, commit: bool
) -> dict[TopicPartition, int]:
    """One consume-transform-produce transaction over `got`; returns the offsets it carries."""
    offsets = {TopicPartition(m.topic, m.partition): m.offset + 1 for m in got}
    producer.begin_transaction()
    for m in got:
        producer.send(sink, (m.value or b"").upper() + tag, key=m.key)
    producer.send_offsets_to_transaction(offsets, consumer.group_metadata())
    if commit:
        producer.commit_transaction()
    else:
        # Put the records in the log first: a client may drop unsent batches on abort,
        # and the point is that read_committed hides aborted records that ARE there.
        producer.flush(30)
        producer.abort_transaction()
    return offsets


def test_committed_transaction_is_visible_and_aborted_one_is_not(
    client_transport: Transport, group_id: str
) -> None:
    source, sink = _new_topics(client_transport, count=2)
    plain = client_transport.producer()
    for i in range(10):
        plain.send(source, b"a%d" % i, key=b"user-%d" % i)
    plain.flush(30)
    consumer = client_transport.consumer(ConsumerOptions(group_id=group_id))
    consumer.subscribe([source])
    producer = client_transport.producer(ProducerOptions(transactional_id=f"tx-{group_id}"))
    try:
        producer.init_transactions(30)
        first_batch = _read(consumer, 10)
        assert len(first_batch) == 10
        first = _forward(producer, consumer, first_batch, sink, b"", commit=True)
        for i in range(5):
            plain.send(source, b"b%d" % i, key=b"user-%d" % i)
        plain.flush(30)
        second_batch = _read(consumer, 5)
        assert len(second_batch) == 5
        _forward(producer, consumer, second_batch, sink, b"-aborted", commit=False)
        after_abort = {tp: consumer.committed(tp) for tp in first}
        # the worker's recovery: the same batch again, in a new transaction of the same producer
        second = _forward(producer, consumer, second_batch, sink, b"", commit=True)
        after_retry = {tp: consumer.committed(tp) for tp in first | second}
    finally:
        producer.close()
        consumer.close()
        plain.close()

    assert after_abort == first
    assert after_retry == {**first, **second}
    visible = _reader(client_transport, sink, read_committed=True)
    everything = _reader(client_transport, sink, read_committed=False)
    try:
        seen = _read(visible, 20, timeout_s=5)
        raw = _read(everything, 20)
    finally:
        visible.close()
        everything.close()
    committed_values = [b"A%d" % i for i in range(10)] + [b"B%d" % i for i in range(5)]
    assert sorted(m.value or b"" for m in seen) == sorted(committed_values)
    aborted_values = [b"B%d-aborted" % i for i in range(5)]
    assert sorted(m.value or b"" for m in raw) == sorted(committed_values + aborted_values)


def test_a_newer_producer_with_the_same_transactional_id_fences_the_older(
    client_transport: Transport, topic: str
) -> None:
    options = ProducerOptions(transactional_id=f"tx-{uuid.uuid4().hex}")
    older = client_transport.producer(options)
    newer = client_transport.producer(options)
    try:
        older.init_transactions(30)
        older.begin_transaction()
        older.send(topic, b"zombie", key=b"k")
        newer.init_transactions(30)
        with pytest.raises(FencedError):
            older.send(topic, b"zombie-2", key=b"k")
            older.commit_transaction()
    finally:
        newer.close(5)
        older.close(5)


def test_rebalance_callbacks_fire_on_subscribe_and_when_a_member_joins(
    client_transport: Transport, topic: str, group_id: str
) -> None:
    events: list[tuple[str, frozenset[TopicPartition]]] = []

    # empty sets not recorded: kafka-python revokes the empty set before its first
    # assignment, and may assign nothing at first while it lacks a new topic's metadata
    def assigned(tps: list[TopicPartition]) -> None:
        if tps:
            events.append(("assign", frozenset(tps)))

    def revoked(tps: list[TopicPartition]) -> None:
        if tps:
            events.append(("revoke", frozenset(tps)))

    first = client_transport.consumer(ConsumerOptions(group_id=group_id))
    first.subscribe([topic], on_assign=assigned, on_revoke=revoked)
    everything = {TopicPartition(topic, p) for p in range(3)}
    second = client_transport.consumer(ConsumerOptions(group_id=group_id))
    try:
        # kafka-python runs listener callbacks on its IO thread: the assignment can be
        # visible a moment before the callback has run, so wait for both.
        deadline = time.monotonic() + 30
        while (first.assignment() != everything or not events) and time.monotonic() < deadline:
            first.poll(100, 0.2)
        assert events == [("assign", frozenset(everything))]
        assert first.assignment() == everything

        second.subscribe([topic])
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline:
            first.poll(100, 0.2)
            second.poll(100, 0.2)
            mine, theirs = first.assignment(), second.assignment()
            settled = events[-1] == ("assign", frozenset(mine))
            if mine and theirs and mine | theirs == everything and settled:
                break
        assert mine | theirs == everything and not mine & theirs
        assert ("revoke", frozenset(everything)) in events
        assert events[-1] == ("assign", frozenset(mine))
    finally:
        second.close()
        first.close()


def test_offsets_agree_across_clients(kafka_settings: KafkaSettings, group_id: str) -> None:
    transports = {c: _transport_for(kafka_settings, c) for c in CLIENTS}
    (topic,) = _new_topics(transports["kafka-python"], partitions=2)
    p0, p1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
    plain = transports["kafka-python"].producer()
    for i in range(5):
        plain.send(topic, b"%d" % i, partition=0)
    plain.flush(30)
    plain.close()
    # two transactional records on p1 (offsets 0, 1, commit marker at 2), group offset p0 -> 3
    setup = transports["kafka-python"].consumer(ConsumerOptions(group_id=group_id))
    setup.assign([p0])
    txn = transports["kafka-python"].producer(ProducerOptions(transactional_id=group_id))
    txn.init_transactions(30)
    txn.begin_transaction()
    txn.send(topic, b"t0", partition=1)
    txn.send(topic, b"t1", partition=1)
    txn.send_offsets_to_transaction({p0: 3}, setup.group_metadata())
    txn.commit_transaction()
    txn.close()
    setup.close()

    seen: dict[str, dict[str, object]] = {}
    for client, transport in transports.items():
        consumer = transport.consumer(ConsumerOptions(group_id=group_id))
        consumer.assign([p0, p1])
        try:
            facts: dict[str, object] = {
                "partitions": consumer.partitions_for(topic),
                "end": consumer.end_offsets([p0, p1]),
                "beginning": consumer.beginning_offsets([p0, p1]),
                "committed": (consumer.committed(p0), consumer.committed(p1)),
                "position_before": (consumer.position(p0), consumer.position(p1)),
            }
            got = _read(consumer, 4)
            facts["read"] = sorted((m.partition, m.offset, m.value) for m in got)
            facts["position_after_p0"] = consumer.position(p0)
            consumer.seek(p0, 1)
            again = _read(consumer, 4)
            facts["after_seek"] = sorted(m.offset for m in again if m.partition == 0)
        finally:
            consumer.close()
        seen[client] = facts

    assert seen["kafka-python"]["end"] == {p0: 5, p1: 3}
    assert seen["kafka-python"]["beginning"] == {p0: 0, p1: 0}
    assert seen["kafka-python"]["committed"] == (3, None)
    assert seen["kafka-python"]["position_before"] == (3, 0)
    assert seen["kafka-python"]["read"] == [
        (0, 3, b"3"),
        (0, 4, b"4"),
        (1, 0, b"t0"),
        (1, 1, b"t1"),
    ]
    assert seen["kafka-python"]["position_after_p0"] == 5
    assert seen["kafka-python"]["after_seek"] == [1, 2, 3, 4]
    assert seen["confluent"] == seen["kafka-python"]


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


def test_admin_creates_once_describes_configs_and_deletes(client_transport: Transport) -> None:
    name = f"tr-{uuid.uuid4().hex[:12]}"
    spec = TopicSpec(name, 2, 1, {"cleanup.policy": "compact", "retention.ms": "3600000"})
    admin = client_transport.admin()
    try:
        assert admin.create_topics([spec]) == {name: True}
        assert admin.create_topics([spec]) == {name: False}
        assert name in admin.list_topics()
        info = admin.describe_topics([name, f"absent-{uuid.uuid4().hex}"])
        assert list(info) == [name]
        assert (info[name].partitions, info[name].replication) == (2, 1)
        assert info[name].configs["cleanup.policy"] == "compact"
        assert info[name].configs["retention.ms"] == "3600000"
        assert "segment.bytes" in info[name].configs  # defaults are included too
        admin.delete_topics([name])
        deadline = time.monotonic() + 15
        while name in admin.list_topics() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert name not in admin.list_topics()
    finally:
        admin.close()
