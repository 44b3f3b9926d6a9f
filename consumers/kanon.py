"""Streaming k-anonymity hold with a bounded delay, k counted in distinct persons (SPEC 7).

Release rule (per `release()` call, so each batch is k-anonymous on its own): a record
leaves only inside a group of records released in the same call at the same level whose
quasi-identifier tuple at that level is shared by at least k distinct persons.
- A level-0 group that reaches k distinct persons is released whole at the next call.
- A record at its deadline (added_ms + max_delay_ms <= now) climbs the hierarchy one
  level at a time. At the first level whose group (all pending records with the same
  tuple there, expired or not) holds k distinct persons, that whole group leaves at that
  level. Above the top level, expired records are suppressed.
Releasing the whole pool (rather than the expired records topped up with just enough
fresh persons) was measured on skewed traffic to give both less suppression and lower
levels: a partial release leaves behind repeat records of heavy users, so the pool keeps
many records but few persons.
Schemas never pool together. No clock is read: time is always a parameter.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from collections.abc import Hashable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from consumers.generalize import DEFAULT_HIERARCHY, Hierarchy, QiKey, Record
from schemas.errors import ConsentgateError


class KAnonymityError(ConsentgateError):
    """The k-anonymity buffer was misconfigured or misused."""


class DuplicatePendingError(KAnonymityError):
    """An entry was added while another entry with the same pending_id is pending."""


@dataclass(slots=True)
class PendingEntry:
    """One anonymized record held until its quasi-identifier group is large enough."""

    pending_id: str
    schema: str
    person: str
    record: Record
    partition: Hashable = None
    meta: Any = None
    added_ms: int = 0


@dataclass(slots=True)
class ReleaseBatch:
    """What one `release()` call lets out: released and suppressed entries, with hold times."""

    released: list[PendingEntry] = field(default_factory=list)
    suppressed: list[PendingEntry] = field(default_factory=list)
    generalized: int = 0
    hold_times: list[int] = field(default_factory=list)


@dataclass(slots=True)
class _Slot:
    """A pending entry with its quasi-identifier tuple at every level."""

    entry: PendingEntry
    keys: tuple[QiKey, ...]


@dataclass(slots=True)
class _Group:
    """Pending slots sharing one tuple at one level, with a count of records per person."""

    slots: dict[str, _Slot] = field(default_factory=dict)
    persons: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class _SchemaIndex:
    """Groups per level for one schema, and level-0 tuples that reached k persons."""

    levels: list[dict[QiKey, _Group]]
    ready: set[QiKey] = field(default_factory=set)
    size: int = 0


class KAnonymityBuffer:
    """Holds anonymized records until k distinct persons share their tuple, or the deadline."""

    def __init__(
        self,
        k: int = 10,
        max_delay_ms: int = 60_000,
        hierarchy: Hierarchy = DEFAULT_HIERARCHY,
        rng: random.Random | None = None,
    ) -> None:
        if k < 1:
            raise KAnonymityError(f"k must be >= 1, got {k}")
        if max_delay_ms < 0:
            raise KAnonymityError(f"max_delay_ms must be >= 0, got {max_delay_ms}")
        self.k = k
        self.max_delay_ms = max_delay_ms
        self.hierarchy = hierarchy
        self._rng: random.Random = rng if rng is not None else random.SystemRandom()
        self._slots: dict[str, _Slot] = {}
        self._by_partition: dict[Hashable, dict[str, None]] = {}
        self._schemas: dict[str, _SchemaIndex] = {}
        self._queue: deque[_Slot] = deque()  # in added_ms order
        self._late: list[tuple[int, int, _Slot]] = []  # heap for out-of-order added_ms
        self._seq = 0
        self.added_total = 0
        self.released_total = 0
        self.suppressed_total = 0
        self.dropped_total = 0

    # ---- input ---------------------------------------------------------------------------

    def add(self, entry: PendingEntry, now_ms: int) -> None:
        """Hold `entry`, stamping its arrival time `added_ms` with `now_ms`."""
        entry.added_ms = now_ms
        self._insert(entry)
        self.added_total += 1

    def restore(self, entries: Iterable[PendingEntry]) -> None:
        """Reload pending entries from a checkpoint, keeping their own `added_ms`."""
        for entry in sorted(entries, key=lambda e: e.added_ms):
            self._insert(entry)
            self.added_total += 1

    def drop_partition(self, partition: Hashable) -> list[PendingEntry]:
        """Remove and return the pending entries of a revoked source partition."""
        ids = self._by_partition.get(partition)
        if not ids:
            return []
        dropped = [self._slots[pid] for pid in list(ids)]
        for slot in dropped:
            self._remove(slot)
        self.dropped_total += len(dropped)
        return [slot.entry for slot in dropped]

    # ---- output --------------------------------------------------------------------------

    def release(self, now_ms: int) -> ReleaseBatch:
        """Let out every k-anonymous group and settle every record at its deadline."""
        batch = ReleaseBatch()
        for index in self._schemas.values():
            self._release_ready(index, batch)
        expired_by_schema: dict[str, list[_Slot]] = {}
        for slot in self._pop_expired(now_ms - self.max_delay_ms):
            expired_by_schema.setdefault(slot.entry.schema, []).append(slot)
        for schema, expired in expired_by_schema.items():
            self._settle_expired(self._schemas[schema], expired, batch)
        self._rng.shuffle(batch.released)
        batch.hold_times = [now_ms - e.added_ms for e in batch.released]
        batch.hold_times += [now_ms - e.added_ms for e in batch.suppressed]
        self.released_total += len(batch.released)
        self.suppressed_total += len(batch.suppressed)
        return batch

    # ---- observation ---------------------------------------------------------------------

    @property
    def pending_count(self) -> int:
        """Number of entries held."""
        return len(self._slots)

    @property
    def pending_by_schema(self) -> dict[str, int]:
        """Number of entries held, per schema."""
        return {name: index.size for name, index in self._schemas.items() if index.size}

    def oldest_pending_ms(self) -> int | None:
        """Arrival time of the oldest held entry, or None when nothing is held."""
        while self._queue and not self._live(self._queue[0]):
            self._queue.popleft()
        while self._late and not self._live(self._late[0][2]):
            heapq.heappop(self._late)
        times = [self._queue[0].entry.added_ms] if self._queue else []
        if self._late:
            times.append(self._late[0][0])
        return min(times) if times else None

    def __iter__(self) -> Iterator[PendingEntry]:
        """Iterate over held entries (for checkpointing)."""
        return iter([slot.entry for slot in self._slots.values()])

    def __len__(self) -> int:
        """Number of entries held."""
        return len(self._slots)

    # ---- internals -----------------------------------------------------------------------

    def _insert(self, entry: PendingEntry) -> None:
        if entry.pending_id in self._slots:
            raise DuplicatePendingError("pending_id already held")
        slot = _Slot(entry, self.hierarchy.qi_keys(entry.record))
        self._slots[entry.pending_id] = slot
        self._by_partition.setdefault(entry.partition, {})[entry.pending_id] = None
        index = self._schemas.get(entry.schema)
        if index is None:
            index = _SchemaIndex(levels=[{} for _ in range(self.hierarchy.top + 1)])
            self._schemas[entry.schema] = index
        index.size += 1
        for level, key in enumerate(slot.keys):
            group = index.levels[level].get(key)
            if group is None:
                group = index.levels[level][key] = _Group()
            group.slots[entry.pending_id] = slot
            group.persons[entry.person] = group.persons.get(entry.person, 0) + 1
        if len(index.levels[0][slot.keys[0]].persons) >= self.k:
            index.ready.add(slot.keys[0])
        if not self._queue or self._queue[-1].entry.added_ms <= entry.added_ms:
            self._queue.append(slot)
        else:
            self._seq += 1
            heapq.heappush(self._late, (entry.added_ms, self._seq, slot))

    def _remove(self, slot: _Slot) -> None:
        entry = slot.entry
        del self._slots[entry.pending_id]
        ids = self._by_partition[entry.partition]
        del ids[entry.pending_id]
        if not ids:
            del self._by_partition[entry.partition]
        index = self._schemas[entry.schema]
        index.size -= 1
        for level, key in enumerate(slot.keys):
            groups = index.levels[level]
            group = groups[key]
            del group.slots[entry.pending_id]
            remaining = group.persons[entry.person] - 1
            if remaining:
                group.persons[entry.person] = remaining
            else:
                del group.persons[entry.person]
            if not group.slots:
                del groups[key]

    def _live(self, slot: _Slot) -> bool:
        return self._slots.get(slot.entry.pending_id) is slot

    def _pop_expired(self, cutoff_ms: int) -> list[_Slot]:
        """Held slots with added_ms <= cutoff_ms, oldest first within each source."""
        expired: list[_Slot] = []
        while self._queue and self._queue[0].entry.added_ms <= cutoff_ms:
            slot = self._queue.popleft()
            if self._live(slot):
                expired.append(slot)
        while self._late and self._late[0][0] <= cutoff_ms:
            slot = heapq.heappop(self._late)[2]
            if self._live(slot):
                expired.append(slot)
        return expired

    def _release_ready(self, index: _SchemaIndex, batch: ReleaseBatch) -> None:
        for key in index.ready:
            group = index.levels[0].get(key)
            if group is not None and len(group.persons) >= self.k:
                self._emit(list(group.slots.values()), 0, batch)
        index.ready.clear()

    def _settle_expired(
        self, index: _SchemaIndex, expired: list[_Slot], batch: ReleaseBatch
    ) -> None:
        waiting = expired
        for level in range(1, self.hierarchy.top + 1):
            by_key: dict[QiKey, list[_Slot]] = {}
            for slot in waiting:
                if self._live(slot):
                    by_key.setdefault(slot.keys[level], []).append(slot)
            waiting = []
            for key, members in by_key.items():
                group = index.levels[level][key]
                if len(group.persons) < self.k:
                    waiting.extend(members)
                    continue
                self._emit(list(group.slots.values()), level, batch)
            if not waiting:
                return
        for slot in waiting:
            if self._live(slot):
                self._remove(slot)
                batch.suppressed.append(slot.entry)

    def _emit(self, slots: list[_Slot], level: int, batch: ReleaseBatch) -> None:
        for slot in slots:
            self._remove(slot)
            entry = slot.entry
            record = self.hierarchy.generalize(entry.record, level)
            if record.get("generalization_level") != level:
                record = {**record, "generalization_level": level}
            # Held entries are never changed in place: a released one is a new entry.
            batch.released.append(
                entry if record is entry.record else replace(entry, record=record)
            )
        if level:
            batch.generalized += len(slots)
