"""Scenario tables for the consent gate: every drop reason, every boundary, field removal."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest

from consumers.consent import (
    REASONS,
    RULES,
    ConsentConfigError,
    ConsentRules,
    GateItem,
    decide,
    gate,
)
from consumers.consent_table import ConsentTable
from tests.unit.consumers.consent_records import (
    AFTER,
    BEFORE,
    EVENT,
    NOW,
    USER,
    grant,
    judge,
    record,
    utc_ms,
)

MINOR = "minor_without_guardian_consent"

DROP_CASES: list[tuple[str, dict[str, Any] | None, str | None]] = [
    ("adult_granted_before_event_passes", record(), None),
    ("grant_exactly_at_event_time_covers_it", record(analytics=grant(EVENT)), None),
    ("tombstone_means_cancelled", None, "account_cancelled"),
    (
        "cancellation_after_the_event_still_drops",
        record(status="CANCELLED", cancelled_at=AFTER),
        "account_cancelled",
    ),
    ("cancelled_at_without_status_still_drops", record(cancelled_at=AFTER), "account_cancelled"),
    (
        "cancellation_beats_every_later_reason",
        record(status="CANCELLED", cancelled_at=AFTER, policies=(), analytics=grant(AFTER)),
        "account_cancelled",
    ),
    ("no_policy_accepted", record(policies=()), "policy_version_too_old"),
    ("policy_accepted_after_event", record(policies=((1, AFTER),)), "policy_version_too_old"),
    ("policy_accepted_exactly_at_event_counts", record(policies=((1, EVENT),)), None),
    (
        "policy_beats_minor_and_withdrawal",
        record(policies=(), declared_minor=True, analytics=grant(BEFORE, False)),
        "policy_version_too_old",
    ),
    ("declared_minor_without_guardian", record(declared_minor=True), MINOR),
    (
        "guardian_consent_withdrawn",
        record(declared_minor=True, guardian=grant(BEFORE, False)),
        MINOR,
    ),
    (
        "guardian_consent_given_after_event",
        record(declared_minor=True, guardian=grant(AFTER)),
        MINOR,
    ),
    ("guardian_consent_exactly_at_event", record(declared_minor=True, guardian=grant(EVENT)), None),
    (
        "minor_reason_beats_withdrawal",
        record(declared_minor=True, analytics=grant(BEFORE, False)),
        MINOR,
    ),
    ("analytics_withdrawn", record(analytics=grant(BEFORE, False)), "consent_withdrawn"),
    (
        "withdrawal_exactly_at_event_time_drops",
        record(analytics=grant(EVENT, False)),
        "consent_withdrawn",
    ),
    (
        "withdraw_then_regrant_after_collection",
        record(analytics=grant(AFTER)),
        "no_analytics_consent",
    ),
    ("data_collected_before_the_grant", record(analytics=grant(EVENT + 1)), "no_analytics_consent"),
]


def _never_granted() -> dict[str, Any]:
    rec = record()
    rec["purposes"] = {}
    return rec


DROP_CASES.append(("analytics_never_granted", _never_granted(), "no_analytics_consent"))


@pytest.mark.parametrize(
    ("rec", "expected"),
    [(rec, exp) for _, rec, exp in DROP_CASES],
    ids=[name for name, _, _ in DROP_CASES],
)
def test_consent_decision_gives_the_first_reason_that_applies(
    rec: dict[str, Any] | None, expected: str | None
) -> None:
    decision = judge(rec)
    assert decision.reason == expected
    assert decision.passed is (expected is None)
    assert decision.rule == RULES[expected]


def test_unknown_user_is_dropped_and_named_as_such() -> None:
    decision = decide(ConsentTable().get(USER), EVENT, NOW, ConsentRules())
    assert (decision.passed, decision.reason, decision.provenance) == (
        False,
        "unknown_user",
        "v=none;policy=none",
    )


def test_reason_names_are_the_metric_labels_in_check_order() -> None:
    assert REASONS == (
        "unknown_user",
        "account_cancelled",
        "policy_version_too_old",
        "minor_without_guardian_consent",
        "consent_withdrawn",
        "no_analytics_consent",
    )


@pytest.mark.parametrize(
    ("policies", "minimum", "expected"),
    [
        (((1, BEFORE),), 2, "policy_version_too_old"),
        (((2, BEFORE),), 2, None),
        (((1, BEFORE - 1), (2, BEFORE)), 2, None),
        (((1, BEFORE), (2, AFTER)), 2, "policy_version_too_old"),
        (((1, BEFORE), (3, EVENT)), 3, None),
    ],
)
def test_policy_version_in_force_at_the_event_time_must_reach_the_minimum(
    policies: tuple[tuple[int, int], ...], minimum: int, expected: str | None
) -> None:
    decision = judge(record(policies=policies), rules=ConsentRules(min_policy_version=minimum))
    assert decision.reason == expected


@pytest.mark.parametrize(
    ("birth_date", "birth_year", "event_time", "age", "minor"),
    [
        (date(2010, 6, 1), None, utc_ms(2024, 6, 1), 14, False),  # 14th birthday, 00:00 UTC
        (date(2010, 6, 2), None, utc_ms(2024, 6, 1, 23, 3_599_999), 14, True),  # eve, 23:59:59.999
        (date(2010, 6, 2), None, utc_ms(2024, 6, 2), 14, False),
        (None, 2010, utc_ms(2024, 12, 30, 23), 14, True),  # year read as 31 Dec 2010
        (None, 2010, utc_ms(2024, 12, 31), 14, False),
        (None, 2009, utc_ms(2024, 1, 1), 14, False),
        (date(2008, 2, 29), None, utc_ms(2022, 2, 28, 12), 14, True),  # leap-day birthday
        (date(2008, 2, 29), None, utc_ms(2022, 3, 1), 14, False),
        (date(2007, 1, 1), None, utc_ms(2024, 12, 31), 18, True),  # 17 with threshold 18
        (date(2006, 6, 1), None, utc_ms(2024, 6, 1), 18, False),
        (date(2020, 1, 1), None, utc_ms(2024, 6, 1), 1, False),
    ],
)
def test_minor_is_judged_on_the_utc_date_of_the_event(
    birth_date: date | None, birth_year: int | None, event_time: int, age: int, minor: bool
) -> None:
    rec = record(
        birth_date=birth_date,
        birth_year=birth_year,
        declared_minor=None,
        policies=((1, 0),),
        analytics=grant(0),
    )
    decision = judge(rec, event_time, ConsentRules(guardian_age=age))
    assert decision.minor is minor
    assert decision.reason == ("minor_without_guardian_consent" if minor else None)


@pytest.mark.parametrize(
    ("declared", "missing_needs_guardian", "minor"),
    [(None, True, True), (None, False, False), (True, False, True), (False, True, False)],
)
def test_without_birth_data_declared_minor_then_the_configured_default_decide(
    declared: bool | None, missing_needs_guardian: bool, minor: bool
) -> None:
    rules = ConsentRules(missing_birth_needs_guardian=missing_needs_guardian)
    decision = judge(record(declared_minor=declared), rules=rules)
    assert decision.minor is minor
    assert decision.passed is not minor


def test_birth_date_outweighs_a_declared_minor_flag() -> None:
    assert judge(record(birth_date=date(1990, 1, 1), declared_minor=True)).minor is False


def test_minor_with_guardian_consent_passes_and_is_still_reported_as_minor() -> None:
    decision = judge(record(birth_year=2015, guardian=grant(BEFORE)))
    assert (decision.passed, decision.minor) == (True, True)


def test_minor_dropped_for_another_reason_is_still_reported_as_minor() -> None:
    decision = judge(record(birth_year=2015, analytics=grant(AFTER), guardian=grant(BEFORE)))
    assert (decision.reason, decision.minor) == ("no_analytics_consent", True)


@pytest.mark.parametrize("age", [0, 19, -1, True, 14.0])
def test_guardian_age_outside_1_to_18_is_rejected(age: Any) -> None:
    with pytest.raises(ConsentConfigError):
        ConsentRules(guardian_age=age)


@pytest.mark.parametrize(
    "kwargs",
    [{"purpose": ""}, {"min_policy_version": 0}, {"missing_birth_needs_guardian": 1}],
)
def test_invalid_rules_are_rejected(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConsentConfigError):
        ConsentRules(**kwargs)


def test_the_configured_purpose_is_the_one_checked() -> None:
    rec = record()
    rec["purposes"]["research"] = grant(AFTER)
    assert judge(rec, rules=ConsentRules(purpose="research")).reason == "no_analytics_consent"
    assert judge(rec).passed


def test_allowed_categories_are_those_granted_at_event_time_and_still_granted() -> None:
    categories = {
        "device_identifiers": grant(BEFORE),
        "precise_location": grant(EVENT),
        "installed_apps": grant(AFTER),
        "other_withdrawn": grant(BEFORE, False),
        "withdrawn_at_event": grant(EVENT, False),
    }
    decision = judge(record(categories=categories))
    assert decision.allowed_categories == {"device_identifiers", "precise_location"}


def test_dropped_decisions_allow_no_category() -> None:
    rec = record(analytics=grant(AFTER), categories={"precise_location": grant(BEFORE)})
    assert judge(rec).allowed_categories == frozenset()


def test_provenance_names_record_and_policy_versions_but_not_the_user() -> None:
    decision = judge(record(version=7, policies=((1, BEFORE - 5), (2, BEFORE), (3, AFTER))))
    assert decision.provenance == "v=7;policy=2"
    assert USER not in decision.provenance + decision.rule


@dataclass
class Polled:
    """An item as the worker might carry it: the event plus its source coordinates."""

    event: dict[str, Any]
    schema: str
    topic: str
    partition: int
    offset: int


def _device_event(user_id: str = USER) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "event_time": EVENT,
        "model": "X1",
        "imei": "490154203237518",
        "mac_address": None,
        "android_id": "9774d56d682e549c",
        "latitude": 31.23,
        "longitude": 121.47,
        "location_accuracy_m": 12.0,
        "wifi_bssid": "00:11:22:33:44:55",
        "wifi_ssid": "home",
        "installed_apps": ["com.example.a", "com.example.b"],
    }


def _gate(events: list[tuple[str, dict[str, Any]]], table: ConsentTable) -> Any:
    items = [Polled(ev, schema, "raw", 0, i) for i, (schema, ev) in enumerate(events)]
    return gate(items, table, NOW, ConsentRules())


def test_ungranted_categories_are_removed_while_the_record_passes() -> None:
    table = ConsentTable()
    table.apply(USER, record(categories={"installed_apps": grant(BEFORE)}))
    result = _gate([("device_event", _device_event())], table)
    ((item, decision),) = result.kept
    event = item.event
    assert (item.topic, item.partition, item.offset, decision.passed) == ("raw", 0, 0, True)
    for name in ("imei", "android_id", "latitude", "longitude", "wifi_bssid", "wifi_ssid"):
        assert event[name] is None, name
    assert event["installed_apps"] == ["com.example.a", "com.example.b"]
    assert event["model"] == "X1"
    assert result.removed_fields == {"device_identifiers": 2, "precise_location": 5}


def test_granted_location_and_identifiers_survive_and_withdrawn_apps_list_is_removed() -> None:
    table = ConsentTable()
    categories = {
        "device_identifiers": grant(BEFORE),
        "precise_location": grant(BEFORE),
        "installed_apps": grant(AFTER, False),
    }
    table.apply(USER, record(categories=categories))
    result = _gate([("device_event", _device_event())], table)
    event = result.kept[0][0].event
    assert event["imei"] == "490154203237518"
    assert event["wifi_bssid"] == "00:11:22:33:44:55"
    assert event["latitude"] == 31.23
    assert event["installed_apps"] is None
    assert result.removed_fields == {"installed_apps": 1}


def test_dropped_events_keep_their_reason_and_are_not_stripped() -> None:
    table = ConsentTable()
    table.apply(USER, record())
    table.apply("user-2", None)
    events = [
        ("device_event", _device_event("user-2")),
        ("device_event", _device_event("user-3")),
        ("log_event", {"user_id": USER, "event_time": EVENT, "message": "hello"}),
    ]
    result = _gate(events, table)
    assert [(item.offset, reason) for item, reason in result.dropped] == [
        (0, "account_cancelled"),
        (1, "unknown_user"),
    ]
    assert result.dropped_by_reason == {"account_cancelled": 1, "unknown_user": 1}
    assert result.dropped[0][0].event["imei"] == "490154203237518"
    assert [item.event["message"] for item, _ in result.kept] == ["hello"]
    assert result.removed_fields == {}


def test_gate_counts_minors_whether_or_not_they_pass() -> None:
    table = ConsentTable()
    table.apply(USER, record(declared_minor=True, guardian=grant(BEFORE)))
    table.apply("user-2", record(user_id="user-2", declared_minor=True))
    items = [GateItem(_device_event(), "device_event"), GateItem(_device_event("user-2"), "x")]
    result = gate(items, table, NOW, ConsentRules())
    assert (len(result.kept), len(result.dropped), result.minors) == (1, 1, 2)
