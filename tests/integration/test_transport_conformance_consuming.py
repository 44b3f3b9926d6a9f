"""Consuming behaves alike on both clients, against the real broker: groups and their
rebalances, offsets, positions, seeks and commits.

Each test runs once per client library (the `client` fixture); where a value is known
from the log, it is asserted exactly, so both clients must give the same one.
"""

from __future__ import annotations

import time

import pytest

from ingest.kafka import ConsumerOptions, Message, ProducerOptions, TopicPartition, Transport
from tests.integration.transport_helpers import new_topics, read

pytestmark = pytest.mark.integration


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


def test_a_lone_member_keeps_its_first_assignment(
    client_transport: Transport, topic: str, group_id: str
) -> None:
    """A member that subscribes to topics its metadata knows is not rebalanced again.

    kafka-python 3.0.12 recorded the metadata its first assignment was made from only at
    the next metadata update, so right after subscribing the record was empty, and the
    update that followed made the member rejoin: every worker revoked its partitions a
    moment after it started, and the transaction it had begun failed. The worker waits
    until its consumer knows every input topic before it subscribes, as here.
    """
    events: list[tuple[str, frozenset[TopicPartition]]] = []

    def assigned(tps: list[TopicPartition]) -> None:
        events.append(("assign", frozenset(tps)))

    def revoked(tps: list[TopicPartition]) -> None:
        if tps:  # kafka-python revokes the empty set before its first assignment
            events.append(("revoke", frozenset(tps)))

    everything = {TopicPartition(topic, p) for p in range(3)}
    consumer = client_transport.consumer(ConsumerOptions(group_id=group_id))
    try:
        assert consumer.partitions_for(topic) == [0, 1, 2]
        # Reading a committed offset finds the group coordinator first: the join is then
        # quick enough to beat the metadata update that subscribing asks for, as a
        # worker's did (without this the race went either way).
        assert consumer.committed(TopicPartition(topic, 0)) is None
        consumer.subscribe([topic], on_assign=assigned, on_revoke=revoked)
        deadline = time.monotonic() + 30
        while (consumer.assignment() != everything or not events) and time.monotonic() < deadline:
            consumer.poll(100, 0.1)
        assert events == [("assign", frozenset(everything))]
        # The next metadata update made it rejoin: it revoked everything and was
        # assigned it again.
        for _ in range(20):
            consumer.poll(100, 0.1)
        assert events == [("assign", frozenset(everything))]
        assert consumer.assignment() == everything
    finally:
        consumer.close()


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


def test_members_polling_with_short_timeouts_are_given_their_partitions(
    client_transport: Transport, topic: str, group_id: str
) -> None:
    """A join that completes after a poll's timeout is taken up by a later poll.

    kafka-python 3.0.12 leaves such a join's result unread when the rebalance was started
    by its own metadata check (as right after subscribing): the member then stays without
    partitions while the broker thinks it has them. The worker polls every 100 ms, and a
    busy machine makes joins slower than that. Without the fix about one new member in
    nine stayed unassigned on a quiet machine, so fifteen members are tried.
    """
    everything = {TopicPartition(topic, p) for p in range(3)}
    for n, timeout_s in enumerate([0.001, 0.005, 0.01, 0.02, 0.05] * 3):
        consumer = client_transport.consumer(ConsumerOptions(group_id=f"{group_id}-{n}"))
        try:
            consumer.subscribe([topic])
            polls = 0
            deadline = time.monotonic() + 60
            while consumer.assignment() != everything and time.monotonic() < deadline:
                consumer.poll(100, timeout_s)
                polls += 1
            assert consumer.assignment() == everything, (
                f"member {n} ({timeout_s * 1000:g} ms polls) unassigned after {polls} polls"
            )
        finally:
            consumer.close()


def test_a_join_that_finishes_between_polls_is_taken_up(
    client_transport: Transport, topic: str, group_id: str
) -> None:
    """Two members that work between short polls, as the worker does, share the partitions.

    kafka-python 3.0.12 collects a join only while a poll awaits it, and the next poll
    drops one that finished while the member was busy and starts another, which a busy
    member loses the same way: it keeps its old partitions while the other member is
    given some of them. The transport completes such a round before and after each
    poll. On a quiet machine the rounds often finish inside a poll and the group
    converges anyway; under load it did not (a CI run: one member with nothing, the
    other with one partition, after 378 rounds of polls).
    """
    everything = {TopicPartition(topic, p) for p in range(3)}
    members = [client_transport.consumer(ConsumerOptions(group_id=group_id)) for _ in range(2)]
    try:
        for member in members:
            member.subscribe([topic])
        polls = 0
        deadline = time.monotonic() + 120

        def shared() -> bool:
            # Under eager rebalancing a member lists its old partitions until its join
            # completes: only a split of all partitions into two non-empty halves counts.
            first, second = (m.assignment() for m in members)
            return (
                bool(first) and bool(second) and first | second == everything and not first & second
            )

        while not shared() and time.monotonic() < deadline:
            for member in members:
                member.poll(100, 0.005)
            polls += 1
            time.sleep(0.3)  # the batch the worker processes between polls
        first, second = (m.assignment() for m in members)
        assert shared(), f"after {polls} rounds of polls: {sorted(first)} and {sorted(second)}"
    finally:
        for member in members:
            member.close()
