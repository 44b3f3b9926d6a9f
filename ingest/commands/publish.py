"""`consentgate publish FILE|-`: validated JSON lines to the raw topics."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from pydantic import ValidationError

from ingest.commands.connection import add_connection_args, topics_from_args, transport_from_args
from ingest.errors import DeliveryError, PublishError, UsageError, validation_problems
from ingest.progress import Progress
from ingest.publisher import Publisher
from schemas.errors import EncodeError

NAME = "publish"
HELP = "publish JSON lines (one event each, typed by an event_type field) to the raw topics"


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the input file argument and connection options."""
    parser.add_argument("file", metavar="FILE", help="JSON lines file, or - for standard input")
    add_connection_args(parser)


def describe_validation(exc: ValidationError) -> str:
    """All problems of one input on one line, `field: reason; ...`."""
    return "; ".join(validation_problems(exc))


@contextmanager
def _open(path: str) -> Iterator[BinaryIO]:
    if path == "-":
        yield sys.stdin.buffer
        return
    try:
        with Path(path).open("rb") as handle:
            yield handle
    except FileNotFoundError:
        raise UsageError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise UsageError(f"{path} is a directory") from None


def run(args: argparse.Namespace) -> int:
    """Publish every valid line; report each bad one; exit 1 if any was rejected."""
    publisher = Publisher(transport_from_args(args), topics_from_args(args))
    published = rejected = undelivered = 0
    progress = Progress("publish")
    with _open(args.file) as lines:
        try:
            for number, raw in enumerate(lines, start=1):
                if not raw.strip():
                    continue
                try:
                    data = json.loads(raw.decode("utf-8"))
                    if not isinstance(data, dict):
                        raise PublishError("record: not a JSON object")
                    publisher.publish(data)
                    published += 1
                except UnicodeDecodeError:
                    rejected += 1
                    print(f"line {number}: record: not valid UTF-8", file=sys.stderr)
                except json.JSONDecodeError as exc:
                    rejected += 1
                    print(f"line {number}: record: invalid JSON ({exc.msg})", file=sys.stderr)
                except ValidationError as exc:
                    rejected += 1
                    for problem in validation_problems(exc):
                        print(f"line {number}: {problem}", file=sys.stderr)
                except (PublishError, EncodeError) as exc:
                    rejected += 1
                    print(f"line {number}: {exc}", file=sys.stderr)
                progress.advance()
        finally:
            progress.close()
            try:
                publisher.close()
            except DeliveryError as exc:
                undelivered = exc.failed
                print(f"delivery failed: {exc}", file=sys.stderr)
    delivered = published - undelivered
    print(
        f"published {delivered}, rejected {rejected}, undelivered {undelivered}",
        file=sys.stderr,
    )
    return 1 if rejected or undelivered else 0
