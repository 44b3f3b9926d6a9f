"""`consentgate tail TOPIC`: print an anonymized topic as JSON lines (committed data only)."""

from __future__ import annotations

import argparse
import json
import sys

from consumers.reader import ReaderError, read_anonymized, resolve_topic
from ingest.cli.arguments import non_negative_int, positive_float
from ingest.cli.connection import add_connection_args, topics_from_args, transport_from_args
from ingest.errors import UsageError

NAME = "tail"
HELP = "print an anonymized topic as JSON lines (analyst topics only)"


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the topic argument and reading options."""
    parser.add_argument(
        "topic", metavar="TOPIC", help="device, log, or a full anonymized topic name"
    )
    parser.add_argument(
        "--from-beginning", action="store_true", help="start at the oldest record, not the end"
    )
    parser.add_argument("--max", type=non_negative_int, metavar="N", help="stop after N records")
    parser.add_argument("--follow", action="store_true", help="keep waiting for new records")
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=5.0,
        metavar="SECONDS",
        help="stop after this long without a new record (default 5; ignored with --follow)",
    )
    add_connection_args(parser)


def run(args: argparse.Namespace) -> int:
    """Print records until --max, the idle timeout, or Ctrl-C."""
    topics = topics_from_args(args)
    try:
        resolve_topic(args.topic, topics)
    except ReaderError as exc:
        raise UsageError(str(exc)) from None
    count = 0
    for record in read_anonymized(
        args.topic,
        topics=topics,
        transport=transport_from_args(args),
        from_beginning=args.from_beginning,
        max_records=args.max,
        idle_timeout_s=None if args.follow else args.timeout,
    ):
        sys.stdout.write(json.dumps(record, sort_keys=True) + "\n")
        count += 1
    sys.stdout.flush()
    print(f"tail: {count} records", file=sys.stderr)
    return 0
