"""Where a held record is grouped: the repartition key (SPEC 7, several workers).

Raw topics are keyed by user, so with N workers each would see 1/N of the persons of
any area and its k-anonymity groups would starve. Instead, after consent gating and
field anonymization, each record goes through the restricted repartition topic keyed
by a coarse quasi-identifier, so that one worker groups all the records that could
share a group, whichever raw partition they came from.

The key is the record's schema and the coarsest non-null rung of the first field the
grouping splits on after the time (the policy's `order`): a geohash of 2 characters
for located device records, the log type for log records; a device record without
location has none. The grouping splits on that field first, so records with different
key values rarely share a group anyway. A hot key (one that carries more than
`hot_share` of the recent records, e.g. every device record without location) would
pin one worker, so it is split by the coarse value of the next field in the order (the
brand), and so on while the key stays hot, up to MAX_KEY_FIELDS fields: the grouping
splits on those fields next, in that order. Shares are counted over a sliding horizon
(counts halve every `half_life_ms`), so the keys follow the traffic.

Pure: no clock (time is a parameter), no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from consumers.release_policy import ReleasePlan
from ingest.kafka.partitioning import KeyPartitions

SEPARATOR = "\x1f"
"""Between the parts of a key: a unit separator never appears in a released value."""
MIN_COUNTED = 200
"""Below this many recent records no key is called hot: too few to judge shares."""
MAX_KEY_FIELDS = 3
"""A key is split by at most this many fields after the time."""


def _coarse(ladder: tuple[Any, ...]) -> Any:
    """A field's coarsest non-null rung (its ladder's values run finest first)."""
    for value in reversed(ladder):
        if value is not None:
            return value
    return None


class RegroupKeys:
    """Chooses each held record's repartition key; remembers recent key shares."""

    def __init__(
        self,
        plans: Mapping[str, ReleasePlan],
        hot_share: float,
        half_life_ms: int = 15_000,
    ) -> None:
        if not 0 < hot_share <= 1:
            raise ValueError(f"hot_share must be in (0, 1], got {hot_share}")
        self._plans = dict(plans)
        self.hot_share = hot_share
        self.half_life_ms = half_life_ms
        self._counts: dict[str, float] = {}
        self._total = 0.0
        self._halved_at: int | None = None
        self._partition_of: KeyPartitions | None = None

    def place(self, partitions: int | None) -> None:
        """Name the partition of each key from now on, for a topic of `partitions` partitions.

        The default partitioner's choice (`ingest.kafka.partitioning`), remembered per key,
        so the client does not hash every record; None leaves the choice to the client.
        """
        self._partition_of = None if not partitions else KeyPartitions(partitions)

    def partition(self, key: bytes) -> int | None:
        """The partition a record with this key goes to, or None for the client's choice."""
        return None if self._partition_of is None else self._partition_of(key)

    def key(self, schema: str, level0: tuple[Any, ...], now_ms: int) -> bytes:
        """The repartition key of one record of `schema`, from its level-0 values.

        Only the fields the key reads are climbed, each through its ladder's memo of
        distinct values: the whole record's paths are the grouping worker's to compute.
        """
        ladders = self._plans[schema].ladders
        self._age(now_ms)
        key = schema
        for depth in range(1, min(len(ladders), MAX_KEY_FIELDS + 1)):
            value = _coarse(ladders[depth].values(level0[depth]))
            key = f"{key}{SEPARATOR}{'' if value is None else value}"
            self._counts[key] = self._counts.get(key, 0.0) + 1
            if not self._hot(key):
                break
        self._total += 1
        return key.encode()

    def share(self, key: str) -> float:
        """The recent share of records whose key starts with `key` (schema and fields)."""
        return self._counts.get(key, 0.0) / self._total if self._total else 0.0

    def _hot(self, base: str) -> bool:
        return self._total >= MIN_COUNTED and self.share(base) > self.hot_share

    def _age(self, now_ms: int) -> None:
        if self._halved_at is None:
            self._halved_at = now_ms
        halvings = (now_ms - self._halved_at) // self.half_life_ms
        if halvings > 0:
            self._halved_at += halvings * self.half_life_ms
            factor = 0.5 ** min(halvings, 64)
            self._counts = {k: v * factor for k, v in self._counts.items() if v * factor >= 0.5}
            self._total *= factor
