"""The consent scenario's vocabulary: the worker's rules as the oracle needs them, a
user's consent steps and planned events, and the oracle's verdict on one event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
S = 1000
LOC = "precise_location"
IDS = "device_identifiers"
APPS = "installed_apps"
CATEGORIES = (IDS, LOC, APPS)
#: SPEC 5 and the schemas: the raw fields each sensitive category covers (Wi-Fi is location).
CATEGORY_FIELDS: dict[str, tuple[str, ...]] = {
    IDS: ("imei", "mac_address", "android_id", "advertising_id", "serial_number"),
    LOC: (
        "wifi_bssid",
        "wifi_ssid",
        "latitude",
        "longitude",
        "location_accuracy_m",
        "location_source",
    ),
    APPS: ("installed_apps",),
}
APP_LIST = ["com.tencent.mm", "com.eg.android.AlipayGphone", "com.sina.weibo"]
ADULT_BIRTH = date(1990, 5, 17)


@dataclass(frozen=True, slots=True)
class Rules:
    """The worker's configuration as the oracle needs it."""

    min_policy_version: int = 2
    guardian_age: int = 14
    missing_birth_needs_guardian: bool = True


@dataclass(frozen=True, slots=True)
class Step:
    """One consent change of a user: kind, name or version, its time, and its wave."""

    kind: (
        str  # grant | withdraw | grant_cat | withdraw_cat | policy | guardian | cancel | tombstone
    )
    at_ms: int
    wave: int = 1
    name: str = "analytics"
    version: int = 0


@dataclass(frozen=True, slots=True)
class PlannedEvent:
    """One event to publish: what it carries and when it was collected."""

    tag: str
    schema: str
    at_ms: int
    wave: int
    location: bool = False
    device_ids: bool = False
    apps: bool = False


@dataclass(slots=True)
class UserScript:
    """A scenario user: birth data, consent steps in publish order, and events."""

    label: str
    user_id: str
    steps: list[Step] = field(default_factory=list)
    events: list[PlannedEvent] = field(default_factory=list)
    birth_date: date | None = ADULT_BIRTH
    birth_year: int | None = None
    registered: bool = True


@dataclass(frozen=True, slots=True)
class Expected:
    """The oracle's verdict on one event."""

    tag: str
    label: str
    schema: str
    wave: int
    reason: str | None
    categories: frozenset[str]
    record_version: int | None
    policy_version: int | None
