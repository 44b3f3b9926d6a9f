"""Checkpoint chunks: written once per source partition and commit, shrunk, then deleted."""

from __future__ import annotations

from consumers.anonymization_config import load_policy
from consumers.checkpoint import CheckpointBook
from consumers.held import HeldCodec
from consumers.kanon import PendingEntry
from consumers.release_policy import ReleasePlan

POLICY = load_policy()
CODEC = HeldCodec(
    {
        name: ReleasePlan(name, spec.output, spec.release, {})
        for name, spec in POLICY.schemas.items()
    }
)


def _entry(partition: int, offset: int) -> PendingEntry:
    record = dict.fromkeys(POLICY.schemas["device_event"].release.ladders)
    record.update(event_hour=1_767_225_600_000, brand="Huawei")
    return PendingEntry(
        pending_id=f"raw:{partition}:{offset}",
        schema="device_event",
        person="p",
        record=record,
        source=("raw", partition),
        raw_timestamp_ms=1000 + offset,
        added_ms=5,
    )


def test_records_held_at_commit_become_one_chunk_per_source_partition() -> None:
    book = CheckpointBook(CODEC)
    added = {e.pending_id: e for e in (_entry(0, 1), _entry(0, 2), _entry(1, 7))}
    plan = book.plan(added, removed=())
    assert sorted((w.key, w.partition, len(w.entries or ())) for w in plan.writes) == [
        ("chunk:raw:0:1", 0, 2),
        ("chunk:raw:1:7", 1, 1),
    ]
    book.apply(plan)
    assert "raw:0:2" in book


def test_a_chunk_is_rewritten_when_some_leave_and_deleted_when_all_left() -> None:
    book = CheckpointBook(CODEC)
    entries = [_entry(0, n) for n in range(3)]
    book.apply(book.plan({e.pending_id: e for e in entries}, removed=()))
    first = book.plan({}, removed={"raw:0:0"})
    assert [(w.key, [e.pending_id for e in w.entries or ()]) for w in first.writes] == [
        ("chunk:raw:0:0", ["raw:0:1", "raw:0:2"])
    ]
    book.apply(first)
    assert "raw:0:0" not in book and "raw:0:1" in book
    last = book.plan({}, removed={"raw:0:1", "raw:0:2"})
    assert [(w.key, w.entries) for w in last.writes] == [("chunk:raw:0:0", None)]
    book.apply(last)
    assert "raw:0:1" not in book and "raw:0:2" not in book


def test_an_uncommitted_plan_changes_nothing() -> None:
    book = CheckpointBook(CODEC)
    entry = _entry(2, 4)
    book.apply(book.plan({entry.pending_id: entry}, removed=()))
    book.plan({}, removed={entry.pending_id})  # the transaction aborts: plan never applied
    assert entry.pending_id in book


def test_chunks_round_trip_and_revoked_sources_are_forgotten() -> None:
    entries = [_entry(3, 1), _entry(3, 2)]
    book = CheckpointBook(CODEC)
    assert book.read(CODEC.encode_chunk(("raw", 3), entries)) == entries
    book.load("chunk:raw:3:1", entries)
    book.drop_sources({("raw", 3)})
    assert "raw:3:1" not in book


def test_a_large_backlog_is_split_into_chunks_well_below_the_message_limit() -> None:
    from consumers.checkpoint import MAX_CHUNK_ENTRIES

    book = CheckpointBook(CODEC)
    entries = [_entry(0, n) for n in range(MAX_CHUNK_ENTRIES * 2 + 5)]
    plan = book.plan({e.pending_id: e for e in entries}, removed=())
    sizes = [len(w.entries or ()) for w in plan.writes]
    assert sizes == [MAX_CHUNK_ENTRIES, MAX_CHUNK_ENTRIES, 5]
    assert all(w.value is not None and len(w.value) < 512 * 1024 for w in plan.writes)
    book.apply(plan)
    assert all(e.pending_id in book for e in entries)


def test_only_committed_held_records_count_as_held_from_a_source() -> None:
    book = CheckpointBook(CODEC)
    book.apply(book.plan({e.pending_id: e for e in (_entry(0, 1), _entry(0, 2))}, removed=()))
    uncommitted = book.plan({"raw:0:3": _entry(0, 3), "raw:1:4": _entry(1, 4)}, removed=())
    assert uncommitted.writes, "a plan not yet applied: its transaction has not committed"
    assert book.held_from({("raw", 0)}) == 2
    assert book.held_from({("raw", 1)}) == 0


def _big(offset: int, chars: int) -> PendingEntry:
    entry = _entry(0, offset)
    entry.record = {**entry.record, "app_version": "9" * chars}
    return entry


def test_chunks_are_capped_in_bytes_whatever_the_records_hold() -> None:
    from consumers.checkpoint import MAX_CHUNK_BYTES

    # Two 300 KB values: one chunk by count, two by bytes.
    entries = [_big(0, 300_000), _big(1, 300_000), _entry(0, 2)]
    plan = CheckpointBook(CODEC).plan({e.pending_id: e for e in entries}, removed=())
    assert [len(w.entries or ()) for w in plan.writes] == [1, 2]
    for write in plan.writes:
        assert write.value is not None and len(write.value) <= MAX_CHUNK_BYTES
        assert CODEC.decode_chunk(write.value) == list(write.entries or ())


def test_a_record_too_large_for_a_chunk_is_refused_before_it_is_held() -> None:
    import pytest

    from consumers.checkpoint import MAX_CHUNK_BYTES, OversizedEntryError

    # JSON escapes control characters six-fold: the raw size alone cannot tell.
    small_raw_but_escaped = _big(0, 1)
    small_raw_but_escaped.record["app_version"] = "\x01" * (MAX_CHUNK_BYTES // 6 + 1)
    book = CheckpointBook(CODEC)
    assert book.fits(_big(1, 1000))
    assert not book.fits(small_raw_but_escaped)
    with pytest.raises(OversizedEntryError):
        book.plan({"x": small_raw_but_escaped}, removed=())
