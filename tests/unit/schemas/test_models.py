"""The pydantic models match the Avro schemas and reject out-of-range input."""

from __future__ import annotations

from typing import Any, Literal

import pytest
from pydantic import ValidationError, create_model

from schemas.model_types import AvroLong
from schemas.models import (
    MODELS,
    ConsentRecord,
    DeviceEvent,
    LogEvent,
    UnknownEventTypeError,
    drift,
    validate_event,
)
from schemas.registry import default_registry
from tests.unit.schemas.samples import SAMPLES


def test_there_is_one_model_per_schema() -> None:
    assert sorted(MODELS) == default_registry().names()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_has_no_drift_from_its_schema(name: str) -> None:
    assert drift(MODELS[name], name) == []


def _copy_of_device_event(**changes: Any) -> Any:
    """DeviceEvent rebuilt with some fields renamed (str) or retyped (tuple)."""
    fields: dict[str, Any] = {}
    for name, info in DeviceEvent.model_fields.items():
        change = changes.get(name)
        if isinstance(change, str):
            fields[change] = (info.annotation, info)
        elif change is not None:
            fields[name] = change
        else:
            fields[name] = (info.annotation, info)
    return create_model("DeviceEvent", **fields)


def test_drift_reports_a_renamed_field() -> None:
    renamed = _copy_of_device_event(battery_level_pct="battery_pct")
    problems = drift(renamed, "device_event")
    assert len(problems) == 2
    assert any("battery_level_pct" in p and "missing from the model" in p for p in problems)
    assert any("battery_pct" in p and "missing from the schema" in p for p in problems)


def test_drift_reports_lost_nullability_and_changed_types() -> None:
    changed = _copy_of_device_event(
        imei=(str, ...), event_time=(int, ...), battery_level_pct=(AvroLong | None, None)
    )
    problems = drift(changed, "device_event")
    assert any(p.startswith("device_event.imei: nullable in the schema") for p in problems)
    assert any(p.startswith("device_event.event_time:") for p in problems)
    assert any(p == "device_event.battery_level_pct: avro int, model long" for p in problems)
    assert len(problems) == 3


def test_drift_reports_a_changed_enum() -> None:
    fields: dict[str, Any] = {n: (i.annotation, i) for n, i in LogEvent.model_fields.items()}
    fields["log_type"] = (Literal["APP_OPEN", "PAGE_VIEW"], ...)
    problems = drift(create_model("LogEvent", **fields), "log_event")
    assert len(problems) == 1
    assert problems[0].startswith("log_event.log_type: avro enum")


def test_drift_reports_map_values_that_are_no_longer_records() -> None:
    fields: dict[str, Any] = {n: (i.annotation, i) for n, i in ConsentRecord.model_fields.items()}
    fields["purposes"] = (dict[str, bool], {})
    problems = drift(create_model("ConsentRecord", **fields), "consent_record")
    assert problems == ["consent_record.purposes{}: avro record ConsentGrant, model <class 'bool'>"]


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_samples_validate_and_dump_every_schema_field(name: str) -> None:
    dumped = MODELS[name].model_validate(SAMPLES[name]).to_avro()
    schema_fields = [f["name"] for f in default_registry().latest(name).raw["fields"]]
    assert list(dumped) == schema_fields


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("battery_level_pct", 101),
        ("battery_level_pct", -1),
        ("latitude", 90.5),
        ("longitude", -180.1),
        ("latitude", float("nan")),
        ("event_time", -1),
        ("user_id", ""),
        ("network_status", "WIFI6"),
        ("unknown_field", 1),
    ],
)
def test_device_event_rejects_out_of_range_values(field: str, value: Any) -> None:
    with pytest.raises(ValidationError):
        DeviceEvent.model_validate({**SAMPLES["device_event"], field: value})


def test_consent_record_rejects_names_outside_the_vocabulary() -> None:
    grant = {"granted": True, "since": 1}
    with pytest.raises(ValidationError, match="unknown purposes"):
        ConsentRecord.model_validate({**SAMPLES["consent_record"], "purposes": {"ads": grant}})
    with pytest.raises(ValidationError, match="unknown categories"):
        ConsentRecord.model_validate({**SAMPLES["consent_record"], "categories": {"gps": grant}})


def test_cancelled_account_needs_cancellation_time() -> None:
    with pytest.raises(ValidationError, match="cancelled_at"):
        ConsentRecord.model_validate({**SAMPLES["consent_record"], "account_status": "CANCELLED"})
    record = {**SAMPLES["consent_record"], "account_status": "CANCELLED", "cancelled_at": 5}
    assert ConsentRecord.model_validate(record).cancelled_at == 5


def test_birth_year_must_agree_with_birth_date() -> None:
    with pytest.raises(ValidationError, match="birth_year"):
        ConsentRecord.model_validate({**SAMPLES["consent_record"], "birth_year": 2011})


def test_validate_event_parses_json_lines_input() -> None:
    event = validate_event("log_event", {**SAMPLES["log_event"]})
    assert event.to_avro()["log_type"] == "PAGE_VIEW"
    consent = validate_event(
        "consent_record", {**SAMPLES["consent_record"], "birth_date": "2012-05-17"}
    )
    assert consent.to_avro()["birth_date"] == SAMPLES["consent_record"]["birth_date"]


def test_validate_event_raises_validation_error_for_bad_data() -> None:
    with pytest.raises(ValidationError):
        validate_event("device_event", {"event_id": "e"})


def test_validate_event_rejects_unknown_event_types() -> None:
    with pytest.raises(UnknownEventTypeError):
        validate_event("dead_letter", SAMPLES["dead_letter"])
