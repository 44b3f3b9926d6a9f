"""A hand-built consent scenario and its expected outcome, written from SPEC sections 5 and 7.

The oracle replays each user's own list of consent steps; it shares no decision code with
the pipeline. `consumers.consent_table.apply_change` is used only to build the full consent
records that are published (the writer's side), never to compute an expectation.
Passing events pair up across two persons (`pair_versions`): both events of a pair carry
the pair's own `app_version` and agree in every other released value, so each pair leaves
the k = 2 window as one group that names it, and the released records can be matched to
the oracle's passes pair by pair although no single output names its person (SPEC 7).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from consumers.consent_changes import (
    AcceptPolicy,
    Cancel,
    ConsentChange,
    GrantCategory,
    GrantGuardian,
    GrantPurpose,
    SetBirth,
    WithdrawCategory,
    WithdrawPurpose,
    apply_change,
)
from schemas.fields import field_tags

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
S = 1000
LOC = "precise_location"
IDS = "device_identifiers"
APPS = "installed_apps"
CATEGORIES = (IDS, LOC, APPS)
#: SPEC 5 and the schemas: the raw fields each sensitive category covers (Wi-Fi is location).
CATEGORY_FIELDS: dict[str, tuple[str, ...]] = {
    IDS: ("imei", "mac_address", "android_id", "advertising_id", "serial_number"),
    LOC: (
        "wifi_bssid",
        "wifi_ssid",
        "latitude",
        "longitude",
        "location_accuracy_m",
        "location_source",
    ),
    APPS: ("installed_apps",),
}
APP_LIST = ["com.tencent.mm", "com.eg.android.AlipayGphone", "com.sina.weibo"]
ADULT_BIRTH = date(1990, 5, 17)


@dataclass(frozen=True, slots=True)
class Rules:
    """The worker's configuration as the oracle needs it."""

    min_policy_version: int = 2
    guardian_age: int = 14
    missing_birth_needs_guardian: bool = True


@dataclass(frozen=True, slots=True)
class Step:
    """One consent change of a user: kind, name or version, its time, and its wave."""

    kind: (
        str  # grant | withdraw | grant_cat | withdraw_cat | policy | guardian | cancel | tombstone
    )
    at_ms: int
    wave: int = 1
    name: str = "analytics"
    version: int = 0


@dataclass(frozen=True, slots=True)
class PlannedEvent:
    """One event to publish: what it carries and when it was collected."""

    tag: str
    schema: str
    at_ms: int
    wave: int
    location: bool = False
    device_ids: bool = False
    apps: bool = False


@dataclass(slots=True)
class UserScript:
    """A scenario user: birth data, consent steps in publish order, and events."""

    label: str
    user_id: str
    steps: list[Step] = field(default_factory=list)
    events: list[PlannedEvent] = field(default_factory=list)
    birth_date: date | None = ADULT_BIRTH
    birth_year: int | None = None
    registered: bool = True


@dataclass(frozen=True, slots=True)
class Expected:
    """The oracle's verdict on one event."""

    tag: str
    label: str
    schema: str
    wave: int
    reason: str | None
    categories: frozenset[str]
    record_version: int | None
    policy_version: int | None


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


# --- building what is published -------------------------------------------------------------


def _change(step: Step) -> ConsentChange:
    kinds: dict[str, ConsentChange] = {
        "grant": GrantPurpose(step.name),
        "withdraw": WithdrawPurpose(step.name),
        "grant_cat": GrantCategory(step.name),
        "withdraw_cat": WithdrawCategory(step.name),
        "policy": AcceptPolicy(step.version),
        "guardian": GrantGuardian(),
        "cancel": Cancel(),
    }
    return kinds[step.kind]


def consent_records(user: UserScript, wave: int) -> list[dict[str, Any] | None]:
    """Full consent records of one wave in publish order (None = tombstone)."""
    if not user.registered:
        return []
    record: dict[str, Any] | None = None
    first = min((s.at_ms for s in user.steps), default=0)
    if user.birth_date or user.birth_year:
        birth = SetBirth(birth_date=user.birth_date, birth_year=user.birth_year)
        record = apply_change(None, birth, first, user_id=user.user_id)
    out: list[dict[str, Any] | None] = []
    for step in user.steps:
        if step.kind == "tombstone":
            if step.wave == wave:
                out.append(None)
            continue
        record = apply_change(record, _change(step), step.at_ms, user_id=user.user_id)
        if step.wave == wave:
            out.append(record)
    return out


def published_version(user: UserScript, wave: int) -> int | None:
    """`version` of the latest consent record published up to `wave` (None if none)."""
    records = [r for w in range(1, wave + 1) for r in consent_records(user, w) if r is not None]
    return int(records[-1]["version"]) if records else None


def _luhn(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return body + str((10 - total % 10) % 10)


def build_event(user: UserScript, planned: PlannedEvent, version: str = "1.0.0") -> dict[str, Any]:
    """The Avro-ready dict of one planned event: every released value agrees but the version."""
    event: dict[str, Any] = dict.fromkeys(field_tags(planned.schema))
    event.update(
        event_id=str(uuid.uuid4()),
        user_id=user.user_id,
        event_time=planned.at_ms,
        app_id="com.example.oracle",
        app_version=version,
        brand="Xiaomi",
        model="Redmi Note 12",
        os_name="Android",
        os_version="13.0.1",
        ip_address="198.51.100.23",
        time_zone="Asia/Shanghai",
    )
    if planned.schema == "log_event":
        event.update(log_type="USAGE", usage_duration_ms=42_000)
        return event
    event.update(app_state="FOREGROUND", network_status="WIFI", battery_level_pct=55)
    if planned.location:
        event.update(
            wifi_bssid="a4:56:02:11:22:33",
            wifi_ssid="OracleNet",
            latitude=39.908722,
            longitude=116.397499,
            location_accuracy_m=12.0,
            location_source="GPS",
        )
    if planned.device_ids:
        event.update(
            imei=_luhn("86123456789012"),
            mac_address="02:1A:2B:3C:4D:5E",
            android_id="9774d56d682e549c",
            advertising_id=str(uuid.uuid4()),
            serial_number="R58M12ABCDE",
        )
    if planned.apps:
        event["installed_apps"] = list(APP_LIST)
    return event


def removed_fields(event: dict[str, Any], verdict: Expected) -> Counter[str]:
    """Sensitive fields the gate must remove from a passing event, per category."""
    out: Counter[str] = Counter()
    if verdict.reason is not None:
        return out
    for category, names in CATEGORY_FIELDS.items():
        if category not in verdict.categories:
            out[category] += sum(1 for n in names if event.get(n) is not None)
    return out


def released_shape(planned: PlannedEvent, verdict: Expected) -> tuple[str, bool, bool]:
    """What a passing event's output must show besides its version: schema, location, apps."""
    located = planned.location and LOC in verdict.categories
    apps = planned.apps and APPS in verdict.categories
    return (verdict.schema, located, apps)


def pair_versions(users: list[UserScript], verdicts: list[Expected]) -> dict[str, str]:
    """An app version per passing event, shared by exactly two events of two persons.

    With k = 2, the two records of a pair form a group of their own, released under the
    pair's version with every other value at full precision. Events pair within one
    (wave, schema, located, apps kept) class, so every other released value agrees.
    Raises AssertionError if the scenario cannot be paired that way.
    """
    by_tag = {e.tag: (u, e) for u in users for e in u.events}
    classes: dict[tuple[Any, ...], list[tuple[str, str]]] = {}
    for v in verdicts:
        if v.reason is None:
            user, planned = by_tag[v.tag]
            key = (v.wave, *released_shape(planned, v))
            classes.setdefault(key, []).append((user.user_id, v.tag))
    models: dict[str, str] = {}
    for key, members in classes.items():
        counts = Counter(person for person, _tag in members)
        members.sort(key=lambda m: (-counts[m[0]], m[0], m[1]))
        half = len(members) // 2
        assert len(members) == 2 * half, f"odd number of passing events in class {key}"
        for i in range(half):
            (p1, t1), (p2, t2) = members[i], members[i + half]
            assert p1 != p2, f"class {key}: one person holds over half of its events"
            models[t1] = models[t2] = f"7.{len(models) // 2}.0"
    return models


def iter_events(users: list[UserScript], wave: int) -> Iterator[tuple[UserScript, PlannedEvent]]:
    """Planned events of one wave, round-robin over users."""
    rows = [[(u, e) for e in u.events if e.wave == wave] for u in users]
    for i in range(max((len(r) for r in rows), default=0)):
        for row in rows:
            if i < len(row):
                yield row[i]


# --- the scenario ------------------------------------------------------------------------------


def years_before(day: date, years: int) -> date:
    """The same calendar day `years` earlier (28 Feb stands in for 29 Feb)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def scenario_start(now_ms: int) -> int:
    """t0: ten minutes into the previous UTC hour, so every event shares one event hour."""
    return now_ms - now_ms % HOUR_MS - HOUR_MS + 10 * 60 * S


def build_scenario(t0: int, run: str) -> list[UserScript]:
    """About 35 users covering every consent rule of SPEC 5, in two waves of changes."""
    long_ago = t0 - 2 * DAY_MS
    day = datetime.fromtimestamp(t0 / 1000, tz=UTC).date()

    def at(seconds: int) -> int:
        return t0 + seconds * S

    pol2 = Step("policy", long_ago, version=2)
    pol1 = Step("policy", long_ago, version=1)
    grant = Step("grant", long_ago)
    base = [pol2, grant]
    loc = Step("grant_cat", long_ago, name=LOC)
    users: list[UserScript] = []

    def user(
        label: str,
        steps: list[Step],
        events: list[tuple[str, int, str, int]],
        **kwargs: Any,
    ) -> None:
        index = len(users)
        assert [s.at_ms for s in steps] == sorted(s.at_ms for s in steps), label
        planned = [
            PlannedEvent(
                f"u{index:02d}e{i:02d}",
                "device_event" if kind == "dev" else "log_event",
                when,
                wave,
                location="L" in flags,
                device_ids="I" in flags,
                apps="A" in flags,
            )
            for i, (kind, when, flags, wave) in enumerate(events)
        ]
        users.append(UserScript(label, f"{run}-{index:02d}", list(steps), planned, **kwargs))

    def dev(when: int, flags: str = "", wave: int = 1) -> tuple[str, int, str, int]:
        return ("dev", when, flags, wave)

    def log(when: int, wave: int = 1) -> tuple[str, int, str, int]:
        return ("log", when, "", wave)

    both = [dev(at(30), "L"), dev(at(90), "L"), log(at(60)), log(at(120))]
    user("granted_long_ago", [*base, loc], both)
    user("granted_long_ago_b", [*base, loc], both)
    user(
        "grant_at_event_time",
        [pol2, Step("grant", at(60))],
        [log(at(60)), log(at(60) - 1), dev(at(120), "LI")],
    )
    user(
        "withdrawn_at_event_time",
        [*base, Step("withdraw", at(60))],
        [log(at(60)), log(at(30)), dev(at(90), "L")],
    )
    user(
        "withdrawn_then_regranted",
        [*base, Step("withdraw", at(60)), Step("grant", at(120))],
        [log(at(30)), log(at(90)), log(at(120)), log(at(150))],
    )
    user(
        "collected_before_first_grant",
        [pol2, Step("grant", at(120))],
        [log(at(30)), dev(at(60)), log(at(150))],
    )
    user("category_without_analytics", [pol2, loc], [dev(at(60), "L"), log(at(60))])
    user(
        "cancelled",
        [*base, Step("cancel", at(60))],
        [log(at(30)), log(at(90)), dev(at(30))],
    )
    user("tombstoned", [*base, Step("tombstone", at(5))], [log(at(30)), dev(at(90))])
    user("unknown", [], [log(at(30)), dev(at(30), "L")], registered=False)
    user("old_policy", [pol1, grant], [log(at(30)), dev(at(60))])
    user(
        "policy_upgraded_after_event",
        [pol1, grant, Step("policy", at(90), version=2)],
        [log(at(60)), log(at(90)), log(at(120))],
    )
    user(
        "policy_upgraded_before_event",
        [pol1, grant, Step("policy", at(30), version=2)],
        [log(at(60)), log(at(90))],
    )
    thirteen = years_before(day, 13)
    user("minor_13_without_guardian", base, [log(at(60))], birth_date=thirteen)
    user(
        "minor_13_with_guardian",
        [*base, loc, Step("guardian", long_ago)],
        [log(at(60)), dev(at(90), "L")],
        birth_date=thirteen,
    )
    user(
        "birth_year_only",
        base,
        [log(at(60))],
        birth_date=None,
        birth_year=day.year - 14,
    )
    user(
        "turns_14_on_event_date",
        base,
        [log(at(60)), dev(at(90))],
        birth_date=years_before(day, 14),
    )
    user("no_birth_data", base, [log(at(60))], birth_date=None)
    user("location_granted", [*base, loc], [dev(at(60), "L"), dev(at(120), "L")])
    user(
        "location_withdrawn_before_event",
        [*base, loc, Step("withdraw_cat", at(30), name=LOC)],
        [dev(at(60), "L"), dev(at(20), "L")],
    )
    user(
        "location_withdrawn_after_event",
        [*base, loc, Step("withdraw_cat", at(600), name=LOC)],
        [dev(at(60), "L")],
    )
    user(
        "location_granted_at_event_time",
        [*base, Step("grant_cat", at(120), name=LOC)],
        [dev(at(60), "L"), dev(at(120), "L")],
    )
    user("device_ids_not_granted", base, [dev(at(60), "LI")])
    user("device_ids_granted", [*base, Step("grant_cat", long_ago, name=IDS)], [dev(at(60), "I")])
    user("apps_not_granted", [*base, loc], [dev(at(60), "LA")])
    user(
        "apps_granted",
        [*base, loc, Step("grant_cat", long_ago, name=APPS)],
        [dev(at(60), "LA")],
    )
    # Pairs with apps_granted: a released group shows the app count only if both keep it.
    user(
        "apps_granted_b",
        [*base, loc, Step("grant_cat", long_ago, name=APPS)],
        [dev(at(90), "LA")],
    )
    # Wave 2: changes published after wave 1 was processed, then events collected before them.
    user(
        "w2_withdrawn",
        [*base, loc, Step("withdraw", at(600), wave=2)],
        [dev(at(300), "L"), log(at(300)), dev(at(400), "L", 2), log(at(400), 2)],
    )
    user(
        "w2_withdrawn_then_regranted",
        [*base, Step("withdraw", at(600), wave=2), Step("grant", at(660), wave=2)],
        [log(at(300)), log(at(400), 2), log(at(700), 2)],
    )
    user(
        "w2_location_withdrawn",
        [*base, loc, Step("withdraw_cat", at(600), wave=2, name=LOC)],
        [dev(at(300), "L"), dev(at(400), "L", 2)],
    )
    user(
        "w2_cancelled",
        [*base, Step("cancel", at(600), wave=2)],
        [log(at(300)), log(at(400), 2)],
    )
    for suffix in ("a", "b"):
        user(
            f"w2_control_located_{suffix}",
            [*base, loc],
            [dev(at(300), "L"), log(at(300)), dev(at(450), "L", 2), log(at(450), 2)],
        )
        user(
            f"w2_control_unlocated_{suffix}",
            base,
            [dev(at(300)), log(at(300)), dev(at(450), "", 2), log(at(450), 2)],
        )
    # Evens out the classes of passing events so that `pair_versions` can pair them all.
    user("pairing_filler", base, [log(at(300)), dev(at(450), "", 2), log(at(450), 2)])
    user("pairing_filler_located", [*base, loc], [dev(at(300), "L")])
    return users
