"""Grouping: every group has k distinct persons and is generalized only as far as it must be."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumers.grouping import Grouping, Paths, group
from consumers.ladders import (
    DAY,
    DAY_MS,
    HOUR_MS,
    SIX_HOURS,
    SIX_HOURS_MS,
    Ladder,
    prefix,
    time_bucket,
    time_value,
    withheld,
)

DAY0 = 1_767_225_600_000
LADDERS = (
    Ladder("event_hour", (time_bucket(SIX_HOURS_MS, SIX_HOURS), time_bucket(DAY_MS, DAY))),
    Ladder("geohash", (prefix(4), prefix(3), prefix(2), withheld)),
    Ladder("brand", (withheld,)),
    Ladder("model", (withheld,)),
)


def paths(hour: int, geohash: str | None, brand: str | None, model: str | None) -> Paths:
    level0 = (time_value(DAY0 + hour * HOUR_MS), geohash, brand, model)
    return tuple(ladder.values(value) for ladder, value in zip(LADDERS, level0, strict=True))


def run(records: list[tuple[str, Paths]], k: int) -> Grouping:
    return group([p for _person, p in records], [person for person, _p in records], k)


def assert_sound(records: list[tuple[str, Paths]], result: Grouping, k: int) -> None:
    """Each record placed once; each group of k persons; its content covers every member."""
    placed = [i for g in result.groups for i in g.members] + result.suppressed
    assert sorted(placed) == list(range(len(records)))
    persons_by_content: dict[tuple[Any, ...], set[str]] = defaultdict(set)
    for g in result.groups:
        for i in g.members:
            person, record = records[i]
            persons_by_content[g.content].add(person)
            for ladder_values, value in zip(record, g.content, strict=True):
                assert value in ladder_values, "content is a generalization of the record"
    for content, persons in persons_by_content.items():
        assert len(persons) >= k, (content, len(persons))


def test_a_dense_cell_keeps_its_precise_values_while_a_sparse_one_climbs() -> None:
    dense = [(f"d{i}", paths(0, "wx4g0", "Huawei", "P40")) for i in range(12)]
    sparse = [(f"s{i}", paths(0, f"ws10{c}", "Xiaomi", "Mi10")) for i, c in enumerate("0123456789")]
    result = run(dense + sparse, k=10)
    assert_sound(dense + sparse, result, 10)
    contents = {g.content for g in result.groups}
    assert (time_value(DAY0), "wx4g0", "Huawei", "P40") in contents
    assert (time_value(DAY0), "ws10", "Xiaomi", "Mi10") in contents
    assert not result.suppressed


def test_one_person_many_times_never_makes_a_group() -> None:
    records = [("alone", paths(0, "wx4g0", "Huawei", "P40"))] * 50
    result = run(records, k=10)
    assert result.suppressed == list(range(50))
    assert not result.groups


def test_one_heavy_person_plus_nine_others_makes_one_group_of_ten() -> None:
    records = [("heavy", paths(0, "wx4g0", "Huawei", "P40"))] * 40
    records += [(f"p{i}", paths(0, "wx4g0", "Huawei", "P40")) for i in range(9)]
    result = run(records, k=10)
    assert_sound(records, result, 10)
    assert len(result.groups) == 1 and not result.suppressed


def test_fields_a_group_disagrees_on_are_withheld_the_rest_kept() -> None:
    records = [(f"p{i}", paths(0, "wx4g0", "Huawei", f"model-{i}")) for i in range(10)]
    result = run(records, k=10)
    assert [g.content for g in result.groups] == [(time_value(DAY0), "wx4g0", "Huawei", None)]


def test_records_of_two_days_never_share_a_content() -> None:
    today = [(f"p{i}", paths(0, "wx4g0", "Huawei", "P40")) for i in range(10)]
    yesterday = [(f"q{i}", paths(-24, "wx4g0", "Huawei", "P40")) for i in range(3)]
    result = run(today + yesterday, k=10)
    assert_sound(today + yesterday, result, 10)
    assert result.suppressed == list(range(10, 13)), "three persons of another day"


def test_late_records_of_an_earlier_hour_fall_back_to_a_wider_time_bucket() -> None:
    now = [(f"p{i}", paths(13, "wx4g0", "Huawei", "P40")) for i in range(30)]
    late = [(f"p{i}", paths(12, "wx4g0", "Huawei", "P40")) for i in range(4)]
    result = run(now + late, k=10)
    assert_sound(now + late, result, 10)
    by_index = {i: g.content for g in result.groups for i in g.members}
    assert by_index[0][0] == time_value(DAY0 + 13 * HOUR_MS), "the hour keeps its precision"
    assert by_index[30][0] == (DAY0 + 12 * HOUR_MS, SIX_HOURS), "late ones share 6 hours"
    assert not result.suppressed


def test_a_small_remainder_joins_the_nearest_group_rather_than_being_suppressed() -> None:
    city = [(f"c{i}", paths(0, f"wx4g{i % 2}", "Huawei", "P40")) for i in range(24)]
    edge = [(f"e{i}", paths(0, "wx4gz", "Huawei", "P40")) for i in range(4)]
    result = run(city + edge, k=10)
    assert_sound(city + edge, result, 10)
    assert not result.suppressed
    kept = sorted(g.content[1] for g in result.groups)
    assert kept in (["wx4g", "wx4g1"], ["wx4g", "wx4g0"]), "one cell climbs one rung, one keeps 5"


def test_a_remainder_borrows_persons_from_a_group_that_has_more_than_k() -> None:
    city = [(f"c{i}", paths(0, "wx4g0", "Huawei", "P40")) for i in range(30)]
    edge = [(f"e{i}", paths(0, "wx4gz", "Huawei", "P40")) for i in range(4)]
    result = run(city + edge, k=10)
    assert_sound(city + edge, result, 10)
    contents = sorted((g.content[1], len(g.members)) for g in result.groups)
    assert contents == [("wx4g", 10), ("wx4g0", 24)], "six persons lent, 24 keep precision"


def test_a_lone_record_joins_a_small_group_but_never_coarsens_a_large_one() -> None:
    few = [(f"c{i}", paths(0, "wx4g0", "Huawei", "P40")) for i in range(10)]
    lone = [("far", paths(0, "ws10k", "Xiaomi", "Mi10"))]
    result = run(few + lone, k=10)
    assert_sound(few + lone, result, 10)
    assert not result.suppressed
    assert [g.content[1:] for g in result.groups] == [(None, None, None)]
    city = [(f"c{i % 10}", paths(0, "wx4g0", "Huawei", "P40")) for i in range(60)]
    lone = [("far", paths(0, "ws10k", "Xiaomi", "Mi10"))]
    result = run(city + lone, k=10)
    assert_sound(city + lone, result, 10)
    assert result.suppressed == [60]
    assert [g.content[1:] for g in result.groups] == [("wx4g0", "Huawei", "P40")]


def test_the_same_input_gives_the_same_groups() -> None:
    records = [
        (f"p{i % 13}", paths(i % 3, f"wx4g{i % 5}", "Huawei", f"m{i % 4}")) for i in range(200)
    ]
    first, second = run(records, 5), run(records, 5)
    assert [(g.members, g.content) for g in first.groups] == [
        (g.members, g.content) for g in second.groups
    ]


RECORD = st.tuples(
    st.integers(0, 30),  # person
    st.sampled_from([0, 1, 5, 7, 23, 24]),  # hour
    st.sampled_from(["wx4g0", "wx4g1", "wx4ep", "wtw3s", "ws10k", None]),
    st.sampled_from(["Huawei", "Xiaomi", None]),
    st.sampled_from(["P40", "Mate30", "Mi10", None]),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(RECORD, max_size=150), st.integers(1, 12))
def test_any_input_gives_groups_of_k_persons_whose_content_covers_them(
    rows: list[tuple[int, int, str | None, str | None, str | None]], k: int
) -> None:
    records = [(f"p{person}", paths(hour, g, b, m)) for person, hour, g, b, m in rows]
    result = run(records, k)
    assert_sound(records, result, k)
    if len({person for person, _p in records}) < k:
        assert not result.groups
