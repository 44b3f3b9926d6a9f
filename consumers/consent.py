"""The consent gate: decide per event whether it may be processed, and strip unconsented fields.

A record passes only if the user's purpose grant (default `analytics`) held at
the event's collection time and without interruption until processing; the
same rule per sensitive category decides which sensitive fields survive.
Because every `since` in the consent record is the time since which that state
has held without interruption, the latest state per user is enough. Reasons,
the first that applies: unknown_user, account_cancelled, policy_version_too_old,
minor_without_guardian_consent, consent_withdrawn, no_analytics_consent.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import Any, Generic, Protocol, TypeVar

from consumers.consent_table import ConsentError, ConsentState, ConsentTable
from schemas.fields import FieldTag, field_tags

UNKNOWN_USER = "unknown_user"
ACCOUNT_CANCELLED = "account_cancelled"
POLICY_VERSION_TOO_OLD = "policy_version_too_old"
MINOR_WITHOUT_GUARDIAN_CONSENT = "minor_without_guardian_consent"
CONSENT_WITHDRAWN = "consent_withdrawn"
NO_ANALYTICS_CONSENT = "no_analytics_consent"

#: every drop reason, in the order they are checked (the `reason` metric label values)
REASONS: tuple[str, ...] = (
    UNKNOWN_USER,
    ACCOUNT_CANCELLED,
    POLICY_VERSION_TOO_OLD,
    MINOR_WITHOUT_GUARDIAN_CONSENT,
    CONSENT_WITHDRAWN,
    NO_ANALYTICS_CONSENT,
)

#: which rule made each decision (None = passed), for audit and explanations
RULES: dict[str | None, str] = {
    UNKNOWN_USER: "no consent record for this user: fail closed",
    ACCOUNT_CANCELLED: "account cancelled at or before processing: no further processing",
    POLICY_VERSION_TOO_OLD: "policy version in force at the event time is below the minimum",
    MINOR_WITHOUT_GUARDIAN_CONSENT: (
        "under the guardian age on the event's UTC date and guardian consent "
        "did not hold from the event time until processing"
    ),
    CONSENT_WITHDRAWN: "purpose withdrawn: not granted at processing, granted earlier",
    NO_ANALYTICS_CONSENT: "purpose never granted, or granted only after the event",
    None: "purpose granted at the event time and without interruption until processing",
}

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_DAY_MS = 86_400_000
_NO_CATEGORIES: frozenset[str] = frozenset()


class ConsentConfigError(ConsentError):
    """The consent rules are invalid (raised at start, before any record)."""


@dataclass(frozen=True, slots=True)
class ConsentRules:
    """What the gate enforces: the purpose, the minimum policy version, the guardian age."""

    purpose: str = "analytics"
    min_policy_version: int = 1
    guardian_age: int = 14
    missing_birth_needs_guardian: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.purpose, str) or not self.purpose:
            raise ConsentConfigError("consent purpose must be a non-empty string")
        if not _is_int(self.min_policy_version) or self.min_policy_version < 1:
            raise ConsentConfigError("min_policy_version must be an integer >= 1")
        if not _is_int(self.guardian_age) or not 1 <= self.guardian_age <= 18:
            raise ConsentConfigError("guardian_age must be an integer from 1 to 18")
        if not isinstance(self.missing_birth_needs_guardian, bool):
            raise ConsentConfigError("missing_birth_needs_guardian must be true or false")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(slots=True)
class Decision:
    """The gate's verdict on one event, with the rule that made it and what it was judged on."""

    passed: bool
    reason: str | None
    allowed_categories: frozenset[str]
    minor: bool
    record_version: int | None
    policy_version: int | None

    @property
    def rule(self) -> str:
        """Which rule decided, in words (no personal data)."""
        return RULES[self.reason]

    @property
    def provenance(self) -> str:
        """Consent record and policy versions judged against, e.g. `v=7;policy=2`."""
        version = "none" if self.record_version is None else self.record_version
        policy = "none" if self.policy_version is None else self.policy_version
        return f"v={version};policy={policy}"


def is_minor(state: ConsentState, event_time_ms: int, rules: ConsentRules) -> bool:
    """Whether the user is under `rules.guardian_age` on the UTC date of the event."""
    if state.birth_key is None:
        if state.declared_minor is not None:
            return state.declared_minor
        return rules.missing_birth_needs_guardian
    # yyyymmdd keys: the n-th birthday is birth_key + n * 10000 (29 Feb -> from 1 Mar)
    return _utc_day_key(event_time_ms // _DAY_MS) < state.birth_key + rules.guardian_age * 10_000


@lru_cache(maxsize=65_536)
def _utc_day_key(epoch_day: int) -> int:
    """yyyymmdd of the UTC date `epoch_day` days after 1970-01-01."""
    day = date.fromordinal(_EPOCH_ORDINAL + epoch_day)
    return day.year * 10_000 + day.month * 100 + day.day


def decide(
    state: ConsentState | None, event_time_ms: int, now_ms: int, rules: ConsentRules
) -> Decision:
    """Judge one event collected at `event_time_ms` and processed at `now_ms` (epoch ms UTC).

    `state` is the latest consent state, which already reflects every change
    made before processing; `now_ms` is carried for the record of the decision
    and is not needed by the rule itself, because each `since` says how long a
    state has held up to now.
    """
    if state is None:
        return Decision(False, UNKNOWN_USER, _NO_CATEGORIES, False, None, None)
    version = state.version
    if state.cancelled:
        return Decision(False, ACCOUNT_CANCELLED, _NO_CATEGORIES, False, version, None)
    minor = is_minor(state, event_time_ms, rules)
    index = state.policy_index(event_time_ms)
    if index < 0:
        return Decision(False, POLICY_VERSION_TOO_OLD, _NO_CATEGORIES, minor, version, None)
    policy = state.policy_versions[index]
    if state.policy_floors[index] < rules.min_policy_version:
        return Decision(False, POLICY_VERSION_TOO_OLD, _NO_CATEGORIES, minor, version, policy)
    if minor:
        guardian = state.guardian_since
        if guardian is None or guardian > event_time_ms:
            return Decision(
                False, MINOR_WITHOUT_GUARDIAN_CONSENT, _NO_CATEGORIES, True, version, policy
            )
    since = state.granted_purposes.get(rules.purpose)
    if since is None:
        reason = (
            CONSENT_WITHDRAWN if rules.purpose in state.withdrawn_purposes else NO_ANALYTICS_CONSENT
        )
        return Decision(False, reason, _NO_CATEGORIES, minor, version, policy)
    if since > event_time_ms:
        return Decision(False, NO_ANALYTICS_CONSENT, _NO_CATEGORIES, minor, version, policy)
    return Decision(True, None, state.allowed_categories(event_time_ms), minor, version, policy)


class Gateable(Protocol):
    """What the gate needs of an item: the event dict and its schema name."""

    @property
    def event(self) -> dict[str, Any]:
        """The decoded event (`user_id`, `event_time` and the schema's fields)."""

    @property
    def schema(self) -> str:
        """The event's schema name, e.g. `device_event`."""


@dataclass(slots=True)
class GateItem:
    """A plain gate item; the worker may pass any object with `.event` and `.schema`."""

    event: dict[str, Any]
    schema: str


T = TypeVar("T", bound=Gateable)


@dataclass(slots=True)
class GateResult(Generic[T]):
    """Kept items with their decisions, dropped items with their reasons, and the counts."""

    kept: list[tuple[T, Decision]] = field(default_factory=list)
    dropped: list[tuple[T, str]] = field(default_factory=list)
    dropped_by_reason: Counter[str] = field(default_factory=Counter)
    removed_fields: Counter[str] = field(default_factory=Counter)
    minors: int = 0


def fields_by_category(tags: Mapping[str, FieldTag]) -> dict[str, tuple[str, ...]]:
    """Group a schema's field tags as consent category -> field names."""
    grouped: dict[str, list[str]] = {}
    for name, tag in tags.items():
        if tag.category:
            grouped.setdefault(tag.category, []).append(name)
    return {category: tuple(names) for category, names in grouped.items()}


def gate(
    items: Sequence[T],
    table: ConsentTable,
    now_ms: int,
    rules: ConsentRules,
    tags_of: Callable[[str], Mapping[str, FieldTag]] = field_tags,
) -> GateResult[T]:
    """Split a batch into kept and dropped items; strip unconsented sensitive fields in place.

    For each kept item every present sensitive field whose category is not in
    the decision's allowed categories is set to None and counted per category.
    """
    result: GateResult[T] = GateResult()
    kept = result.kept
    dropped = result.dropped
    removed = result.removed_fields
    by_reason = result.dropped_by_reason
    categories_of: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {}
    states = table.get
    minors = 0
    for item in items:
        event = item.event
        decision = decide(states(event["user_id"]), event["event_time"], now_ms, rules)
        if decision.minor:
            minors += 1
        if not decision.passed:
            reason = decision.reason or UNKNOWN_USER
            dropped.append((item, reason))
            by_reason[reason] += 1
            continue
        schema = item.schema
        sensitive = categories_of.get(schema)
        if sensitive is None:
            sensitive = tuple(fields_by_category(tags_of(schema)).items())
            categories_of[schema] = sensitive
        allowed = decision.allowed_categories
        for category, names in sensitive:
            if category in allowed:
                continue
            for name in names:
                if event.get(name) is not None:
                    event[name] = None
                    removed[category] += 1
        kept.append((item, decision))
    result.minors = minors
    return result
