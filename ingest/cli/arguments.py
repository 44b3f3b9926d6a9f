"""argparse value types shared by the subcommands: a bad value is one line naming the option.

argparse reports an `ArgumentTypeError` as `argument --OPTION: MESSAGE` and exits 2,
so a range check here never reaches the code (or a library) as a traceback.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from ingest.errors import UsageError

MAX_PORT = 65535


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def int_between(low: int, high: int) -> Callable[[str], int]:
    """argparse type: an integer in [low, high]."""

    def parse(text: str) -> int:
        value = _integer(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}, not {value}")
        return value

    return parse


def positive_int(text: str) -> int:
    """argparse type: an integer of at least 1."""
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an integer of at least 0."""
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, not {value}")
    return value


def port(text: str) -> int:
    """argparse type: a TCP port, 1 to 65535."""
    return int_between(1, MAX_PORT)(text)


def port_or_any(text: str) -> int:
    """argparse type: a TCP port, or 0 for any free port."""
    return int_between(0, MAX_PORT)(text)


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, not {text}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number above 0."""
    value = _finite(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, not {text}")
    return value


def non_negative_float(text: str) -> float:
    """argparse type: a finite number of at least 0."""
    value = _finite(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, not {text}")
    return value


def check_port_range(option: str, first: int | None, count: int) -> None:
    """`count` consecutive ports from `first` (worker i uses first+i) must all be valid."""
    if first is not None and first > 0 and first + count - 1 > MAX_PORT:
        raise UsageError(
            f"{option} {first} with {count} workers needs ports up to {first + count - 1}; "
            f"the highest is {MAX_PORT}"
        )
