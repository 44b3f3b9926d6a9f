"""`consentgate dlq` on the real broker: dead letters made by a real worker, shown, replayed once.

A module fixture publishes bad records to a raw topic, runs a worker until it has
dead-lettered all of them and stops it. Each test then works on its own dead
letters: `show` prints none of their values, `replay` brings records back to the
raw topic exactly once across runs, also after a run that died before its commit.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ingest.cli.dlq_letters import Selection, read_letters
from ingest.cli.dlq_replay import (
    DLQ_TRANSACTIONAL_ID,
    plan_replay,
    replay_transactions,
    replayed_identities,
)
from ingest.kafka import Message, ProducerOptions, Transport
from ingest.kafka.consent_store import read_to_end
from ingest.kafka.topic_reader import read_messages
from ingest.kafka.topics import TopicSet
from ingest.metrics_text import metric_sum
from schemas.codec import Codec
from tests.integration.topic_sets import create_topic_set, delete_topic_set
from tests.integration.worker_harness import read_topic, start_worker, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.badinput]

PHONE = "13812345678"
IMEI = "490154203237518"
GARBAGE = 4
MISMATCHED = 3
BIG = 1_000_000  # a raw topic takes it; its dead letter keeps only the digest


@dataclass
class DeadLetters:
    """The module's topic set and the raw records the worker dead-lettered, by kind."""

    topics: TopicSet
    garbage: list[Message]
    big: Message
    mismatched: list[Message]
    positions: dict[tuple[int, int], tuple[int, int]]
    """raw (partition, offset) -> dead-letter (partition, offset)."""
    group: str
    """The consumer group of the worker that made them."""

    def offsets(self, raws: list[Message]) -> str:
        """The --offsets argument naming the dead letters of these raw records."""
        return ",".join("{}:{}".format(*self.positions[(m.partition, m.offset)]) for m in raws)


def _log_event(user: str, now_ms: int) -> dict[str, Any]:
    return {
        "event_id": f"ev-{uuid.uuid4().hex[:8]}",
        "user_id": user,
        "event_time": now_ms - 5_000,
        "app_id": "com.example.app",
        "log_type": "PAGE_VIEW",
        "page_url": f"https://example.com/u/{user}?phone={PHONE}",
        "message": f"imei {IMEI}",
    }


@pytest.fixture(scope="module")
def dead_letters(
    kafka_bootstrap: str, transport: Transport, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DeadLetters]:
    topics = create_topic_set(transport)
    raw_log = topics.name("raw_log")
    now = int(time.time() * 1000)
    codec = Codec()
    producer = transport.producer(ProducerOptions(linger_ms=0))
    try:
        for n in range(GARBAGE):
            producer.send(
                raw_log,
                f"\x00not avro: phone {PHONE} #{n}".encode(),
                key=f"dlq-user-{n}".encode(),
                headers=[("event-type", b"log_event"), ("trace", f"tr-{n}".encode())],
                timestamp_ms=now - 60_000 + n,
            )
        producer.send(raw_log, b"\x01" + PHONE.encode() * (BIG // 11), key=b"dlq-user-big")
        for n in range(MISMATCHED):
            event = _log_event(f"dlq-owner-{n}", now)
            producer.send(raw_log, codec.encode("log_event", event), key=b"someone-else")
        producer.flush(30)
    finally:
        producer.close(10)
    sent = read_topic(transport, raw_log)
    assert len(sent) == GARBAGE + 1 + MISMATCHED
    group = f"g-{uuid.uuid4().hex[:8]}"
    worker = start_worker(kafka_bootstrap, topics, tmp_path_factory.mktemp("dlq"), group=group)
    try:
        worker.wait_ready(90)
        wait_for(
            lambda: metric_sum(worker.metrics(), "consentgate_dead_lettered_total") >= len(sent),
            90,
            "the worker to dead-letter every bad record",
        )
    finally:
        worker.stop()
    positions = {}
    stamps = {(m.partition, m.offset): m.timestamp_ms for m in sent}
    for letter in read_topic(transport, topics.name("dead_letter")):
        env = codec.decode_as(letter.value or b"", "dead_letter")
        assert letter.timestamp_ms == stamps[(env["source_partition"], env["source_offset"])]
        positions[(env["source_partition"], env["source_offset"])] = (
            letter.partition,
            letter.offset,
        )
    assert len(positions) == len(sent)
    yield DeadLetters(
        topics=topics,
        garbage=[
            m for m in sent if m.key and m.key.startswith(b"dlq-user-") and m.key != b"dlq-user-big"
        ],
        big=next(m for m in sent if m.key == b"dlq-user-big"),
        mismatched=[m for m in sent if m.key == b"someone-else"],
        positions=positions,
        group=group,
    )
    delete_topic_set(transport, topics)


def _cli(bootstrap: str, topics: TopicSet, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ingest.cli.main", "dlq", *args,
         "--bootstrap", bootstrap, "--prefix", topics.prefix],
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip


def _copies(transport: Transport, topic: str, originals: list[Message]) -> Counter[bytes | None]:
    """How many times each original value is on the raw topic now (committed records)."""
    wanted = {m.value for m in originals}
    return Counter(m.value for m in read_topic(transport, topic) if m.value in wanted)


def test_show_counts_and_lists_dead_letters_without_any_value(
    kafka_bootstrap: str, dead_letters: DeadLetters
) -> None:
    topics = dead_letters.topics
    done = _cli(kafka_bootstrap, topics, "show")
    assert done.returncode == 0, done.stderr
    out = done.stdout + done.stderr
    total = GARBAGE + 1 + MISMATCHED
    assert f"dead letters: {total}\n" in out
    (by_reason,) = [line for line in out.splitlines() if line.startswith("by reason: ")]
    assert f"key_mismatch {MISMATCHED}" in by_reason
    assert sum(int(item.rsplit(" ", 1)[1]) for item in by_reason[11:].split(", ")) == total
    assert f"by source: {topics.name('raw_log')} {total}" in out
    for raw, (part, off) in dead_letters.positions.items():
        assert f"\n{part}:{off}  " in out
        assert f"source={topics.name('raw_log')}[{raw[0]}]@{raw[1]}" in out
    assert f"payload={len(dead_letters.big.value or b''):,} B (digest only)" in out
    for value in (PHONE, IMEI, "dlq-user", "someone-else", "dlq-owner", "tr-0", "not avro"):
        assert value not in out, value
    some = dead_letters.mismatched[0].value or b""
    assert some.hex()[:16] not in out

    only = _cli(kafka_bootstrap, topics, "show", "--reason", "key_mismatch", "--max", "1")
    assert only.returncode == 0, only.stderr
    assert f"dead letters: {MISMATCHED}\n" in only.stdout
    assert only.stdout.count("reason=key_mismatch") == 1
    assert f"({MISMATCHED - 1} more not listed; raise --max)" in only.stdout


def test_replay_reaches_the_raw_topic_once_across_two_runs_and_goes_through_the_pipeline(
    kafka_bootstrap: str, transport: Transport, dead_letters: DeadLetters, tmp_path: Path
) -> None:
    topics = dead_letters.topics
    raw_log = topics.name("raw_log")
    chosen = dead_letters.offsets([*dead_letters.garbage, dead_letters.big])
    first = _cli(kafka_bootstrap, topics, "replay", "--offsets", chosen)
    assert first.returncode == 0, first.stderr
    big_at = dead_letters.offsets([dead_letters.big])
    assert f"dlq replay: {big_at} not replayable: payload kept only as a digest" in first.stdout
    assert (
        f"dlq replay: {GARBAGE} replayed, 0 already replayed, 1 not replayable "
        f"(of {GARBAGE + 1} selected)" in first.stdout
    )
    again = _cli(kafka_bootstrap, topics, "replay", "--offsets", chosen)
    assert again.returncode == 0, again.stderr
    assert f"dlq replay: 0 replayed, {GARBAGE} already replayed, 1 not" in again.stdout

    copies = _copies(transport, raw_log, [*dead_letters.garbage, dead_letters.big])
    assert sorted(copies.values()) == [1] + [2] * GARBAGE, "each replayed once, the big one never"
    by_value = {m.value: m for m in read_topic(transport, raw_log)}  # the latest copy
    for original in dead_letters.garbage:
        copy = by_value[original.value]
        assert copy.offset != original.offset
        assert (copy.partition, copy.key, copy.headers, copy.timestamp_ms) == (
            original.partition,
            original.key,
            original.headers,
            original.timestamp_ms,
        )
    shown = _cli(kafka_bootstrap, topics, "show", "--reason", "undecodable").stdout
    assert shown.count("replayed=yes") == GARBAGE

    # The replayed records are judged again by a worker of the same group (it resumes
    # after the originals): undecodable again, dead-lettered from their replayed position.
    replayed = {
        (by_value[m.value].partition, by_value[m.value].offset) for m in dead_letters.garbage
    }
    worker = start_worker(kafka_bootstrap, topics, tmp_path, group=dead_letters.group)
    try:
        worker.wait_ready(90)
        wait_for(
            lambda: _sources(transport, topics) >= replayed,
            90,
            "the replayed records to reach the pipeline",
        )
        assert metric_sum(worker.metrics(), "consentgate_consumed_total") == GARBAGE
    finally:
        worker.stop()


def _sources(transport: Transport, topics: TopicSet) -> set[tuple[int, int]]:
    codec = Codec()
    letters = read_topic(transport, topics.name("dead_letter"))
    envs = [codec.decode_as(m.value or b"", "dead_letter") for m in letters]
    return {(e["source_partition"], e["source_offset"]) for e in envs}


class _Killed(BaseException):
    """The process died: nothing after this point runs, not even an abort."""


class _DiesBeforeSecondCommit:
    """A real transactional producer whose process dies just before its second commit."""

    def __init__(self, producer: Any) -> None:
        self._producer = producer
        self.commits = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._producer, name)

    def commit_transaction(self) -> None:
        self.commits += 1
        if self.commits == 2:
            self._producer.flush(30)  # the second transaction's records are on the broker
            raise _Killed
        self._producer.commit_transaction()


def test_a_replay_killed_before_its_commit_is_finished_by_the_next_run_without_duplicates(
    kafka_bootstrap: str, transport: Transport, dead_letters: DeadLetters
) -> None:
    topics = dead_letters.topics
    raw_log = topics.name("raw_log")
    log_topic = topics.name("dead_letter_replays")
    doomed = transport.producer(
        ProducerOptions(transactional_id=topics.prefix + DLQ_TRANSACTIONAL_ID)
    )
    try:
        doomed.init_transactions()
        letters, _ = read_letters(
            read_messages(transport, topics.name("dead_letter")),
            Codec(),
            Selection(reason="key_mismatch"),
            keep=True,
        )
        done = replayed_identities(read_to_end(transport, log_topic))
        plan = plan_replay(letters, done, {raw_log})
        assert len(plan.replay) == MISMATCHED
        dying = _DiesBeforeSecondCommit(doomed)
        committed: list[int] = []
        with pytest.raises(_Killed):
            for count in replay_transactions(dying, plan.replay, log_topic, chunk_records=1):
                committed.append(count)
        assert committed == [1]

        finish = _cli(kafka_bootstrap, topics, "replay", "--reason", "key_mismatch")
        assert finish.returncode == 0, finish.stderr
        assert (
            f"dlq replay: {MISMATCHED - 1} replayed, 1 already replayed, 0 not replayable "
            f"(of {MISMATCHED} selected)" in finish.stdout
        )
    finally:
        with contextlib.suppress(Exception):  # fenced by the run that took over
            doomed.close(5)
    copies = _copies(transport, raw_log, dead_letters.mismatched)
    assert sorted(copies.values()) == [2] * MISMATCHED, "the original and exactly one replay"
    last = _cli(kafka_bootstrap, topics, "replay", "--reason", "key_mismatch")
    assert f"dlq replay: 0 replayed, {MISMATCHED} already replayed" in last.stdout


def test_user_mistakes_exit_2_with_one_line(
    kafka_bootstrap: str, dead_letters: DeadLetters
) -> None:
    topics = dead_letters.topics
    missing = _cli(kafka_bootstrap, topics, "replay", "--offsets", "0:999999")
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [
        f"consentgate dlq: no dead letter at 0:999999 on {topics.name('dead_letter')}"
    ]
    assert "Traceback" not in missing.stderr
