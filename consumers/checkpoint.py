"""The k-anonymity window's checkpoint: held records in chunks on a restricted compacted topic.

Records still held when a transaction commits are written in that same
transaction, one chunk per source partition (key = the first record's
pending id), to the checkpoint partition with the source's number. When
held records leave the window, each chunk that lost some is rewritten with
what remains, or tombstoned once empty, again inside the transaction that
released them. A crash or a rebalance therefore neither loses nor repeats a
held record, and a transaction writes a few chunks, not one record per
held event. A chunk holds at most MAX_CHUNK_ENTRIES records and MAX_CHUNK_BYTES
bytes, well under the producer's 1 MiB limit whatever the records hold; a record
too large to fit a chunk alone (`fits_checkpoint`) is never held (the worker
suppresses it). Chunks hold level-0 anonymized records and opaque person tokens only.
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
"""About 700 bytes of JSON per typical held record: about 180 KB per full chunk."""
MAX_CHUNK_BYTES = 512 * 1024
"""A chunk's encoded size never exceeds this, so a checkpoint write always fits a message."""


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
        "size": entry.size,
    }


def _raw_timestamp(item: dict[str, Any]) -> int:
    """The raw record's timestamp; chunks written before 2026-11-30 kept it in `meta`."""
    if "raw_ts" in item:
        return int(item["raw_ts"])
    meta = item.get("meta")
    return int(meta[1]) if isinstance(meta, list) and len(meta) > 1 else -1


def entry_bytes(entry: PendingEntry) -> bytes:
    """One held record as it is stored inside a chunk (a JSON object)."""
    return json.dumps(_entry_json(entry), separators=(",", ":")).encode()


def fits_checkpoint(entry: PendingEntry) -> bool:
    """True when `entry` alone fits a chunk, so it can be held across a restart."""
    return len(entry_bytes(entry)) + 2 <= MAX_CHUNK_BYTES


def _join(encoded: Iterable[bytes]) -> bytes:
    return b"[" + b",".join(encoded) + b"]"


def encode_chunk(entries: Iterable[PendingEntry]) -> bytes:
    """JSON bytes of one chunk of held records."""
    return _join(entry_bytes(e) for e in entries)


def _entry(item: dict[str, Any]) -> PendingEntry:
    return PendingEntry(
        pending_id=item["id"],
        schema=item["schema"],
        person=item["person"],
        record=item["record"],
        source=(str(item["topic"]), int(item["partition"])),
        raw_timestamp_ms=_raw_timestamp(item),
        added_ms=int(item["added_ms"]),
        size=int(item.get("size", 0)),
    )


def decode_chunk(value: bytes) -> list[PendingEntry]:
    """The held records of one chunk."""
    try:
        items: list[dict[str, Any]] = json.loads(value)
        return [_entry(item) for item in items]
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"bad checkpoint chunk: {type(exc).__name__}") from exc


def decode_entry(value: bytes) -> PendingEntry:
    """One held record as `entry_bytes` wrote it (a repartition topic record)."""
    try:
        item: dict[str, Any] = json.loads(value)
        return _entry(item)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"bad held record: {type(exc).__name__}") from exc


@dataclass(frozen=True, slots=True)
class ChunkWrite:
    """One chunk to write (entries, and `value` their encoding) or delete (entries is None)."""

    key: str
    partition: int
    entries: tuple[PendingEntry, ...] | None
    value: bytes | None = None


class OversizedEntryError(CheckpointError):
    """A held record does not fit a chunk on its own (see `fits_checkpoint`)."""


def _pack(entries: list[PendingEntry]) -> list[tuple[list[PendingEntry], bytes]]:
    """Split entries into chunks of at most MAX_CHUNK_ENTRIES records and MAX_CHUNK_BYTES."""
    chunks: list[tuple[list[PendingEntry], bytes]] = []
    part: list[PendingEntry] = []
    encoded: list[bytes] = []
    size = 2
    for entry in entries:
        data = entry_bytes(entry)
        if len(data) + 2 > MAX_CHUNK_BYTES:
            raise OversizedEntryError(f"held record of {len(data)} bytes does not fit a chunk")
        if part and (len(part) >= MAX_CHUNK_ENTRIES or size + 1 + len(data) > MAX_CHUNK_BYTES):
            chunks.append((part, _join(encoded)))
            part, encoded, size = [], [], 2
        part.append(entry)
        encoded.append(data)
        size += len(data) + (1 if len(part) > 1 else 0)
    if part:
        chunks.append((part, _join(encoded)))
    return chunks


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
            for part, value in _pack(entries):
                key = CHUNK_PREFIX + part[0].pending_id
                plan.new[key] = {e.pending_id: e for e in part}
                plan.writes.append(ChunkWrite(key, partition, tuple(part), value))
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
                kept = tuple(remaining.values())
                plan.writes.append(ChunkWrite(key, partition, kept, encode_chunk(kept)))
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
