"""Encoding of k-anonymity pending entries for the restricted, compacted checkpoint topic.

A pending entry is checkpointed in the same transaction that consumed its
source offset, and tombstoned in the transaction that releases or
suppresses it, so a crash or a rebalance neither loses nor repeats it.
Entries hold anonymized records and an opaque person token, never raw ids.
"""

from __future__ import annotations

import json
from typing import Any, cast

from consumers.kanon import PendingEntry
from schemas.errors import DecodeError


class CheckpointError(DecodeError):
    """A checkpoint record could not be decoded."""


def source_of(entry: PendingEntry) -> tuple[str, int]:
    """The raw topic and partition a held record came from."""
    topic, partition = cast(tuple[str, int], entry.partition)
    return topic, partition


def encode_entry(entry: PendingEntry) -> bytes:
    """JSON bytes of one pending entry."""
    topic, partition = source_of(entry)
    return json.dumps(
        {
            "schema": entry.schema,
            "person": entry.person,
            "record": entry.record,
            "topic": topic,
            "partition": partition,
            "meta": entry.meta,
            "added_ms": entry.added_ms,
        },
        separators=(",", ":"),
    ).encode()


def decode_entry(pending_id: str, value: bytes) -> PendingEntry:
    """The pending entry stored under `pending_id`."""
    try:
        data: dict[str, Any] = json.loads(value)
        return PendingEntry(
            pending_id=pending_id,
            schema=data["schema"],
            person=data["person"],
            record=data["record"],
            partition=(data["topic"], int(data["partition"])),
            meta=tuple(data["meta"]) if isinstance(data["meta"], list) else data["meta"],
            added_ms=int(data["added_ms"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"bad checkpoint entry: {type(exc).__name__}") from exc
