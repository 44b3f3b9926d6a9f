"""Tests of the streaming k-anonymity hold and its generalization hierarchy."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumers.generalize import (
    DEFAULT_HIERARCHY,
    QI_FIELDS,
    drop_brand,
    drop_model,
    drop_os_version,
    event_time_to_day,
    os_version_to_major,
    truncate_geohash,
)
from consumers.kanon import (
    DuplicatePendingError,
    KAnonymityBuffer,
    KAnonymityError,
    PendingEntry,
    ReleaseBatch,
)
from schemas.fields import field_tags

DEVICE = "anonymized_device_event"
LOG = "anonymized_log_event"
HOUR_MS = 3_600_000
T0_HOUR = int(datetime(2024, 3, 5, 14, tzinfo=UTC).timestamp() * 1000)
T0_DAY = int(datetime(2024, 3, 5, tzinfo=UTC).timestamp() * 1000)
QI = (
    "event_hour",
    "time_granularity",
    "brand",
    "model",
    "os_name",
    "os_version",
    "geohash",
    "time_zone",
    "ip_prefix",
)


def device(
    *,
    brand: str | None = "Huawei",
    model: str | None = "P40",
    os_name: str | None = "Android",
    os_version: str | None = "10.1",
    geohash: str | None = "wx4g0",
    event_hour: int = T0_HOUR,
) -> dict[str, Any]:
    """A level-0 anonymized device record."""
    return {
        "anon_id": "a",
        "event_hour": event_hour,
        "time_granularity": "HOUR",
        "app_id": "shop",
        "brand": brand,
        "model": model,
        "os_name": os_name,
        "os_version": os_version,
        "geohash": geohash,
        "generalization_level": 0,
        "policy_version": "1",
    }


def log(**qi: Any) -> dict[str, Any]:
    """A level-0 anonymized log record (no geohash field)."""
    record = device(**qi)
    del record["geohash"]
    record["log_type"] = "APP_OPEN"
    return record


def entry(pid: str, person: str, record: dict[str, Any], schema: str = DEVICE) -> PendingEntry:
    """A pending entry from partition 0 of the raw topic."""
    return PendingEntry(pid, schema, person, record, partition=("raw", 0), meta={"offset": 1})


def qi_of(record: dict[str, Any]) -> tuple[Any, ...]:
    """Released quasi-identifier tuple, missing fields as None."""
    return tuple(record.get(name) for name in QI)


def assert_k_anonymous(batch: ReleaseBatch, k: int) -> None:
    """Every released group (schema, QI tuple) of the batch has >= k distinct persons."""
    persons: dict[tuple[Any, ...], set[str]] = defaultdict(set)
    for e in batch.released:
        persons[(e.schema, qi_of(e.record))].add(e.person)
    for group in persons.values():
        assert len(group) >= k


def assert_ancestor(released: dict[str, Any], original: dict[str, Any]) -> None:
    """The released QI values are equal to or coarser than the original ones."""
    level = released["generalization_level"]
    if level == 0:
        assert qi_of(released) == qi_of(original)
    if original.get("geohash") is None:
        assert released.get("geohash") is None
    elif released.get("geohash") is not None:  # None is the hierarchy's root (no location)
        assert original["geohash"].startswith(released["geohash"])
    assert released["model"] in (None, original["model"])
    assert released["brand"] in (None, original["brand"])
    assert released["os_name"] == original["os_name"]
    version = original["os_version"]
    allowed = {None, version, version.split(".")[0] if version else None}
    assert released["os_version"] in allowed
    if released["time_granularity"] == "HOUR":
        assert released["event_hour"] == original["event_hour"]
    else:
        assert released["event_hour"] == original["event_hour"] // 86_400_000 * 86_400_000
    others = {n: v for n, v in released.items() if n not in QI and n != "generalization_level"}
    assert others == {
        n: v for n, v in original.items() if n not in QI and n != "generalization_level"
    }


# ---- hierarchy steps ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("precision", "before", "after"),
    [
        (4, "wx4g0", "wx4g"),
        (3, "wx4g", "wx4"),
        (2, "wx4", "wx"),
        (4, "wx4", "wx4"),
        (4, None, None),
    ],
)
def test_truncate_geohash_keeps_a_prefix(
    precision: int, before: str | None, after: str | None
) -> None:
    assert truncate_geohash(precision)({"geohash": before}) == {"geohash": after}


def test_truncate_geohash_leaves_a_log_record_without_geohash() -> None:
    assert truncate_geohash(4)({"brand": "x"}) == {"brand": "x"}


@pytest.mark.parametrize(
    ("before", "after"), [("14.2", "14"), ("10.0", "10"), ("14", "14"), (None, None)]
)
def test_os_version_to_major(before: str | None, after: str | None) -> None:
    assert os_version_to_major({"os_version": before}) == {"os_version": after}


@pytest.mark.parametrize(
    ("step", "name"),
    [(drop_model, "model"), (drop_brand, "brand"), (drop_os_version, "os_version")],
)
def test_drop_steps_set_the_field_to_none_without_mutating(step: Any, name: str) -> None:
    record = {name: "value", "other": 1}
    assert step(record) == {name: None, "other": 1}
    assert record == {name: "value", "other": 1}


def test_event_time_to_day_truncates_to_the_utc_day() -> None:
    late = int(datetime(2024, 3, 5, 23, tzinfo=UTC).timestamp() * 1000)
    out = event_time_to_day({"event_hour": late, "time_granularity": "HOUR"})
    assert out == {"event_hour": T0_DAY, "time_granularity": "DAY"}


@pytest.mark.parametrize(
    ("level", "changes"),
    [
        (0, {}),
        (1, {"geohash": "wx4g", "os_version": "10"}),
        (2, {"geohash": "wx4", "os_version": "10", "model": None}),
        (3, {"geohash": "wx", "os_version": "10", "model": None, "event_hour": T0_DAY}),
        (
            4,
            {
                "geohash": "wx",
                "os_version": None,
                "model": None,
                "brand": None,
                "event_hour": T0_DAY,
            },
        ),
    ],
)
def test_default_hierarchy_levels(level: int, changes: dict[str, Any]) -> None:
    original = device()
    expected = {**device(), **changes}
    if level >= 3:
        expected["time_granularity"] = "DAY"
    assert DEFAULT_HIERARCHY.generalize(original, level) == expected
    assert original == device()


def test_qi_fields_cover_the_schema_quasi_identifiers() -> None:
    for schema in (DEVICE, LOG):
        tagged = {t.name for t in field_tags(schema).values() if t.quasi_identifier}
        assert tagged <= set(QI_FIELDS)
    assert set(QI_FIELDS) == set(QI)


# ---- buffer behaviour -----------------------------------------------------------------------


def test_group_of_k_persons_at_level_zero_is_released_before_the_deadline() -> None:
    buf = KAnonymityBuffer(k=3, max_delay_ms=60_000, rng=random.Random(1))
    for i in range(3):
        buf.add(entry(f"e{i}", f"p{i}", device()), now_ms=1_000 + i)
    batch = buf.release(now_ms=2_000)
    assert sorted(e.pending_id for e in batch.released) == ["e0", "e1", "e2"]
    assert all(e.record["generalization_level"] == 0 for e in batch.released)
    assert batch.generalized == 0
    assert sorted(batch.hold_times) == [998, 999, 1_000]
    assert buf.pending_count == 0


@pytest.mark.parametrize(
    ("field", "common", "rare"),
    [("time_zone", "Asia/Shanghai", "Asia/Tokyo"), ("ip_prefix", "10.1.2.0/24", "10.9.9.0/24")],
)
def test_a_rare_time_zone_or_ip_prefix_is_generalized_away_not_released(
    field: str, common: str, rare: str
) -> None:
    buf = KAnonymityBuffer(k=3, max_delay_ms=5_000, rng=random.Random(1))
    for i, value in enumerate([common, common, rare]):
        buf.add(entry(f"e{i}", f"p{i}", {**device(), field: value}), now_ms=1_000)
    early = buf.release(now_ms=2_000)
    assert not early.released, "three persons, but only two share the value"
    batch = buf.release(now_ms=6_000)
    assert len(batch.released) == 3 and not batch.suppressed
    assert {e.record[field] for e in batch.released} == {None}
    assert {e.record["generalization_level"] for e in batch.released} == {1}


def test_same_person_fifty_times_never_satisfies_k_ten() -> None:
    buf = KAnonymityBuffer(k=10, max_delay_ms=60_000, rng=random.Random(1))
    for i in range(50):
        buf.add(entry(f"e{i}", "alice", device()), now_ms=i)
    assert buf.release(now_ms=59_999).released == []
    batch = buf.release(now_ms=60_049)
    assert batch.released == []
    assert len(batch.suppressed) == 50
    assert buf.pending_count == 0


def test_one_person_repeated_plus_nine_others_reaches_k_ten() -> None:
    buf = KAnonymityBuffer(k=10, max_delay_ms=60_000, rng=random.Random(1))
    for i in range(50):
        buf.add(entry(f"a{i}", "alice", device()), now_ms=0)
    for i in range(9):
        buf.add(entry(f"o{i}", f"p{i}", device()), now_ms=0)
    assert len(buf.release(now_ms=1).released) == 59


def test_expired_records_are_generalized_and_pooled_with_a_neighbour_cell() -> None:
    buf = KAnonymityBuffer(k=4, max_delay_ms=10_000, rng=random.Random(1))
    for i in range(2):
        buf.add(entry(f"a{i}", f"pa{i}", device(geohash="wx4g0")), now_ms=0)
        buf.add(entry(f"b{i}", f"pb{i}", device(geohash="wx4g1", os_version="10.2")), now_ms=0)
    assert buf.release(now_ms=9_999).released == []
    batch = buf.release(now_ms=10_000)
    assert len(batch.released) == 4
    assert {e.record["geohash"] for e in batch.released} == {"wx4g"}
    assert {e.record["os_version"] for e in batch.released} == {"10"}
    assert {e.record["generalization_level"] for e in batch.released} == {1}
    assert batch.generalized == 4


def test_expiring_record_releases_its_whole_pool_at_the_first_sufficient_level() -> None:
    buf = KAnonymityBuffer(k=3, max_delay_ms=10_000, rng=random.Random(1))
    buf.add(entry("old", "p0", device(geohash="wx4g0")), now_ms=0)
    for i in range(1, 5):
        buf.add(entry(f"new{i}", f"p{i}", device(geohash=f"wx4g{i}")), now_ms=5_000 + i)
    buf.add(entry("other", "p9", device(geohash="wx4e0")), now_ms=5_000)
    batch = buf.release(now_ms=10_000)
    assert sorted(e.pending_id for e in batch.released) == ["new1", "new2", "new3", "new4", "old"]
    assert {e.record["generalization_level"] for e in batch.released} == {1}
    assert [e.pending_id for e in buf] == ["other"]


def test_device_and_log_records_never_pool_together() -> None:
    buf = KAnonymityBuffer(k=10, max_delay_ms=1_000, rng=random.Random(1))
    for i in range(5):
        buf.add(entry(f"d{i}", f"p{i}", device()), now_ms=0)
        buf.add(entry(f"l{i}", f"p{i + 5}", log(), schema=LOG), now_ms=0)
    assert buf.pending_by_schema == {DEVICE: 5, LOG: 5}
    batch = buf.release(now_ms=1_000)
    assert batch.released == []
    assert len(batch.suppressed) == 10


def test_released_group_is_shuffled_with_the_given_rng() -> None:
    class Reversing(random.Random):
        def shuffle(self, x: list[Any]) -> None:  # type: ignore[override]
            x.reverse()

    buf = KAnonymityBuffer(k=5, rng=Reversing())
    for i in range(5):
        buf.add(entry(f"e{i}", f"p{i}", device()), now_ms=0)
    assert [e.pending_id for e in buf.release(now_ms=0).released] == ["e4", "e3", "e2", "e1", "e0"]


def test_released_record_is_a_copy_and_the_input_is_untouched() -> None:
    buf = KAnonymityBuffer(k=2, max_delay_ms=0, rng=random.Random(1))
    records = [device(geohash="wx4g0"), device(geohash="wx4g1")]
    for i, record in enumerate(records):
        buf.add(entry(f"e{i}", f"p{i}", record), now_ms=0)
    batch = buf.release(now_ms=0)
    assert len(batch.released) == 2
    assert records == [device(geohash="wx4g0"), device(geohash="wx4g1")]


def test_drop_partition_returns_its_entries_which_no_longer_count() -> None:
    buf = KAnonymityBuffer(k=2, max_delay_ms=60_000, rng=random.Random(1))
    buf.add(PendingEntry("a", DEVICE, "p1", device(), partition=("raw", 1)), now_ms=0)
    buf.add(PendingEntry("b", DEVICE, "p2", device(), partition=("raw", 2)), now_ms=0)
    dropped = buf.drop_partition(("raw", 1))
    assert [e.pending_id for e in dropped] == ["a"]
    assert buf.drop_partition(("raw", 1)) == []
    assert buf.release(now_ms=1).released == []
    assert [e.pending_id for e in buf] == ["b"]


def test_restore_keeps_arrival_times_and_deadlines() -> None:
    first = KAnonymityBuffer(k=3, max_delay_ms=10_000, rng=random.Random(1))
    first.add(entry("a", "p1", device()), now_ms=1_000)
    first.add(entry("b", "p2", device()), now_ms=4_000)
    second = KAnonymityBuffer(k=3, max_delay_ms=10_000, rng=random.Random(1))
    second.restore(reversed(list(first)))
    assert second.oldest_pending_ms() == 1_000
    assert [e.pending_id for e in second.release(now_ms=11_000).suppressed] == ["a"]
    assert second.oldest_pending_ms() == 4_000
    assert [e.pending_id for e in second.release(now_ms=14_000).suppressed] == ["b"]
    assert second.oldest_pending_ms() is None


def test_out_of_order_restore_after_add_still_meets_the_deadline() -> None:
    buf = KAnonymityBuffer(k=3, max_delay_ms=10_000, rng=random.Random(1))
    buf.add(entry("late", "p1", device()), now_ms=5_000)
    buf.restore([PendingEntry("early", DEVICE, "p2", device(), ("raw", 0), None, 1_000)])
    assert buf.oldest_pending_ms() == 1_000
    assert [e.pending_id for e in buf.release(now_ms=11_000).suppressed] == ["early"]


def test_duplicate_pending_id_is_refused() -> None:
    buf = KAnonymityBuffer(k=3)
    buf.add(entry("a", "p1", device()), now_ms=0)
    with pytest.raises(DuplicatePendingError):
        buf.add(entry("a", "p2", device()), now_ms=0)


@pytest.mark.parametrize(("k", "delay"), [(0, 1), (2, -1)])
def test_invalid_configuration_is_refused(k: int, delay: int) -> None:
    with pytest.raises(KAnonymityError):
        KAnonymityBuffer(k=k, max_delay_ms=delay)


# ---- invariants over random streams ---------------------------------------------------------

DEVICES = [("Huawei", "P40"), ("Huawei", "Mate30"), ("Xiaomi", "Mi10"), ("Xiaomi", None)]
GEOHASHES = ["wx4g0", "wx4g1", "wx4ep", "wtw3s", "ws10k", None]
VERSIONS = ["10.1", "10.2", "11.0", None]
HOURS = [T0_HOUR, T0_HOUR + HOUR_MS, T0_HOUR + 30 * HOUR_MS]

record_st = st.tuples(
    st.integers(0, 24),  # person
    st.sampled_from(DEVICES),
    st.sampled_from(GEOHASHES),
    st.sampled_from(VERSIONS),
    st.sampled_from(HOURS),
    st.sampled_from(["Android", "HarmonyOS"]),
    st.booleans(),  # log record
    st.integers(0, 2),  # partition
)
step_st = st.tuples(
    st.integers(0, 20_000),  # time advance
    st.lists(record_st, max_size=12),
    st.one_of(st.none(), st.integers(0, 2)),  # partition revoked in this step
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    k=st.integers(2, 12),
    delay=st.sampled_from([0, 1_000, 15_000, 60_000]),
    steps=st.lists(step_st, max_size=25),
    seed=st.integers(0, 3),
)
def test_every_release_is_k_anonymous_bounded_and_accounted(
    k: int, delay: int, steps: list[Any], seed: int
) -> None:
    buf = KAnonymityBuffer(k=k, max_delay_ms=delay, rng=random.Random(seed))
    originals: dict[str, dict[str, Any]] = {}
    arrival: dict[str, int] = {}
    seen_by_release: set[str] = set()
    added = released = suppressed = dropped = 0
    now, prev_release = 0, 0
    for n, (advance, records, revoke) in enumerate(steps):
        now += advance
        for i, (person, (brand, model), gh, ver, hour, os_name, is_log, part) in enumerate(records):
            qi = {"brand": brand, "model": model, "os_version": ver, "event_hour": hour}
            record = (
                log(**qi, os_name=os_name) if is_log else device(**qi, geohash=gh, os_name=os_name)
            )
            pid = f"{n}.{i}"
            originals[pid] = {**record}
            arrival[pid] = now
            schema = LOG if is_log else DEVICE
            buf.add(PendingEntry(pid, schema, f"p{person}", record, ("raw", part)), now_ms=now)
            added += 1
        if revoke is not None:
            out = buf.drop_partition(("raw", revoke))
            assert all(e.partition == ("raw", revoke) for e in out)
            dropped += len(out)
            seen_by_release -= {e.pending_id for e in out}
        batch = buf.release(now_ms=now)
        # (a) every group of this batch alone has >= k distinct persons
        assert_k_anonymous(batch, k)
        outs = batch.released + batch.suppressed
        for e in outs:
            # (b) nothing that a previous release already saw past its deadline is still held
            if e.pending_id in seen_by_release:
                assert arrival[e.pending_id] + delay > prev_release
            assert e.added_ms == arrival[e.pending_id]
        assert sorted(batch.hold_times) == sorted(now - arrival[e.pending_id] for e in outs)
        for e in buf:
            assert arrival[e.pending_id] + delay > now
        # (d) released QI is an ancestor-or-equal of the level-0 QI
        for e in batch.released:
            assert_ancestor(e.record, originals[e.pending_id])
        assert batch.generalized == sum(
            e.record["generalization_level"] > 0 for e in batch.released
        )
        released += len(batch.released)
        suppressed += len(batch.suppressed)
        # (c) accounting
        assert added == released + suppressed + buf.pending_count + dropped
        assert buf.pending_count == len(list(buf)) == sum(buf.pending_by_schema.values())
        oldest = buf.oldest_pending_ms()
        assert oldest == (min((e.added_ms for e in buf), default=None))
        seen_by_release = {e.pending_id for e in buf}
        prev_release = now
    ids = [e.pending_id for e in buf]
    assert len(ids) == len(set(ids))


# ---- realistic traffic ----------------------------------------------------------------------


def realistic_stream(rng: random.Random) -> list[tuple[int, str, str, dict[str, Any]]]:
    """20k records over 20 simulated minutes from 500 persons with skewed devices and places."""
    share = {"Huawei": 0.26, "Apple": 0.22, "Xiaomi": 0.18, "OPPO": 0.17, "vivo": 0.17}
    models_per_brand = {"Huawei": 8, "Apple": 5, "Xiaomi": 6, "OPPO": 5, "vivo": 4}
    cities = ["wx4g", "wtw3", "ws10"]  # Beijing, Shanghai, Shenzhen
    persons = []
    for p in range(500):
        brand = rng.choices(list(share), list(share.values()))[0]
        count = models_per_brand[brand]
        rank = rng.choices(range(count), [1 / (r + 1) for r in range(count)])[0]
        model = f"{brand}-{rank}"
        os_name = "iOS" if brand == "Apple" else "Android"
        major = rng.choice(["13", "14"]) if brand != "Apple" else rng.choice(["16", "17"])
        version = f"{major}.{rng.choice([0, 0, 1])}"
        city = rng.choices(cities, [5, 3, 2])[0]
        home = city + rng.choice("0123456789bcdefg"[:6])
        persons.append((f"person-{p}", brand, model, os_name, version, city, home))
    activity = [1 / (rank + 1) ** 0.6 for rank in range(500)]
    stream = []
    for n in range(20_000):
        now_ms = n * 60  # 20k records over 1200 s
        person, brand, model, os_name, version, city, home = rng.choices(persons, activity)[0]
        cell = home if rng.random() < 0.8 else city + rng.choice("0123456789bcdefg"[:6])
        qi = {"brand": brand, "model": model, "os_name": os_name, "os_version": version}
        hour = (T0_HOUR + now_ms) // HOUR_MS * HOUR_MS
        if rng.random() < 0.3:
            stream.append((now_ms, LOG, person, log(**qi, event_hour=hour)))
        else:
            stream.append((now_ms, DEVICE, person, device(**qi, geohash=cell, event_hour=hour)))
    return stream


def test_realistic_skewed_traffic_keeps_suppression_under_five_percent() -> None:
    rng = random.Random(7)
    buf = KAnonymityBuffer(k=10, max_delay_ms=60_000, rng=random.Random(7))
    levels: Counter[int] = Counter()
    released = suppressed = 0
    next_release = 0
    stream = realistic_stream(rng)
    for i, (now, schema, person, record) in enumerate(stream):
        buf.add(PendingEntry(str(i), schema, person, record), now_ms=now)
        if now >= next_release:
            batch = buf.release(now_ms=now)
            assert_k_anonymous(batch, 10)
            assert max(batch.hold_times, default=0) <= 61_000
            levels.update(e.record["generalization_level"] for e in batch.released)
            released += len(batch.released)
            suppressed += len(batch.suppressed)
            next_release = now + 1_000
    batch = buf.release(now_ms=stream[-1][0] + 61_000)
    assert_k_anonymous(batch, 10)
    released += len(batch.released)
    suppressed += len(batch.suppressed)
    levels.update(e.record["generalization_level"] for e in batch.released)
    total = len(stream)
    assert released + suppressed == total
    rates = {lvl: round(c / total, 4) for lvl, c in sorted(levels.items())}
    print(f"suppressed {suppressed / total:.4f}, released by level {rates}")
    assert suppressed / total < 0.05


def test_the_last_step_drops_the_location_before_anything_is_suppressed() -> None:
    from consumers.generalize import DEFAULT_HIERARCHY

    record = {
        "geohash": "wx4g0",
        "location_source": "GPS",
        "event_hour": 1_709_647_200_000,
        "time_granularity": "HOUR",
        "brand": "Huawei",
        "model": "P40",
        "os_name": "Android",
        "os_version": "10.1",
    }
    top = DEFAULT_HIERARCHY.generalize(record, DEFAULT_HIERARCHY.top)
    assert top["geohash"] is None
    assert top["location_source"] == "GPS"
