"""What the anonymization stage's tests share: a test scrubber, the default policy and
an anonymizer on it, the output schemas, and minimal valid events.
"""

from __future__ import annotations

import copy
import json
import re
import tomllib
from dataclasses import dataclass, field
from typing import Any

from fastavro import parse_schema

from consumers.anonymization_config import DEFAULT_POLICY_PATH, load_policy
from consumers.anonymize import Anonymizer
from schemas.fields import field_tags, schema_path
from schemas.registry import default_registry

EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")
LONG_DIGITS = re.compile(r"\d{11,}")


@dataclass(frozen=True, slots=True)
class Scrubbed:
    """What the test scrubber returns, shaped like consumers.scrub.ScrubResult."""

    text: str
    found: dict[str, int] = field(default_factory=dict)


def simple_scrubber(text: str) -> Scrubbed:
    """Replace e-mail addresses and runs of 11+ digits; count them."""
    found: dict[str, int] = {}
    for pattern, entity in ((EMAIL, "EMAIL"), (LONG_DIGITS, "NUMBER")):
        text, count = pattern.subn(f"<{entity}>", text)
        if count:
            found[entity] = count
    return Scrubbed(text, found)


def failing_scrubber(text: str) -> Scrubbed:
    raise RuntimeError("scrubber broke")


def policy_data() -> dict[str, Any]:
    with DEFAULT_POLICY_PATH.open("rb") as handle:
        return copy.deepcopy(tomllib.load(handle))


POLICY = load_policy()
ANON = Anonymizer(POLICY, simple_scrubber)


def output_schema(name: str) -> dict[str, Any]:
    latest = default_registry().latest(name).version
    parsed = parse_schema(json.loads(schema_path(name, latest).read_text("utf-8")))
    assert isinstance(parsed, dict)
    return parsed


DEVICE_OUT = output_schema("anonymized_device_event")
LOG_OUT = output_schema("anonymized_log_event")


def device_event(**overrides: Any) -> dict[str, Any]:
    """A minimal valid device event (required fields set, every optional None)."""
    event: dict[str, Any] = dict.fromkeys(field_tags("device_event"))
    event.update(event_id="ev-1", user_id="user-1", event_time=1_790_000_123_456, app_id="com.a")
    event.update(overrides)
    return event


def log_event(**overrides: Any) -> dict[str, Any]:
    """A minimal valid log event (required fields set, every optional None)."""
    event: dict[str, Any] = dict.fromkeys(field_tags("log_event"))
    event.update(event_id="ev-1", user_id="user-1", event_time=1_790_000_123_456, app_id="com.a")
    event.update(log_type="CRASH")
    event.update(overrides)
    return event
