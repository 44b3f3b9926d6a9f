"""What analysts can learn, measured from the input: an oracle that shares no code with consumers/.

Given the raw events a fleet published and each user's final consent record, `candidates`
says which events could reach an analyst and with which raw values (SPEC 5, written here
from the rules, for records whose consent was all published before the events). For a
released record, `persons_behind` counts the distinct persons with an event that could
show as its whole visible content (SPEC 7): each field checked by its own rule below (a
geohash prefix, a bucket range, a version prefix, a time bucket, the words of a template),
taken from the policy file's documented values, not from the pipeline's code.
`benchmarks.privacy_utility` turns released records and candidates into the report's figures.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlsplit

import pygeohash

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
GRANULARITY_MS = {"HOUR": HOUR_MS, "SIX_HOURS": 6 * HOUR_MS, "DAY": DAY_MS}
GEOHASH_PRECISION = 5
GUARDIAN_AGE = 14
INF = math.inf

#: bucket label -> [low, high) of the raw value, finest labels and their coarser rungs
BUCKETS: dict[str, dict[str, tuple[float, float]]] = {
    "battery_bucket": {
        "0-19": (0, 20), "20-49": (20, 50), "50-79": (50, 80), "80-100": (80, 101),
        "0-49": (0, 50), "50-100": (50, 101),
    },
    "signal_bucket": {
        "very_poor": (-150, -110), "poor": (-110, -100), "fair": (-100, -85),
        "good": (-85, -70), "excellent": (-70, 0.5), "weak": (-150, -100), "strong": (-85, 0.5),
    },
    "storage_bucket": {
        "lt1GiB": (0, 1024), "1-4GiB": (1024, 4096), "4-16GiB": (4096, 16384),
        "16-64GiB": (16384, 65536), "ge64GiB": (65536, INF),
        "lt4GiB": (0, 4096), "4-64GiB": (4096, 65536),
    },
    "screen_class": {"SD": (1, 720), "HD": (720, 1080), "FHD": (1080, 1440), "QHD+": (1440, 20001)},
    "usage_bucket": {
        "lt10s": (0, 10_000), "10s-1m": (10_000, 60_000), "1-5m": (60_000, 300_000),
        "5-30m": (300_000, 1_800_000), "30m-1h": (1_800_000, 3_600_000),
        "ge1h": (3_600_000, 604_800_001),
        "lt1m": (0, 60_000), "1-30m": (60_000, 1_800_000), "ge30m": (1_800_000, 604_800_001),
    },
    "installed_app_bucket": {
        "0": (0, 1), "1-19": (1, 20), "20-39": (20, 40), "40-59": (40, 60), "60+": (60, INF),
    },
}  # fmt: skip
EXACT = frozenset(
    {"brand", "model", "os_name", "app_id", "log_type", "app_state", "battery_charging"}
)
CONSTANT = frozenset({"anon_id", "policy_version", "min_consent_policy_version"})
_VERSION = re.compile(r"(?<![\d.])(\d{1,4})(?:\.(\d{1,4}))?(?!\d)")
_WORD = re.compile(r"<[A-Z_]+>|<\*>|([A-Za-z_][A-Za-z_]+)")


# ---- SPEC 5: which events pass, with which sensitive categories --------------------------


def _since(grant: Mapping[str, Any] | None, at_ms: int) -> bool:
    return grant is not None and bool(grant.get("granted")) and int(grant["since"]) <= at_ms


def _birthday_passed(born: date, on: date, years: int) -> bool:
    try:
        birthday = born.replace(year=born.year + years)
    except ValueError:  # 29 February: the birthday falls on 1 March
        birthday = date(born.year + years, 3, 1)
    return on >= birthday


def needs_guardian(consent: Mapping[str, Any], at_ms: int) -> bool:
    """Under GUARDIAN_AGE on the UTC date of the event (a birth year alone: 31 December)."""
    on = datetime.fromtimestamp(at_ms / 1000, tz=UTC).date()
    born = consent.get("birth_date")
    if born is None and consent.get("birth_year") is not None:
        born = date(int(consent["birth_year"]), 12, 31)
    if born is None:
        declared = consent.get("declared_minor")
        return True if declared is None else bool(declared)
    if isinstance(born, str):
        born = date.fromisoformat(born)
    return not _birthday_passed(born, on, GUARDIAN_AGE)


def allowed(
    consent: Mapping[str, Any] | None, at_ms: int, min_policy: int = 1
) -> frozenset[str] | None:
    """Categories an event collected at `at_ms` may keep, or None when it may not pass."""
    if consent is None or consent.get("account_status") == "CANCELLED":
        return None
    acceptances = sorted(consent.get("policy_acceptances") or [], key=lambda a: a["accepted_at"])
    in_force = [i for i, a in enumerate(acceptances) if a["accepted_at"] <= at_ms]
    if not in_force or any(a["version"] < min_policy for a in acceptances[in_force[-1] :]):
        return None
    if needs_guardian(consent, at_ms) and not _since(consent.get("guardian_consent"), at_ms):
        return None
    if not _since((consent.get("purposes") or {}).get("analytics"), at_ms):
        return None
    categories = consent.get("categories") or {}
    return frozenset(name for name, grant in categories.items() if _since(grant, at_ms))


# ---- the raw values an event could show --------------------------------------------------


@dataclass(frozen=True, slots=True)
class Candidate:
    """A passing event: its person, schema, collection time and raw releasable values."""

    person: str
    schema: str
    time_ms: int
    values: Mapping[str, Any]


def _raw_values(schema: str, event: Mapping[str, Any], kept: frozenset[str]) -> dict[str, Any]:
    values: dict[str, Any] = {name: event.get(name) for name in EXACT}
    values["network_status"] = event.get("network_status")
    values["os_version"] = event.get("os_version")
    values["app_version"] = event.get("app_version")
    if schema == "device_event":
        lat, lon = event.get("latitude"), event.get("longitude")
        values["geohash"] = (
            pygeohash.encode(lat, lon, GEOHASH_PRECISION)
            if "precise_location" in kept and lat is not None and lon is not None
            else None
        )
        values["battery_bucket"] = event.get("battery_level_pct")
        values["signal_bucket"] = event.get("signal_strength_dbm")
        values["storage_bucket"] = event.get("free_storage_mb")
        sides = (event.get("screen_width_px"), event.get("screen_height_px"))
        values["screen_class"] = min(sides) if None not in sides else None  # type: ignore[type-var]
        apps = event.get("installed_apps")
        values["installed_app_bucket"] = (
            len(apps) if "installed_apps" in kept and apps is not None else None
        )
    else:
        values["usage_bucket"] = event.get("usage_duration_ms")
        values["url_template"] = event.get("page_url")
        values["message"] = event.get("message")
        values["system_event"] = event.get("system_event")
    return values


def candidates(
    events: Iterable[tuple[str, Mapping[str, Any]]],
    consents: Mapping[str, Mapping[str, Any]],
    min_policy: int = 1,
) -> list[Candidate]:
    """The events that could reach an analyst under each user's final consent record."""
    out = []
    for schema, event in events:
        at_ms = int(event["event_time"])
        kept = allowed(consents.get(event["user_id"]), at_ms, min_policy)
        if kept is not None:
            values = _raw_values(schema, event, kept)
            out.append(Candidate(str(event["user_id"]), schema, at_ms, values))
    return out


# ---- could an event show as a released value? --------------------------------------------


def _version_fits(raw: Any, shown: str) -> bool:
    match = _VERSION.search(raw) if isinstance(raw, str) else None
    if match is None:
        return False
    major, minor = match.groups()
    parts = shown.split(".")
    if int(parts[0]) != int(major):
        return False
    return len(parts) == 1 or (minor is not None and int(parts[1]) == int(minor))


def _words_fit(raw: Any, shown: str) -> bool:
    if not isinstance(raw, str):
        return False
    return all(word in raw for word in _WORD.findall(shown) if word)


def _url_fits(raw: Any, shown: str) -> bool:
    if not isinstance(raw, str):
        return False
    try:
        parts = urlsplit(raw.strip())
    except ValueError:
        return False
    host = (parts.hostname or "").lower()
    return bool(host) and shown.lower().startswith(f"{parts.scheme.lower()}://{host}")


def fits(name: str, raw: Any, shown: Any) -> bool:
    """Whether a raw value could be released as `shown` (None, withheld, fits anything)."""
    if shown is None:
        return True
    if raw is None:
        return False
    if name == "geohash":
        return isinstance(raw, str) and raw.startswith(shown)
    if name in EXACT:
        return bool(raw == shown)
    if name == "network_status":
        return bool(raw == shown) or (shown == "CELL" and str(raw).startswith("CELL_"))
    if name in ("os_version", "app_version"):
        return _version_fits(raw, shown)
    if name in BUCKETS:
        low, high = BUCKETS[name].get(shown, (INF, -INF))
        return isinstance(raw, int | float) and low <= raw < high
    if name == "url_template":
        return _url_fits(raw, shown)
    if name in ("message", "system_event"):
        return _words_fit(raw, shown)
    raise ValueError(f"no rule for released field {name!r}")


def time_fits(time_ms: int, start_ms: int, granularity: str) -> bool:
    """Whether a collection time falls in the released bucket."""
    return start_ms <= time_ms < start_ms + GRANULARITY_MS[granularity]


class Index:
    """Candidates per schema and brand, for counting the persons behind released contents."""

    def __init__(self, found: Iterable[Candidate]) -> None:
        self.by_schema: dict[str, list[Candidate]] = defaultdict(list)
        self.by_brand: dict[tuple[str, Any], list[Candidate]] = defaultdict(list)
        for candidate in found:
            self.by_schema[candidate.schema].append(candidate)
            self.by_brand[(candidate.schema, candidate.values.get("brand"))].append(candidate)

    def persons_behind(self, schema: str, record: Mapping[str, Any], enough: int) -> int:
        """Distinct persons with an event that could show as `record` (stops at `enough`)."""
        brand = record.get("brand")
        pool = self.by_schema[schema] if brand is None else self.by_brand[(schema, brand)]
        start, granularity = record["event_hour"], record["time_granularity"]
        shown = [(n, v) for n, v in record.items() if n not in CONSTANT and v is not None]
        shown = [(n, v) for n, v in shown if n not in ("event_hour", "time_granularity")]
        persons: set[str] = set()
        for candidate in pool:
            if candidate.person in persons or not time_fits(candidate.time_ms, start, granularity):
                continue
            values = candidate.values
            if all(fits(name, values.get(name), value) for name, value in shown):
                persons.add(candidate.person)
                if len(persons) >= enough:
                    break
        return len(persons)
