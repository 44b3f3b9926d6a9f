"""Held records' bytes: level-0 values without names, read back as they were, old forms too."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumers.held import (
    MAX_BUNDLE_BYTES,
    HeldCodec,
    HeldForm,
    HeldRecordError,
    LayoutError,
    bundle_size,
    entry_from_json,
)
from consumers.kanon import KAnonymityWindow, PendingEntry, level0_of
from consumers.release_policy import ReleasePlan
from tests.unit.consumers.level0_records import DEVICE, LOG, PLANS, POLICY, T0_HOUR, device, log

CODEC = HeldCodec(PLANS)
HOUR = T0_HOUR

# Written by the form before this one (`checkpoint.entry_bytes` and `encode_chunk` at
# commit 9d5a5eb): what a repartition topic or a compacted checkpoint may still hold.
FIRST_FORM_RECORD = (
    b'{"id":"raw.device:3:17","schema":"device_event","person":"9f9f9f9f9f9f9f9f9f9f9f9f9f9f9f9f",'
    b'"record":{"event_hour":1767272400000,"geohash":"wx4g0","brand":"Huawei","model":"P40",'
    b'"os_name":"Android","os_version":"12","app_id":null,"app_version":null,'
    b'"network_status":"WIFI","app_state":null,"battery_bucket":"50-79","battery_charging":true,'
    b'"storage_bucket":null,"screen_class":null,"signal_bucket":null,"installed_app_bucket":null},'
    b'"topic":"raw.device","partition":3,"raw_ts":1767272400042,"added_ms":1767272401000,'
    b'"size":575}'
)
FIRST_FORM_LOG = (
    b'{"id":"raw.log:3:18","schema":"log_event","person":"a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0",'
    b'"record":{"event_hour":1767272400000,"log_type":"CRASH","brand":"Huawei","model":"P40",'
    b'"os_name":null,"os_version":null,"app_id":"com.example","app_version":"2.4",'
    b'"usage_bucket":null,"url_template":null,"system_event":null,"message":"queue depth <*>"},'
    b'"topic":"raw.log","partition":3,"raw_ts":1767272400043,"added_ms":1767272401001,"size":235}'
)
FIRST_FORM_CHUNK = b"[" + FIRST_FORM_RECORD + b"," + FIRST_FORM_LOG + b"]"


def entry(n: int, record: dict[str, Any], person: str = "p") -> PendingEntry:
    schema = DEVICE if "geohash" in record else LOG
    return PendingEntry(f"raw:0:{n}", schema, person, record, ("raw", 0), HOUR + n, HOUR + 9, 300)


def reordered(schema: str) -> dict[str, ReleasePlan]:
    """The plans of a policy whose `schema` lists its fields after the time in reverse."""
    spec = POLICY.schemas[schema].release
    order = [spec.order[0], *reversed(spec.order[1:])]
    changed = ReleasePlan(schema, "", spec.model_copy(update={"order": order}), {})
    return {**PLANS, schema: changed}


def test_a_held_record_is_its_level0_values_and_reads_back_as_it_was() -> None:
    held = entry(1, device(os_version="12", battery_charging=True))
    value = CODEC.encode(held)
    assert b"geohash" not in value and b"wx4g0" in value
    taken = CODEC.decode(value, ("repartition", 4))
    assert taken == PendingEntry(**{**_fields(held), "source": ("repartition", 4)})
    assert level0_of(PLANS[DEVICE], taken) == PLANS[DEVICE].level0(held.record)


def _fields(e: PendingEntry) -> dict[str, Any]:
    names = ("pending_id", "schema", "person", "record", "source", "raw_timestamp_ms")
    return {n: getattr(e, n) for n in (*names, "added_ms", "size")}


def test_level0_values_are_computed_once_for_the_key_the_bytes_and_both_windows() -> None:
    calls = []
    plan = ReleasePlan(DEVICE, "", POLICY.schemas[DEVICE].release, {})
    original = plan.level0

    def counted(record: Any) -> tuple[Any, ...]:
        calls.append(1)
        return original(record)

    plan.level0 = counted  # type: ignore[method-assign]
    plans = {**PLANS, DEVICE: plan}
    codec = HeldCodec(plans)
    sent = entry(1, device())
    codec.level0(sent)  # the repartition key's
    value = codec.encode(sent)
    KAnonymityWindow(plans, k=1).add(sent, HOUR + 9)
    KAnonymityWindow(plans, k=1).restore([codec.decode(value, ("repartition", 0))])
    assert len(calls) == 1


def test_records_released_after_the_hop_are_those_released_without_it() -> None:
    rng = random.Random(5)
    records = [
        device(geohash=rng.choice(["wx4g0", "wx4g1", "u4pru"]), os_version=rng.choice("12"))
        if n % 3
        else log(app_version=rng.choice(["2.4", "2.5"]), message=rng.choice([None, "a <*>"]))
        for n in range(300)
    ]
    direct = KAnonymityWindow(PLANS, k=3, max_delay_ms=1000, rng=random.Random(1))
    hopped = KAnonymityWindow(PLANS, k=3, max_delay_ms=1000, rng=random.Random(1))
    for n, record in enumerate(records):
        held = entry(n, record, person=f"p{n % 40}")
        direct.add(held, HOUR + 9)
        copy = PendingEntry(**_fields(held))
        hopped.restore([CODEC.decode(CODEC.encode(copy), ("raw", 0))])
    out, via = direct.release(HOUR + 5_000), hopped.release(HOUR + 5_000)
    assert len(out.released) + len(out.suppressed) == len(records)
    assert [(r.entry, r.record, r.timestamp_ms, r.generalized) for r in out.released] == [
        (r.entry, r.record, r.timestamp_ms, r.generalized) for r in via.released
    ]
    assert out.suppressed == via.suppressed


def test_a_repartition_record_in_the_first_form_is_still_read() -> None:
    taken = CODEC.decode(FIRST_FORM_RECORD, ("repartition", 2))
    assert (taken.pending_id, taken.schema, taken.source) == (
        "raw.device:3:17",
        DEVICE,
        ("repartition", 2),
    )
    assert (taken.raw_timestamp_ms, taken.added_ms, taken.size) == (
        1767272400042,
        1767272401000,
        575,
    )
    assert taken.record["network_status"] == "WIFI" and taken.record["battery_charging"] is True


def test_a_checkpoint_chunk_in_the_first_form_is_still_read_and_can_be_held() -> None:
    restored = CODEC.decode_chunk(FIRST_FORM_CHUNK)
    assert [(e.pending_id, e.schema, e.source) for e in restored] == [
        ("raw.device:3:17", DEVICE, ("raw.device", 3)),
        ("raw.log:3:18", LOG, ("raw.log", 3)),
    ]
    assert restored[1].record["message"] == "queue depth <*>"
    window = KAnonymityWindow(PLANS, k=1, max_delay_ms=0)
    window.restore(restored)
    released = window.release(1767272401001)
    assert sorted(r.entry.pending_id for r in released.released) == [
        "raw.device:3:17",
        "raw.log:3:18",
    ]
    # Written again in the current form, they read back the same.
    again = CODEC.decode_chunk(CODEC.encode_chunk(("raw.device", 3), restored[:1]))
    assert again == restored[:1]


NAMED = HeldCodec(PLANS, form="named")


def _first_form_reader(value: bytes) -> list[PendingEntry]:
    """What the version before the compact form did with a chunk or a repartition record:
    JSON objects with named fields, nothing else."""
    items = json.loads(value)
    return [entry_from_json(item) for item in (items if isinstance(items, list) else [items])]


def test_the_named_codec_writes_the_first_form_byte_for_byte() -> None:
    restored = NAMED.decode_chunk(FIRST_FORM_CHUNK)
    assert NAMED.encode_chunk(("raw.device", 3), restored) == FIRST_FORM_CHUNK
    assert NAMED.encode(restored[0]) == FIRST_FORM_RECORD


def test_records_read_in_the_compact_form_are_written_named_for_older_workers() -> None:
    held = [entry(1, device(os_version="12")), entry(2, log(app_version="2.4"), person="q")]
    # Taken from the repartition topic in the compact form: they keep those bytes.
    taken = [CODEC.decode(CODEC.encode(e), ("repartition", 1)) for e in held]
    assert all(t.encoded is not None for t in taken)
    chunk = NAMED.encode_chunk(("repartition", 1), taken)
    assert chunk.startswith(b"[{")  # not the cached compact bytes
    older = _first_form_reader(chunk)
    assert [o.pending_id for o in older] == [e.pending_id for e in held]
    for before, after in zip(held, older, strict=True):
        plan = PLANS[before.schema]
        assert plan.level0(after.record) == plan.level0(before.record)
    assert [o.pending_id for o in CODEC.decode_chunk(chunk)] == [e.pending_id for e in held]
    single = _first_form_reader(NAMED.encode(taken[0]))[0]
    assert (single.person, single.raw_timestamp_ms) == (held[0].person, held[0].raw_timestamp_ms)


def test_a_named_chunk_stays_within_its_byte_budget() -> None:
    held = [entry(n, device(model="m" * 40)) for n in range(50)]
    chunk = NAMED.encode_chunk(("raw", 0), held)
    records = sum(len(NAMED.encode(e)) for e in held)
    assert len(chunk) <= records + len(held) - 1 + NAMED.chunk_overhead
    assert len(chunk) > records + len(held) - 1


def test_a_chunk_written_under_another_field_order_is_read_by_name() -> None:
    before = HeldCodec(reordered(DEVICE))
    held = [entry(1, device(os_version="12")), entry(2, log(app_version="2.4"))]
    restored = CODEC.decode_chunk(before.encode_chunk(("raw", 0), held))
    assert restored == held
    assert [level0_of(PLANS[e.schema], e) for e in restored] == [
        PLANS[e.schema].level0(e.record) for e in held
    ]


def test_a_repartition_record_in_an_unknown_field_order_is_refused() -> None:
    value = HeldCodec(reordered(DEVICE)).encode(entry(1, device()))
    with pytest.raises(LayoutError) as refused:
        CODEC.decode(value, ("repartition", 0))
    assert refused.value.reason == "held_layout_unknown"
    # The other schema's layout did not change: its records still pass.
    CODEC.decode(HeldCodec(reordered(DEVICE)).encode(entry(2, log())), ("repartition", 0))


@pytest.mark.parametrize(
    "value",
    [
        b"",
        b"not json",
        b"[]",
        b"3",
        b'["device_event"]',
        b'{"id": "x"}',
        b'["nope", "00000000", "id", "p", 1, 2, 3, 4]',
        # A value the window could not group on (a list) is refused here, not in the window.
        CODEC.encode(entry(1, device())).replace(b'"Huawei"', b'["Huawei"]'),
        # One value short of the layout.
        CODEC.encode(entry(1, device())).replace(b',"Huawei"', b""),
    ],
)
def test_a_malformed_held_record_is_refused_with_a_reason(value: bytes) -> None:
    with pytest.raises(HeldRecordError) as refused:
        CODEC.decode(value, ("repartition", 0))
    assert refused.value.reason in ("undecodable_held", "held_layout_unknown")
    if value:  # the same record inside a chunk: the chunk cannot be read
        with pytest.raises(HeldRecordError):
            CODEC.decode_chunk(b'{"fields":{},"source":["raw",0],"held":[' + value + b"]}")


def test_the_bytes_are_kept_until_the_arrival_time_changes() -> None:
    held = entry(1, device())
    first = CODEC.encode(held)
    assert CODEC.encode(held) is first
    KAnonymityWindow(PLANS).add(held, HOUR + 60_000)
    assert CODEC.decode(CODEC.encode(held), ("raw", 0)).added_ms == HOUR + 60_000


VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False),
    st.text(max_size=30),
)


@given(
    values=st.lists(VALUE, min_size=15, max_size=15),
    hours=st.integers(min_value=0, max_value=10**6),
    person=st.text(max_size=40),
)
def test_any_level0_values_round_trip_through_record_and_chunk(
    values: list[Any], hours: int, person: str
) -> None:
    plan = PLANS[DEVICE]
    record = {plan.time_field: hours * 3_600_000, **dict(zip(plan.fields[1:], values, strict=True))}
    held = PendingEntry("raw:1:2", DEVICE, person, record, ("raw", 1), -1, 5, 0)
    taken = CODEC.decode(CODEC.encode(held), ("raw", 1))
    assert taken == held
    assert level0_of(plan, taken) == plan.level0(record)
    assert CODEC.decode_chunk(CODEC.encode_chunk(("raw", 1), [held])) == [held]
    # A held record never holds a raw line break, so a bundle splits back into its records.
    assert b"\n" not in CODEC.encode(held)
    assert CODEC.decode_bundle(CODEC.encode(held) + b"\n" + CODEC.encode(held), ("raw", 1)) == [
        held,
        held,
    ]


# -- bundles: a batch's held records of one repartition key in one record ----------------


def test_a_bundle_reads_back_as_its_records_in_order_each_keeping_its_bytes() -> None:
    held = [entry(n, device() if n % 2 else log()) for n in range(5)]
    lines = [CODEC.encode(e) for e in held]
    (value,) = CODEC.bundles(lines)
    assert value == b"\n".join(lines)
    taken = CODEC.decode_bundle(value, ("repartition", 2))
    assert [_fields(e) for e in taken] == [
        {**_fields(e), "source": ("repartition", 2)} for e in held
    ]
    # The checkpoint joins each record's own bytes, not the bundle's.
    assert [e.encoded for e in taken] == lines
    assert bundle_size(value) == 5


def test_single_records_of_every_earlier_form_read_as_bundles_of_one() -> None:
    compact = CODEC.encode(entry(1, device()))
    assert [e.pending_id for e in CODEC.decode_bundle(compact, ("r", 0))] == ["raw:0:1"]
    (named,) = CODEC.decode_bundle(FIRST_FORM_RECORD, ("r", 0))
    assert named.pending_id == "raw.device:3:17"


@pytest.mark.parametrize("form", ["compact", "named"])
def test_the_upgrade_forms_write_one_held_record_per_repartition_record(form: HeldForm) -> None:
    codec = HeldCodec(PLANS, form=form)
    lines = [codec.encode(entry(n, device())) for n in range(3)]
    assert list(codec.bundles(lines)) == lines


def test_bundles_stay_within_their_byte_budget_and_a_larger_record_goes_alone() -> None:
    line = CODEC.encode(entry(1, device()))
    per_bundle = (MAX_BUNDLE_BYTES + 1) // (len(line) + 1)
    many = [line] * (per_bundle * 2 + 1)
    bundles = list(CODEC.bundles(many))
    assert [bundle_size(b) for b in bundles] == [per_bundle, per_bundle, 1]
    assert all(len(b) <= MAX_BUNDLE_BYTES for b in bundles)
    assert b"\n".join(bundles) == b"\n".join(many)  # nothing lost, nothing reordered
    huge = b"x" * (MAX_BUNDLE_BYTES + 1)
    assert list(CODEC.bundles([line, huge, line])) == [line, huge, line]


def test_one_unreadable_record_refuses_the_whole_bundle() -> None:
    good = CODEC.encode(entry(1, device()))
    for bad in (b"not json", b"", b'["device_event"]'):
        value = good + b"\n" + bad + b"\n" + good
        with pytest.raises(HeldRecordError):
            CODEC.decode_bundle(value, ("repartition", 0))
        assert bundle_size(value) == 3
