"""The in-memory transport keeps the Kafka semantics the worker relies on (no broker)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from ingest.errors import DeliveryError, TransportError
from ingest.kafka.base import (
    AclSpec,
    ConsumerOptions,
    ProducerOptions,
    TopicPartition,
    TopicSpec,
)
from ingest.kafka.errors import FencedError, TransactionError, UnreachableError
from ingest.kafka.partitioning import key_partition
from tests.memory_transport import (
    MemoryCluster,
    MemoryConsumer,
    MemoryProducer,
    MemoryTransport,
)

TOPIC = "t"
OUT = "out"
GROUP = "g"
TP0 = TopicPartition(TOPIC, 0)


@pytest.fixture
def cluster() -> MemoryCluster:
    cluster = MemoryCluster()
    cluster.transport().admin().create_topics(
        [TopicSpec(TOPIC, 3, 1), TopicSpec(OUT, 1, 1, {"cleanup.policy": "compact"})]
    )
    return cluster


@pytest.fixture
def transport(cluster: MemoryCluster) -> MemoryTransport:
    return cluster.transport()


def _read_all(transport: MemoryTransport, topic: str, *, committed: bool = True) -> list[bytes]:
    """Values of a topic up to its end offsets, as a group-less reader sees them."""
    reader = transport.consumer(ConsumerOptions(group_id=None, read_committed=committed))
    parts = [TopicPartition(topic, p) for p in reader.partitions_for(topic)]
    reader.assign(parts)
    ends = reader.end_offsets(parts)
    values: list[bytes] = []
    while any(reader.position(tp) < ends[tp] for tp in parts):
        values.extend(m.value or b"" for m in reader.poll(100, 0))
    reader.close()
    return values


def _joined(transport: MemoryTransport, **options: int) -> MemoryConsumer:
    """A member of GROUP on TOPIC, after the poll that made it join."""
    consumer = transport.consumer(ConsumerOptions(group_id=GROUP, **options))  # type: ignore[arg-type]
    consumer.subscribe([TOPIC])
    consumer.poll(10, 0)
    return consumer


def _txn_producer(transport: MemoryTransport, tid: str = "tx") -> MemoryProducer:
    producer = transport.producer(ProducerOptions(transactional_id=tid))
    producer.init_transactions()
    return producer


# Kafka's own vectors (clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java).
def test_keyed_records_go_to_the_kafka_partition_with_offsets_headers_and_timestamps(
    transport: MemoryTransport,
) -> None:
    producer = transport.producer()
    sent = {}
    for n in range(20):
        key = f"user-{n % 4}".encode()
        delivery = producer.send(TOPIC, b"v%d" % n, key=key, headers=[("h", b"x")], timestamp_ms=n)
        sent[n] = (key, delivery.result())
    producer.flush()
    for key, (partition, _offset) in sent.values():
        assert partition == key_partition(key, 3)
    reader = transport.consumer(ConsumerOptions(group_id=None))
    reader.assign([TopicPartition(TOPIC, p) for p in range(3)])
    got = reader.poll(100, 0)
    assert len(got) == 20
    for msg in got:
        n = int(msg.value[1:]) if msg.value else -1
        assert (msg.partition, msg.offset) == sent[n][1]
        assert (msg.key, msg.headers, msg.timestamp_ms) == (sent[n][0], [("h", b"x")], n)
    per_partition = [sorted(m.offset for m in got if m.partition == p) for p in range(3)]
    assert all(offsets == list(range(len(offsets))) for offsets in per_partition)


def test_missing_topics_and_partitions_raise_transport_errors(transport: MemoryTransport) -> None:
    consumer = transport.consumer(ConsumerOptions(group_id=None))
    with pytest.raises(TransportError, match="does not exist"):
        consumer.partitions_for("nope")
    with pytest.raises(TransportError):
        consumer.end_offsets([TopicPartition(TOPIC, 3)])
    with pytest.raises(TransportError):
        transport.producer().send("nope", b"v")
    with pytest.raises(TransportError):
        consumer.position(TP0)  # not assigned


def test_open_and_aborted_transactions_are_invisible_to_read_committed_consumers(
    transport: MemoryTransport,
) -> None:
    producer = _txn_producer(transport)
    producer.begin_transaction()
    producer.send(TOPIC, b"open", partition=0)
    reader = transport.consumer(ConsumerOptions(group_id=None))
    uncommitted = transport.consumer(ConsumerOptions(group_id=None, read_committed=False))
    assert reader.end_offsets([TP0]) == {TP0: 0}  # the last stable offset
    assert uncommitted.end_offsets([TP0]) == {TP0: 1}
    assert _read_all(transport, TOPIC) == []
    assert _read_all(transport, TOPIC, committed=False) == [b"open"]
    producer.abort_transaction()
    producer.begin_transaction()
    producer.send(TOPIC, b"kept", partition=0)
    producer.commit_transaction()
    assert _read_all(transport, TOPIC) == [b"kept"]
    assert _read_all(transport, TOPIC, committed=False) == [b"open", b"kept"]
    # Record, abort marker, record, commit marker: four offsets, read past both markers.
    assert reader.end_offsets([TP0]) == {TP0: 4}
    reader.assign([TP0])
    assert [m.offset for m in reader.poll(10, 0)] == [2]
    assert reader.position(TP0) == 4


def test_offsets_sent_to_a_transaction_move_only_when_it_commits(
    cluster: MemoryCluster, transport: MemoryTransport
) -> None:
    consumer = _joined(transport)
    producer = _txn_producer(transport)
    producer.begin_transaction()
    producer.send(OUT, b"result")
    producer.send_offsets_to_transaction({TP0: 5}, consumer.group_metadata())
    assert consumer.committed(TP0) is None
    producer.abort_transaction()
    assert consumer.committed(TP0) is None
    producer.begin_transaction()
    producer.send(OUT, b"result")
    producer.send_offsets_to_transaction({TP0: 5}, consumer.group_metadata())
    producer.commit_transaction()
    assert consumer.committed(TP0) == 5
    [commit] = cluster.offset_commits(GROUP)
    assert commit.transaction is not None and commit.transaction.state == "committed"
    assert [tp for tp, _ in commit.transaction.writes] == [TopicPartition(OUT, 0)]


def test_a_second_producer_with_the_same_transactional_id_fences_the_first(
    cluster: MemoryCluster, transport: MemoryTransport
) -> None:
    first = _txn_producer(transport)
    first.begin_transaction()
    first.send(TOPIC, b"zombie", partition=0)
    second = _txn_producer(transport)
    [zombie] = cluster.transactions("tx")
    assert zombie.state == "aborted"  # init aborted what the older producer left open
    for call in (
        lambda: first.send(TOPIC, b"more", partition=0),
        first.commit_transaction,
        first.abort_transaction,
        first.begin_transaction,
    ):
        with pytest.raises(FencedError):
            call()
    second.begin_transaction()
    second.send(TOPIC, b"live", partition=0)
    second.commit_transaction()
    assert _read_all(transport, TOPIC) == [b"live"]


def test_a_member_joining_or_leaving_rebalances_the_group_inside_poll(
    transport: MemoryTransport,
) -> None:
    events: list[tuple[str, str, list[int]]] = []
    main = threading.current_thread()

    def member(name: str) -> MemoryConsumer:
        def callback(kind: str) -> Callable[[list[TopicPartition]], None]:
            def record(parts: list[TopicPartition]) -> None:
                assert threading.current_thread() is main  # on the polling thread
                events.append((name, kind, [tp.partition for tp in parts]))

            return record

        consumer = transport.consumer(ConsumerOptions(group_id=GROUP))
        consumer.subscribe([TOPIC], callback("assign"), callback("revoke"))
        return consumer

    a = member("a")
    a.poll(10, 0)
    assert events == [("a", "assign", [0, 1, 2])]
    b = member("b")
    b.poll(10, 0)  # joins; the group waits for a to rejoin
    assert b.assignment() == set()
    assert a.assignment() == {TopicPartition(TOPIC, p) for p in range(3)}  # until a polls
    producer = _txn_producer(transport)
    producer.begin_transaction()
    producer.send_offsets_to_transaction({TP0: 1}, a.group_metadata())
    producer.commit_transaction()  # still a's generation: accepted
    a.poll(10, 0)
    b.poll(10, 0)
    assert events[1:] == [
        ("a", "revoke", [0, 1, 2]),
        ("a", "assign", [0, 1]),
        ("b", "assign", [2]),
    ]
    stale = a.group_metadata()
    b.close()
    a.poll(10, 0)
    assert events[4:] == [("a", "revoke", [0, 1]), ("a", "assign", [0, 1, 2])]
    producer.begin_transaction()
    with pytest.raises(TransactionError, match="rebalanced"):
        producer.send_offsets_to_transaction({TP0: 2}, stale)
    with pytest.raises(TransportError, match="rebalanced"):
        producer.commit_transaction()  # the transaction can only be aborted now
    producer.abort_transaction()
    assert a.committed(TP0) == 1


def test_a_commit_after_a_rebalance_fails_even_if_its_offsets_were_sent_before(
    transport: MemoryTransport,
) -> None:
    a = _joined(transport)
    producer = _txn_producer(transport)
    producer.begin_transaction()
    producer.send_offsets_to_transaction({TP0: 1}, a.group_metadata())
    b = _joined(transport)
    a.poll(10, 0)  # the last to rejoin: the group moves to the next generation
    with pytest.raises(TransactionError, match="rebalanced"):
        producer.commit_transaction()
    producer.abort_transaction()
    assert b.committed(TP0) is None


def test_a_member_late_for_a_rebalance_is_evicted_and_rejoins_at_its_next_poll(
    cluster: MemoryCluster, transport: MemoryTransport
) -> None:
    a = _joined(transport, max_poll_interval_ms=200)
    b = _joined(transport, max_poll_interval_ms=200)  # the group waits for a
    assert b.assignment() == set()
    b.poll(10, 0.5)  # past the rebalance timeout: a, which did not rejoin, is evicted
    everything = {TopicPartition(TOPIC, p) for p in range(3)}
    assert b.assignment() == everything
    with pytest.raises(TransportError, match="not in group"):
        a.commit({TP0: 1})
    a.poll(10, 0)  # rejoins as a new member; the group waits for b
    assert a.assignment() == set()
    cluster.expire_rebalance(GROUP)  # b is late now: evicted without waiting for the timeout
    a.poll(10, 0)
    assert a.assignment() == everything
    b.poll(10, 0)  # rejoins; the group waits for a
    a.poll(10, 0)
    b.poll(10, 0)
    assert (a.assignment(), b.assignment()) == (
        everything - {TopicPartition(TOPIC, 2)},
        {TopicPartition(TOPIC, 2)},
    )


def test_a_new_member_starts_at_the_committed_offsets_and_commits_at_least_once(
    transport: MemoryTransport,
) -> None:
    producer = transport.producer()
    for n in range(4):
        producer.send(TOPIC, b"%d" % n, partition=0)
    first = transport.consumer(ConsumerOptions(group_id=GROUP))
    first.subscribe([TOPIC])
    assert [m.value for m in first.poll(2, 0)] == [b"0", b"1"]
    first.commit({TP0: 2})
    first.close()
    second = transport.consumer(ConsumerOptions(group_id=GROUP))
    second.subscribe([TOPIC])
    assert [m.value for m in second.poll(10, 0)] == [b"2", b"3"]
    second.seek(TP0, 1)
    assert [m.value for m in second.poll(10, 0)] == [b"1", b"2", b"3"]
    _joined(transport)
    second.commit({TP0: 3})  # still its generation while the group waits for it
    assert second.committed(TP0) == 3


def test_a_waiting_poll_returns_when_a_record_arrives(transport: MemoryTransport) -> None:
    consumer = transport.consumer(ConsumerOptions(group_id=None))
    consumer.assign([TP0])
    sender = threading.Timer(0.05, lambda: transport.producer().send(TOPIC, b"late", partition=0))
    sender.start()
    got = consumer.poll(10, 30)
    sender.join()
    assert [m.value for m in got] == [b"late"]


def test_admin_creates_describes_lists_and_deletes_topics_and_reports_the_rack(
    cluster: MemoryCluster, transport: MemoryTransport
) -> None:
    admin = transport.admin()
    assert admin.create_topics([TopicSpec(TOPIC, 3, 1), TopicSpec("new", 2, 1)]) == {
        TOPIC: False,
        "new": True,
    }
    info = admin.describe_topics([OUT, "absent"])
    assert list(info) == [OUT]
    assert (info[OUT].partitions, dict(info[OUT].configs)) == (1, {"cleanup.policy": "compact"})
    assert admin.list_topics() == ["new", OUT, TOPIC]
    admin.delete_topics(["new"])
    assert admin.list_topics() == [OUT, TOPIC]
    assert [b.rack for b in admin.brokers()] == ["cn-north-1a"]
    cluster.rack = "eu-west-1a"
    assert [b.rack for b in admin.brokers()] == ["eu-west-1a"]
    acl = AclSpec("User:w", "topic", TOPIC, "read")
    admin.create_acls([acl])
    assert cluster.acls == [acl]
    admin.close()


def test_injected_commit_failures_leave_the_transaction_to_abort(
    cluster: MemoryCluster, transport: MemoryTransport
) -> None:
    cluster.fail_commits(1, transactional_id="tx", writing_to=[OUT])
    producer = _txn_producer(transport)
    producer.begin_transaction()
    producer.send(TOPIC, b"elsewhere", partition=0)
    producer.commit_transaction()  # wrote nothing to OUT: not claimed by the fault
    producer.begin_transaction()
    producer.send(OUT, b"lost")
    with pytest.raises(TransactionError, match="injected"):
        producer.commit_transaction()
    producer.abort_transaction()
    producer.begin_transaction()
    producer.send(OUT, b"kept")
    producer.commit_transaction()
    assert _read_all(transport, OUT) == [b"kept"]
    assert [t.state for t in cluster.transactions("tx")] == ["committed", "aborted", "committed"]


def test_a_paused_commit_waits_for_resume_and_is_then_checked_afresh(
    cluster: MemoryCluster, transport: MemoryTransport
) -> None:
    pause = cluster.pause_commits(transactional_id="tx")
    producer = _txn_producer(transport)
    producer.begin_transaction()
    producer.send(OUT, b"late")
    outcome: list[BaseException | None] = []

    def commit() -> None:
        try:
            producer.commit_transaction()
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    committer = threading.Thread(target=commit, daemon=True)
    committer.start()
    while pause.waiting == 0:
        committer.join(0.01)
    assert _read_all(transport, OUT) == []
    _txn_producer(transport)  # a newer producer of "tx" fences the waiting one
    pause.resume()
    committer.join(30)
    assert len(outcome) == 1 and isinstance(outcome[0], FencedError)
    assert _read_all(transport, OUT) == []


def test_injected_delivery_failures_surface_at_flush(
    cluster: MemoryCluster, transport: MemoryTransport
) -> None:
    cluster.fail_deliveries(1, topic=TOPIC)
    producer = transport.producer()
    failed = producer.send(TOPIC, b"lost")
    producer.send(TOPIC, b"kept")
    with pytest.raises(DeliveryError) as caught:
        failed.result()
    with pytest.raises(DeliveryError):
        producer.flush()
    assert caught.value.failed == 1
    producer.flush()  # reported once
    assert _read_all(transport, TOPIC) == [b"kept"]


def test_a_dropped_cluster_refuses_calls_until_it_reconnects(
    cluster: MemoryCluster, transport: MemoryTransport
) -> None:
    consumer = transport.consumer(ConsumerOptions(group_id=None))
    consumer.assign([TP0])
    transport.producer().send(TOPIC, b"before", partition=0)
    cluster.drop()
    assert consumer.poll(10, 0) == []  # as the real clients: no records, no error
    for call in (
        lambda: consumer.end_offsets([TP0]),
        lambda: consumer.partitions_for(TOPIC),
        lambda: transport.producer().send(TOPIC, b"during"),
        lambda: transport.admin().brokers(),
        lambda: transport.producer(ProducerOptions(transactional_id="t")).init_transactions(),
    ):
        with pytest.raises(UnreachableError):
            call()
    cluster.reconnect()
    assert [m.value for m in consumer.poll(10, 0)] == [b"before"]
