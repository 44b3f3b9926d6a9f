"""Generalization ladders: each released field's values from finest to withheld (SPEC section 7).

A ladder is the level-0 value (what the anonymizer made) followed by rungs, each a
small pure function of the rung below it: a geohash prefix, a version's major
part, a lookup table, a URL's host, a template's category, a coarser time bucket,
and "withheld" (None). Because each rung is computed from the one below, records
that agree at one rung agree at every rung above it: the rungs form a hierarchy,
which is what lets a group of records be released at the finest rung its members
share. A new rung kind is one function here and one line in `RUNG_KINDS`.

The record time is the one field that is never withheld: its values are pairs
(start of the bucket in epoch ms, granularity), and its last rung is the coarsest
time the policy allows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from consumers.text_template import category

Rung = Callable[[Any], Any]
"""Maps the value of the rung below to this rung's value; None always stays None."""

HOUR_MS = 3_600_000
SIX_HOURS_MS = 6 * HOUR_MS
DAY_MS = 24 * HOUR_MS
HOUR, SIX_HOURS, DAY = "HOUR", "SIX_HOURS", "DAY"
TIME_RUNGS = {"6h": (SIX_HOURS_MS, SIX_HOURS), "day": (DAY_MS, DAY)}
"""Time rung name -> (bucket length, the granularity analysts see)."""

MEMO_SIZE = 65_536
"""Distinct level-0 values a ladder remembers before it starts over."""


def withheld(_value: Any) -> None:
    """The last rung of every ladder but the time's: the value is not released."""
    return None


def major(value: Any) -> Any:
    """A version's major part ("14.2" -> "14")."""
    if not isinstance(value, str):
        return None
    return value.split(".", 1)[0] or None


def first_segment(value: Any) -> Any:
    """A URL template cut after its first path segment ("https://h/a/{id}/b" -> "https://h/a")."""
    if not isinstance(value, str):
        return None
    scheme, sep, rest = value.partition("://")
    if not sep:
        return None
    host, slash, path = rest.partition("/")
    first = path.split("/", 1)[0]
    return f"{scheme}://{host}/{first}" if slash and first else f"{scheme}://{host}"


def host(value: Any) -> Any:
    """A URL template cut to scheme and host ("https://h/a" -> "https://h")."""
    if not isinstance(value, str):
        return None
    scheme, sep, rest = value.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}" if sep else None


def text_category(value: Any) -> Any:
    """A free-text template's category (see `consumers.text_template.category`)."""
    return category(value) if isinstance(value, str) else None


def prefix(length: int) -> Rung:
    """A rung that keeps the first `length` characters (a coarser geohash cell)."""

    def cut(value: Any) -> Any:
        return value[:length] if isinstance(value, str) else None

    cut.__name__ = f"prefix_{length}"
    return cut


def mapping(table: Mapping[Any, Any]) -> Rung:
    """A rung that looks the value up in `table`; values not in it are withheld."""
    frozen = dict(table)

    def look_up(value: Any) -> Any:
        return frozen.get(value)

    look_up.__name__ = "map"
    return look_up


def time_bucket(length_ms: int, granularity: str) -> Rung:
    """A rung that widens a (start ms, granularity) time value to buckets of `length_ms`."""

    def widen(value: Any) -> Any:
        start, _granularity = value
        return (start - start % length_ms, granularity)

    widen.__name__ = f"time_{granularity.lower()}"
    return widen


RUNG_KINDS: dict[str, Rung] = {
    "withheld": withheld,
    "major": major,
    "first_segment": first_segment,
    "host": host,
    "category": text_category,
}
"""Rungs named by a plain string in the policy file (prefix, map and time rungs take data)."""


@dataclass(slots=True)
class Ladder:
    """One released field: its name and the rungs above its level-0 value."""

    name: str
    rungs: tuple[Rung, ...]
    is_time: bool = False
    _memo: dict[Any, tuple[Any, ...]] = field(default_factory=dict, repr=False, compare=False)

    @property
    def top(self) -> int:
        """Index of the coarsest rung (0 is the level-0 value)."""
        return len(self.rungs)

    def values(self, value: Any) -> tuple[Any, ...]:
        """`value` at every rung, finest first; remembered per distinct level-0 value."""
        found = self._memo.get(value)
        if found is None:
            if len(self._memo) >= MEMO_SIZE:
                self._memo.clear()
            found = self._climb(value)
            self._memo[value] = found
        return found

    def _climb(self, value: Any) -> tuple[Any, ...]:
        out = [value]
        for rung in self.rungs:
            value = None if value is None else rung(value)
            out.append(value)
        return tuple(out)


def time_value(start_ms: int) -> tuple[int, str]:
    """The level-0 value of the record time: the start of its UTC hour, at HOUR granularity."""
    return (start_ms - start_ms % HOUR_MS, HOUR)
