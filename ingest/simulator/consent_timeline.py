"""Synthetic consent timelines: sign-up grants and later changes, as full consent records.

The simulator's own fold of a change into the previous record (version +1,
`since` kept for a grant already held, reset by a withdrawal or a re-grant),
kept apart from the pipeline's so that the simulator cannot share its bugs.
"""

from __future__ import annotations

import random
from typing import Any

from ingest.simulator.fleet import DAY, User
from schemas.errors import ConsentgateError


class SimulationError(ConsentgateError):
    """The simulation was configured with impossible parameters."""


CURRENT_POLICY_VERSION = 3
ANALYTICS = "analytics"
# Sign-up grant probability of each purpose and sensitive category.
PURPOSE_ODDS: dict[str, float] = {
    ANALYTICS: 0.9,
    "product_improvement": 0.6,
    "personalized_ads": 0.3,
}
CATEGORY_ODDS: dict[str, float] = {
    "device_identifiers": 0.6,
    "precise_location": 0.5,
    "installed_apps": 0.35,
}
GUARDIAN_ODDS = 0.6


def copy_consent(record: dict[str, Any]) -> dict[str, Any]:
    """A consent record sharing no mutable part with `record`."""
    out = dict(record)
    out["policy_acceptances"] = [dict(a) for a in record["policy_acceptances"]]
    out["purposes"] = {k: dict(v) for k, v in record["purposes"].items()}
    out["categories"] = {k: dict(v) for k, v in record["categories"].items()}
    guardian = record["guardian_consent"]
    out["guardian_consent"] = dict(guardian) if guardian is not None else None
    return out


def _set(state: dict[str, Any] | None, granted: bool, at: int) -> dict[str, Any]:
    """A grant state after granting or withdrawing at `at`: an unchanged state keeps `since`."""
    if state is not None and state["granted"] == granted:
        return state
    return {"granted": granted, "since": at}


def apply_change(record: dict[str, Any], kind: str, name: str, at: int) -> dict[str, Any]:
    """The next full consent snapshot after one change (version + 1, updated_at = at)."""
    new = copy_consent(record)
    new["version"] = record["version"] + 1
    new["updated_at"] = at
    if kind in ("grant", "withdraw"):
        table = new["purposes"] if name in PURPOSE_ODDS else new["categories"]
        table[name] = _set(table.get(name), kind == "grant", at)
    elif kind == "accept_policy":
        new["policy_acceptances"].append({"version": int(name), "accepted_at": at})
    elif kind == "guardian":
        new["guardian_consent"] = _set(new["guardian_consent"], name == "grant", at)
    elif kind == "cancel":
        new["account_status"] = "CANCELLED"
        new["cancelled_at"] = at
    else:
        raise SimulationError(f"unknown consent change kind {kind!r}")
    return new


def signup(rng: random.Random, user: User, at: int, policy: int) -> dict[str, Any]:
    """The first consent snapshot: the policy accepted, each purpose and category by its odds."""
    guardian = (
        {"granted": True, "since": at} if user.minor and rng.random() < GUARDIAN_ODDS else None
    )
    return {
        "user_id": user.user_id,
        "version": 1,
        "updated_at": at,
        "account_status": "ACTIVE",
        "cancelled_at": None,
        "policy_acceptances": [{"version": policy, "accepted_at": at}],
        "purposes": {
            p: {"granted": True, "since": at} for p, o in PURPOSE_ODDS.items() if rng.random() < o
        },
        "categories": {
            c: {"granted": True, "since": at} for c, o in CATEGORY_ODDS.items() if rng.random() < o
        },
        "birth_date": user.birth_date,
        "birth_year": user.birth_year,
        "declared_minor": user.declared_minor,
        "guardian_consent": guardian,
    }


def pick_change(
    rng: random.Random, record: dict[str, Any], user: User, policy: int, *, cancel: bool
) -> tuple[str, str]:
    """A plausible next change for this user's state, as (kind, name)."""
    options: list[tuple[str, str]] = []
    weights: list[float] = []

    def add(kind: str, name: str, weight: float) -> None:
        options.append((kind, name))
        weights.append(weight)

    for table, odds in ((record["purposes"], PURPOSE_ODDS), (record["categories"], CATEGORY_ODDS)):
        for name in odds:
            state = table.get(name)
            # Withdrawn things are often granted again; never-granted ones rarely.
            weight = 1.0 if state is None else 1.0 if state["granted"] else 4.0
            weight *= 2.0 if name == ANALYTICS else 1.0
            add("withdraw" if state and state["granted"] else "grant", name, weight)
    if record["policy_acceptances"][-1]["version"] < policy:
        add("accept_policy", str(policy), 2.0)
    if user.minor:
        guardian = record["guardian_consent"]
        add("guardian", "withdraw" if guardian and guardian["granted"] else "grant", 1.0)
    if cancel:
        add("cancel", "", 0.7)
    return rng.choices(options, weights)[0]


def history(rng: random.Random, user: User, start_ms: int, policy: int) -> dict[str, Any]:
    """Consent of a user who signed up before the run: sign-up, policy upgrades, past changes."""
    release = {v: start_ms - ((policy - v) * 300 + 60) * DAY for v in range(1, policy + 1)}
    at = start_ms - int(rng.uniform(1, 700) * DAY)
    accepted = max([1] + [v for v, t in release.items() if t <= at])
    record = signup(rng, user, at, accepted)
    for version in range(accepted + 1, policy + 1):
        if rng.random() < 0.12:
            break
        upgraded = max(at, release[version]) + int(rng.uniform(0, 20) * DAY)
        if upgraded >= start_ms:
            break
        at = upgraded
        record = apply_change(record, "accept_policy", str(version), at)
    while rng.random() < 0.35:
        at += int(rng.uniform(0.0, 0.5) * (start_ms - at))
        kind, name = pick_change(rng, record, user, 0, cancel=False)
        record = apply_change(record, kind, name, at)
    return record
