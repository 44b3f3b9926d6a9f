"""The oracle: the expected outcome of every scenario event, written from SPEC sections
5 and 7.

It replays each user's own list of consent steps and shares no decision code with the
pipeline; of what is published it reads only the consent record's version.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from tests.integration.scenario_records import published_version
from tests.integration.scenario_types import (
    CATEGORIES,
    Expected,
    PlannedEvent,
    Rules,
    Step,
    UserScript,
)


@dataclass(slots=True)
class _State:
    analytics: bool = False
    categories: set[str] = field(default_factory=set)
    policy: int = 0
    guardian: bool = False
    cancelled: bool = False


def _replay(steps: list[Step], until_ms: float) -> _State:
    """The consent state at an instant: every change made at or before it, in publish order."""
    state = _State()
    for step in steps:
        if step.at_ms > until_ms:
            continue
        if step.kind == "grant":
            state.analytics = True
        elif step.kind == "withdraw":
            state.analytics = False
        elif step.kind == "grant_cat":
            state.categories.add(step.name)
        elif step.kind == "withdraw_cat":
            state.categories.discard(step.name)
        elif step.kind == "policy":
            state.policy = max(state.policy, step.version)
        elif step.kind == "guardian":
            state.guardian = True
        elif step.kind in ("cancel", "tombstone"):
            state.cancelled = True
    return state


def age_on(born: date, day: date) -> int:
    """Completed years on `day` (a 29 February birthday counts from 1 March)."""
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def needs_guardian(user: UserScript, event_ms: int, rules: Rules) -> bool:
    """Under the guardian age on the event's UTC date; a birth year alone reads as 31 Dec."""
    day = datetime.fromtimestamp(event_ms / 1000, tz=UTC).date()
    if user.birth_date is not None:
        born = user.birth_date
    elif user.birth_year is not None:
        born = date(user.birth_year, 12, 31)
    else:
        return rules.missing_birth_needs_guardian
    return age_on(born, day) < rules.guardian_age


def judge(user: UserScript, event: PlannedEvent, rules: Rules) -> Expected:
    """First applicable drop reason of SPEC 5 (or a pass) and the surviving categories."""
    known = [s for s in user.steps if s.wave <= event.wave] if user.registered else []
    version = published_version(user, event.wave)

    def verdict(
        reason: str | None, cats: frozenset[str] = frozenset(), policy: int | None = None
    ) -> Expected:
        return Expected(
            event.tag, user.label, event.schema, event.wave, reason, cats, version, policy
        )

    if not known:
        return verdict("unknown_user")
    if any(s.kind in ("cancel", "tombstone") for s in known):
        return verdict("account_cancelled")
    # every state the user was in from collection until processing
    points = [event.at_ms] + [s.at_ms for s in known if s.at_ms > event.at_ms]
    span = [_replay(known, p) for p in points]
    now = _replay(known, float("inf"))
    policy = span[0].policy
    if min(st.policy for st in span) < rules.min_policy_version:
        return verdict("policy_version_too_old", policy=policy or None)
    if needs_guardian(user, event.at_ms, rules) and not all(st.guardian for st in span):
        return verdict("minor_without_guardian_consent", policy=policy)
    if not all(st.analytics for st in span):
        ever = any(_replay(known[: i + 1], float("inf")).analytics for i in range(len(known)))
        if not now.analytics and ever:
            return verdict("consent_withdrawn", policy=policy)
        return verdict("no_analytics_consent", policy=policy)
    cats = frozenset(c for c in CATEGORIES if all(c in st.categories for st in span))
    return verdict(None, cats, policy)


def expectations(users: list[UserScript], rules: Rules) -> list[Expected]:
    """The oracle's verdict on every event of the scenario."""
    return [judge(u, e, rules) for u in users for e in u.events]
