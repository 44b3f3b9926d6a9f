"""Consent changes fold by the time the user made them, whatever order and how often they arrive."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from consumers import consent_changes as cc
from consumers.consent import ConsentRules, decide
from consumers.consent_changes import (
    AcceptPolicy,
    GrantCategory,
    GrantPurpose,
    WithdrawCategory,
    WithdrawPurpose,
    change_fields,
    record_change,
)
from consumers.consent_table import ConsentState, ConsentTable
from tests.unit.consumers.test_consent_property import (
    BASE,
    CATEGORIES,
    STEP,
    Step,
    _change,
    oracle,
    rules_st,
    timelines,
)

USER = "u-1"
T = BASE + 10 * STEP
LOC = "precise_location"


def fold_in(arrivals: list[tuple[Any, int, str]]) -> dict[str, Any]:
    """Apply (change, made_at, change_id) in arrival order; the record after the last."""
    record: dict[str, Any] | None = None
    for change, made_at, change_id in arrivals:
        record, _applied = record_change(
            record, change_fields(change, made_at, change_id), user_id=USER
        )
    assert record is not None
    return record


def state(record: dict[str, Any]) -> ConsentState:
    return ConsentState.from_record(record)


def test_a_late_grant_never_covers_time_after_a_withdrawal_that_arrived_first() -> None:
    record = fold_in(
        [
            (AcceptPolicy(3), T - STEP, "p"),
            (WithdrawPurpose(), T + 9, "w"),  # acknowledged first
            (GrantPurpose(), T, "g"),  # made 9 ms earlier, acknowledged 4 s later
        ]
    )
    assert record["purposes"]["analytics"] == {"granted": False, "since": T + 9}
    assert "analytics" not in state(record).granted_purposes


def test_a_late_withdrawal_moves_since_as_if_it_had_arrived_on_time() -> None:
    record = fold_in(
        [
            (GrantCategory(LOC), T - 100, "g1"),
            (GrantCategory(LOC), T + 100, "g2"),
            (WithdrawCategory(LOC), T, "w"),  # late: made between the two grants
        ]
    )
    assert record["categories"][LOC] == {"granted": True, "since": T + 100}


def test_a_late_policy_acceptance_takes_its_place() -> None:
    record = fold_in([(AcceptPolicy(3), T + 100, "v3"), (AcceptPolicy(2), T, "v2")])
    assert record["policy_acceptances"] == [
        {"version": 2, "accepted_at": T},
        {"version": 3, "accepted_at": T + 100},
    ]


def test_the_same_change_delivered_twice_applies_once() -> None:
    once = fold_in([(GrantPurpose(), T, "g")])
    again, applied = record_change(once, change_fields(GrantPurpose(), T, "g"))
    assert not applied
    assert again == once
    withdrawn, applied = record_change(once, change_fields(WithdrawPurpose(), T + 5, "w"))
    assert applied and withdrawn["version"] == once["version"] + 1


def test_changes_of_one_millisecond_apply_in_arrival_order() -> None:
    held = (GrantPurpose(), T - 1, "g0")
    regranted = fold_in([held, (WithdrawPurpose(), T, "w"), (GrantPurpose(), T, "g")])
    withdrawn = fold_in([held, (GrantPurpose(), T, "g"), (WithdrawPurpose(), T, "w")])
    assert regranted["purposes"]["analytics"] == {"granted": True, "since": T}
    assert withdrawn["purposes"]["analytics"] == {"granted": False, "since": T}


def test_a_record_published_without_changes_is_folded_from_its_state() -> None:
    legacy = {
        **cc.empty_record(USER),
        "version": 4,
        "updated_at": T,
        "policy_acceptances": [{"version": 3, "accepted_at": T - STEP}],
        "purposes": {"analytics": {"granted": True, "since": T - STEP}},
    }
    del legacy["changes"]
    record, applied = record_change(legacy, change_fields(WithdrawPurpose(), T - 5, "late-w"))
    assert applied and record["version"] == 5
    assert record["purposes"]["analytics"] == {"granted": False, "since": T - 5}
    record, _ = record_change(record, change_fields(GrantPurpose(), T - STEP // 2, "late-g"))
    assert record["purposes"]["analytics"]["granted"] is False, "a grant older than the state"


def test_history_is_bounded_and_a_late_grant_beyond_it_is_ignored() -> None:
    arrivals = [
        (GrantPurpose() if i % 2 else WithdrawPurpose(), T + i * 1000, f"c{i}")
        for i in range(cc.MAX_CHANGES + 40)
    ]
    record = fold_in([(AcceptPolicy(3), T - 1, "p"), *arrivals])
    assert len(record["changes"]) <= cc.MAX_CHANGES
    horizon = record["compacted_before"]
    assert horizon is not None and horizon > T
    assert "c3" in record["compacted_ids"], "a compacted change still dedups"
    assert record_change(record, change_fields(GrantPurpose(), T + 3000, "c3"))[1] is False
    before = record["purposes"]["analytics"]
    late, applied = record_change(record, change_fields(GrantCategory(LOC), T + 500, "old"))
    assert applied and LOC not in late["categories"], "could cover time after a lost withdrawal"
    withdrawn, _ = record_change(late, change_fields(WithdrawPurpose(), horizon - 1, "old-w"))
    assert withdrawn["purposes"]["analytics"] == before or before["since"] > horizon - 1


def test_an_empty_or_synthetic_change_id_is_refused() -> None:
    for bad in ("", "~1-2"):
        with pytest.raises(cc.ConsentChangeError):
            record_change(
                None, change_fields(GrantPurpose(), T, "x") | {"change_id": bad}, user_id=USER
            )


@st.composite
def arrivals(draw: st.DrawFn) -> tuple[list[Step], list[int]]:
    """A timeline and the order its changes reach the writer: shuffled, some twice."""
    steps = draw(timelines())
    order = draw(st.permutations(range(len(steps))))
    repeats = draw(st.lists(st.integers(0, max(len(steps) - 1, 0)), max_size=5))
    arrival = list(order)
    for index in repeats:
        if steps:
            arrival.insert(draw(st.integers(0, len(arrival))), index)
    return steps, arrival


# Two acceptances of one millisecond, the newer version first: the older one, applied
# last, is in force over the span, and it is below the minimum.
_SAME_MS = [
    Step(BASE, "birth", birth=(None, None, False)),
    Step(BASE, "accept", version=1),
    Step(BASE, "grant", key="analytics"),
    Step(BASE, "accept", version=2),
]


@settings(max_examples=400, deadline=None)
@given(arrivals(), rules_st, st.integers(0, 3 * STEP))
@example((_SAME_MS, [0, 2, 3, 1]), ConsentRules(min_policy_version=2), 0)
@example((_SAME_MS, [0, 1, 2, 3]), ConsentRules(min_policy_version=2), 0)
def test_any_arrival_order_folds_to_the_naive_fold_of_the_history_at_every_instant(
    history: tuple[list[Step], list[int]], rules: ConsentRules, extra: int
) -> None:
    steps, arrival = history
    record: dict[str, Any] | None = None
    for index in arrival:
        step = steps[index]
        change = change_fields(_change(step), step.at, f"c{index}")
        record, _applied = record_change(record, change, user_id=USER)
    # The naive fold: every change once, by the time it was made, ties in first-arrival order.
    first = {index: n for n, index in reversed(list(enumerate(arrival)))}
    timeline = [steps[i] for i in sorted(first, key=lambda i: (steps[i].at, first[i]))]
    table = ConsentTable()
    if record is not None:
        table.apply(USER, record)
    now = max([s.at for s in steps], default=BASE) + extra
    instants = {BASE} | {s.at + d for s in steps for d in (-1, 0, 1)}
    for instant in sorted(instants):
        if instant > now:
            continue
        decision = decide(table.get(USER), instant, now, rules)
        reason, allowed, minor = oracle(timeline, instant, now, rules)
        assert (decision.reason, decision.allowed_categories, decision.minor) == (
            reason,
            allowed,
            minor,
        ), f"instant {instant - BASE}"
        for category in CATEGORIES:
            if category not in allowed:
                assert category not in decision.allowed_categories


@settings(max_examples=300, deadline=None)
@given(arrivals(), rules_st)
def test_with_a_short_history_the_fold_never_lets_more_through_than_the_naive_fold(
    history: tuple[list[Step], list[int]], rules: ConsentRules
) -> None:
    steps, arrival = history
    record: dict[str, Any] | None = None
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cc, "MAX_CHANGES", 6)
        patch.setattr(cc, "KEEP_AFTER_COMPACTION", 4)
        for index in arrival:
            step = steps[index]
            change = change_fields(_change(step), step.at, f"c{index}")
            record, _applied = record_change(record, change, user_id=USER)
            assert len(record["changes"]) <= 6 + 12, "synthetic changes stay few"
    first = {index: n for n, index in reversed(list(enumerate(arrival)))}
    timeline = [steps[i] for i in sorted(first, key=lambda i: (steps[i].at, first[i]))]
    table = ConsentTable()
    if record is not None:
        table.apply(USER, record)
    now = max([s.at for s in steps], default=BASE)
    for instant in sorted({s.at + d for s in steps for d in (-1, 0, 1)}):
        if instant > now:
            continue
        decision = decide(table.get(USER), instant, now, rules)
        reason, allowed, _minor = oracle(timeline, instant, now, rules)
        if decision.passed:
            assert reason is None, f"instant {instant - BASE}: passed, the history says {reason}"
            assert decision.allowed_categories <= allowed
