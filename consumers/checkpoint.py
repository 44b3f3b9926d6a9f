"""The k-anonymity window's checkpoint: held records in chunks on a restricted compacted topic.

Records still held when a transaction commits are written in that same
transaction, one chunk per source partition (key = the first record's
pending id), to the checkpoint partition with the source's number. When
held records leave the window, each chunk that lost some is rewritten with
what remains, or tombstoned once empty, again inside the transaction that
released them. A crash or a rebalance therefore neither loses nor repeats a
held record, and a transaction writes a few chunks, not one record per
held event. A chunk holds at most MAX_CHUNK_ENTRIES records. Chunks hold
level-0 anonymized records and opaque person tokens only.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from consumers.kanon import PendingEntry
from schemas.errors import DecodeError

CHUNK_PREFIX = "chunk:"
MAX_CHUNK_ENTRIES = 256
"""About 700 bytes of JSON per held record: chunks stay far below Kafka's 1 MB message limit."""


class CheckpointError(DecodeError):
    """A checkpoint record could not be decoded."""


def source_of(entry: PendingEntry) -> tuple[str, int]:
    """The raw topic and partition a held record came from."""
    return entry.source


def _entry_json(entry: PendingEntry) -> dict[str, Any]:
    topic, partition = entry.source
    return {
        "id": entry.pending_id,
        "schema": entry.schema,
        "person": entry.person,
        "record": entry.record,
        "topic": topic,
        "partition": partition,
        "raw_ts": entry.raw_timestamp_ms,
        "added_ms": entry.added_ms,
    }


def _raw_timestamp(item: dict[str, Any]) -> int:
    """The raw record's timestamp; chunks written before 2026-11-30 kept it in `meta`."""
    if "raw_ts" in item:
        return int(item["raw_ts"])
    meta = item.get("meta")
    return int(meta[1]) if isinstance(meta, list) and len(meta) > 1 else -1


def encode_chunk(entries: Iterable[PendingEntry]) -> bytes:
    """JSON bytes of one chunk of held records."""
    return json.dumps([_entry_json(e) for e in entries], separators=(",", ":")).encode()


def decode_chunk(value: bytes) -> list[PendingEntry]:
    """The held records of one chunk."""
    try:
        items: list[dict[str, Any]] = json.loads(value)
        return [
            PendingEntry(
                pending_id=item["id"],
                schema=item["schema"],
                person=item["person"],
                record=item["record"],
                source=(str(item["topic"]), int(item["partition"])),
                raw_timestamp_ms=_raw_timestamp(item),
                added_ms=int(item["added_ms"]),
            )
            for item in items
        ]
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"bad checkpoint chunk: {type(exc).__name__}") from exc


@dataclass(frozen=True, slots=True)
class ChunkWrite:
    """One chunk to write (entries) or delete (entries is None) in the open transaction."""

    key: str
    partition: int
    entries: tuple[PendingEntry, ...] | None


@dataclass(slots=True)
class ChunkPlan:
    """What a commit writes to the checkpoint, and the bookkeeping to apply once it commits."""

    writes: list[ChunkWrite] = field(default_factory=list)
    new: dict[str, dict[str, PendingEntry]] = field(default_factory=dict)
    shrunk: dict[str, dict[str, PendingEntry]] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)


class CheckpointBook:
    """Which held records each committed chunk holds (pure bookkeeping, no I/O)."""

    def __init__(self) -> None:
        self._chunks: dict[str, dict[str, PendingEntry]] = {}
        self._chunk_of: dict[str, str] = {}

    def __contains__(self, pending_id: object) -> bool:
        return pending_id in self._chunk_of

    def plan(self, added: Mapping[str, PendingEntry], removed: Iterable[str]) -> ChunkPlan:
        """Chunks for records newly held at commit, and rewrites of chunks that lost some."""
        plan = ChunkPlan()
        by_source: dict[tuple[str, int], list[PendingEntry]] = defaultdict(list)
        for entry in added.values():
            by_source[source_of(entry)].append(entry)
        for (_topic, partition), entries in by_source.items():
            for start in range(0, len(entries), MAX_CHUNK_ENTRIES):
                part = entries[start : start + MAX_CHUNK_ENTRIES]
                key = CHUNK_PREFIX + part[0].pending_id
                plan.new[key] = {e.pending_id: e for e in part}
                plan.writes.append(ChunkWrite(key, partition, tuple(part)))
        losses: dict[str, set[str]] = defaultdict(set)
        for pending_id in removed:
            chunk = self._chunk_of.get(pending_id)
            if chunk is not None:
                losses[chunk].add(pending_id)
        for key, gone in losses.items():
            held = self._chunks[key]
            remaining = {pid: e for pid, e in held.items() if pid not in gone}
            partition = source_of(next(iter(held.values())))[1]
            if remaining:
                plan.shrunk[key] = remaining
                plan.writes.append(ChunkWrite(key, partition, tuple(remaining.values())))
            else:
                plan.deleted.append(key)
                plan.writes.append(ChunkWrite(key, partition, None))
        return plan

    def apply(self, plan: ChunkPlan) -> None:
        """Record a committed plan."""
        for key in plan.deleted:
            for pending_id in self._chunks.pop(key, {}):
                self._chunk_of.pop(pending_id, None)
        for key, remaining in plan.shrunk.items():
            for pending_id in self._chunks[key].keys() - remaining.keys():
                self._chunk_of.pop(pending_id, None)
            self._chunks[key] = remaining
        for key, entries in plan.new.items():
            self.load(key, entries.values())

    def load(self, key: str, entries: Iterable[PendingEntry]) -> None:
        """Know a committed chunk (at restore, or after a commit)."""
        held = {e.pending_id: e for e in entries}
        self._chunks[key] = held
        for pending_id in held:
            self._chunk_of[pending_id] = key

    def held_from(self, sources: set[tuple[str, int]]) -> int:
        """How many committed held records came from these source partitions."""
        return sum(len(held) for held in self._chunks.values() if _source_of_chunk(held) in sources)

    def drop_sources(self, sources: set[tuple[str, int]]) -> None:
        """Forget the chunks of revoked or rewound source partitions."""
        for key in [k for k, held in self._chunks.items() if _source_of_chunk(held) in sources]:
            for pending_id in self._chunks.pop(key):
                self._chunk_of.pop(pending_id, None)


def _source_of_chunk(held: Mapping[str, PendingEntry]) -> tuple[str, int] | None:
    for entry in held.values():
        return source_of(entry)
    return None
