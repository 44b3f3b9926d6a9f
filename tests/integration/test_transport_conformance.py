"""Every method of the Kafka boundary behaves alike on both clients, against the real broker.

Each test runs once per client library (the `client` fixture). Together they call every
method of `ingest.kafka.base`'s protocols (the last test keeps it so); where a value
is known from the log, it is asserted exactly, so both clients must give the same one.
Comparisons that need both clients in one test are in test_transport.py.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.errors import DeliveryError, TransportError
from ingest.kafka import (
    Consumer,
    ConsumerOptions,
    Message,
    Producer,
    ProducerOptions,
    TopicPartition,
    TopicSpec,
    Transport,
    base,
    make_transport,
)
from ingest.kafka.base import AclSpec
from ingest.kafka.config import KafkaSettings, load_settings
from ingest.kafka.errors import AuthorizationError, FencedError
from ingest.local_broker.broker import LocalBroker

pytestmark = pytest.mark.integration


def new_topics(transport: Transport, count: int = 1, partitions: int = 3) -> list[str]:
    """Fresh uuid-named topics, created through `transport`'s admin."""
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
    (name,) = new_topics(client_transport)
    yield name
    admin = client_transport.admin()
    try:
        admin.delete_topics([name])
    finally:
        admin.close()


def read(consumer: Consumer, count: int, timeout_s: float = 60.0) -> list[Message]:
    """Poll until `count` records arrived (or time is up), then briefly for any extra."""
    got: list[Message] = []
    deadline = time.monotonic() + timeout_s
    while len(got) < count and time.monotonic() < deadline:
        got.extend(consumer.poll(500, 0.5))
    got.extend(consumer.poll(500, 1.0))
    return got


def reader(
    transport: Transport, topic: str, partitions: int = 3, **opts: bool | str | None
) -> Consumer:
    """A consumer assigned every partition of `topic` (group-less unless `group_id` is given)."""
    consumer = transport.consumer(ConsumerOptions(**opts))  # type: ignore[arg-type]
    consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
    return consumer


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


# --- consuming: groups, offsets, positions -----------------------------------------------------


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


def test_offsets_positions_and_seek_follow_the_log(
    client_transport: Transport, group_id: str
) -> None:
    (topic,) = new_topics(client_transport, partitions=2)
    p0, p1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
    plain = client_transport.producer()
    for i in range(5):
        plain.send(topic, b"%d" % i, partition=0)
    plain.flush(30)
    plain.close()
    # two transactional records on p1 (offsets 0, 1, commit marker at 2), group offset p0 -> 3
    setup = client_transport.consumer(ConsumerOptions(group_id=group_id))
    setup.assign([p0])
    txn = client_transport.producer(ProducerOptions(transactional_id=group_id))
    txn.init_transactions(30)
    txn.begin_transaction()
    txn.send(topic, b"t0", partition=1)
    txn.send(topic, b"t1", partition=1)
    txn.send_offsets_to_transaction({p0: 3}, setup.group_metadata())
    txn.commit_transaction()
    txn.close()
    setup.close()

    consumer = client_transport.consumer(ConsumerOptions(group_id=group_id))
    consumer.assign([p0, p1])
    try:
        assert consumer.partitions_for(topic) == [0, 1]
        assert consumer.end_offsets([p0, p1]) == {p0: 5, p1: 3}
        assert consumer.beginning_offsets([p0, p1]) == {p0: 0, p1: 0}
        assert (consumer.committed(p0), consumer.committed(p1)) == (3, None)
        assert (consumer.position(p0), consumer.position(p1)) == (3, 0)
        got = read(consumer, 4)
        assert sorted((m.partition, m.offset, m.value) for m in got) == [
            (0, 3, b"3"),
            (0, 4, b"4"),
            (1, 0, b"t0"),
            (1, 1, b"t1"),
        ]
        assert (consumer.position(p0), consumer.position(p1)) == (5, 3)
        consumer.seek(p0, 1)
        batches: list[list[Message]] = []
        deadline = time.monotonic() + 30
        while sum(map(len, batches)) < 4 and time.monotonic() < deadline:
            batches.append(consumer.poll(2, 0.5))
        assert max(map(len, batches)) == 2  # never more than max_records
        assert [(m.partition, m.offset) for b in batches for m in b] == [
            (0, o) for o in range(1, 5)
        ]
    finally:
        consumer.close()


def test_committed_offsets_are_where_the_group_resumes(
    client_transport: Transport, group_id: str
) -> None:
    """At-least-once mode commits outside transactions: synchronously, overwriting."""
    (topic,) = new_topics(client_transport, partitions=2)
    p0, p1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
    producer = client_transport.producer()
    for i in range(6):
        producer.send(topic, b"%d" % i, partition=i % 2)
    producer.flush(30)
    producer.close()

    first = client_transport.consumer(ConsumerOptions(group_id=group_id))
    first.subscribe([topic])
    try:
        assert len(read(first, 6)) == 6
        first.commit({p0: 2, p1: 3})
        assert (first.committed(p0), first.committed(p1)) == (2, 3)
        first.commit({})  # nothing to commit: the positions (3, 3) are not committed
        first.commit({p0: 1})  # a commit may move an offset back; p1 keeps its own
        assert (first.committed(p0), first.committed(p1)) == (1, 3)
    finally:
        first.close()

    second = client_transport.consumer(ConsumerOptions(group_id=group_id))
    second.subscribe([topic])
    try:
        resumed = read(second, 2)
        assert (second.committed(p0), second.committed(p1)) == (1, 3)
        assert (second.position(p0), second.position(p1)) == (3, 3)
    finally:
        second.close()
    assert sorted((m.partition, m.offset) for m in resumed) == [(0, 1), (0, 2)]


# --- administration ----------------------------------------------------------------------------


def test_admin_creates_once_describes_configs_and_deletes(client_transport: Transport) -> None:
    name = f"tr-{uuid.uuid4().hex[:12]}"
    spec = TopicSpec(name, 2, 1, {"cleanup.policy": "compact", "retention.ms": "3600000"})
    admin = client_transport.admin()
    try:
        brokers = admin.brokers()
        assert brokers and len({b.node_id for b in brokers}) == len(brokers)
        assert all(b.host and b.port > 0 for b in brokers)
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


SASL_USERS = ("admin", "reader")


@pytest.fixture(scope="module")
def sasl_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, KafkaSettings]]:
    """Settings per user of a private SASL/PLAIN broker with deny-by-default ACLs."""
    passwords = {user: secrets.token_urlsafe(12) for user in SASL_USERS}
    broker = LocalBroker(run_dir=Path(tmp_path_factory.mktemp("sasl")), sasl_users=passwords)
    try:
        bootstrap = broker.start()
    except Exception as exc:  # the run must fail loudly, never skip
        pytest.fail(f"SASL broker did not start: {exc}", pytrace=False)
    try:
        yield {
            user: load_settings(
                bootstrap_servers=bootstrap,
                security_protocol="SASL_PLAINTEXT",
                sasl_mechanism="PLAIN",
                sasl_username=user,
                sasl_password=password,
            )
            for user, password in passwords.items()
        }
    finally:
        broker.stop()


@pytest.mark.acl
def test_created_acls_take_effect_and_denials_raise_authorization_errors(
    sasl_settings: dict[str, KafkaSettings], client: str
) -> None:
    as_admin, as_reader = (
        make_transport(sasl_settings[u].model_copy(update={"client": client})) for u in SASL_USERS
    )
    (topic,) = new_topics(as_admin, partitions=1)
    group = f"g-{uuid.uuid4().hex[:12]}"
    tp = TopicPartition(topic, 0)
    producer = as_admin.producer()
    producer.send(topic, b"v", key=b"k")
    producer.flush(30)
    producer.close()

    denied = as_reader.consumer(ConsumerOptions(group_id=group))
    try:
        with pytest.raises(AuthorizationError):
            denied.end_offsets([tp])
    finally:
        denied.close()

    admin = as_admin.admin()
    try:
        admin.create_acls(
            [
                AclSpec("User:reader", "topic", topic, "read"),
                AclSpec("User:reader", "topic", topic, "describe"),
                AclSpec("User:reader", "group", group[:6], "read", prefixed=True),
            ]
        )
    finally:
        admin.close()
    # granted as soon as create_acls returns: no waiting here
    allowed = as_reader.consumer(ConsumerOptions(group_id=group))
    try:
        assert allowed.end_offsets([tp]) == {tp: 1}
        allowed.assign([tp])
        assert [m.value for m in read(allowed, 1)] == [b"v"]
        allowed.commit({tp: 1})
        assert allowed.committed(tp) == 1
    finally:
        allowed.close()


def test_every_protocol_method_is_exercised_here() -> None:
    """A method added to the boundary needs a behaviour test in this file."""
    source = Path(__file__).read_text(encoding="utf-8")
    protocols = [base.Transport, base.Producer, base.Delivery, base.Consumer, base.Admin]
    untested = [
        f"{protocol.__name__}.{name}"
        for protocol in protocols
        for name, value in vars(protocol).items()
        if callable(value) and not name.startswith("_") and f".{name}(" not in source
    ]
    assert untested == []
