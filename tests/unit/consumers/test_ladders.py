"""Ladder rungs: each a small function of the rung below, so the rungs form a hierarchy."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumers.ladders import (
    DAY,
    DAY_MS,
    HOUR,
    HOUR_MS,
    SIX_HOURS,
    SIX_HOURS_MS,
    Ladder,
    first_segment,
    host,
    major,
    mapping,
    prefix,
    text_category,
    time_bucket,
    time_value,
    withheld,
)

T = 1_767_225_600_000 + 13 * HOUR_MS + 1_234_567  # 13:20:34 UTC on a day start


def test_a_geohash_ladder_climbs_by_prefix_to_withheld() -> None:
    ladder = Ladder("geohash", (prefix(4), prefix(3), prefix(2), withheld))
    assert ladder.values("wx4g0") == ("wx4g0", "wx4g", "wx4", "wx", None)
    assert ladder.values(None) == (None, None, None, None, None)
    assert ladder.top == 4


@pytest.mark.parametrize(("value", "expected"), [("14.2", "14"), ("13", "13"), ("", None)])
def test_major_keeps_the_major_part(value: str, expected: str | None) -> None:
    assert major(value) == expected


@pytest.mark.parametrize(
    ("url", "first", "only_host"),
    [
        (
            "https://m.example.cn/order/{id}/detail",
            "https://m.example.cn/order",
            "https://m.example.cn",
        ),
        ("https://m.example.cn/home", "https://m.example.cn/home", "https://m.example.cn"),
        ("https://m.example.cn", "https://m.example.cn", "https://m.example.cn"),
        ("not a url", None, None),
    ],
)
def test_url_rungs_cut_to_the_first_segment_then_the_host(
    url: str, first: str | None, only_host: str | None
) -> None:
    assert first_segment(url) == first
    assert host(url) == only_host


def test_a_map_rung_withholds_what_it_does_not_list() -> None:
    rung = mapping({"0-19": "0-49", "20-49": "0-49"})
    assert rung("20-49") == "0-49"
    assert rung("80-100") is None


def test_time_rungs_widen_the_bucket_and_say_its_granularity() -> None:
    ladder = Ladder(
        "event_hour",
        (time_bucket(SIX_HOURS_MS, SIX_HOURS), time_bucket(DAY_MS, DAY)),
        is_time=True,
    )
    hour = time_value(T)
    assert hour == (T - T % HOUR_MS, HOUR)
    assert ladder.values(hour) == (
        hour,
        (T - T % SIX_HOURS_MS, SIX_HOURS),
        (T - T % DAY_MS, DAY),
    )


def test_the_category_rung_of_a_template() -> None:
    assert text_category("java.lang.OutOfMemoryError: Failed <*>") == "java.lang.OutOfMemoryError"


def test_a_ladder_remembers_each_level0_value() -> None:
    calls: list[Any] = []

    def counting(value: Any) -> Any:
        calls.append(value)
        return None

    ladder = Ladder("brand", (counting,))
    assert ladder.values("Huawei") is ladder.values("Huawei")
    assert calls == ["Huawei"]


GEOHASH = st.text(alphabet="0123456789bcdefghjkmnpqrstuvwxyz", min_size=5, max_size=5)


@given(st.lists(GEOHASH, min_size=2, max_size=2))
def test_values_that_agree_at_one_rung_agree_at_every_rung_above(pair: list[str]) -> None:
    ladder = Ladder("geohash", (prefix(4), prefix(3), prefix(2), withheld))
    first, second = (ladder.values(v) for v in pair)
    for rung in range(ladder.top + 1):
        if first[rung] == second[rung]:
            assert first[rung:] == second[rung:]


def test_a_plan_reads_level0_values_in_its_order_and_a_missing_field_as_none() -> None:
    from consumers.anonymization_config import load_policy
    from consumers.release_policy import ReleasePlan

    spec = load_policy().schemas["log_event"]
    plan = ReleasePlan("log_event", spec.output, spec.release, {})
    record: dict[str, Any] = {name: f"v-{name}" for name in reversed(plan.fields)}
    record[plan.time_field] = T
    expected = ((T - T % HOUR_MS, HOUR), *(f"v-{name}" for name in plan.fields[1:]))
    assert plan.level0(record) == expected
    del record[plan.fields[-1]]  # written under a policy without that field
    assert plan.level0(record) == (*expected[:-1], None)
    with pytest.raises(KeyError):
        plan.level0({})
