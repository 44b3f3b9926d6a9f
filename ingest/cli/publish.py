"""`consentgate publish FILE|-`: validated JSON lines to the raw topics.

A bad line never stops the file: it is reported as `line N: field: reason` (never
its values) and the next line is read. Lines longer than MAX_LINE_BYTES are
rejected without being read in full, and lines nested deeper than MAX_DEPTH are
rejected before the JSON parser sees them. A summary ends every run; the exit
status is 1 if any line was rejected or any record undelivered.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import accumulate
from pathlib import Path
from typing import BinaryIO

from pydantic import ValidationError

from ingest.cli.connection import add_connection_args, topics_from_args, transport_from_args
from ingest.cli.progress import Progress
from ingest.errors import DeliveryError, PublishError, UsageError, validation_problems
from ingest.sdk.publisher import Publisher
from schemas.errors import EncodeError

NAME = "publish"
HELP = "publish JSON lines (one event each, typed by an event_type field) to the raw topics"

MAX_LINE_BYTES = 512 * 1024
"""Longest accepted line, newline excluded: 512 KiB, the pipeline's default limit for a raw
record (larger ones would only be dead-lettered) and well inside both clients' request
limits (librdkafka's is 1,000,000 bytes), as Avro is never much larger than its JSON."""
MAX_DEPTH = 32
"""Deepest accepted nesting of JSON arrays and objects (events need fewer than 5)."""
_SKIP_CHUNK = 64 * 1024
_STRINGS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_OPENERS = frozenset(b"[{")


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the input file argument and connection options."""
    parser.add_argument("file", metavar="FILE", help="JSON lines file, or - for standard input")
    add_connection_args(parser)


def describe_validation(exc: ValidationError) -> str:
    """All problems of one input on one line, `field: reason; ...`."""
    return "; ".join(validation_problems(exc))


def nesting_depth(raw: bytes) -> int:
    """How deeply arrays and objects nest in a JSON text (brackets inside strings ignored)."""
    brackets = _STRINGS.sub(b"", raw).translate(None, _NOT_BRACKETS)
    return max(accumulate(1 if b in _OPENERS else -1 for b in brackets), default=0)


def read_lines(source: BinaryIO, limit: int = MAX_LINE_BYTES) -> Iterator[tuple[int, bytes | None]]:
    """(line number, line) for each line; None for a line over `limit` bytes, which is
    skipped in chunks rather than read into memory."""
    number = 0
    while True:
        raw = source.readline(limit + 1)
        if not raw:
            return
        number += 1
        if len(raw) <= limit or raw.endswith(b"\n"):  # at most limit bytes before "\n"
            yield number, raw
            continue
        while raw and not raw.endswith(b"\n"):  # the rest of the long line
            raw = source.readline(_SKIP_CHUNK)
        yield number, None


@contextmanager
def _open(path: str) -> Iterator[BinaryIO]:
    if path == "-":
        yield sys.stdin.buffer
        return
    try:
        handle = Path(path).open("rb")  # noqa: SIM115 - closed below, after the run
    except FileNotFoundError:
        raise UsageError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise UsageError(f"{path} is a directory") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    with handle:
        yield handle


def _problems(raw: bytes | None, publisher: Publisher) -> list[str]:
    """Publish one line; the problems that made it a bad line (empty when it went out)."""
    if raw is None:
        return [f"record: line longer than {MAX_LINE_BYTES} bytes"]
    if nesting_depth(raw) > MAX_DEPTH:
        return [f"record: nested deeper than {MAX_DEPTH} levels"]
    try:
        data = json.loads(raw.decode("utf-8"))
        if not isinstance(data, dict):
            return ["record: not a JSON object"]
        publisher.publish(data)
    except UnicodeDecodeError:
        return ["record: not valid UTF-8"]
    except json.JSONDecodeError as exc:
        return [f"record: invalid JSON ({exc.msg})"]
    except RecursionError:  # unreachable after the depth check; kept as the last guard
        return ["record: nested too deeply"]
    except ValidationError as exc:
        return validation_problems(exc)
    except (PublishError, EncodeError) as exc:
        return [str(exc)]
    return []


def run(args: argparse.Namespace) -> int:
    """Publish every valid line; report each bad one; exit 1 if any was rejected."""
    published = rejected = undelivered = 0
    with _open(args.file) as source:  # a missing file is reported before connecting
        publisher = Publisher(transport_from_args(args), topics_from_args(args))
        progress = Progress("publish")
        try:
            for number, raw in read_lines(source):
                if raw is not None and not raw.strip():
                    continue
                problems = _problems(raw, publisher)
                if problems:
                    rejected += 1
                    for problem in problems:
                        print(f"line {number}: {problem}", file=sys.stderr)
                else:
                    published += 1
                progress.advance()
        finally:
            progress.close()
            try:
                publisher.close()
            except DeliveryError as exc:
                undelivered = exc.failed
                print(f"delivery failed: {exc}", file=sys.stderr)
            finally:  # also when the broker failed mid-file: what went out so far
                print(
                    f"published {published - undelivered}, rejected {rejected}, "
                    f"undelivered {undelivered}",
                    file=sys.stderr,
                )
    return 1 if rejected or undelivered else 0
