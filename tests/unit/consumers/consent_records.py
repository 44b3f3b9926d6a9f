"""Hand-written consent records and times shared by the consent gate tests."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from consumers.consent import ConsentRules, Decision, decide
from consumers.consent_table import ConsentTable

#: the event's collection time: 2024-06-01 12:00:00 UTC
EVENT = int(datetime(2024, 6, 1, 12, tzinfo=UTC).timestamp() * 1000)
BEFORE = EVENT - 60_000
AFTER = EVENT + 60_000
NOW = EVENT + 3_600_000
USER = "user-1"


def grant(since: int, granted: bool = True) -> dict[str, Any]:
    """A ConsentGrant value."""
    return {"granted": granted, "since": since}


def record(
    version: int = 1,
    *,
    status: str = "ACTIVE",
    cancelled_at: int | None = None,
    policies: tuple[tuple[int, int], ...] = ((1, BEFORE),),
    analytics: dict[str, Any] | None = None,
    categories: dict[str, dict[str, Any]] | None = None,
    birth_date: date | None = None,
    birth_year: int | None = None,
    declared_minor: bool | None = False,
    guardian: dict[str, Any] | None = None,
    user_id: str = USER,
) -> dict[str, Any]:
    """A consent_record dict as fastavro decodes it; by default an adult granted analytics."""
    return {
        "user_id": user_id,
        "version": version,
        "updated_at": BEFORE,
        "account_status": status,
        "cancelled_at": cancelled_at,
        "policy_acceptances": [{"version": v, "accepted_at": at} for v, at in policies],
        "purposes": {"analytics": grant(BEFORE) if analytics is None else analytics},
        "categories": categories or {},
        "birth_date": birth_date,
        "birth_year": birth_year,
        "declared_minor": declared_minor,
        "guardian_consent": guardian,
    }


def judge(
    rec: dict[str, Any] | None,
    event_time: int = EVENT,
    rules: ConsentRules | None = None,
) -> Decision:
    """Load one record into a fresh table and judge one event of that user."""
    table = ConsentTable()
    table.apply(USER, rec)
    return decide(table.get(USER), event_time, NOW, rules or ConsentRules())


def utc_ms(year: int, month: int, day: int, hour: int = 0, ms: int = 0) -> int:
    """Epoch ms of a UTC instant."""
    return int(datetime(year, month, day, hour, tzinfo=UTC).timestamp() * 1000) + ms
