"""`consentgate dlq replay`: chosen dead letters back to their source raw topic, once.

Each replayed record goes out in one Kafka transaction with an entry of the compacted
replay-log topic keyed by the dead letter's "partition:offset". The command first takes
the one transactional id of replays (which fences an earlier run, killed or still
running, and aborts its open transaction), then reads the replay log to its end and
skips what is there. A dead letter whose key, headers or payload was cut to a digest
cannot be replayed; entries of dead letters gone from the topic are tombstoned.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from ingest.cli.connection import transport_from_args
from ingest.cli.dlq_letters import READ_TIMEOUT_S, Letter, Selection, read_letters
from ingest.errors import TransportError, UsageError
from ingest.kafka import ConsumerOptions, Producer, ProducerOptions, TopicPartition, Transport
from ingest.kafka.consent_store import read_to_end
from ingest.kafka.topic_reader import read_messages
from ingest.kafka.topics import TopicSet
from schemas.codec import Codec
from schemas.registry import default_registry

DLQ_TRANSACTIONAL_ID = "consentgate-ops-dlq-replay"
"""Transactional id of every replay (after the topic prefix): one at a time, fencing the last."""
CHUNK_RECORDS = 200
CHUNK_BYTES = 8 * 1024 * 1024
"""A transaction carries at most this many replayed records and payload bytes."""


def replayed_identities(log: Mapping[bytes, bytes | None]) -> dict[bytes, str]:
    """Replay-log key -> identity of the dead letter replayed there (tombstones skipped)."""
    out: dict[bytes, str] = {}
    for key, value in log.items():
        if value is None:
            continue
        try:
            out[key] = str(json.loads(value)["identity"])
        except (ValueError, KeyError, TypeError):
            continue
    return out


def log_entry(letter: Letter, now_ms: int) -> bytes:
    """The replay-log value of a replayed letter: positions and times only, no values."""
    entry = {"identity": letter.identity, "replayed_at": now_ms}
    return json.dumps(entry, separators=(",", ":")).encode()


def refusal(letter: Letter, raw_topics: Collection[str]) -> str | None:
    """Why a dead letter cannot be replayed, or None."""
    if letter.cut:
        return f"{' and '.join(letter.cut)} kept only as a digest"
    if letter.source_topic not in raw_topics:
        return "its source is not a raw topic of this topic set"
    return None


@dataclass(slots=True)
class Plan:
    """What a replay run does with each selected dead letter."""

    replay: list[Letter] = field(default_factory=list)
    already: list[Letter] = field(default_factory=list)
    refused: list[tuple[Letter, str]] = field(default_factory=list)

    @property
    def selected(self) -> int:
        """How many dead letters were selected."""
        return len(self.replay) + len(self.already) + len(self.refused)


def plan_replay(
    letters: Iterable[Letter], done: Mapping[bytes, str], raw_topics: Collection[str]
) -> Plan:
    """Sort the selected letters: to replay, already replayed (in the log), or not replayable."""
    plan = Plan()
    for letter in letters:
        why = refusal(letter, raw_topics)
        if done.get(letter.log_key) == letter.identity:
            plan.already.append(letter)
        elif why is not None:
            plan.refused.append((letter, why))
        else:
            plan.replay.append(letter)
    return plan


def replay_summary(plan: Plan, replayed: int) -> str:
    """The one summary line of a replay run."""
    line = (
        f"dlq replay: {replayed} replayed, {len(plan.already)} already replayed, "
        f"{len(plan.refused)} not replayable (of {plan.selected} selected)"
    )
    failed = len(plan.replay) - replayed
    return line + (f"; {failed} not replayed: the run failed" if failed else "")


def chunks(letters: Sequence[Letter], records: int, max_bytes: int) -> Iterator[list[Letter]]:
    """Consecutive groups of at most `records` letters and (beyond one letter) `max_bytes`."""
    chunk: list[Letter] = []
    size = 0
    for letter in letters:
        weight = letter.payload_size or 0
        if chunk and (len(chunk) >= records or size + weight > max_bytes):
            yield chunk
            chunk, size = [], 0
        chunk.append(letter)
        size += weight
    if chunk:
        yield chunk


def replay_transactions(
    producer: Producer,
    letters: Sequence[Letter],
    log_topic: str,
    tombstones: Sequence[bytes] = (),
    chunk_records: int = CHUNK_RECORDS,
) -> Iterator[int]:
    """Replay in transactions: each record with its replay-log entry; yields each commit's count.

    The producer's transactions must be initialized (which fenced any earlier run). A
    failed transaction is aborted and its error raised: nothing of it becomes visible.
    """
    groups = list(chunks(letters, chunk_records, CHUNK_BYTES)) or ([[]] if tombstones else [])
    for number, group in enumerate(groups):
        producer.begin_transaction()
        try:
            now_ms = int(time.time() * 1000)
            for letter in group:
                original = letter.original
                assert original is not None, "letters to replay carry their original record"
                producer.send(
                    letter.source_topic,
                    original.value,
                    key=original.key,
                    headers=list(original.headers),
                    partition=letter.source_partition,
                    timestamp_ms=letter.source_timestamp,
                )
                producer.send(log_topic, log_entry(letter, now_ms), key=letter.log_key)
            for key in tombstones if number == 0 else ():
                producer.send(log_topic, None, key=key)
            producer.commit_transaction()
        except TransportError:
            # If the abort fails too, the broker aborts it when it times out or is fenced.
            with contextlib.suppress(TransportError):
                producer.abort_transaction()
            raise
        yield len(group)


def expired_log_keys(log: Mapping[bytes, bytes | None], first: Mapping[int, int]) -> list[bytes]:
    """Replay-log keys of dead letters the dead-letter topic no longer holds (retention)."""
    out = []
    for key, value in log.items():
        part, _, off = key.decode(errors="replace").partition(":")
        expired = part.isdigit() and off.isdigit() and int(off) < first.get(int(part), 0)
        if value is not None and expired:
            out.append(key)
    return out


def _first_offsets(transport: Transport, topic: str) -> dict[int, int]:
    consumer = transport.consumer(ConsumerOptions(group_id=None))
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for(topic)]
        return {tp.partition: off for tp, off in consumer.beginning_offsets(parts).items()}
    finally:
        consumer.close()


def run_replay(args: argparse.Namespace, topics: TopicSet) -> int:
    """The `replay` action: fence earlier runs, skip what the log holds, replay the rest."""
    if args.offsets is not None and (args.since is not None or args.until is not None):
        raise UsageError("--since and --until go with --reason, not --offsets")
    selection = Selection(
        positions=args.offsets, reason=args.reason, since_ms=args.since, until_ms=args.until
    )
    transport = transport_from_args(args)
    dead_letters, log_topic = topics.name("dead_letter"), topics.name("dead_letter_replays")
    producer = transport.producer(
        ProducerOptions(transactional_id=topics.prefix + DLQ_TRANSACTIONAL_ID)
    )
    try:
        producer.init_transactions()  # fences an earlier run first: its log is then complete
        log = read_to_end(transport, log_topic, READ_TIMEOUT_S)
        messages = read_messages(transport, dead_letters, READ_TIMEOUT_S)
        letters, _ = read_letters(messages, Codec(default_registry()), selection, keep=True)
        if args.offsets is not None:
            missing = sorted(args.offsets - {letter.position for letter in letters})
            if missing:
                shown = ",".join(f"{p}:{o}" for p, o in missing)
                raise UsageError(f"no dead letter at {shown} on {dead_letters}")
        raw = {topics.name("raw_device"), topics.name("raw_log")}
        plan = plan_replay(letters, replayed_identities(log), raw)
        for letter, why in plan.refused:
            print(f"dlq replay: {letter.partition}:{letter.offset} not replayable: {why}")
        tombstones = expired_log_keys(log, _first_offsets(transport, dead_letters))
        replayed = 0
        try:
            for count in replay_transactions(producer, plan.replay, log_topic, tombstones):
                replayed += count
        finally:
            print(replay_summary(plan, replayed))
    finally:
        producer.close(10)
    return 0
