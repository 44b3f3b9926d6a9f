"""Producing and transactions behave alike on both clients, against the real broker.

Each test runs once per client library (the `client` fixture); where a value is known
from the log, it is asserted exactly, so both clients must give the same one. The
consumer side is in test_transport_conformance_consuming.py, administration and ACLs in
test_transport_conformance_admin.py, which also checks that together they call every
method of `ingest.kafka.base`'s protocols. Comparisons that need both clients in one
test are in test_transport.py.
"""

from __future__ import annotations

import time
import uuid

import pytest

from ingest.errors import DeliveryError, TransportError
from ingest.kafka import (
    Consumer,
    ConsumerOptions,
    Message,
    Producer,
    ProducerOptions,
    TopicPartition,
    Transport,
    make_transport,
)
from ingest.kafka.config import KafkaSettings
from ingest.kafka.errors import FencedError
from tests.integration.transport_helpers import new_topics, read, reader

pytestmark = pytest.mark.integration


# --- producing: keys, headers, partitions, CreateTime, delivery --------------------------------


def test_keyed_records_with_headers_come_back_with_identical_fields(
    client_transport: Transport, client: str, kafka_bootstrap: str, topic: str
) -> None:
    assert (client_transport.name, client_transport.bootstrap_servers) == (client, kafka_bootstrap)
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

    consumer = reader(client_transport, topic)
    try:
        assert consumer.assignment() == {TopicPartition(topic, p) for p in range(3)}
        got = read(consumer, len(sent))
        # a group-less consumer has no committed offsets, and cannot commit any
        with pytest.raises(TransportError):
            consumer.committed(TopicPartition(topic, 0))
        with pytest.raises(TransportError):
            consumer.commit({TopicPartition(topic, 0): 1})
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
    consumer = reader(client_transport, topic)
    try:
        got = {m.value: m.timestamp_ms for m in read(consumer, 2)}
    finally:
        consumer.close()
    assert got[b"stamped"] == hour_start
    assert got[b"now"] > hour_start + 3 * 3_600_000 - 60_000


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
    options = ProducerOptions(
        delivery_timeout_ms=3000, request_timeout_ms=2000, linger_ms=0, max_block_ms=3000
    )
    producer = client_transport.producer(options)
    missing = f"missing-{uuid.uuid4().hex}"
    # kafka-python raises from send (after max_block_ms waiting for metadata); librdkafka
    # from flush
    with pytest.raises(TransportError) as raised:
        producer.send(missing, b"v", key=b"k1")
        producer.send(missing, b"v", key=b"k2")
        producer.flush(15)
    if isinstance(raised.value, DeliveryError):
        assert raised.value.failed == 2
    producer.close(5)
    consumer = client_transport.consumer()
    try:
        with pytest.raises(TransportError):
            consumer.partitions_for(missing)
    finally:
        consumer.close()


# --- transactions ------------------------------------------------------------------------------


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
    source, sink = new_topics(client_transport, count=2)
    plain = client_transport.producer()
    for i in range(10):
        plain.send(source, b"a%d" % i, key=b"user-%d" % i)
    plain.flush(30)
    consumer = client_transport.consumer(ConsumerOptions(group_id=group_id))
    consumer.subscribe([source])
    producer = client_transport.producer(ProducerOptions(transactional_id=f"tx-{group_id}"))
    try:
        producer.init_transactions(30)
        with pytest.raises(TransportError):  # confluent: TransactionError; kafka-python: base
            producer.commit_transaction()  # none begun: refused, the producer stays usable
        first_batch = read(consumer, 10)
        assert len(first_batch) == 10
        first = _forward(producer, consumer, first_batch, sink, b"", commit=True)
        for i in range(5):
            plain.send(source, b"b%d" % i, key=b"user-%d" % i)
        plain.flush(30)
        second_batch = read(consumer, 5)
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
    visible = reader(client_transport, sink, read_committed=True)
    everything = reader(client_transport, sink, read_committed=False)
    try:
        seen = read(visible, 20, timeout_s=5)
        raw = read(everything, 20)
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
