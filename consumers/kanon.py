"""The k-anonymity window: records wait at most δ, then leave in groups of k persons (SPEC 7).

Records are held per schema. When a schema's oldest held record comes within
`spread_ms + margin_ms` of its deadline (`added_ms + max_delay_ms - margin_ms -
spread_ms <= now`), or will have by the next `release()` call (expected as far ahead
as the longest recent gap between calls, a quarter of δ at most, so that a busy
worker's long loop turns do not hold records past δ), every record held for that
schema is grouped at once (`consumers.grouping`): each group has at least k distinct
persons and is released with one content, generalized field by field only as far as
its own members need; records no group can take are suppressed. The grouping work is
done once per pool, not per record.

The formed groups then leave over the next `spread_ms` (a sixtieth of δ by default),
whole groups in each `release()` call, as many as a linear schedule asks for by the
next expected call: so a worker's loop sends a pool's records over several turns
instead of stopping for one long release. All of them are out by the oldest record's
deadline less the margin (a sixtieth of δ by default, 1 s of 60 s), which leaves room
for the loop turn, so no record waits longer than δ unless the worker itself stalls
longer than that. A group waiting to leave is still held: counted, checkpointed,
capped. A revoked partition dissolves every waiting group that loses a member; the
rest of such a group goes back to its pool. A longer spread groups each pool earlier,
with fewer persons in it (PRIVACY.md has the cost).

The content is the whole visible record: every field but the fresh `anon_id`, and
the Kafka timestamp, which is the start of the released time bucket (never the
release instant). Released records leave in random order. No clock is read: time
is always a parameter.

Memory is capped: with `max_held` records or `max_held_bytes` bytes (raw record size
plus ENTRY_OVERHEAD_BYTES each) exceeded, the largest pool is grouped at once, before
its deadline, with the same rules, and every waiting group leaves at once;
`ReleaseBatch.capped_*` count what left that way.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from consumers.grouping import Paths, group
from consumers.randomness import shuffle
from consumers.release_policy import ReleasePlan
from schemas.errors import ConsentgateError

Source = tuple[str, int]
"""The raw topic and partition a held record was consumed from."""

ENTRY_OVERHEAD_BYTES = 1024
"""Memory a held record costs beyond its raw size (objects, level-0 tuple, paths, held form)."""


class KAnonymityError(ConsentgateError):
    """The k-anonymity window was misconfigured or misused."""


class DuplicatePendingError(KAnonymityError):
    """An entry was added while another entry with the same pending_id is held."""


@dataclass(slots=True)
class PendingEntry:
    """One consented record at level 0, held until it can leave in a group of k persons."""

    pending_id: str
    schema: str
    person: str
    record: dict[str, Any]
    source: Source
    raw_timestamp_ms: int = -1
    added_ms: int = 0
    size: int = 0
    """Bytes of the raw record it came from: what the window's byte cap counts."""
    level0: tuple[Any, ...] | None = field(default=None, compare=False, repr=False)
    """`record`'s level-0 values once computed, under `level0_plan` (see `level0_of`)."""
    level0_plan: ReleasePlan | None = field(default=None, compare=False, repr=False)
    encoded: bytes | None = field(default=None, compare=False, repr=False)
    """Its held form once written or read (`consumers.held`); None again once it changes."""


def level0_of(plan: ReleasePlan, entry: PendingEntry) -> tuple[Any, ...]:
    """`entry`'s level-0 values in `plan`'s order, computed once per entry and plan.

    The repartition key, the held form and the window each need them; a record read
    from the repartition topic or a checkpoint arrives with them.
    """
    level0 = entry.level0
    if level0 is None or entry.level0_plan is not plan:
        level0 = entry.level0 = plan.level0(entry.record)
        entry.level0_plan = plan
    return level0


@dataclass(slots=True)
class Released:
    """A record leaving the window: its output (without anon_id) and Kafka timestamp."""

    entry: PendingEntry
    record: dict[str, Any]
    timestamp_ms: int
    generalized: tuple[str, ...]
    """The fields released coarser than their level-0 value."""


@dataclass(slots=True)
class ReleaseBatch:
    """What one `release()` call lets out: released and suppressed entries, with hold times."""

    released: list[Released] = field(default_factory=list)
    suppressed: list[PendingEntry] = field(default_factory=list)
    hold_times: list[int] = field(default_factory=list)
    capped_released: int = 0
    """Of `released`, how many left early because the window was at its cap."""
    capped_suppressed: int = 0
    """Of `suppressed`, how many were suppressed early because the window was at its cap."""


@dataclass(slots=True)
class _Held:
    entry: PendingEntry
    level0: tuple[Any, ...]
    paths: Paths


@dataclass(slots=True)
class _Formed:
    """A group formed from a pool, waiting to leave: its members and their releases."""

    members: list[_Held]
    released: list[Released]


@dataclass(slots=True)
class _Outbox:
    """A pool's formed groups, leaving whole on a linear schedule from `formed_ms` to `due_ms`."""

    groups: list[_Formed]
    formed_ms: int
    due_ms: int
    total: int
    """Records of the groups at formation; the schedule's share is of this many."""
    sent: int = 0


@dataclass(slots=True)
class _Pool:
    """The records held for one schema, and a heap of their arrival times (lazy deletion)."""

    held: dict[str, _Held] = field(default_factory=dict)
    arrivals: list[tuple[int, int, str]] = field(default_factory=list)
    outbox: _Outbox | None = None


class KAnonymityWindow:
    """Holds anonymized records per schema and releases each schema's pool at its deadline."""

    def __init__(
        self,
        plans: Mapping[str, ReleasePlan],
        k: int = 10,
        max_delay_ms: int = 60_000,
        rng: random.Random | None = None,
        margin_ms: int | None = None,
        max_held: int | None = None,
        max_held_bytes: int | None = None,
        spread_ms: int | None = None,
    ) -> None:
        if k < 1:
            raise KAnonymityError(f"k must be >= 1, got {k}")
        if max_delay_ms < 0:
            raise KAnonymityError(f"max_delay_ms must be >= 0, got {max_delay_ms}")
        self.k = k
        self.max_delay_ms = max_delay_ms
        self.margin_ms = max_delay_ms // 60 if margin_ms is None else margin_ms
        if spread_ms is not None and spread_ms < 0:
            raise KAnonymityError(f"spread_ms must be >= 0, got {spread_ms}")
        # At most half of what is left of δ: a pool's next formation comes after its drain.
        self.spread_ms = min(
            max_delay_ms // 60 if spread_ms is None else spread_ms,
            max(0, max_delay_ms - self.margin_ms) // 2,
        )
        self.max_held = max_held
        self.max_held_bytes = max_held_bytes
        self._held_bytes = 0
        self.plans = dict(plans)
        # Tests pass a seeded rng; by default the OS's CSPRNG, read once per shuffle.
        self._shuffle = shuffle if rng is None else rng.shuffle
        self._pools: dict[str, _Pool] = {schema: _Pool() for schema in self.plans}
        self._schema_of: dict[str, str] = {}
        self._by_source: dict[Source, dict[str, None]] = {}
        self._seq = 0
        self._last_call_ms: int | None = None
        self._gap_ms = 0
        self.added_total = 0
        self.released_total = 0
        self.suppressed_total = 0
        self.dropped_total = 0

    # ---- input ---------------------------------------------------------------------------

    def add(self, entry: PendingEntry, now_ms: int) -> None:
        """Hold `entry`, stamping its arrival time `added_ms` with `now_ms`."""
        if entry.added_ms != now_ms:
            entry.added_ms = now_ms
            entry.encoded = None  # the held form holds the arrival time
        self._insert(entry)
        self.added_total += 1

    def restore(self, entries: Iterable[PendingEntry]) -> None:
        """Reload held entries from a checkpoint, keeping their own `added_ms`."""
        for entry in entries:
            self._insert(entry)
            self.added_total += 1

    def drop_partition(self, source: Source) -> list[PendingEntry]:
        """Remove and return the held entries of a revoked source partition."""
        ids = self._by_source.pop(source, None)
        if not ids:
            return []
        dropped = []
        waiting: set[str] = set()
        for pending_id in ids:
            schema = self._schema_of.pop(pending_id)
            held = self._pools[schema].held.pop(pending_id, None)
            if held is None:  # a member of a formed group waiting to leave
                waiting.add(pending_id)
                continue
            self._held_bytes -= held.entry.size + ENTRY_OVERHEAD_BYTES
            dropped.append(held.entry)
        if waiting:
            dropped.extend(self._dissolve(waiting))
        self.dropped_total += len(dropped)
        return dropped

    def _dissolve(self, lost: set[str]) -> list[PendingEntry]:
        """Take the `lost` members out of the waiting groups (returned); a group that lost
        one goes back to its pool, as held records with their own arrival times."""
        out = []
        for pool in self._pools.values():
            outbox = pool.outbox
            if outbox is None:
                continue
            kept = []
            for formed in outbox.groups:
                if not any(h.entry.pending_id in lost for h in formed.members):
                    kept.append(formed)
                    continue
                for h in formed.members:
                    if h.entry.pending_id in lost:
                        self._held_bytes -= h.entry.size + ENTRY_OVERHEAD_BYTES
                        out.append(h.entry)
                    else:
                        self._return(pool, h)
            outbox.groups = kept
            if not kept:
                pool.outbox = None
        return out

    # ---- output --------------------------------------------------------------------------

    def release(self, now_ms: int) -> ReleaseBatch:
        """Group and let out every schema's pool whose oldest record is about due."""
        batch = ReleaseBatch()
        due = self.max_delay_ms - self.margin_ms
        # Deadlines are met as of the next call, expected as far ahead as the longest
        # recent gap between calls (it decays by an eighth a call; a quarter of δ at
        # most): a pool due for grouping by then is grouped now, and the schedule sends
        # what it asks for by then. A busy worker's long loop turns (the one after a
        # release most of all) would otherwise hold records past δ.
        last, self._last_call_ms = self._last_call_ms, now_ms
        if last is not None:
            self._gap_ms = min(
                max(now_ms - last, self._gap_ms - self._gap_ms // 8), self.max_delay_ms // 4
            )
        ahead = now_ms + self._gap_ms
        for schema, pool in self._pools.items():
            oldest = self._oldest(pool)
            if oldest is not None and oldest + due - self.spread_ms <= ahead:
                if pool.outbox is not None:  # records back from a dissolved group
                    self._send(pool, batch, None)
                self._form(self.plans[schema], pool, batch, now_ms, oldest + due)
            if pool.outbox is not None:
                self._send(pool, batch, ahead)
        while self._over_cap():
            # At the cap every waiting group leaves, then the largest pool is grouped now,
            # before its deadline: it is generalized as far as its members need, and what
            # no group can take is suppressed (a flood of one person's records ends there).
            released, suppressed = len(batch.released), len(batch.suppressed)
            waiting = [pool for pool in self._pools.values() if pool.outbox is not None]
            for pool in waiting:
                self._send(pool, batch, None)
            if not waiting:
                schema, pool = max(self._pools.items(), key=lambda item: len(item[1].held))
                self._form(self.plans[schema], pool, batch, now_ms, now_ms)
                self._send(pool, batch, None)
            batch.capped_released += len(batch.released) - released
            batch.capped_suppressed += len(batch.suppressed) - suppressed
        self._shuffle(batch.released)
        batch.hold_times = [now_ms - r.entry.added_ms for r in batch.released]
        batch.hold_times += [now_ms - e.added_ms for e in batch.suppressed]
        self.released_total += len(batch.released)
        self.suppressed_total += len(batch.suppressed)
        return batch

    # ---- observation ---------------------------------------------------------------------

    @property
    def held_bytes(self) -> int:
        """The bytes the window's cap counts: raw size plus a fixed overhead per record."""
        return self._held_bytes

    def _over_cap(self) -> bool:
        if not self._schema_of:
            return False
        return (self.max_held is not None and len(self._schema_of) > self.max_held) or (
            self.max_held_bytes is not None and self._held_bytes > self.max_held_bytes
        )

    @property
    def pending_count(self) -> int:
        """Number of entries held."""
        return len(self._schema_of)

    @property
    def pending_by_schema(self) -> dict[str, int]:
        """Number of entries held, per schema (formed groups waiting to leave included)."""
        counts = {}
        for schema, pool in self._pools.items():
            count = len(pool.held)
            if pool.outbox is not None:
                count += sum(len(formed.members) for formed in pool.outbox.groups)
            if count:
                counts[schema] = count
        return counts

    def oldest_pending_ms(self) -> int | None:
        """Arrival time of the oldest held entry, or None when nothing is held."""
        times = [t for t in (self._oldest(pool) for pool in self._pools.values()) if t is not None]
        times.extend(h.entry.added_ms for h in self._waiting())
        return min(times) if times else None

    def __iter__(self) -> Iterator[PendingEntry]:
        """Iterate over held entries, formed groups waiting to leave included."""
        held = [h.entry for pool in self._pools.values() for h in pool.held.values()]
        held.extend(h.entry for h in self._waiting())
        return iter(held)

    def _waiting(self) -> Iterator[_Held]:
        for pool in self._pools.values():
            if pool.outbox is not None:
                for formed in pool.outbox.groups:
                    yield from formed.members

    def __len__(self) -> int:
        """Number of entries held."""
        return len(self._schema_of)

    # ---- internals -----------------------------------------------------------------------

    def _insert(self, entry: PendingEntry) -> None:
        if entry.pending_id in self._schema_of:
            raise DuplicatePendingError("pending_id already held")
        plan = self.plans.get(entry.schema)
        if plan is None:
            raise KAnonymityError(f"no release plan for schema {entry.schema!r}")
        level0 = level0_of(plan, entry)
        pool = self._pools[entry.schema]
        pool.held[entry.pending_id] = _Held(entry, level0, plan.paths(level0))
        self._seq += 1
        heapq.heappush(pool.arrivals, (entry.added_ms, self._seq, entry.pending_id))
        self._schema_of[entry.pending_id] = entry.schema
        self._by_source.setdefault(entry.source, {})[entry.pending_id] = None
        self._held_bytes += entry.size + ENTRY_OVERHEAD_BYTES

    def _oldest(self, pool: _Pool) -> int | None:
        arrivals = pool.arrivals
        while arrivals:
            added_ms, _seq, pending_id = arrivals[0]
            held = pool.held.get(pending_id)
            if held is not None and held.entry.added_ms == added_ms:
                return added_ms
            heapq.heappop(arrivals)
        return None

    def _return(self, pool: _Pool, h: _Held) -> None:
        """Put a member of a dissolved group back into its pool (still registered)."""
        entry = h.entry
        pool.held[entry.pending_id] = h
        self._seq += 1
        heapq.heappush(pool.arrivals, (entry.added_ms, self._seq, entry.pending_id))

    def _forget(self, entry: PendingEntry) -> None:
        """Unregister a record that leaves (released or suppressed)."""
        pending_id = entry.pending_id
        del self._schema_of[pending_id]
        self._held_bytes -= entry.size + ENTRY_OVERHEAD_BYTES
        ids = self._by_source[entry.source]
        del ids[pending_id]
        if not ids:
            del self._by_source[entry.source]

    def _form(
        self, plan: ReleasePlan, pool: _Pool, batch: ReleaseBatch, now_ms: int, due_ms: int
    ) -> None:
        """Group the whole pool into its outbox, to leave by `due_ms`; suppress the rest."""
        held = list(pool.held.values())
        pool.held = {}
        pool.arrivals = []
        grouping = group([h.paths for h in held], [h.entry.person for h in held], self.k)
        formed_groups = []
        total = 0
        for formed in grouping.groups:
            content = formed.content
            record = plan.output(content)
            timestamp = plan.timestamp_ms(content)
            changed: dict[tuple[Any, ...], tuple[str, ...]] = {}
            members = [held[i] for i in formed.members]
            released = []
            for h in members:
                fields = changed.get(h.level0)
                if fields is None:
                    fields = changed[h.level0] = tuple(plan.generalized_fields(h.level0, content))
                released.append(Released(h.entry, record, timestamp, fields))
            formed_groups.append(_Formed(members, released))
            total += len(members)
        for i in grouping.suppressed:
            entry = held[i].entry
            self._forget(entry)
            batch.suppressed.append(entry)
        if formed_groups:
            self._shuffle(formed_groups)
            pool.outbox = _Outbox(formed_groups, now_ms, due_ms, total)

    def _send(self, pool: _Pool, batch: ReleaseBatch, now_ms: int | None) -> None:
        """Let out the waiting groups the schedule asks for by `now_ms` (all of them: None)."""
        outbox = pool.outbox
        if outbox is None:  # the formation suppressed every record
            return
        groups = outbox.groups
        if now_ms is None or now_ms >= outbox.due_ms:
            wanted = outbox.total
        else:
            # The share of the span gone by then, rounded up; whole groups, so a little more.
            span = outbox.due_ms - outbox.formed_ms
            wanted = -(-outbox.total * (now_ms - outbox.formed_ms) // span)
        while groups and outbox.sent < wanted:
            formed = groups.pop()
            for released in formed.released:
                self._forget(released.entry)
            batch.released.extend(formed.released)
            outbox.sent += len(formed.members)
        if not groups:
            pool.outbox = None
