"""Level-0 records as the anonymizer makes them, and the default policy's release plans."""

from __future__ import annotations

from typing import Any

from consumers.anonymization_config import load_policy
from consumers.release_policy import ReleasePlan

POLICY = load_policy()
PLANS = {
    name: ReleasePlan(name, spec.output, spec.release, {"policy_version": POLICY.version})
    for name, spec in POLICY.schemas.items()
}
HOUR_MS = 3_600_000
T0_HOUR = 1_767_225_600_000 + 13 * HOUR_MS
DEVICE, LOG = "device_event", "log_event"


def device(**values: Any) -> dict[str, Any]:
    """A level-0 device record: every laddered field None but the ones given."""
    record: dict[str, Any] = dict.fromkeys(POLICY.schemas[DEVICE].release.ladders)
    record.update(event_hour=T0_HOUR, brand="Huawei", model="P40", geohash="wx4g0")
    record.update(values)
    return record


def log(**values: Any) -> dict[str, Any]:
    """A level-0 log record: every laddered field None but the ones given."""
    record: dict[str, Any] = dict.fromkeys(POLICY.schemas[LOG].release.ladders)
    record.update(event_hour=T0_HOUR, brand="Huawei", model="P40", log_type="CRASH")
    record.update(values)
    return record
