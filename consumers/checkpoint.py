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
too large to fit a chunk alone (`CheckpointBook.fits`) is never held (the worker
suppresses it). Chunks hold level-0 anonymized records and opaque person tokens only;
their bytes, and the older form still read, are `consumers.held`'s.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from consumers.held import HeldCodec
from consumers.kanon import PendingEntry
from schemas.errors import ConsentgateError

CHUNK_PREFIX = "chunk:"
MAX_CHUNK_ENTRIES = 256
"""About 250 bytes per typical held record (consumers.held): about 64 KB per full chunk."""
MAX_CHUNK_BYTES = 512 * 1024
"""A chunk's encoded size never exceeds this, so a checkpoint write always fits a message."""


def source_of(entry: PendingEntry) -> tuple[str, int]:
    """The raw topic and partition a held record came from."""
    return entry.source


@dataclass(frozen=True, slots=True)
class ChunkWrite:
    """One chunk to write (entries, and `value` their encoding) or delete (both None)."""

    key: str
    partition: int
    entries: tuple[PendingEntry, ...] | None
    value: bytes | None = None


class OversizedEntryError(ConsentgateError):
    """A held record does not fit a chunk on its own (see `CheckpointBook.fits`)."""


@dataclass(slots=True)
class ChunkPlan:
    """What a commit writes to the checkpoint, and the bookkeeping to apply once it commits."""

    writes: list[ChunkWrite] = field(default_factory=list)
    new: dict[str, dict[str, PendingEntry]] = field(default_factory=dict)
    shrunk: dict[str, dict[str, PendingEntry]] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)


class CheckpointBook:
    """Which held records each committed chunk holds (pure bookkeeping, no I/O)."""

    def __init__(self, codec: HeldCodec) -> None:
        self.codec = codec
        self._chunks: dict[str, dict[str, PendingEntry]] = {}
        self._chunk_of: dict[str, str] = {}
        self._room = MAX_CHUNK_BYTES - codec.chunk_overhead
        """Bytes a chunk has for its records and the commas between them."""

    def fits(self, entry: PendingEntry) -> bool:
        """True when `entry` alone fits a chunk, so it can be held across a restart."""
        return len(self.codec.encode(entry)) <= self._room

    def read(self, value: bytes) -> list[PendingEntry]:
        """The held records of one chunk, whichever form it was written in."""
        return self.codec.decode_chunk(value)

    def __contains__(self, pending_id: object) -> bool:
        return pending_id in self._chunk_of

    def plan(self, added: Mapping[str, PendingEntry], removed: Iterable[str]) -> ChunkPlan:
        """Chunks for records newly held at commit, and rewrites of chunks that lost some."""
        plan = ChunkPlan()
        by_source: dict[tuple[str, int], list[PendingEntry]] = defaultdict(list)
        for entry in added.values():
            by_source[source_of(entry)].append(entry)
        for source, entries in by_source.items():
            for part in self._pack(entries):
                key = CHUNK_PREFIX + part[0].pending_id
                plan.new[key] = {e.pending_id: e for e in part}
                value = self.codec.encode_chunk(source, part)
                plan.writes.append(ChunkWrite(key, source[1], tuple(part), value))
        losses: dict[str, set[str]] = defaultdict(set)
        for pending_id in removed:
            chunk = self._chunk_of.get(pending_id)
            if chunk is not None:
                losses[chunk].add(pending_id)
        for key, gone in losses.items():
            held = self._chunks[key]
            remaining = {pid: e for pid, e in held.items() if pid not in gone}
            source = source_of(next(iter(held.values())))
            partition = source[1]
            if remaining:
                plan.shrunk[key] = remaining
                kept = tuple(remaining.values())
                value = self.codec.encode_chunk(source, kept)
                plan.writes.append(ChunkWrite(key, partition, kept, value))
            else:
                plan.deleted.append(key)
                plan.writes.append(ChunkWrite(key, partition, None))
        return plan

    def _pack(self, entries: list[PendingEntry]) -> list[list[PendingEntry]]:
        """Split entries into chunks of at most MAX_CHUNK_ENTRIES records and MAX_CHUNK_BYTES."""
        chunks: list[list[PendingEntry]] = []
        part: list[PendingEntry] = []
        size = 0
        for entry in entries:
            length = len(self.codec.encode(entry))
            if length > self._room:
                raise OversizedEntryError(f"held record of {length} bytes does not fit a chunk")
            if part and (len(part) >= MAX_CHUNK_ENTRIES or size + 1 + length > self._room):
                chunks.append(part)
                part, size = [], 0
            size += length + (1 if part else 0)
            part.append(entry)
        if part:
            chunks.append(part)
        return chunks

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
