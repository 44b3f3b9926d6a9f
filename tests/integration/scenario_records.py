"""What the consent scenario publishes, and the shape its released records must have.

`consumers.consent_table.apply_change` is used only to build the full consent records that
are published (the writer's side), never to compute an expectation. Passing events pair up
across two persons (`pair_versions`): both events of a pair carry the pair's own
`app_version` and agree in every other released value, so each pair leaves the k = 2
window as one group that names it, and the released records can be matched to the
oracle's passes pair by pair although no single output names its person (SPEC 7).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
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
from tests.integration.scenario_types import (
    APP_LIST,
    APPS,
    CATEGORY_FIELDS,
    LOC,
    Expected,
    PlannedEvent,
    Step,
    UserScript,
)


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
