"""The anonymization stage: the level-0 record it returns, and what it refuses."""

from __future__ import annotations

import pytest

from consumers.anonymization_config import AnonymizationPolicy
from consumers.anonymize import AnonymizationError
from tests.unit.consumers.anonymize_support import ANON, POLICY, device_event, log_event


@pytest.mark.parametrize("schema", ["device_event", "log_event"])
def test_the_level0_record_holds_exactly_the_laddered_fields(schema: str) -> None:
    event = device_event() if schema == "device_event" else log_event()
    record = ANON.anonymize(schema, event).record
    assert set(record) == set(POLICY.schemas[schema].release.ladders)
    assert "anon_id" not in record


def test_missing_required_time_raises_without_personal_values() -> None:
    with pytest.raises(AnonymizationError) as caught:
        ANON.anonymize("device_event", device_event(event_time=None, user_id="u-secret-77"))
    assert caught.value.reason == "required_field_missing"
    assert "u-secret-77" not in str(caught.value)


def test_unknown_schema_raises() -> None:
    with pytest.raises(AnonymizationError, match="consent_record"):
        ANON.anonymize("consent_record", {})


def test_anonymizer_accepts_a_policy_object() -> None:
    assert isinstance(POLICY, AnonymizationPolicy)
    assert ANON.output_schema("log_event") == "anonymized_log_event"
