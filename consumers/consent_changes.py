"""The writer's side of consent: changes folded by the time the user made them (SPEC 5).

Each change carries the time the user made it (`made_at`) and an idempotency key
(`change_id`). A user's full record keeps the user's changes (`changes`, at most
MAX_CHANGES) and its state is always recomputed from them in (made_at, seq) order,
`seq` being the order the writer received them. So a change that arrives late lands
where it belongs: a late withdrawal interrupts the grant it falls inside, a late
grant never covers time after a later withdrawal, a late policy acceptance takes its
place among the others. A change whose `change_id` the record already holds is a
duplicate and changes nothing.

Size: a record lists at most MAX_CHANGES changes. Beyond that the oldest are folded
into synthetic changes that reproduce their state exactly (`compacted_before` is the
time of the last of them; their ids stay in `compacted_ids`, at most MAX_IDS). A
change made before that time still folds exactly, except a grant, which could then
cover time after a withdrawal that is no longer listed: it is ignored (fail closed).
A full record published without changes (by an older writer) is read the same way.

Pure: records are plain dicts as fastavro reads them; nothing here does I/O.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from schemas.errors import ConsentgateError

CANCELLED = "CANCELLED"
ACTIVE = "ACTIVE"
MAX_CHANGES = 256
KEEP_AFTER_COMPACTION = 192
MAX_IDS = 512
SYNTHETIC = "~"
"""Prefix of the change ids of synthetic changes (they reproduce a folded state)."""

GRANTS = frozenset({"GRANT_PURPOSE", "GRANT_CATEGORY", "GRANT_GUARDIAN"})


class ConsentChangeError(ConsentgateError):
    """A consent change cannot be applied to the previous state."""


# ---- the Python vocabulary of changes --------------------------------------------------------


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
    """The user accepts a privacy-policy version."""

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


def change_fields(
    change: ConsentChange, made_at: int, change_id: str | None = None
) -> dict[str, Any]:
    """The wire form of a change (`consent_change` without user_id); a fresh id if none given."""
    out: dict[str, Any] = {
        "change_id": change_id or str(uuid.uuid4()),
        "kind": "",
        "name": None,
        "policy_version": None,
        "birth_date": None,
        "birth_year": None,
        "declared_minor": None,
        "made_at": int(made_at),
    }
    match change:
        case (
            GrantPurpose(name)
            | WithdrawPurpose(name)
            | GrantCategory(name)
            | WithdrawCategory(name)
        ):
            if not isinstance(name, str) or not name:
                raise ConsentChangeError("a purpose or category name must be a non-empty string")
            verb = "GRANT" if isinstance(change, GrantPurpose | GrantCategory) else "WITHDRAW"
            noun = "PURPOSE" if isinstance(change, GrantPurpose | WithdrawPurpose) else "CATEGORY"
            out.update(kind=f"{verb}_{noun}", name=name)
        case AcceptPolicy(version):
            if isinstance(version, bool) or not isinstance(version, int) or version < 1:
                raise ConsentChangeError("a policy version is a positive integer")
            out.update(kind="ACCEPT_POLICY", policy_version=version)
        case SetBirth(birth_date, birth_year, declared_minor):
            if birth_date is not None and birth_year is not None and birth_date.year != birth_year:
                raise ConsentChangeError("birth date and birth year disagree")
            out.update(
                kind="SET_BIRTH",
                birth_date=birth_date,
                birth_year=birth_year,
                declared_minor=declared_minor,
            )
        case GrantGuardian():
            out["kind"] = "GRANT_GUARDIAN"
        case WithdrawGuardian():
            out["kind"] = "WITHDRAW_GUARDIAN"
        case Cancel():
            out["kind"] = "CANCEL"
        case _:
            raise ConsentChangeError(f"unknown consent change {type(change).__name__}")
    return out


# ---- the fold ------------------------------------------------------------------------------


def empty_record(user_id: str) -> dict[str, Any]:
    """A consent record with nothing granted (version 0), the base of a user's first change."""
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
        "changes": [],
        "compacted_before": None,
        "compacted_ids": [],
    }


def _granted(grant: dict[str, Any] | None, at_ms: int) -> dict[str, Any]:
    """Granting keeps the since of a grant that holds; otherwise the grant starts now."""
    if grant is not None and grant["granted"]:
        return grant
    return {"granted": True, "since": at_ms}


def _withdrawn(grant: dict[str, Any] | None, at_ms: int) -> dict[str, Any] | None:
    """Withdrawing a grant that holds starts a withdrawal now; never-granted stays absent."""
    if grant is None or not grant["granted"]:
        return grant
    return {"granted": False, "since": at_ms}


def _order(change: Mapping[str, Any]) -> tuple[int, int]:
    return (int(change["made_at"]), int(change["seq"]))


def fold(changes: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The consent state after `changes`, applied in the order they were made."""
    purposes: dict[str, Any] = {}
    categories: dict[str, Any] = {}
    acceptances: list[dict[str, Any]] = []
    guardian: dict[str, Any] | None = None
    birth: tuple[Any, Any, Any] = (None, None, None)
    cancelled_at: int | None = None
    for change in sorted(changes, key=_order):
        at, kind, name = int(change["made_at"]), change["kind"], str(change.get("name"))
        if kind in ("GRANT_PURPOSE", "GRANT_CATEGORY"):
            table = purposes if kind == "GRANT_PURPOSE" else categories
            table[name] = _granted(table.get(name), at)
        elif kind in ("WITHDRAW_PURPOSE", "WITHDRAW_CATEGORY"):
            table = purposes if kind == "WITHDRAW_PURPOSE" else categories
            withdrawn = _withdrawn(table.get(name), at)
            if withdrawn is not None:
                table[name] = withdrawn
        elif kind == "ACCEPT_POLICY":
            version = int(change["policy_version"])
            if not acceptances or acceptances[-1]["version"] != version:
                acceptances.append({"version": version, "accepted_at": at})
        elif kind == "SET_BIRTH":
            birth = (
                change.get("birth_date"),
                change.get("birth_year"),
                change.get("declared_minor"),
            )
        elif kind == "GRANT_GUARDIAN":
            guardian = _granted(guardian, at)
        elif kind == "WITHDRAW_GUARDIAN":
            guardian = _withdrawn(guardian, at)
        elif kind == "CANCEL":
            cancelled_at = at if cancelled_at is None else min(cancelled_at, at)
        else:
            raise ConsentChangeError(f"unknown consent change kind {kind!r}")
    return {
        "account_status": ACTIVE if cancelled_at is None else CANCELLED,
        "cancelled_at": cancelled_at,
        "policy_acceptances": acceptances,
        "purposes": purposes,
        "categories": categories,
        "birth_date": birth[0],
        "birth_year": birth[1],
        "declared_minor": birth[2],
        "guardian_consent": guardian,
    }


def _synthetic(kind: str, at: int, n: int, **fields: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "change_id": f"{SYNTHETIC}{at}-{n}",
        "kind": kind,
        "name": None,
        "policy_version": None,
        "birth_date": None,
        "birth_year": None,
        "declared_minor": None,
        "made_at": int(at),
        "seq": n - 1_000_000,
    }
    out.update(fields)
    return out


def synthesize(state: Mapping[str, Any], birth_at: int) -> list[dict[str, Any]]:
    """Changes whose fold is exactly `state` (a record's state fields)."""
    out: list[dict[str, Any]] = []

    def add(kind: str, at: int, **fields: Any) -> None:
        out.append(_synthetic(kind, at, len(out), **fields))

    for acceptance in state.get("policy_acceptances") or []:
        add("ACCEPT_POLICY", acceptance["accepted_at"], policy_version=acceptance["version"])
    for table, noun in (("purposes", "PURPOSE"), ("categories", "CATEGORY")):
        for name, grant in (state.get(table) or {}).items():
            add(f"GRANT_{noun}", grant["since"], name=name)
            if not grant["granted"]:
                add(f"WITHDRAW_{noun}", grant["since"], name=name)
    guardian = state.get("guardian_consent")
    if guardian is not None:
        add("GRANT_GUARDIAN", guardian["since"])
        if not guardian["granted"]:
            add("WITHDRAW_GUARDIAN", guardian["since"])
    birth = (state.get("birth_date"), state.get("birth_year"), state.get("declared_minor"))
    if any(value is not None for value in birth):
        add(
            "SET_BIRTH", birth_at, birth_date=birth[0], birth_year=birth[1], declared_minor=birth[2]
        )
    if state.get("account_status") == CANCELLED or state.get("cancelled_at") is not None:
        add("CANCEL", state.get("cancelled_at") or birth_at)
    return out


def _history(previous: Mapping[str, Any]) -> tuple[list[dict[str, Any]], int | None]:
    """The changes a record lists and its horizon; a record without changes is synthesized."""
    listed = [dict(c) for c in previous.get("changes") or []]
    horizon = previous.get("compacted_before")
    if listed or not int(previous.get("version") or 0):
        return listed, horizon
    updated = int(previous.get("updated_at") or 0)
    return synthesize(previous, updated), max(updated, horizon or 0)


def _compact(
    history: list[dict[str, Any]], ids: list[str]
) -> tuple[list[dict[str, Any]], int, list[str]]:
    """Fold the oldest changes into synthetic ones once the history exceeds MAX_CHANGES."""
    ordered = sorted(history, key=_order)
    old, kept = ordered[:-KEEP_AFTER_COMPACTION], ordered[-KEEP_AFTER_COMPACTION:]
    horizon = int(old[-1]["made_at"])
    births = [c for c in old if c["kind"] == "SET_BIRTH"]
    birth_at = int(births[-1]["made_at"]) if births else horizon
    synthetic = synthesize(fold(old), birth_at)
    forgotten = [c["change_id"] for c in old if not c["change_id"].startswith(SYNTHETIC)]
    return [*synthetic, *kept], horizon, (ids + forgotten)[-MAX_IDS:]


def record_change(
    previous: Mapping[str, Any] | None, change: Mapping[str, Any], *, user_id: str | None = None
) -> tuple[dict[str, Any], bool]:
    """The user's record with `change` folded in, and False when it was a duplicate.

    `change` is the wire form (`change_fields`, or a decoded `consent_change`).
    """
    if previous is None:
        if user_id is None:
            raise ConsentChangeError("a first consent change needs the user id")
        previous = empty_record(user_id)
    elif user_id is not None and previous["user_id"] != user_id:
        raise ConsentChangeError("user id does not match the previous consent record")
    change_id = str(change["change_id"])
    if not change_id or change_id.startswith(SYNTHETIC):
        raise ConsentChangeError(f"a change id must be non-empty and not start with {SYNTHETIC!r}")
    history, horizon = _history(previous)
    ids = list(previous.get("compacted_ids") or [])
    if change_id in ids or any(c["change_id"] == change_id for c in history):
        return dict(previous), False
    version = int(previous.get("version") or 0) + 1
    made_at = int(change["made_at"])
    entry: dict[str, Any] = {name: change.get(name) for name in _CHANGE_FIELDS}
    entry.update(made_at=made_at, seq=version)
    late_grant = horizon is not None and made_at < horizon and entry["kind"] in GRANTS
    if late_grant:
        ids = [*ids, change_id][-MAX_IDS:]  # seen, so that it is not counted again; ignored
    else:
        history.append(entry)
    if len(history) > MAX_CHANGES:
        history, horizon, ids = _compact(history, ids)
    record = {
        "user_id": previous["user_id"],
        "version": version,
        "updated_at": max(int(previous.get("updated_at") or 0), made_at),
        **fold(history),
        "changes": sorted(history, key=_order),
        "compacted_before": horizon,
        "compacted_ids": ids,
    }
    return copy.deepcopy(record), True


_CHANGE_FIELDS = (
    "change_id",
    "kind",
    "name",
    "policy_version",
    "birth_date",
    "birth_year",
    "declared_minor",
    "made_at",
)


def apply_change(
    previous: Mapping[str, Any] | None,
    change: ConsentChange,
    at_ms: int,
    *,
    user_id: str | None = None,
    change_id: str | None = None,
) -> dict[str, Any]:
    """The full record after `change` made at `at_ms` (a fresh change id unless given)."""
    record, _applied = record_change(
        previous, change_fields(change, at_ms, change_id), user_id=user_id
    )
    return record
