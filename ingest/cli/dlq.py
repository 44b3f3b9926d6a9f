"""`consentgate dlq show|replay`: inspect dead letters, or replay chosen ones to their source once.

`show` prints counts by reason, stage and source, and one line per dead letter:
its position, reason, stage, source position, sizes and payload digest. It never
prints a payload, a header value or a key (a user id), not even hashed.

`replay` produces the chosen dead letters' records back to their source raw topic
and partition, with the same key, headers and timestamp, where the pipeline judges
them again, consent gate included (a cancelled user's record is dropped as
`account_cancelled`). Exactly once: each replayed record goes out in one Kafka
transaction with an entry of the compacted replay-log topic keyed by the dead
letter's "partition:offset". The command first takes the one transactional id of
replays (which fences an earlier run, killed or still running, and aborts its open
transaction), then reads the replay log to its end and skips what is there. A
dead letter whose key, headers or payload was cut to a digest cannot be replayed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ingest.cli.connection import (
    add_connection_args,
    instant_ms,
    topics_from_args,
    transport_from_args,
)
from ingest.errors import TransportError, UsageError
from ingest.kafka import ConsumerOptions, Producer, ProducerOptions, TopicPartition, Transport
from ingest.kafka.base import Headers
from ingest.kafka.consent_store import read_to_end
from ingest.kafka.topic_reader import read_messages
from ingest.kafka.topics import TopicSet
from schemas.codec import Codec
from schemas.errors import DecodeError
from schemas.registry import default_registry

NAME = "dlq"
HELP = "show dead letters (never their values) or replay chosen ones to their raw topic, once"

DLQ_TRANSACTIONAL_ID = "consentgate-ops-dlq-replay"
"""Transactional id of every replay (after the topic prefix): one at a time, fencing the last."""
CHUNK_RECORDS = 200
CHUNK_BYTES = 8 * 1024 * 1024
"""A transaction carries at most this many replayed records and payload bytes."""
READ_TIMEOUT_S = 120.0

Position = tuple[int, int]
"""(partition, offset) of a dead letter on the dead-letter topic."""


@dataclass(frozen=True, slots=True)
class Original:
    """The rejected record as it was: what a replay produces again."""

    key: bytes | None
    value: bytes | None
    headers: Headers


@dataclass(frozen=True, slots=True)
class Letter:
    """One dead letter's metadata (no values), and its original record when kept for replay."""

    partition: int
    offset: int
    reason: str
    stage: str
    error_class: str
    source_topic: str
    source_partition: int
    source_offset: int
    source_timestamp: int | None
    failed_at: int
    key_size: int | None
    payload_size: int | None
    header_count: int
    payload_sha256: bytes | None
    cut: tuple[str, ...]
    original: Original | None = field(default=None, compare=False)

    @property
    def position(self) -> Position:
        """Where the dead letter sits on the dead-letter topic."""
        return (self.partition, self.offset)

    @property
    def log_key(self) -> bytes:
        """Its key on the replay log."""
        return f"{self.partition}:{self.offset}".encode()

    @property
    def identity(self) -> str:
        """Source position and failure time: tells it from a letter of a re-created topic."""
        return f"{self.source_topic}:{self.source_partition}:{self.source_offset}:{self.failed_at}"


def letter_of(partition: int, offset: int, env: Mapping[str, Any], keep: bool) -> Letter:
    """A Letter from a decoded envelope (any version); the original record only if `keep`."""
    key, payload = env.get("key"), env.get("payload")
    headers: list[dict[str, Any]] = list(env.get("headers") or [])
    cut = tuple(
        part for part in ("payload", "key", "headers") if env.get(f"{part}_truncated", False)
    )
    payload_size = env.get("payload_size")
    key_size = env.get("key_size")
    original = None
    if keep:
        original = Original(key, payload, [(h["name"], h["value"]) for h in headers])
    return Letter(
        partition=partition,
        offset=offset,
        reason=str(env["reason"]),
        stage=str(env["stage"]),
        error_class=str(env["error_class"]),
        source_topic=str(env["source_topic"]),
        source_partition=int(env["source_partition"]),
        source_offset=int(env["source_offset"]),
        source_timestamp=env.get("source_timestamp"),
        failed_at=int(env["failed_at"]),
        key_size=key_size if key_size is not None or key is None else len(key),
        payload_size=payload_size if payload_size is not None or payload is None else len(payload),
        header_count=len(headers),
        payload_sha256=env.get("payload_sha256"),
        cut=cut,
        original=original,
    )


@dataclass(frozen=True, slots=True)
class Selection:
    """Which dead letters a command means; every criterion given must match."""

    positions: frozenset[Position] | None = None
    reason: str | None = None
    stage: str | None = None
    sources: frozenset[str] | None = None
    since_ms: int | None = None
    until_ms: int | None = None

    def matches(self, letter: Letter) -> bool:
        """True when the letter is chosen; the time window is on `failed_at`, [since, until)."""
        return (
            (self.positions is None or letter.position in self.positions)
            and (self.reason is None or letter.reason == self.reason)
            and (self.stage is None or letter.stage == self.stage)
            and (self.sources is None or letter.source_topic in self.sources)
            and (self.since_ms is None or letter.failed_at >= self.since_ms)
            and (self.until_ms is None or letter.failed_at < self.until_ms)
        )


def parse_positions(text: str) -> frozenset[Position]:
    """argparse type: `P:O,P:O...` dead-letter positions."""
    found: set[Position] = set()
    for item in text.split(","):
        part, sep, off = item.strip().partition(":")
        if not sep or not part.isdigit() or not off.isdigit():
            raise argparse.ArgumentTypeError(f"not PARTITION:OFFSET: {item.strip()!r}")
        found.add((int(part), int(off)))
    return frozenset(found)


def read_letters(
    messages: Iterable[Any], codec: Codec, selection: Selection, keep: bool
) -> tuple[list[Letter], int]:
    """The selected dead letters by position, and how many dead letters were unreadable."""
    letters: list[Letter] = []
    unreadable = 0
    for msg in messages:
        try:
            env = codec.decode_as(msg.value or b"", "dead_letter")
        except DecodeError:
            unreadable += 1
            continue
        letter = letter_of(msg.partition, msg.offset, env, keep=False)
        if selection.matches(letter):
            letters.append(letter_of(msg.partition, msg.offset, env, keep) if keep else letter)
    letters.sort(key=lambda letter: letter.position)
    return letters, unreadable


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


def _utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _size(n: int | None) -> str:
    return "none" if n is None else f"{n:,} B"


def listing_line(letter: Letter, replayed: bool) -> str:
    """One dead letter for `show`: positions, codes, sizes and digest, never a value or key."""
    payload = _size(letter.payload_size) + (" (digest only)" if "payload" in letter.cut else "")
    digest = letter.payload_sha256.hex()[:16] if letter.payload_sha256 else "-"
    cut = f" cut={'+'.join(letter.cut)}" if letter.cut else ""
    return (
        f"{letter.partition}:{letter.offset}  {_utc(letter.failed_at)}  reason={letter.reason} "
        f"stage={letter.stage} error={letter.error_class} "
        f"source={letter.source_topic}[{letter.source_partition}]@{letter.source_offset} "
        f"payload={payload} sha256={digest} key={_size(letter.key_size)} "
        f"headers={letter.header_count}{cut} replayed={'yes' if replayed else 'no'}"
    )


def count_lines(letters: Sequence[Letter], unreadable: int) -> list[str]:
    """The counts `show` prints first: total, then by reason, stage and source topic."""
    unread = f" ({unreadable} unreadable)" if unreadable else ""
    lines = [f"dead letters: {len(letters)}{unread}"]
    for label, attr in (("reason", "reason"), ("stage", "stage"), ("source", "source_topic")):
        counts = Counter(getattr(letter, attr) for letter in letters)
        text = ", ".join(f"{name} {n}" for name, n in sorted(counts.items()))
        lines.append(f"by {label}: {text or '-'}")
    return lines


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the show and replay actions."""
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    show = sub.add_parser(
        "show", help="counts and a listing, never values", description="counts and a listing"
    )
    show.add_argument("--reason", metavar="R", help="only dead letters with this reason")
    show.add_argument("--stage", metavar="S", help="only dead letters of this stage")
    show.add_argument("--source", metavar="TOPIC", help="only those from this raw topic")
    show.add_argument(
        "--max", type=int, default=100, metavar="N", help="list at most N (default 100)"
    )
    add_connection_args(show)
    replay = sub.add_parser(
        "replay",
        help="produce chosen dead letters to their raw topic again, each at most once",
        description="produce chosen dead letters to their raw topic again, each at most once",
    )
    which = replay.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--offsets",
        type=parse_positions,
        metavar="P:O,...",
        help="dead letters by position on the dead-letter topic",
    )
    which.add_argument("--reason", metavar="R", help="every dead letter with this reason")
    replay.add_argument(
        "--since",
        type=instant_ms,
        metavar="TIME",
        help="with --reason: dead-lettered at or after (ISO 8601)",
    )
    replay.add_argument(
        "--until",
        type=instant_ms,
        metavar="TIME",
        help="with --reason: dead-lettered before (ISO 8601)",
    )
    add_connection_args(replay)


def run(args: argparse.Namespace) -> int:
    """Show or replay; user mistakes raise UsageError (exit 2), Kafka failures exit 1."""
    topics = topics_from_args(args)
    if args.action == "show":
        return _show(args, topics)
    return _replay(args, topics)


def _show(args: argparse.Namespace, topics: TopicSet) -> int:
    if args.max < 0:
        raise UsageError("--max must be 0 or more")
    sources = None
    if args.source:
        sources = frozenset({args.source, topics.prefix + args.source})
    selection = Selection(reason=args.reason, stage=args.stage, sources=sources)
    transport = transport_from_args(args)
    messages = read_messages(transport, topics.name("dead_letter"), READ_TIMEOUT_S)
    letters, unreadable = read_letters(messages, Codec(default_registry()), selection, keep=False)
    log = read_to_end(transport, topics.name("dead_letter_replays"), READ_TIMEOUT_S)
    done = replayed_identities(log)
    for line in count_lines(letters, unreadable):
        print(line)
    for letter in letters[: args.max]:
        print(listing_line(letter, done.get(letter.log_key) == letter.identity))
    if len(letters) > args.max:
        print(f"({len(letters) - args.max} more not listed; raise --max)")
    return 0


def _replay(args: argparse.Namespace, topics: TopicSet) -> int:
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
