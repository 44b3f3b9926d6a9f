"""The consent table (latest state per user) and the change fold that writes full snapshots."""

from __future__ import annotations

import io
import json
from datetime import date
from typing import Any

import fastavro
import pytest

from consumers.consent import ConsentRules, decide
from consumers.consent_changes import (
    AcceptPolicy,
    Cancel,
    ConsentChangeError,
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
    ConsentRecordError,
    ConsentState,
    ConsentTable,
)
from schemas.fields import schema_path
from schemas.registry import default_registry
from tests.unit.consumers.consent_records import AFTER, BEFORE, EVENT, NOW, USER, grant, record


def _reason(table: ConsentTable, user_id: str = USER) -> str | None:
    return decide(table.get(user_id), EVENT, NOW, ConsentRules()).reason


def test_tombstone_is_remembered_as_cancelled_not_forgotten() -> None:
    table = ConsentTable()
    table.apply(USER, record(version=3))
    assert table.apply(USER, None) is True
    assert USER in table
    assert (len(table), table.cancelled_count) == (1, 1)
    assert _reason(table) == "account_cancelled"


def test_tombstone_for_a_user_never_seen_is_cancelled() -> None:
    table = ConsentTable()
    table.apply(USER, None)
    assert _reason(table) == "account_cancelled"


def test_later_grants_after_cancellation_change_nothing() -> None:
    table = ConsentTable()
    table.apply(USER, record(version=4, status="CANCELLED", cancelled_at=BEFORE))
    assert table.apply(USER, record(version=5, analytics=grant(BEFORE - 10))) is False
    assert table.apply(USER, None) is False
    assert _reason(table) == "account_cancelled"
    assert (table.cancelled_count, table.ignored_after_cancel) == (1, 2)


def test_stale_version_is_ignored() -> None:
    table = ConsentTable()
    table.apply(USER, record(version=5, analytics=grant(BEFORE, False)))
    assert table.apply(USER, record(version=4)) is False
    assert table.stale_ignored == 1
    assert _reason(table) == "consent_withdrawn"


def test_newer_and_equal_versions_replace_the_state() -> None:
    table = ConsentTable()
    table.apply(USER, record(version=5))
    assert table.apply(USER, record(version=5, analytics=grant(AFTER))) is True
    assert _reason(table) == "no_analytics_consent"
    assert table.apply(USER, record(version=6)) is True
    assert _reason(table) is None


def test_users_are_independent() -> None:
    table = ConsentTable()
    table.apply(USER, record())
    table.apply("user-2", record(user_id="user-2", analytics=grant(AFTER)))
    assert (_reason(table), _reason(table, "user-2"), len(table)) == (
        None,
        "no_analytics_consent",
        2,
    )
    assert "user-3" not in table
    assert table.get("user-3") is None


def test_record_under_another_users_key_is_rejected_without_naming_either() -> None:
    with pytest.raises(ConsentRecordError) as info:
        ConsentTable().apply("user-9", record())
    assert "user-9" not in str(info.value) and USER not in str(info.value)


def test_malformed_record_is_rejected_without_personal_values() -> None:
    rec = record()
    del rec["version"]
    with pytest.raises(ConsentRecordError) as info:
        ConsentTable().apply(USER, rec)
    assert USER not in str(info.value)


def _fold(*changes: tuple[int, Any]) -> dict[str, Any]:
    rec: dict[str, Any] | None = None
    for at, change in changes:
        rec = apply_change(rec, change, at, user_id=USER)
    assert rec is not None
    return rec


def test_granting_again_keeps_the_original_since() -> None:
    rec = _fold((1, GrantPurpose()), (5, GrantPurpose()), (7, GrantCategory("installed_apps")))
    assert rec["purposes"] == {"analytics": grant(1)}
    assert rec["categories"] == {"installed_apps": grant(7)}
    assert (rec["version"], rec["updated_at"]) == (3, 7)


def test_withdraw_then_regrant_resets_since() -> None:
    rec = _fold((1, GrantPurpose()), (5, WithdrawPurpose()), (6, WithdrawPurpose()))
    assert rec["purposes"]["analytics"] == grant(5, False)
    rec = apply_change(rec, GrantPurpose(), 9)
    assert rec["purposes"]["analytics"] == grant(9)


def test_withdrawing_what_was_never_granted_leaves_it_absent() -> None:
    rec = _fold((1, WithdrawCategory("precise_location")), (2, WithdrawGuardian()))
    assert (rec["categories"], rec["guardian_consent"], rec["version"]) == ({}, None, 2)


def test_guardian_consent_folds_like_a_grant() -> None:
    rec = _fold((1, GrantGuardian()), (3, GrantGuardian()), (4, WithdrawGuardian()))
    assert rec["guardian_consent"] == grant(4, False)


def test_cancel_is_terminal_and_keeps_the_first_time() -> None:
    rec = _fold((1, GrantPurpose()), (5, Cancel()), (6, GrantPurpose()), (7, Cancel()))
    assert (rec["account_status"], rec["cancelled_at"], rec["version"]) == ("CANCELLED", 5, 4)


def test_a_lower_policy_version_accepted_later_lowers_the_floor() -> None:
    rec = _fold((1, AcceptPolicy(1)), (2, AcceptPolicy(1)), (3, AcceptPolicy(3)))
    assert rec["policy_acceptances"] == [
        {"version": 1, "accepted_at": 1},
        {"version": 3, "accepted_at": 3},
    ]
    lowered = apply_change(rec, AcceptPolicy(2), 4)
    assert lowered["policy_acceptances"][-1] == {"version": 2, "accepted_at": 4}
    state = ConsentState.from_record(lowered)
    assert state.policy_floors == (1, 2, 2), "an event from version 3 on is judged at 2"


def test_equal_times_apply_in_call_order() -> None:
    base = _fold((BEFORE, AcceptPolicy(1)), (BEFORE, SetBirth(declared_minor=False)))
    granted_then_withdrawn = apply_change(
        apply_change(base, GrantPurpose(), EVENT), WithdrawPurpose(), EVENT
    )
    withdrawn_then_granted = apply_change(
        apply_change(base, WithdrawPurpose(), EVENT), GrantPurpose(), EVENT
    )
    table = ConsentTable()
    table.apply(USER, granted_then_withdrawn)
    assert _reason(table) == "consent_withdrawn"
    table.apply(USER, withdrawn_then_granted)
    assert _reason(table) is None


def test_a_change_that_arrives_late_applies_at_the_time_it_was_made() -> None:
    rec = _fold((10, GrantPurpose()), (4, GrantCategory("installed_apps")))
    assert (rec["categories"]["installed_apps"], rec["updated_at"]) == (grant(4), 10)


def test_apply_change_does_not_modify_the_previous_record() -> None:
    rec = _fold((1, GrantPurpose()), (2, AcceptPolicy(1)))
    before = json.dumps(rec, sort_keys=True)
    apply_change(rec, WithdrawPurpose(), 3)
    apply_change(rec, AcceptPolicy(2), 3)
    assert json.dumps(rec, sort_keys=True) == before


@pytest.mark.parametrize(
    ("previous", "user_id", "change"),
    [
        (None, None, GrantPurpose()),
        (record(), "user-2", GrantPurpose()),
        (record(), None, GrantCategory("")),
        (record(), None, AcceptPolicy(0)),
        (record(), None, SetBirth(birth_date=date(2001, 1, 1), birth_year=2002)),
    ],
)
def test_invalid_changes_are_rejected(
    previous: dict[str, Any] | None, user_id: str | None, change: Any
) -> None:
    with pytest.raises(ConsentChangeError):
        apply_change(previous, change, 1, user_id=user_id)


def test_folded_record_is_valid_for_the_consent_schema() -> None:
    rec = _fold(
        (1, AcceptPolicy(1)),
        (2, GrantPurpose()),
        (3, GrantCategory("precise_location")),
        (4, SetBirth(birth_date=date(2011, 3, 4), birth_year=2011)),
        (5, GrantGuardian()),
        (6, Cancel()),
    )
    latest = default_registry().latest("consent_record").version
    schema = fastavro.parse_schema(json.loads(schema_path("consent_record", latest).read_text()))
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, schema, rec)
    buf.seek(0)
    assert fastavro.schemaless_reader(buf, schema, schema) == rec
