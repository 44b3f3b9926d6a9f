"""Property: the latest-state decision equals a replay of the user's full consent timeline."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import event as note
from hypothesis import given, settings
from hypothesis import strategies as st

from consumers.consent import ConsentRules, decide
from consumers.consent_changes import (
    AcceptPolicy,
    Cancel,
    GrantCategory,
    GrantGuardian,
    GrantPurpose,
    SetBirth,
    WithdrawCategory,
    WithdrawGuardian,
    WithdrawPurpose,
    apply_change,
)
from consumers.consent_table import (
    ConsentTable,
)

BASE = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1000)
STEP = 6 * 3_600_000  # changes fall on a 6-hour grid, so equal times are frequent
SLOTS = 200
CATEGORIES = ("device_identifiers", "precise_location", "installed_apps")


@dataclass(frozen=True)
class Step:
    """One change of the timeline, as the oracle reads it."""

    at: int
    kind: str  # grant | withdraw | accept | birth | cancel
    key: str = ""  # analytics, a category, or guardian
    version: int = 0
    birth: tuple[date | None, int | None, bool | None] = (None, None, None)


births = st.one_of(
    st.tuples(st.dates(date(2005, 6, 1), date(2012, 6, 1)), st.none(), st.none()),
    st.tuples(st.none(), st.integers(2005, 2012), st.none()),
    st.tuples(st.none(), st.none(), st.one_of(st.none(), st.booleans())),
)
keys = st.sampled_from(("analytics", "analytics", "guardian", *CATEGORIES))
step_kinds = st.one_of(
    st.tuples(st.sampled_from(("grant", "withdraw")), keys),
    st.tuples(st.just("accept"), st.integers(0, 1)),
    st.tuples(st.just("birth"), births),
    st.tuples(st.just("cancel"), st.none()),
)


@st.composite
def timelines(draw: st.DrawFn) -> list[Step]:
    """A random, time-ordered list of one user's changes (ties kept in draw order)."""
    raw: list[tuple[int, tuple[str, Any]]] = draw(
        st.lists(st.tuples(st.integers(0, SLOTS), step_kinds), max_size=20)
    )
    mostly = st.sampled_from((True, True, True, False))
    if draw(mostly):  # an ordinary start: policy accepted and analytics granted
        raw[:0] = [(0, ("accept", 0)), (0, ("grant", "analytics"))]
        if draw(mostly):  # by an adult
            raw.insert(0, (0, ("birth", (None, None, False))))
    raw.sort(key=lambda pair: pair[0])  # stable: equal times keep publish order
    steps: list[Step] = []
    version = 1
    for slot, (kind, arg) in raw:
        at = BASE + slot * STEP
        if kind == "accept":
            version += arg
            steps.append(Step(at, "accept", version=version))
        elif kind == "birth":
            steps.append(Step(at, "birth", birth=arg))
        elif kind == "cancel":
            if draw(st.integers(0, 5)) == 5:  # keep cancellations rare
                steps.append(Step(at, "cancel"))
        else:
            steps.append(Step(at, kind, key=arg))
    return steps


def _change(step: Step) -> Any:
    if step.kind == "accept":
        return AcceptPolicy(step.version)
    if step.kind == "birth":
        return SetBirth(*step.birth)
    if step.kind == "cancel":
        return Cancel()
    grant = step.kind == "grant"
    if step.key == "analytics":
        return GrantPurpose() if grant else WithdrawPurpose()
    if step.key == "guardian":
        return GrantGuardian() if grant else WithdrawGuardian()
    return GrantCategory(step.key) if grant else WithdrawCategory(step.key)


def _granted_at(steps: list[Step], key: str, instant: int) -> bool:
    """State of `key` after every change made at or before `instant`."""
    granted = False
    for step in steps:
        if step.at <= instant and step.key == key:
            granted = step.kind == "grant"
    return granted


def _held(steps: list[Step], key: str, event: int, now: int) -> bool:
    """Granted at the event time and no withdrawal of it after the event, up to now."""
    interrupted = any(s.key == key and s.kind == "withdraw" and event < s.at <= now for s in steps)
    return _granted_at(steps, key, event) and not interrupted


def _birthday(born: date, years: int) -> date:
    try:
        return born.replace(year=born.year + years)
    except ValueError:  # 29 February in a common year: the birthday is 1 March
        return date(born.year + years, 3, 1)


def _oracle_minor(steps: list[Step], event: int, rules: ConsentRules) -> bool:
    births = [s.birth for s in steps if s.kind == "birth"]
    birth_date, birth_year, declared = births[-1] if births else (None, None, None)
    born = birth_date or (date(birth_year, 12, 31) if birth_year is not None else None)
    if born is None:
        return rules.missing_birth_needs_guardian if declared is None else declared
    day = (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=event)).date()
    years = sum(1 for n in range(1, 120) if _birthday(born, n) <= day)
    return years < rules.guardian_age


def oracle(
    steps: list[Step], event: int, now: int, rules: ConsentRules
) -> tuple[str | None, frozenset[str], bool]:
    """Reason, allowed categories and minor flag, from the full timeline."""
    if not steps:
        return "unknown_user", frozenset(), False
    if any(s.kind == "cancel" for s in steps):
        return "account_cancelled", frozenset(), False
    minor = _oracle_minor(steps, event, rules)
    # SPEC 5: the accepted version must be at or above the minimum over the whole span,
    # from the acceptance in force at the event (the last made at or before it, in the
    # timeline's order) through every acceptance made after it, up to now.
    accepts = [s for s in steps if s.kind == "accept"]
    before = [s.version for s in accepts if s.at <= event]
    after = [s.version for s in accepts if event < s.at <= now]
    in_force = min([before[-1], *after]) if before else 0
    if in_force < rules.min_policy_version:
        return "policy_version_too_old", frozenset(), minor
    if minor and not _held(steps, "guardian", event, now):
        return "minor_without_guardian_consent", frozenset(), minor
    if not _held(steps, "analytics", event, now):
        ever = any(s.key == "analytics" and s.kind == "grant" for s in steps)
        if ever and not _granted_at(steps, "analytics", now):
            return "consent_withdrawn", frozenset(), minor
        return "no_analytics_consent", frozenset(), minor
    allowed = frozenset(c for c in CATEGORIES if _held(steps, c, event, now))
    return None, allowed, minor


rules_st = st.builds(
    ConsentRules,
    min_policy_version=st.sampled_from((1, 1, 1, 1, 2)),
    guardian_age=st.integers(12, 18),
    missing_birth_needs_guardian=st.booleans(),
)


@settings(max_examples=400, deadline=None)
@given(
    steps=timelines(),
    event_slot=st.integers(0, SLOTS),
    jitter=st.sampled_from((-1, 0, 0, 1)),
    extra=st.integers(0, 3 * STEP),
    rules=rules_st,
)
def test_latest_state_decision_matches_full_timeline_replay(
    steps: list[Step], event_slot: int, jitter: int, extra: int, rules: ConsentRules
) -> None:
    record: dict[str, Any] | None = None
    for step in steps:
        record = apply_change(record, _change(step), step.at, user_id="u")
    table = ConsentTable()
    if record is not None:
        table.apply("u", record)
    event = BASE + event_slot * STEP + jitter
    now = max([event, *(s.at for s in steps)]) + extra
    decision = decide(table.get("u"), event, now, rules)
    reason, allowed, minor = oracle(steps, event, now, rules)
    note(f"reason={reason}")
    assert (decision.reason, decision.allowed_categories, decision.minor) == (
        reason,
        allowed,
        minor,
    )
    assert decision.passed is (reason is None)
    for category in CATEGORIES:  # a withdrawn category never passes
        if not _granted_at(steps, category, now):
            assert category not in decision.allowed_categories
