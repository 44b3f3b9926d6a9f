"""Generalization hierarchy of the quasi-identifiers, as data: an explicit list of small steps.

Level 0 is the record as the anonymizer made it (hour, geohash precision 5, OS major.minor).
Level n applies steps 1..n in order. Each step is a tuple of small pure functions over a
record dict that touch only quasi-identifier fields and return a new dict (never mutate).
Log records have no `geohash` key; geohash steps leave such records as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Record = dict[str, Any]
Generalizer = Callable[[Record], Record]
QiKey = tuple[Any, ...]

QI_FIELDS: tuple[str, ...] = (
    "event_hour",
    "time_granularity",
    "brand",
    "model",
    "os_name",
    "os_version",
    "geohash",
    "time_zone",
    "ip_prefix",
)
"""Fields whose values form the quasi-identifier tuple (time_granularity qualifies event_hour).

`time_zone` is kept by the default policy: nearly every mainland user shares one, so a rare
zone singles a person out unless it too is shared by k persons. `ip_prefix` is dropped by
the default policy; a policy that keeps it makes it part of the tuple here.
"""

DAY_MS = 86_400_000


def truncate_geohash(precision: int) -> Generalizer:
    """A step that cuts the geohash to at most `precision` characters (None stays None)."""

    def step(record: Record) -> Record:
        geohash = record.get("geohash")
        if geohash is None or len(geohash) <= precision:
            return record
        return {**record, "geohash": geohash[:precision]}

    step.__name__ = f"truncate_geohash_{precision}"
    return step


def clear(name: str) -> Generalizer:
    """A step that sets field `name` to None (a record without a value stays as it is)."""

    def step(record: Record) -> Record:
        if record.get(name) is None:
            return record
        return {**record, name: None}

    step.__name__ = f"clear_{name}"
    return step


drop_location = clear("geohash")
"""Remove the coarse location entirely (the last resort before suppression)."""
drop_time_zone = clear("time_zone")
drop_ip_prefix = clear("ip_prefix")


def os_version_to_major(record: Record) -> Record:
    """Keep only the major part of the OS version ("14.2" -> "14")."""
    version = record.get("os_version")
    if version is None or "." not in version:
        return record
    return {**record, "os_version": version.split(".", 1)[0]}


def drop_model(record: Record) -> Record:
    """Generalize the device model to its brand by removing the model."""
    return {**record, "model": None}


def drop_brand(record: Record) -> Record:
    """Remove the device brand."""
    return {**record, "brand": None}


def drop_os_version(record: Record) -> Record:
    """Remove the OS version, keeping only the OS name."""
    return {**record, "os_version": None}


def event_time_to_day(record: Record) -> Record:
    """Truncate event_hour to the UTC day and mark the granularity DAY."""
    hour = record["event_hour"]
    return {**record, "event_hour": hour - hour % DAY_MS, "time_granularity": "DAY"}


@dataclass(frozen=True, slots=True)
class Step:
    """One level of the hierarchy: generalizers applied together."""

    name: str
    generalizers: tuple[Generalizer, ...]

    def apply(self, record: Record) -> Record:
        """Return `record` generalized by this step (a new dict when anything changed)."""
        for generalize in self.generalizers:
            record = generalize(record)
        return record


#: Distinct level-0 tuples whose keys `Hierarchy.qi_keys` remembers before starting over.
QI_MEMO_SIZE = 65_536


@dataclass(frozen=True, slots=True)
class Hierarchy:
    """Ordered generalization steps; level n = steps 1..n applied to the level-0 record."""

    steps: tuple[Step, ...]
    _memo: dict[QiKey, tuple[QiKey, ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    @property
    def top(self) -> int:
        """The highest level (the number of steps)."""
        return len(self.steps)

    def generalize(self, record: Record, level: int) -> Record:
        """Return `record` generalized to `level` (0 returns it unchanged)."""
        for step in self.steps[:level]:
            record = step.apply(record)
        return record

    def qi_keys(self, record: Record) -> tuple[QiKey, ...]:
        """The quasi-identifier tuple of `record` at every level, 0 to top.

        The keys depend on the level-0 tuple alone, and records share few distinct
        tuples (that is what k-anonymity asks of them), so they are remembered per
        level-0 tuple; the memo starts over once it holds QI_MEMO_SIZE tuples.
        """
        base = qi_key(record)
        keys = self._memo.get(base)
        if keys is None:
            if len(self._memo) >= QI_MEMO_SIZE:
                self._memo.clear()
            current: Record = dict(zip(QI_FIELDS, base, strict=True))
            found = [base]
            for step in self.steps:
                current = step.apply(current)
                found.append(qi_key(current))
            keys = self._memo[base] = tuple(found)
        return keys


def qi_key(record: Record) -> QiKey:
    """The quasi-identifier tuple of a record as it stands (missing fields count as None)."""
    return tuple(record.get(name) for name in QI_FIELDS)


DEFAULT_HIERARCHY = Hierarchy(
    steps=(
        Step(
            "geohash4_os_major_no_zone_ip",
            (truncate_geohash(4), os_version_to_major, drop_time_zone, drop_ip_prefix),
        ),
        Step("geohash3_brand_only", (truncate_geohash(3), drop_model)),
        Step("day_geohash2", (event_time_to_day, truncate_geohash(2))),
        Step("os_name_only", (drop_brand, drop_os_version)),
        Step("no_location", (drop_location,)),
    )
)
"""Default hierarchy (SPEC section 7): coarser location, OS, device, then time, step by step."""
