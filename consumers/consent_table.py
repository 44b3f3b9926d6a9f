"""The latest consent state per user, and how a consent change folds into a full record.

The consent topic is compacted and keyed by user id; each value is the user's
full latest state (`consent_record.v1`), a tombstone means the account was
cancelled. `ConsentTable` keeps one compact `ConsentState` per user, parsed
once on arrival so that decisions never walk a dict. `apply_change` is the
writer's side: it folds one change into the previous full record so that
publishers always write complete snapshots in which every `since` is the time
since which that state has held without interruption.
"""

from __future__ import annotations

import copy
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


# ---------------------------------------------------------------------------
# Writer side: fold one change into the previous full record.


@dataclass(frozen=True, slots=True)
class GrantPurpose:
    """The user grants a purpose (e.g. analytics)."""

    name: str = "analytics"


@dataclass(frozen=True, slots=True)
class WithdrawPurpose:
    """The user withdraws a purpose."""

    name: str = "analytics"


@dataclass(frozen=True, slots=True)
class GrantCategory:
    """The user grants a sensitive category (device_identifiers, precise_location, ...)."""

    name: str


@dataclass(frozen=True, slots=True)
class WithdrawCategory:
    """The user withdraws a sensitive category."""

    name: str


@dataclass(frozen=True, slots=True)
class AcceptPolicy:
    """The user accepts a privacy-policy version (never lower than one already accepted)."""

    version: int


@dataclass(frozen=True, slots=True)
class SetBirth:
    """Replace the birth data: a date, or only a year, and/or a self-declared minor flag."""

    birth_date: date | None = None
    birth_year: int | None = None
    declared_minor: bool | None = None


@dataclass(frozen=True, slots=True)
class GrantGuardian:
    """A guardian consents to the processing of a minor's data."""


@dataclass(frozen=True, slots=True)
class WithdrawGuardian:
    """The guardian withdraws consent."""


@dataclass(frozen=True, slots=True)
class Cancel:
    """The user cancels the account (terminal)."""


ConsentChange = (
    GrantPurpose
    | WithdrawPurpose
    | GrantCategory
    | WithdrawCategory
    | AcceptPolicy
    | SetBirth
    | GrantGuardian
    | WithdrawGuardian
    | Cancel
)


def empty_record(user_id: str) -> dict[str, Any]:
    """A `consent_record` with nothing granted (version 0), the base of a user's first change."""
    return {
        "user_id": user_id,
        "version": 0,
        "updated_at": 0,
        "account_status": ACTIVE,
        "cancelled_at": None,
        "policy_acceptances": [],
        "purposes": {},
        "categories": {},
        "birth_date": None,
        "birth_year": None,
        "declared_minor": None,
        "guardian_consent": None,
    }


def _granted(grant: dict[str, Any] | None, at_ms: int) -> dict[str, Any]:
    """Granting keeps the since of an existing grant; otherwise the grant starts now."""
    if grant is not None and grant["granted"]:
        return grant
    return {"granted": True, "since": at_ms}


def _withdrawn(grant: dict[str, Any] | None, at_ms: int) -> dict[str, Any] | None:
    """Withdrawing a grant starts a withdrawal now; never-granted stays absent."""
    if grant is None or not grant["granted"]:
        return grant
    return {"granted": False, "since": at_ms}


def apply_change(
    previous: dict[str, Any] | None,
    change: ConsentChange,
    at_ms: int,
    *,
    user_id: str | None = None,
) -> dict[str, Any]:
    """Return the full record after `change` made at `at_ms`; `previous` is not modified.

    `user_id` is needed when there is no previous record. Changes apply in call
    order, so equal times apply in publish order; a change stamped before the
    previous state is applied at the previous state's time (it can then only
    cover fewer events: fail closed). After a cancellation the record stays
    cancelled (later changes are folded but change no decision).
    """
    if previous is None:
        if user_id is None:
            raise ConsentChangeError("a first consent change needs the user id")
        previous = empty_record(user_id)
    elif user_id is not None and previous["user_id"] != user_id:
        raise ConsentChangeError("user id does not match the previous consent record")
    record = copy.deepcopy(previous)
    at = max(int(at_ms), int(record["updated_at"]))
    match change:
        case GrantPurpose(name) | GrantCategory(name):
            table = record["purposes" if isinstance(change, GrantPurpose) else "categories"]
            table[_checked_name(name)] = _granted(table.get(name), at)
        case WithdrawPurpose(name) | WithdrawCategory(name):
            table = record["purposes" if isinstance(change, WithdrawPurpose) else "categories"]
            grant = _withdrawn(table.get(_checked_name(name)), at)
            if grant is not None:
                table[name] = grant
        case AcceptPolicy(version):
            _accept(record["policy_acceptances"], version, at)
        case SetBirth(birth_date, birth_year, declared_minor):
            if birth_date is not None and birth_year is not None and birth_date.year != birth_year:
                raise ConsentChangeError("birth date and birth year disagree")
            record["birth_date"] = birth_date
            record["birth_year"] = birth_year
            record["declared_minor"] = declared_minor
        case GrantGuardian():
            record["guardian_consent"] = _granted(record["guardian_consent"], at)
        case WithdrawGuardian():
            record["guardian_consent"] = _withdrawn(record["guardian_consent"], at)
        case Cancel():
            if record["account_status"] != CANCELLED:
                record["account_status"] = CANCELLED
                record["cancelled_at"] = at
        case _:
            raise ConsentChangeError(f"unknown consent change {type(change).__name__}")
    record["version"] = int(record["version"]) + 1
    record["updated_at"] = at
    return record


def _checked_name(name: str) -> str:
    if not isinstance(name, str) or not name:
        raise ConsentChangeError("a purpose or category name must be a non-empty string")
    return name


def _accept(acceptances: list[dict[str, Any]], version: int, at: int) -> None:
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ConsentChangeError("a policy version is a positive integer")
    latest = acceptances[-1]["version"] if acceptances else 0
    if version < latest:
        raise ConsentChangeError(f"policy version {version} is below the accepted {latest}")
    if version > latest:
        acceptances.append({"version": version, "accepted_at": at})
