"""A held record's bytes: on the repartition topic, and in the checkpoint's chunks (SPEC 7).

A held record (`consumers.kanon.PendingEntry`) is written as one JSON array:

    [schema, layout, pending_id, person, raw_ts, added_ms, size, hour, v1, ..., vn]

`hour` (the start of the record's hour, epoch ms) and v1..vn are its level-0
values in its release plan's field order: what the window groups on and releases,
without the field names repeated in every record. The repartition key needs the
same level-0 values, so they are computed once per record (`kanon.level0_of`) and
arrive with it on the grouping worker. A record keeps its bytes once written or
read (`PendingEntry.encoded`), so the checkpoint joins them instead of encoding
each held record again.

`layout` names that order: a digest of the schema and its plan's field names. A
reader whose plan orders the fields otherwise (another policy) never reads values
into the wrong fields. A checkpoint chunk lists the field names of each layout it
holds, so a worker restarted with another policy reads its records by name, as
before; a repartition record has no names, so a worker running another policy than
the one that sent it refuses it (`LayoutError`; the worker dead-letters it).

A chunk: `{"fields": {layout: [names]}, "source": [topic, partition], "held": [...]}`.

A repartition record is a bundle: the held records one batch sends under one key, one
per line (JSON Lines; compact JSON never holds a raw line break), at most
MAX_BUNDLE_BYTES of them unless one record alone is larger. One record per key and
batch instead of one per held record saves the client's cost per record twice, at
the producer and at the grouping worker's consumer. A bundle of one line is a held
record as written before bundles, so both read each other's single records. A bundle
that cannot be read is refused whole (`decode_bundle`); the worker dead-letters it as
one record and counts each held record it carried (`bundle_size`).

Still read, as written before this form (a compacted checkpoint keeps old chunks
across an upgrade, and the repartition topic may still hold old records): a held
record as a JSON object with named fields (`entry_from_json`), a chunk as an array of them.
The older version cannot read this form: a worker of it still running in the group
would dead-letter the records it takes from the repartition topic (`undecodable_held`)
and skip the chunks it restores. So a rolling upgrade from it runs with
`held_format = "named"` (`HeldCodec(form="named")`): this version then writes the first
form, one record per repartition record, which both read, and the group moves to the
default by a second rollout once no older worker is left (README "Upgrading"). Likewise
a version that writes the compact form but reads no bundles (before 2026-12-02) would
dead-letter a bundle of several records: a rolling upgrade from it runs with
`held_format = "compact"` (compact records, one per repartition record) first. A group
stopped and started whole needs neither step.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

from consumers.kanon import PendingEntry, Source, level0_of
from consumers.ladders import time_value
from consumers.release_policy import ReleasePlan
from schemas.errors import DecodeError

_json = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode
"""Made once: `json.dumps` with options builds an encoder on every call."""
_scan = json.JSONDecoder().raw_decode
VALUES_AT = 7
"""Index of the first level-0 value (the hour) in a held record's array."""
MAX_TOPIC_CHARS = 249
"""Kafka's limit on a topic name: bounds the `source` a chunk's header holds."""
MAX_BUNDLE_BYTES = 128 * 1024
"""A bundle's bytes stay under this unless one held record alone is larger (a held
record always fits a checkpoint chunk, `consumers.checkpoint.MAX_CHUNK_BYTES`), so a
repartition record stays well under the producer's 1 MiB limit."""
HeldForm = Literal["bundled", "compact", "named"]
"""How held records are written (`held_format`): compact records bundled per key and
batch; compact records one per repartition record; the first form, one per record."""


class HeldRecordError(DecodeError):
    """A held record, or a checkpoint chunk of them, could not be read."""

    reason = "undecodable_held"


class LayoutError(HeldRecordError):
    """A held record's values are in a field order this worker's plans do not know."""

    reason = "held_layout_unknown"


def layout_of(plan: ReleasePlan) -> str:
    """The name of a plan's field order: 8 hex digits of a digest of schema and field names."""
    names = "\x1f".join((plan.schema, *plan.fields)).encode()
    return hashlib.blake2b(names, digest_size=4).hexdigest()


class HeldCodec:
    """Writes and reads held records and checkpoint chunks for one worker's release plans."""

    def __init__(self, plans: Mapping[str, ReleasePlan], *, form: HeldForm = "bundled") -> None:
        self._plans = dict(plans)
        self._layouts = {schema: layout_of(plan) for schema, plan in self._plans.items()}
        named = form == "named"
        self.named = named
        """Write the first form (what versions before the compact one read); read both."""
        self.bundled = form == "bundled"
        """Send a batch's held records of one key as one repartition record."""
        longest = _json(["t" * MAX_TOPIC_CHARS, 2**31])
        head = b"[" if named else self._chunk_head(self._plans, longest)
        self.chunk_overhead = len(head) + 2
        """Bytes a chunk adds to its records beyond one comma between two: an upper bound."""

    def level0(self, entry: PendingEntry) -> tuple[Any, ...]:
        """`entry`'s level-0 values in its plan's order (computed once per entry)."""
        return level0_of(self._plans[entry.schema], entry)

    def encode(self, entry: PendingEntry) -> bytes:
        """`entry` as one held record (a repartition record's value, a chunk's element)."""
        if self.named:
            return entry_to_json(entry)  # never cached: `encoded` holds the compact form
        data = entry.encoded
        if data is None:
            level0 = self.level0(entry)
            item = [
                entry.schema,
                self._layouts[entry.schema],
                entry.pending_id,
                entry.person,
                entry.raw_timestamp_ms,
                entry.added_ms,
                entry.size,
                level0[0][0],
                *level0[1:],
            ]
            data = entry.encoded = _json(item).encode()
        return data

    def decode(self, value: bytes, source: Source) -> PendingEntry:
        """A repartition record's held record (either form), taken from `source`."""
        try:
            item = _loads(value)
            if isinstance(item, list):
                entry = self._read(item, source, None)
                entry.encoded = value
                return entry
            entry = entry_from_json(item)
            entry.source = source
            return entry
        except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
            raise HeldRecordError(f"bad held record: {type(exc).__name__}") from exc

    def bundles(self, lines: Sequence[bytes]) -> Iterator[bytes]:
        """Repartition records' values for held records of one key (`encode`'s bytes, in
        order): bundles of at most MAX_BUNDLE_BYTES, or one record each when not bundled."""
        if not self.bundled:
            yield from lines
            return
        part: list[bytes] = []
        size = 0
        for line in lines:
            grown = size + 1 + len(line) if part else len(line)
            if part and grown > MAX_BUNDLE_BYTES:
                yield b"\n".join(part)
                part, grown = [], len(line)
            part.append(line)
            size = grown
        if part:
            yield b"\n".join(part)

    def decode_bundle(self, value: bytes, source: Source) -> list[PendingEntry]:
        """The held records of one repartition record, taken from `source`; one that
        cannot be read refuses the whole bundle."""
        if b"\n" not in value:
            return [self.decode(value, source)]
        return [self.decode(line, source) for line in value.split(b"\n")]

    def encode_chunk(self, source: Source, entries: Sequence[PendingEntry]) -> bytes:
        """One checkpoint chunk: held records of one source partition."""
        if self.named:
            return b"[" + b",".join(self.encode(e) for e in entries) + b"]"
        plans = {e.schema: self._plans[e.schema] for e in entries}
        head = self._chunk_head(plans, _json(list(source)))
        return head + b",".join(self.encode(e) for e in entries) + b"]}"

    def decode_chunk(self, value: bytes) -> list[PendingEntry]:
        """The held records of one checkpoint chunk, in either form."""
        try:
            chunk = json.loads(value)
            if isinstance(chunk, list):
                return [entry_from_json(item) for item in chunk]
            topic, partition = chunk["source"]
            source = (str(topic), int(partition))
            names: dict[str, list[str]] = chunk["fields"]
            return [self._read(item, source, names) for item in chunk["held"]]
        except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
            raise HeldRecordError(f"bad checkpoint chunk: {type(exc).__name__}") from exc

    def _chunk_head(self, plans: Mapping[str, ReleasePlan], source: str) -> bytes:
        fields = {self._layouts[schema]: list(plan.fields) for schema, plan in plans.items()}
        return f'{{"fields":{_json(fields)},"source":{source},"held":['.encode()

    def _read(
        self, item: list[Any], source: Source, names: Mapping[str, list[str]] | None
    ) -> PendingEntry:
        """One held record's array; read by `names` when it is not in this worker's layout."""
        schema, layout = item[0], item[1]
        plan = self._plans.get(schema)
        values = item[VALUES_AT:]
        if plan is None:
            raise LayoutError(f"held record of a schema without a release plan: {schema!r}")
        if layout == self._layouts[schema]:
            record = dict(zip(plan.fields, values, strict=True))
            values[0] = time_value(int(values[0]))
            level0 = tuple(values)
        elif names is not None and layout in names:
            record = dict(zip(names[layout], values, strict=True))
            level0 = plan.level0(record)
        else:
            raise LayoutError(f"held record of {schema!r} in an unknown field order")
        hash(level0)  # a list or an object among the values is refused here, not in the window
        entry = PendingEntry(
            str(item[2]),
            schema,
            str(item[3]),
            record,
            source,
            int(item[4]),
            int(item[5]),
            int(item[6]),
        )
        entry.level0, entry.level0_plan = level0, plan
        return entry


def bundle_size(value: bytes) -> int:
    """How many held records a repartition record carries (its lines), read or not."""
    return value.count(b"\n") + 1


def _loads(value: bytes) -> Any:
    """One JSON document (`json.loads` without its checks for encodings and white space)."""
    text = value.decode()
    doc, end = _scan(text)
    if end != len(text):
        raise ValueError("data after the JSON document")
    return doc


def entry_to_json(entry: PendingEntry) -> bytes:
    """A held record in the first form (`entry_from_json` reads it back)."""
    topic, partition = entry.source
    item = {
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
    return _json(item).encode()


def entry_from_json(item: dict[str, Any]) -> PendingEntry:
    """A held record in the first form: a JSON object with named fields, the record's among them."""
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


def _raw_timestamp(item: dict[str, Any]) -> int:
    """The raw record's timestamp; chunks written before 2026-11-30 kept it in `meta`."""
    if "raw_ts" in item:
        return int(item["raw_ts"])
    meta = item.get("meta")
    return int(meta[1]) if isinstance(meta, list) and len(meta) > 1 else -1
