"""The latest consent state per user, as the pipeline reads it from the consent topic.

The consent topic is compacted and keyed by user id; each value is the user's
full latest state (`consent_record`), a tombstone means the account was
cancelled. `ConsentTable` keeps one compact `ConsentState` per user, parsed
once on arrival so that decisions never walk a dict. Every `since` in a record
is the time since which that state has held without interruption; the writer's
side (`consumers.consent_changes`) folds changes into records that way.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from types import MappingProxyType
from typing import Any

from schemas.errors import ConsentgateError

CANCELLED = "CANCELLED"
ACTIVE = "ACTIVE"
_NONE_GRANTED: Mapping[str, int] = MappingProxyType({})


class ConsentError(ConsentgateError):
    """Root of the consent stage's errors."""


class ConsentRecordError(ConsentError):
    """A consent record cannot be read as a consent state (never names the user)."""


class ConsentChangeError(ConsentError):
    """A consent change cannot be applied to the previous state."""


@dataclass(slots=True, eq=False)
class ConsentState:
    """One user's consent, parsed once for fast decisions (times are epoch ms UTC)."""

    version: int
    cancelled: bool = False
    #: purpose -> since, for the purposes granted now
    granted_purposes: Mapping[str, int] = field(default_factory=lambda: _NONE_GRANTED)
    #: purposes present in the record but not granted now
    withdrawn_purposes: frozenset[str] = frozenset()
    #: `since` of the granted categories, ascending; category_sets[i] holds the
    #: categories of the first i sinces (so it is one longer)
    category_sinces: tuple[int, ...] = ()
    category_sets: tuple[frozenset[str], ...] = (frozenset(),)
    #: acceptances sorted by time (stable), their versions, and the lowest
    #: version from each acceptance onwards (fail closed on out-of-order data)
    policy_times: tuple[int, ...] = ()
    policy_versions: tuple[int, ...] = ()
    policy_floors: tuple[int, ...] = ()
    #: birth date as yyyymmdd (a birth year alone as yyyy1231), None if unknown
    birth_key: int | None = None
    declared_minor: bool | None = None
    #: since of the guardian's consent when granted now, else None
    guardian_since: int | None = None

    def allowed_categories(self, event_time_ms: int) -> frozenset[str]:
        """Categories granted now and without interruption since at or before the event."""
        return self.category_sets[bisect_right(self.category_sinces, event_time_ms)]

    def policy_index(self, event_time_ms: int) -> int:
        """Index of the acceptance in force at the event time, -1 if none."""
        return bisect_right(self.policy_times, event_time_ms) - 1

    @classmethod
    def cancelled_state(cls, version: int) -> ConsentState:
        """A cancelled account: only the record version is kept, all personal data forgotten."""
        return cls(version, cancelled=True)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> ConsentState:
        """Parse a `consent_record` dict as fastavro decodes it."""
        try:
            return _parse(record)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConsentRecordError(f"malformed consent record: {type(exc).__name__}") from None


def _parse(record: dict[str, Any]) -> ConsentState:
    version = int(record["version"])
    if record["account_status"] == CANCELLED or record.get("cancelled_at") is not None:
        return ConsentState.cancelled_state(version)
    granted: dict[str, int] = {}
    withdrawn: set[str] = set()
    for name, grant in (record.get("purposes") or {}).items():
        if grant["granted"]:
            granted[name] = int(grant["since"])
        else:
            withdrawn.add(name)
    cats = sorted(
        (int(grant["since"]), name)
        for name, grant in (record.get("categories") or {}).items()
        if grant["granted"]
    )
    sets: list[frozenset[str]] = [frozenset()]
    for _since, name in cats:
        sets.append(sets[-1] | {name})
    accepted = sorted(
        (
            (int(a["accepted_at"]), int(a["version"]))
            for a in record.get("policy_acceptances") or ()
        ),
        key=lambda pair: pair[0],
    )
    floors: list[int] = []
    lowest: int | None = None
    for _at, policy in reversed(accepted):
        lowest = policy if lowest is None else min(lowest, policy)
        floors.append(lowest)
    floors.reverse()
    guardian = record.get("guardian_consent")
    declared = record.get("declared_minor")
    return ConsentState(
        version,
        granted_purposes=granted,
        withdrawn_purposes=frozenset(withdrawn),
        category_sinces=tuple(since for since, _name in cats),
        category_sets=tuple(sets),
        policy_times=tuple(at for at, _v in accepted),
        policy_versions=tuple(v for _at, v in accepted),
        policy_floors=tuple(floors),
        birth_key=_birth_key(record.get("birth_date"), record.get("birth_year")),
        declared_minor=None if declared is None else bool(declared),
        guardian_since=int(guardian["since"]) if guardian and guardian["granted"] else None,
    )


def _birth_key(birth_date: date | None, birth_year: int | None) -> int | None:
    """yyyymmdd of the birth date; a birth year alone is the youngest possible (31 Dec)."""
    if birth_date is not None:
        return birth_date.year * 10_000 + birth_date.month * 100 + birth_date.day
    if birth_year is not None:
        return int(birth_year) * 10_000 + 1231
    return None


class ConsentTable:
    """In-memory latest consent state per user id, fed from the compacted consent topic."""

    __slots__ = ("_states", "cancelled_count", "ignored_after_cancel", "stale_ignored")

    def __init__(self) -> None:
        self._states: dict[str, ConsentState] = {}
        #: users whose account is cancelled (they stay known, never unknown_user)
        self.cancelled_count = 0
        #: records ignored because a higher version was already held
        self.stale_ignored = 0
        #: records ignored because the account was already cancelled
        self.ignored_after_cancel = 0

    def apply(self, user_id: str, record: dict[str, Any] | None) -> bool:
        """Fold one consent-topic message in; return True if the held state changed.

        `record` None is a tombstone: the account is remembered as cancelled.
        A cancelled account stays cancelled whatever arrives later, and a record
        whose `version` is below the held one is stale and ignored.
        """
        held = self._states.get(user_id)
        if held is not None and held.cancelled:
            self.ignored_after_cancel += 1
            return False
        if record is None:
            self._states[user_id] = ConsentState.cancelled_state(
                held.version if held is not None else 0
            )
            self.cancelled_count += 1
            return True
        if record.get("user_id", user_id) != user_id:
            raise ConsentRecordError("consent record user_id does not match its key")
        state = ConsentState.from_record(record)
        if held is not None and state.version < held.version:
            self.stale_ignored += 1
            return False
        self._states[user_id] = state
        if state.cancelled:
            self.cancelled_count += 1
        return True

    def forget(self, user_id: str) -> None:
        """Fail closed on an unreadable record: the user counts as unknown (cancelled stays)."""
        held = self._states.get(user_id)
        if held is not None and not held.cancelled:
            del self._states[user_id]

    def get(self, user_id: str) -> ConsentState | None:
        """The state held for `user_id`, None if no record was ever seen."""
        return self._states.get(user_id)

    def __len__(self) -> int:
        return len(self._states)

    def __contains__(self, user_id: object) -> bool:
        return user_id in self._states
