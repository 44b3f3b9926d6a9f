"""The real worker loop on the in-memory transport (no broker): exactly once through an
uninterrupted run, failed commits, a second worker joining, a sink in the wrong racks.

Outputs are checked as the fault tests check them (`tests.integration.fault_helpers`):
events are marked by the day they were collected and share every other released value,
so with k = 2 the released records per (schema, day) of an uninterrupted run are what a
run that loses and repeats nothing releases.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Sequence
from typing import Literal

import pytest
from prometheus_client import REGISTRY

from consumers.batch import BatchStages
from consumers.kanon import PendingEntry
from consumers.route import SOURCE_OFFSET, SOURCE_TOPIC
from consumers.worker import Worker
from ingest.kafka import ProducerOptions, TopicPartition
from ingest.kafka.base import Message
from ingest.kafka.topics import TopicSet
from tests.integration.fault_helpers import (
    Feeder,
    Workload,
    build_workload,
    publish,
)
from tests.integration.worker_harness import read_topic, wait_for
from tests.memory_transport import DEFAULT_RACK, MemoryCluster, MemoryTransport
from tests.memory_transport.consumer import MemoryConsumer
from tests.unit.consumers.level0_records import DEVICE, T0_HOUR, device
from tests.unit.consumers.worker_runs import (
    GROUP,
    HELD,
    PARTITIONS,
    SETTLE_S,
    Run,
    WorkerThread,
    changed_since,
    committed_suppressions,
    counters,
    finish,
    fresh_cluster,
    held,
    restores,
    stage_one_outputs,
    unconsumed,
    visible_writes,
)

EVENTS = 1_200
USERS = 80
UNDECODABLE = 7
"""Raw records that are not Avro, published after the events: each becomes a dead letter."""


@pytest.fixture(autouse=True)
def _no_worker_left() -> Iterator[None]:
    """A failed test leaves no worker running into the next."""
    yield
    WorkerThread.halt_all()


@pytest.fixture(scope="module")
def workload() -> Workload:
    """One marked workload for every test of this module."""
    return build_workload(seed=20261, users=USERS, count=EVENTS, now_ms=int(time.time() * 1000))


@pytest.fixture(scope="module")
def uninterrupted(workload: Workload) -> Run:
    """One worker consumes the whole published workload without a fault."""
    cluster, transport, topics = fresh_cluster(workload)
    publish(transport, topics, workload.events)
    producer = transport.producer()
    for n in range(UNDECODABLE):
        producer.send(topics.name("raw_log"), b"not avro", key=b"%d" % n)
    before = counters()
    worker = WorkerThread(transport, topics).start()
    return finish(cluster, transport, topics, [worker], before, workload.now_ms)


def test_one_worker_consumes_a_batch_exactly_once_committing_offsets_with_outputs(
    uninterrupted: Run, workload: Workload
) -> None:
    run, counted = uninterrupted, uninterrupted.counted
    assert counted["consumed"] == len(workload.events) + UNDECODABLE
    assert counted["pending_restored"] == counted["pending_handed_off"] == 0
    assert counted["aborted"] == 0
    # What the counters say reached the analysts and the dead-letter topic, did.
    assert sum(run.found.values()) == counted["forwarded"] > 0
    dead = read_topic(run.transport, run.topics.name("dead_letter"))
    assert len(dead) == counted["dead_lettered"] == UNDECODABLE
    # Consent let most but not all of every day's events through; k = 2 suppressed none.
    assert counted["dropped"] > 0 and counted["suppressed"] == 0
    assert set(run.found) == set(workload.markers)
    assert all(0 < run.found[marker] < n for marker, n in workload.markers.items())
    assert REGISTRY.get_sample_value("consentgate_kanon_pending") == 0
    # Each raw record's output left in the transaction that committed its offset.
    assert len(run.cluster.transactions(run.transactional_ids[0])) > 5  # not one batch
    assert stage_one_outputs(run) == counted["regrouped_out"] + counted["dead_lettered"]


def test_suppressions_are_logged_as_they_commit(
    workload: Workload, caplog: pytest.LogCaptureFixture
) -> None:
    """One person's records alone can form no group of k = 2: all are suppressed, and the
    commits that suppressed them say how many (the trace a killed worker leaves)."""
    caplog.set_level(logging.INFO, logger="consumers")
    cluster, transport, topics = fresh_cluster(workload)
    person = workload.closers[0][1]["user_id"]  # a closer consents to everything
    alone = [event for event in workload.closers if event[1]["user_id"] == person]
    publish(transport, topics, alone)
    before = counters()
    worker = WorkerThread(transport, topics).start()
    run = finish(cluster, transport, topics, [worker], before, workload.now_ms)
    assert run.counted["forwarded"] == 0
    assert run.counted["suppressed"] > 0
    assert committed_suppressions(caplog.records) == run.counted["suppressed"]


def test_failed_commits_abort_and_rewind_and_every_record_counts_once(
    uninterrupted: Run, workload: Workload
) -> None:
    cluster, transport, topics = fresh_cluster(workload)
    publish(transport, topics, workload.events)
    stage_one = [topics.name("kanon_repartition")]
    analyst = [topics.name("anon_device"), topics.name("anon_log")]
    worker = WorkerThread(transport, topics)
    worker_id = worker.transactional_id
    # The first transaction that releases records to the analysts fails to commit, and so
    # does the first that sends raw records on (earlier: it also commits their offsets).
    cluster.fail_commits(1, transactional_id=worker_id, writing_to=analyst)
    cluster.fail_commits(1, transactional_id=worker_id, writing_to=stage_one)
    before = counters()
    worker.start()
    run = finish(cluster, transport, topics, [worker], before, workload.now_ms)
    aborted = [t for t in cluster.transactions(worker_id) if t.state == "aborted"]
    assert len(aborted) == run.counted["aborted"] == 2
    sent_on, released = aborted
    assert sent_on.offsets, "the failed stage-1 transaction carried no offsets"
    for txn, outputs in ((sent_on, stage_one), (released, analyst)):
        written, seen = visible_writes(transport, txn, outputs)
        assert written > 0 and seen == 0
    counted = run.counted
    assert counted["consumed"] == len(workload.events)
    assert stage_one_outputs(run) == counted["regrouped_out"] + counted["dead_lettered"]
    assert run.found == uninterrupted.found


@pytest.mark.parametrize("first_format", ["bundled", "compact", "named"])
def test_a_second_worker_joining_takes_over_held_records_and_none_leaves_twice(
    uninterrupted: Run,
    workload: Workload,
    caplog: pytest.LogCaptureFixture,
    first_format: Literal["bundled", "compact", "named"],
) -> None:
    """`named` and `compact`: the first worker writes held records as versions before the
    compact form, or before bundles, read them (the first step of a rolling upgrade); the
    second reads them in any form."""
    caplog.set_level(logging.INFO, logger="consumers")
    cluster, transport, topics = fresh_cluster(workload)
    # Held 5 s: the first worker releases nothing before the second has joined.
    first = WorkerThread(transport, topics, index=0, max_delay_ms=5_000, held_format=first_format)
    second = WorkerThread(transport, topics, index=1, max_delay_ms=5_000)
    before = counters()
    first.start()
    feeder = Feeder(transport, topics, workload.events, seconds=5)
    feeder.start()
    last = PARTITIONS - 1  # the second member's range
    wait_for(lambda: held(transport, topics)[last] > 0, SETTLE_S, "records held")
    held_at_join = held(transport, topics)[last]
    second.start()
    wait_for(lambda: restores(caplog.records, "worker-1"), SETTLE_S, "the second to join")
    members = cluster.assignment(topics.prefix + GROUP)
    repartition = topics.name("kanon_repartition")
    assert {tp for tp in members[max(members)] if tp.topic == repartition} == {
        TopicPartition(repartition, last)
    }
    # The first worker handed its checkpointed held records off, and the second restored
    # those of its partition: at least what was held when it joined (more may have come).
    assert restores(caplog.records, "worker-1")[0] >= held_at_join > 0
    assert feeder.sent < len(workload.events), "the stream ended before the second worker"
    feeder.finish(timeout_s=SETTLE_S)
    run = finish(cluster, transport, topics, [first, second], before, workload.now_ms)
    counted = run.counted
    assert counted["pending_handed_off"] > 0
    _none_twice_none_lost(run, uninterrupted, caplog.records)
    held_topics = {topics.name("kanon_repartition"), topics.name("kanon_pending")}
    written = [
        (tp.topic, cluster.entries(tp.topic, tp.partition)[offset].value)
        for txn in cluster.transactions(first.transactional_id)
        for tp, offset in txn.writes
        if tp.topic in held_topics
    ]
    values = [value for _topic, value in written if value is not None]  # None: a deletion
    assert {_first_form(value) for value in values} == {first_format == "named"}
    # Several held records in one repartition record only when bundling.
    repartition = topics.name("kanon_repartition")
    bundles = [v for topic, v in written if topic == repartition and v and b"\n" in v]
    assert bool(bundles) == (first_format == "bundled")


def _first_form(value: bytes) -> bool:
    """True for a held record or chunk as versions before the compact form wrote them: a
    JSON object with named fields, or a list of them."""
    docs = [json.loads(line) for line in value.split(b"\n")]
    items = [item for doc in docs for item in (doc if isinstance(doc, list) else [doc])]
    return all(isinstance(item, dict) and "record" in item for item in items)


def test_a_worker_late_for_a_rebalance_is_evicted_and_its_release_refused(
    uninterrupted: Run, workload: Workload, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="consumers")
    cluster, transport, topics = fresh_cluster(workload)
    feeder = Feeder(transport, topics, workload.events, seconds=5)
    first, second, before = _evict_the_first_at_a_release(
        cluster, transport, topics, caplog, feeder, with_offsets=True
    )
    feeder.finish(timeout_s=SETTLE_S)
    run = finish(cluster, transport, topics, [first, second], before, workload.now_ms)
    assert run.counted["pending_handed_off"] > 0
    _none_twice_none_lost(run, uninterrupted, caplog.records)


def test_every_commit_carries_offsets_a_release_that_consumed_nothing_too(
    workload: Workload,
) -> None:
    """The broker checks the group generation only against offsets (KIP-447): a release
    in a turn that consumed nothing sends the owned partitions' positions, so an evicted
    worker's late release is refused like any other commit (the test above)."""
    cluster, transport, topics = fresh_cluster(workload)
    publish(transport, topics, workload.events)  # consumed long before the last release
    before = counters()
    worker = WorkerThread(transport, topics)
    worker.start()
    finish(cluster, transport, topics, [worker], before, workload.now_ms)
    analyst = {topics.name("anon_device"), topics.name("anon_log")}
    releases = {*analyst, topics.name("kanon_pending")}
    committed = [t for t in cluster.transactions(worker.transactional_id) if t.state == "committed"]
    released_only = [
        t
        for t in committed
        if {tp.topic for tp, _ in t.writes} & analyst
        and {tp.topic for tp, _ in t.writes} <= releases
    ]
    assert released_only, "no transaction released without consuming: the test is vacuous"
    assert [t.serial for t in committed if not t.offsets] == []


def _evict_the_first_at_a_release(
    cluster: MemoryCluster,
    transport: MemoryTransport,
    topics: TopicSet,
    caplog: pytest.LogCaptureFixture,
    feeder: Feeder | None,
    *,
    with_offsets: bool,
) -> tuple[WorkerThread, WorkerThread, dict[str, int]]:
    """Two workers, the first evicted while its release (sent consumer offsets or not)
    waits to commit; checks that release is refused and invisible once it rewound.

    The second worker, which takes every partition and restores what the checkpoint held,
    commits nothing until the first has rewound: then the first restores the checkpoint
    as it left it, so what it later hands off is what the second restored.
    """
    analyst = [topics.name("anon_device"), topics.name("anon_log")]
    group = topics.prefix + GROUP
    first = WorkerThread(transport, topics, index=0)
    second = WorkerThread(transport, topics, index=1)
    stalled = cluster.pause_commits(
        transactional_id=first.transactional_id, writing_to=analyst, with_offsets=with_offsets
    )
    held_back = cluster.pause_commits(transactional_id=second.transactional_id)
    before = counters()
    first.start()
    if feeder is not None:
        feeder.start()
    try:
        wait_for(lambda: stalled.waiting == 1, SETTLE_S, "a release to stall")
        second.start()
        wait_for(lambda: len(cluster.members(group)) == 2, SETTLE_S, "the second to join")
        cluster.expire_rebalance(group)  # the first, stalled, has not rejoined
        wait_for(lambda: restores(caplog.records, "worker-1"), SETTLE_S, "the second's turn")
        assert restores(caplog.records, "worker-1")[0] > 0
        stalled.resume()
        [late] = stalled.held
        wait_for(lambda: late.state != "open", SETTLE_S, "the late release to end")
        assert late.state == "aborted", "the evicted worker's release was committed"
        wait_for(lambda: len(restores(caplog.records, "worker-0")) >= 2, SETTLE_S, "a rewind")
    finally:
        stalled.resume()
        held_back.resume()
    written, seen = visible_writes(transport, late, analyst)
    assert written > 0 and seen == 0
    return first, second, before


def _none_twice_none_lost(
    run: Run, uninterrupted: Run, logged: Sequence[logging.LogRecord]
) -> None:
    """Each marker at most as often as in one worker's run, and released or suppressed as
    often in all: a record alone in its new owner's window at its deadline is suppressed.

    The commits' log lines count the suppressions too (what the fault tests read from a
    killed worker, whose counters die with it)."""
    found, reference, counted = run.found, uninterrupted.found, run.counted
    assert not found - reference, f"released more often than in one run: {found - reference}"
    assert sum(found.values()) + counted["suppressed"] == sum(reference.values())
    assert committed_suppressions(logged) == counted["suppressed"]
    assert stage_one_outputs(run) == counted["regrouped_out"] + counted["dead_lettered"]


def test_nothing_is_produced_while_the_sink_is_outside_the_allowed_racks(
    uninterrupted: Run, workload: Workload
) -> None:
    cluster, transport, topics = fresh_cluster(workload)
    cluster.rack = "eu-west-1a"
    publish(transport, topics, workload.events)
    before = counters()
    checks = before["rack_outside"]
    worker = WorkerThread(transport, topics).start()
    wait_for(lambda: counters()["rack_outside"] >= checks + 2, SETTLE_S, "two failed checks")
    assert cluster.transactions(worker.transactional_id) == []
    assert unconsumed(cluster, topics) == len(workload.events)
    cluster.rack = DEFAULT_RACK
    run = finish(cluster, transport, topics, [worker], before, workload.now_ms)
    assert run.found == uninterrupted.found


def test_a_worker_rides_out_a_dropped_cluster_and_counts_every_record_once(
    uninterrupted: Run, workload: Workload
) -> None:
    cluster, transport, topics = fresh_cluster(workload)
    publish(transport, topics, workload.events)
    before = counters()
    worker = WorkerThread(transport, topics)
    # The cluster goes away while a commit is on its way: the commit fails.
    on_its_way = cluster.pause_commits(transactional_id=worker.transactional_id)
    worker.start()
    try:
        wait_for(lambda: on_its_way.waiting == 1, SETTLE_S, "a commit on its way")
        cluster.drop()
    finally:
        on_its_way.resume()
    failed = before["batch_failures"]
    wait_for(lambda: counters()["batch_failures"] > failed, SETTLE_S, "the failed commit")
    worker.run_on(2.0)  # the outage lasts on after the failure
    worker.check_running()
    cluster.reconnect()
    run = finish(cluster, transport, topics, [worker], before, workload.now_ms)
    assert run.found == uninterrupted.found


def test_an_unreadable_bundle_is_dead_lettered_whole_and_counted_per_held_record(
    workload: Workload,
) -> None:
    """Its readable records are not held either: a bundle is taken whole or not at all."""
    cluster, transport, topics = fresh_cluster(workload)
    repartition = topics.name("kanon_repartition")
    good = HELD.encode(
        PendingEntry("raw:0:1", DEVICE, "p", device(), ("raw", 0), T0_HOUR, T0_HOUR, 300)
    )
    bundle = b"\n".join([good, b'["device_event"]', good])
    producer = transport.producer(ProducerOptions())
    producer.send(repartition, bundle, key=b"device_event\x1fwx", partition=0)
    producer.flush(10)
    before = counters()
    worker = WorkerThread(transport, topics).start()
    dead_letter = topics.name("dead_letter")
    wait_for(lambda: read_topic(transport, dead_letter), SETTLE_S, "the bundle's dead letter")
    wait_for(lambda: unconsumed(cluster, topics) == 0, SETTLE_S, "its offset committed")
    worker.halt()
    (letter,) = read_topic(transport, dead_letter)
    headers = dict(letter.headers)
    assert headers[SOURCE_TOPIC] == repartition.encode() and headers[SOURCE_OFFSET] == b"0"
    counted = changed_since(before)
    assert counted["dead_lettered"] == counted["regrouped_in"] == 3
    assert counted["forwarded"] == counted["suppressed"] == counted["regrouped_out"] == 0
    assert not any(held(transport, topics))


def test_a_backlog_of_bundles_is_taken_in_batches_of_the_usual_work(
    workload: Workload, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A poll of `max_poll_records` (100) bundles would carry ten times the usual held
    records at once; after one such poll the worker takes fewer bundles per poll."""
    cluster, transport, topics = fresh_cluster(workload)
    repartition = topics.name("kanon_repartition")
    producer = transport.producer(ProducerOptions())
    n = 0
    for _bundle in range(300):
        lines = []
        for _entry in range(10):
            n += 1
            held = PendingEntry(
                f"raw:0:{n}", DEVICE, f"p{n % 40}", device(), ("raw", 0), T0_HOUR, T0_HOUR, 300
            )
            lines.append(HELD.encode(held))
        producer.send(repartition, b"\n".join(lines), key=b"device_event\x1fwx", partition=0)
    producer.flush(10)
    asked: list[tuple[int, int]] = []
    original = MemoryConsumer.poll

    def noted(self: MemoryConsumer, max_records: int, timeout_s: float) -> list[Message]:
        got = original(self, max_records, timeout_s)
        if any(msg.topic == repartition for msg in got):
            asked.append((max_records, len(got)))
        return got

    monkeypatch.setattr(MemoryConsumer, "poll", noted)
    before = counters()
    worker = WorkerThread(transport, topics).start()
    wait_for(lambda: unconsumed(cluster, topics) == 0, SETTLE_S, "the bundles taken")
    worker.halt()
    assert changed_since(before)["regrouped_in"] == 3_000
    (first_limit, first_got), *later = asked
    assert first_limit == first_got == 100
    assert later and all(limit <= 10 for limit, _got in later)


def test_the_window_judges_deadlines_by_the_clock_after_the_batch(
    workload: Workload, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch can take a good part of the window's margin: the release that follows it
    is asked with the time it runs at, not the time of the poll, or a pool due meanwhile
    would wait a whole loop turn more (and its hold be counted short by the batch)."""
    cluster, transport, topics = fresh_cluster(workload)
    publish(transport, topics, workload.events[:200])
    done: list[int] = []  # when the batch of the current loop turn was processed
    turns: list[tuple[int, int]] = []  # (that time, the time its release was asked with)
    process, release = BatchStages.process, BatchStages.release

    def slow_process(self: BatchStages, *args: object, **kwargs: object) -> bool:
        took = process(self, *args, **kwargs)  # type: ignore[arg-type]
        time.sleep(0.02)  # the batch's work, long enough to tell the two clocks apart
        done[:] = [int(time.time() * 1000)]
        return took

    def noted_release(self: BatchStages, now_ms: int) -> None:
        if done:
            turns.append((done.pop(), now_ms))
        release(self, now_ms)

    monkeypatch.setattr(BatchStages, "process", slow_process)
    monkeypatch.setattr(BatchStages, "release", noted_release)
    worker = WorkerThread(transport, topics).start()
    wait_for(lambda: unconsumed(cluster, topics) == 0, SETTLE_S, "the events taken")
    worker.halt()
    assert turns and all(asked >= processed for processed, asked in turns), turns


def test_a_release_is_followed_at_once_by_another_look_at_the_window(
    workload: Workload, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sending a released pool takes time, in which another pool can come due: the loop
    asks the window again in the same turn, with the clock after the release, instead
    of leaving that pool a whole turn late."""
    cluster, transport, topics = fresh_cluster(workload)
    publish(transport, topics, workload.events[:300])
    steps: list[tuple[str, int, bool]] = []  # ("release", asked with, let anything out)
    release, ready = BatchStages.release, Worker._update_ready

    def noted_release(self: BatchStages, now_ms: int) -> bool:
        out = release(self, now_ms)
        steps.append(("release", now_ms, out))
        return out

    def noted_turn(self: Worker) -> None:
        steps.append(("turn", 0, False))
        ready(self)

    monkeypatch.setattr(BatchStages, "release", noted_release)
    monkeypatch.setattr(Worker, "_update_ready", noted_turn)
    worker = WorkerThread(transport, topics).start()
    wait_for(lambda: unconsumed(cluster, topics) == 0, SETTLE_S, "the events taken")
    wait_for(lambda: any(out for _, _, out in steps), SETTLE_S, "a release")
    worker.halt()
    # A turn's first release that let anything out (a second look is not followed by a
    # third: its pools were due within the release it followed).
    after = [
        i
        for i, (kind, _, out) in enumerate(steps)
        if kind == "release" and out and (i == 0 or steps[i - 1][0] == "turn")
    ]
    assert after
    for i in after:
        kind, asked, _ = steps[i + 1]
        assert kind == "release" and asked >= steps[i][1], steps[i : i + 2]


def test_the_poll_limit_follows_the_held_records_the_last_poll_carried() -> None:
    limit = BatchStages.poll_limit
    assert limit(100, 0, 0) == 100  # nothing taken: the usual limit
    assert limit(100, 80, 80) == 100  # raw records only
    assert limit(100, 100, 1_000) == 10
    assert limit(100, 50, 25_000) == 1  # never less than one record


def test_a_bundle_that_fails_alone_is_set_aside_and_counted_per_held_record(
    workload: Workload,
) -> None:
    """Every commit that checkpoints the bundle's records fails: the worker narrows the
    failure down to the bundle, dead-letters it whole, and the accounting still balances
    (its held records count as taken from the hop and dead-lettered, one each)."""
    cluster, transport, topics = fresh_cluster(workload)
    repartition = topics.name("kanon_repartition")
    lines = [
        HELD.encode(
            PendingEntry(f"raw:0:{n}", DEVICE, f"p{n}", device(), ("raw", 0), T0_HOUR, T0_HOUR, 9)
        )
        for n in range(3)
    ]
    producer = transport.producer(ProducerOptions())
    producer.send(repartition, b"\n".join(lines), key=b"device_event\x1fwx", partition=0)
    producer.flush(10)
    worker = WorkerThread(transport, topics)
    cluster.fail_commits(
        50, transactional_id=worker.transactional_id, writing_to=[topics.name("kanon_pending")]
    )
    before = counters()
    worker.start()
    dead_letter = topics.name("dead_letter")
    wait_for(lambda: read_topic(transport, dead_letter), SETTLE_S, "the bundle set aside")
    wait_for(lambda: unconsumed(cluster, topics) == 0, SETTLE_S, "its offset committed")
    worker.halt()
    (letter,) = read_topic(transport, dead_letter)
    assert dict(letter.headers)[SOURCE_TOPIC] == repartition.encode()
    counted = changed_since(before)
    assert counted["batch_failures"] >= 2
    assert counted["dead_lettered"] == counted["regrouped_in"] == 3
    assert counted["forwarded"] == counted["regrouped_out"] == counted["consumed"] == 0
