"""`consentgate dlq show|replay`: inspect dead letters, or replay chosen ones to their source once.

`show` prints counts by reason, stage and source, and one line per dead letter:
its position, reason, stage, source position, sizes and payload digest. It never
prints a payload, a header value or a key (a user id), not even hashed.

`replay` produces the chosen dead letters' records back to their source raw topic
and partition, with the same key, headers and timestamp, where the pipeline judges
them again, consent gate included (a cancelled user's record is dropped as
`account_cancelled`), exactly once: `dlq_replay` says how. Both read the dead
letters through `dlq_letters`.
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime

from ingest.cli.connection import (
    add_connection_args,
    instant_ms,
    topics_from_args,
    transport_from_args,
)
from ingest.cli.dlq_letters import READ_TIMEOUT_S, Letter, Position, Selection, read_letters
from ingest.cli.dlq_replay import replayed_identities, run_replay
from ingest.errors import UsageError
from ingest.kafka.consent_store import read_to_end
from ingest.kafka.topic_reader import read_messages
from ingest.kafka.topics import TopicSet
from schemas.codec import Codec
from schemas.registry import default_registry

NAME = "dlq"
HELP = "show dead letters (never their values) or replay chosen ones to their raw topic, once"


def parse_positions(text: str) -> frozenset[Position]:
    """argparse type: `P:O,P:O...` dead-letter positions."""
    found: set[Position] = set()
    for item in text.split(","):
        part, sep, off = item.strip().partition(":")
        if not sep or not part.isdigit() or not off.isdigit():
            raise argparse.ArgumentTypeError(f"not PARTITION:OFFSET: {item.strip()!r}")
        found.add((int(part), int(off)))
    return frozenset(found)


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
    return run_replay(args, topics)


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
