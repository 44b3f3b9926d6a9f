"""The k-anonymity window: whole pools leave at their deadline, k persons per visible content."""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumers.kanon import (
    DuplicatePendingError,
    KAnonymityError,
    KAnonymityWindow,
    PendingEntry,
    ReleaseBatch,
)
from tests.unit.consumers.level0_records import (
    DEVICE,
    HOUR_MS,
    LOG,
    PLANS,
    POLICY,
    T0_HOUR,
    device,
    log,
)


def entry(pid: str, person: str, record: dict[str, Any], partition: int = 0) -> PendingEntry:
    schema = DEVICE if "geohash" in record else LOG
    return PendingEntry(pid, schema, person, record, source=("raw", partition), raw_timestamp_ms=1)


def window(
    k: int = 10,
    delay: int = 60_000,
    seed: int = 0,
    margin: int | None = None,
    spread: int | None = None,
) -> KAnonymityWindow:
    return KAnonymityWindow(
        PLANS, k=k, max_delay_ms=delay, rng=random.Random(seed), margin_ms=margin, spread_ms=spread
    )


def visible_classes(batch: ReleaseBatch) -> dict[tuple[Any, ...], set[str]]:
    """Distinct persons per everything an analyst sees: every field but anon_id, and the time."""
    classes: dict[tuple[Any, ...], set[str]] = defaultdict(set)
    for released in batch.released:
        seen = tuple(sorted(released.record.items(), key=lambda kv: kv[0]))
        classes[(released.entry.schema, released.timestamp_ms, seen)].add(released.entry.person)
    return classes


def assert_k_anonymous(batch: ReleaseBatch, k: int) -> None:
    small = [len(p) for p in visible_classes(batch).values() if len(p) < k]
    assert not small, f"visible contents shared by fewer than {k} persons: {small}"


def test_nothing_leaves_before_the_oldest_record_is_within_the_margin_of_its_deadline() -> None:
    w = window(spread=0)
    assert w.margin_ms == 1_000, "a sixtieth of δ by default"
    for i in range(12):
        w.add(entry(str(i), f"p{i}", device()), now_ms=i * 1000)
    assert not w.release(now_ms=58_999).released
    batch = w.release(now_ms=59_000)
    assert len(batch.released) == 12, "the whole pool leaves, the young records too"
    assert_k_anonymous(batch, 10)
    assert sorted(batch.hold_times) == sorted(59_000 - i * 1000 for i in range(12))
    assert w.pending_count == 0


def test_a_pool_due_before_the_next_expected_call_leaves_now() -> None:
    """Calls 1.5 s apart: the pool due at 59 s leaves at the call of 58.5 s, not at the
    next one, which would hold it past δ."""
    w = window(spread=0)
    for i in range(10):
        w.add(entry(str(i), f"p{i}", device()), now_ms=0)
    assert not w.release(now_ms=57_000).released
    assert len(w.release(now_ms=58_500).released) == 10


def test_one_long_gap_between_calls_is_expected_again_for_a_while() -> None:
    """After a long loop turn (as the one after a release) the next call, a short gap
    later, still expects the next one about as far ahead (less an eighth per call)."""
    w = window(spread=0)
    for i in range(10):
        w.add(entry(str(i), f"p{i}", device()), now_ms=0)
    assert not w.release(now_ms=57_590).released
    assert not w.release(now_ms=58_290).released  # a 700 ms gap: looks to 58,990
    # 100 ms later it still looks 613 ms ahead (700 less an eighth), to 59,003: past
    # the deadline of 59,000 (δ less the margin), so the pool leaves now.
    assert len(w.release(now_ms=58_390).released) == 10


def test_the_expected_gap_between_calls_counts_a_quarter_of_the_delay_at_most() -> None:
    w = window(spread=0)
    for i in range(10):
        w.add(entry(str(i), f"p{i}", device()), now_ms=0)
    assert not w.release(now_ms=0).released
    # 40 s since the last call: counted as 15 s, so not yet due (59 s > 40 + 15).
    assert not w.release(now_ms=40_000).released
    assert len(w.release(now_ms=59_000).released) == 10


def spread_pool(w: KAnonymityWindow, groups: int) -> None:
    """`groups` groups of ten persons each (one model per group), all added at time 0."""
    for g in range(groups):
        for i in range(10):
            w.add(entry(f"{g}.{i}", f"p{g}.{i}", device(model=f"M{g}")), now_ms=0)


def test_a_formed_pool_leaves_over_the_spread_in_whole_groups_on_a_linear_schedule() -> None:
    assert window().spread_ms == 1_000, "a sixtieth of δ by default"
    w = window(spread=3_000)
    spread_pool(w, 6)
    assert not w.release(now_ms=55_999).released
    w = window(spread=3_000)  # no earlier call: the schedule is met as of this call
    spread_pool(w, 6)
    assert not w.release(now_ms=56_000).released, "grouped at the start of the spread"
    assert w.pending_count == 60, "a group waiting to leave is still held"
    assert len(list(w)) == 60 and w.pending_by_schema == {DEVICE: 60}
    assert w.oldest_pending_ms() == 0
    seen: list[int] = []
    # Each call sends the share due by the next call, expected as far ahead as the last:
    # 1/6 of the spread by 56,500, then 7/12 (35 records, so 4 groups) by 57,750, then all.
    for now in (56_250, 57_000, 59_000):
        batch = w.release(now_ms=now)
        assert_k_anonymous(batch, 10)
        assert {len(persons) for persons in visible_classes(batch).values()} == {10}
        seen.append(len(batch.released))
    assert seen == [10, 30, 20]
    assert w.pending_count == 0 and w.held_bytes == 0 and w.oldest_pending_ms() is None


def test_a_late_release_call_sends_every_formed_group_at_once() -> None:
    w = window(spread=3_000)
    spread_pool(w, 3)
    assert not w.release(now_ms=56_000).released
    assert len(w.release(now_ms=61_000).released) == 30, "past the schedule's end"


def test_a_revocation_dissolves_the_waiting_groups_that_lose_a_member() -> None:
    w = window(spread=3_000)
    spread_pool(w, 4)
    lost = entry("lost", "p-lost", device(model="M0"), partition=1)
    w.add(lost, now_ms=0)
    assert not w.release(now_ms=56_000).released
    dropped = w.drop_partition(("raw", 1))
    assert [e.pending_id for e in dropped] == ["lost"]
    assert w.pending_count == 40 and len(list(w)) == 40
    # The group that held "lost" went back to its pool, with its arrival times: it is due
    # at once, so it is grouped again and leaves with the rest by the schedule's end.
    batch = w.release(now_ms=59_000)
    assert_k_anonymous(batch, 10)
    assert len(batch.released) == 40 and w.pending_count == 0
    assert max(batch.hold_times) == 59_000


def test_at_its_cap_every_waiting_group_leaves_at_once() -> None:
    w = KAnonymityWindow(
        PLANS, k=10, max_delay_ms=60_000, rng=random.Random(0), max_held=40, spread_ms=3_000
    )
    spread_pool(w, 4)
    assert not w.release(now_ms=56_000).released
    w.add(entry("one-more", "p-new", log()), now_ms=56_000)
    batch = w.release(now_ms=56_000)
    assert batch.capped_released == 40 and len(batch.released) == 40
    assert w.pending_count == 1


@pytest.mark.parametrize(
    ("delay", "spread", "expected"), [(60_000, None, 1_000), (60_000, 50_000, 29_500), (0, 5, 0)]
)
def test_the_spread_is_at_most_half_of_what_the_margin_leaves_of_the_delay(
    delay: int, spread: int | None, expected: int
) -> None:
    assert window(delay=delay, spread=spread).spread_ms == expected


def test_the_released_record_is_the_shared_content_with_the_time_as_kafka_timestamp() -> None:
    w = window()
    for i in range(10):
        w.add(entry(str(i), f"p{i}", device(model=f"model-{i}", battery_bucket="80-100")), 0)
    released = w.release(now_ms=60_000).released
    record = released[0].record
    assert record["brand"] == "Huawei" and record["model"] is None
    assert record["battery_bucket"] == "80-100"
    assert record["time_granularity"] == "HOUR"
    assert record["policy_version"] == POLICY.version
    assert "anon_id" not in record
    assert {r.timestamp_ms for r in released} == {T0_HOUR}
    assert released[0].generalized == ("model",)


def test_one_person_fifty_times_is_suppressed_not_released() -> None:
    w = window()
    for i in range(50):
        w.add(entry(str(i), "only", device()), now_ms=0)
    batch = w.release(now_ms=60_000)
    assert not batch.released
    assert len(batch.suppressed) == 50


def test_device_and_log_records_are_held_and_released_apart() -> None:
    w = window()
    for i in range(10):
        w.add(entry(f"d{i}", f"p{i}", device()), now_ms=0)
        w.add(entry(f"l{i}", f"p{i}", log()), now_ms=30_000)
    batch = w.release(now_ms=60_000)
    assert {r.entry.schema for r in batch.released} == {DEVICE}
    assert w.pending_by_schema == {LOG: 10}
    assert {r.entry.schema for r in w.release(now_ms=90_000).released} == {LOG}


def test_released_records_leave_in_the_order_the_rng_shuffles() -> None:
    def order(seed: int) -> list[str]:
        w = window(seed=seed)
        for i in range(30):
            w.add(entry(str(i), f"p{i}", device()), now_ms=0)
        return [r.entry.pending_id for r in w.release(now_ms=60_000).released]

    assert order(1) == order(1)
    assert order(1) != order(2)
    assert order(1) != [str(i) for i in range(30)]


def test_drop_partition_returns_its_entries_which_no_longer_count() -> None:
    w = window()
    for i in range(6):
        w.add(entry(str(i), f"p{i}", device(), partition=i % 2), now_ms=0)
    dropped = w.drop_partition(("raw", 1))
    assert sorted(e.pending_id for e in dropped) == ["1", "3", "5"]
    assert w.pending_count == 3 and len(list(w)) == 3
    assert w.drop_partition(("raw", 1)) == []


def test_restore_keeps_arrival_times_and_the_deadline_they_imply() -> None:
    w = window()
    restored = [entry(str(i), f"p{i}", device()) for i in range(10)]
    for e in restored:
        e.added_ms = 5_000
    w.restore(restored)
    assert w.oldest_pending_ms() == 5_000
    assert not w.release(now_ms=63_999).released
    assert len(w.release(now_ms=64_000).released) == 10


def test_a_restored_older_record_after_newer_ones_still_meets_its_deadline() -> None:
    w = window()
    w.add(entry("new", "p0", device()), now_ms=50_000)
    old = entry("old", "p1", device())
    old.added_ms = 1_000
    w.restore([old])
    assert w.oldest_pending_ms() == 1_000
    batch = w.release(now_ms=60_000)
    assert len(batch.released) + len(batch.suppressed) == 2


def test_duplicate_pending_id_is_refused() -> None:
    w = window()
    w.add(entry("x", "p", device()), now_ms=0)
    with pytest.raises(DuplicatePendingError):
        w.add(entry("x", "p", device()), now_ms=1)


@pytest.mark.parametrize(("k", "delay", "spread"), [(0, 1000, None), (5, -1, None), (5, 10, -1)])
def test_invalid_configuration_is_refused(k: int, delay: int, spread: int | None) -> None:
    with pytest.raises(KAnonymityError):
        KAnonymityWindow(PLANS, k=k, max_delay_ms=delay, spread_ms=spread)


# ---- invariants over random streams ---------------------------------------------------------

RECORD = st.tuples(
    st.integers(0, 24),  # person
    st.sampled_from([("Huawei", "P40"), ("Huawei", "Mate30"), ("Xiaomi", "Mi10"), (None, None)]),
    st.sampled_from(["wx4g0", "wx4g1", "wx4ep", "wtw3s", "ws10k", None]),
    st.sampled_from(["10.1", "10.2", "11.0", None]),
    st.sampled_from([T0_HOUR, T0_HOUR + HOUR_MS, T0_HOUR + 30 * HOUR_MS]),
    st.sampled_from(["0-19", "80-100", None]),
    st.booleans(),  # a log record
    st.integers(0, 2),  # partition
)
STEP = st.tuples(
    st.integers(0, 40_000),  # time advance
    st.lists(RECORD, max_size=15),
    st.one_of(st.none(), st.integers(0, 2)),  # a partition revoked in this step
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    k=st.integers(2, 12),
    delay=st.sampled_from([0, 1_000, 15_000, 60_000]),
    steps=st.lists(STEP, max_size=25),
    seed=st.integers(0, 3),
    spread=st.sampled_from([None, 0, 7_000, 60_000]),
)
def test_every_release_is_k_anonymous_bounded_and_accounted(
    k: int, delay: int, steps: list[Any], seed: int, spread: int | None
) -> None:
    w = window(k=k, delay=delay, seed=seed, spread=spread)
    arrival: dict[str, int] = {}
    added = released = suppressed = dropped = 0
    now = 0
    for n, (advance, records, revoke) in enumerate(steps):
        now += advance
        for i, (person, (brand, model), gh, ver, hour, battery, is_log, part) in enumerate(records):
            values = {"brand": brand, "model": model, "os_version": ver, "event_hour": hour}
            record = (
                log(**values) if is_log else device(**values, geohash=gh, battery_bucket=battery)
            )
            pid = f"{n}.{i}"
            arrival[pid] = now
            w.add(entry(pid, f"p{person}", record, partition=part), now_ms=now)
            added += 1
        if revoke is not None:
            out = w.drop_partition(("raw", revoke))
            assert all(e.source == ("raw", revoke) for e in out)
            dropped += len(out)
        batch = w.release(now_ms=now)
        # (a) every visible content of this release has k distinct persons
        assert_k_anonymous(batch, k)
        # (b) the delay is bounded: nothing still held is past its deadline
        assert all(arrival[e.pending_id] + delay > now for e in w)
        outs = [r.entry for r in batch.released] + batch.suppressed
        assert sorted(batch.hold_times) == sorted(now - arrival[e.pending_id] for e in outs)
        # (c) released values generalize the record's own
        for r in batch.released:
            plan = PLANS[r.entry.schema]
            paths = plan.paths(plan.level0(r.entry.record))
            content = [r.record[name] for name in plan.fields[1:]]
            assert all(v in ladder for v, ladder in zip(content, paths[1:], strict=True))
        released += len(batch.released)
        suppressed += len(batch.suppressed)
        # (d) accounting
        assert added == released + suppressed + w.pending_count + dropped
        assert w.pending_count == len(list(w)) == sum(w.pending_by_schema.values())
        assert w.oldest_pending_ms() == min((e.added_ms for e in w), default=None)


# ---- realistic traffic ----------------------------------------------------------------------


def test_realistic_skewed_traffic_keeps_suppression_under_five_percent() -> None:
    """20k records over 20 simulated minutes from 500 persons with skewed devices and places."""
    rng = random.Random(7)
    share = {"Huawei": 0.26, "Apple": 0.22, "Xiaomi": 0.18, "OPPO": 0.17, "vivo": 0.17}
    cities = ["wx4g", "wtw3", "ws10"]
    persons = []
    for p in range(500):
        brand = rng.choices(list(share), list(share.values()))[0]
        model = f"{brand}-{rng.choices(range(6), [1 / (r + 1) for r in range(6)])[0]}"
        city = rng.choices(cities, [5, 3, 2])[0]
        persons.append((f"person-{p}", brand, model, city, city + rng.choice("0123456789")))
    activity = [1 / (rank + 1) ** 0.6 for rank in range(500)]
    w = window(k=10, delay=60_000, seed=7)
    released = suppressed = 0
    for n in range(20_000):
        now = n * 60
        person, brand, model, city, home = rng.choices(persons, activity)[0]
        cell = home if rng.random() < 0.8 else city + rng.choice("0123456789")
        hour = (T0_HOUR + now) // HOUR_MS * HOUR_MS
        values = {"brand": brand, "model": model, "event_hour": hour}
        record = log(**values) if rng.random() < 0.3 else device(**values, geohash=cell)
        w.add(entry(str(n), person, record), now_ms=now)
        if n % 20 == 0:
            batch = w.release(now_ms=now)
            assert_k_anonymous(batch, 10)
            assert max(batch.hold_times, default=0) <= 60_000 + 1_200
            released += len(batch.released)
            suppressed += len(batch.suppressed)
    batch = w.release(now_ms=20_000 * 60 + 61_000)
    assert_k_anonymous(batch, 10)
    released += len(batch.released)
    suppressed += len(batch.suppressed)
    assert released + suppressed == 20_000
    assert suppressed / 20_000 < 0.05


def test_at_its_count_cap_the_window_groups_its_largest_pool_early() -> None:
    # One person's flood cannot form a group: at the cap it is suppressed, not held on.
    w = KAnonymityWindow(PLANS, k=10, max_delay_ms=60_000, rng=random.Random(0), max_held=100)
    for n in range(150):
        w.add(entry(f"flood:{n}", "p-one", device()), now_ms=1_000)
    for n in range(20):
        w.add(entry(f"log:{n}", f"p{n}", log()), now_ms=1_000)
    batch = w.release(now_ms=1_001)
    assert batch.capped_suppressed == 150 and batch.capped_released == 0
    assert w.pending_count == 20  # the smaller pool waits for its deadline
    assert w.release(now_ms=1_002).suppressed == []


def test_at_its_byte_cap_the_window_releases_what_can_form_groups() -> None:
    w = KAnonymityWindow(
        PLANS, k=10, max_delay_ms=60_000, rng=random.Random(0), max_held_bytes=50_000
    )
    for n in range(30):
        e = entry(f"d:{n}", f"p{n}", device())
        e.size = 1000
        w.add(e, now_ms=1_000)
    assert w.held_bytes == 30 * (1000 + 1024)
    batch = w.release(now_ms=1_001)
    assert batch.capped_released == 30 and batch.capped_suppressed == 0
    assert w.pending_count == 0 and w.held_bytes == 0
