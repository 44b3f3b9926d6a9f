"""The anonymization policy file: the shipped default loads, and each kind of mistake is named."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest

from consumers.anonymization_config import (
    DEFAULT_POLICY_PATH,
    GeohashRule,
    PolicyError,
    load_policy,
    parse_policy,
)


def default_data() -> dict[str, Any]:
    """The shipped policy as a fresh, mutable mapping."""
    with DEFAULT_POLICY_PATH.open("rb") as handle:
        return copy.deepcopy(tomllib.load(handle))


def device_fields(data: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = data["schemas"]["device_event"]["fields"]
    return fields


def log_fields(data: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = data["schemas"]["log_event"]["fields"]
    return fields


def problems_of(data: dict[str, Any]) -> tuple[str, ...]:
    with pytest.raises(PolicyError) as caught:
        parse_policy(data, "test.toml")
    return caught.value.problems


def test_shipped_policy_loads_with_its_version_and_default_geohash_precision() -> None:
    policy = load_policy()
    assert policy.version == "2026-11-30"
    latitude = policy.schemas["device_event"].fields["latitude"]
    assert isinstance(latitude, GeohashRule)
    assert latitude.precision == 5
    assert policy.schemas["log_event"].output == "anonymized_log_event"


@pytest.mark.parametrize(
    "identifier",
    [
        "event_id",
        "user_id",
        "imei",
        "mac_address",
        "android_id",
        "advertising_id",
        "serial_number",
        "wifi_bssid",
        "ip_address",
    ],
)
def test_shipped_policy_drops_every_device_identifier(identifier: str) -> None:
    assert device_fields(default_data())[identifier] == {"action": "drop"}


@pytest.mark.parametrize("field", ["event_id", "user_id", "session_id", "ip_address"])
def test_shipped_policy_drops_every_log_identifier(field: str) -> None:
    assert log_fields(default_data())[field] == {"action": "drop"}


def test_geohash_finer_than_six_is_refused() -> None:
    data = default_data()
    device_fields(data)["latitude"]["precision"] = 7
    problems = problems_of(data)
    assert any("latitude" in p and "precision 7 is finer" in p for p in problems)


def test_geohash_precision_six_is_allowed() -> None:
    data = default_data()
    device_fields(data)["latitude"]["precision"] = 6
    rule = parse_policy(data).schemas["device_event"].fields["latitude"]
    assert isinstance(rule, GeohashRule)
    assert rule.precision == 6


def test_unknown_action_is_named() -> None:
    data = default_data()
    device_fields(data)["brand"] = {"action": "hash"}
    problems = problems_of(data)
    assert any("device_event.fields.brand" in p and "'hash'" in p for p in problems)


def test_unknown_rule_parameter_is_refused() -> None:
    data = default_data()
    device_fields(data)["brand"] = {"action": "keep", "salt": "x"}
    problems = problems_of(data)
    assert any("brand" in p and "salt" in p for p in problems)


def test_rule_for_a_field_the_schema_lacks_is_named() -> None:
    data = default_data()
    device_fields(data)["phone_number"] = {"action": "drop"}
    problems = problems_of(data)
    assert any("'phone_number' is not a field of device_event" in p for p in problems)


def test_input_field_without_a_rule_is_named() -> None:
    data = default_data()
    del device_fields(data)["hardware_version"]
    problems = problems_of(data)
    assert any("device_event.hardware_version" in p and "no rule" in p for p in problems)


def test_field_covered_twice_is_named() -> None:
    data = default_data()
    # longitude is already read by the latitude geohash rule
    device_fields(data)["longitude"] = {"action": "drop"}
    problems = problems_of(data)
    assert any("device_event.longitude: covered by both" in p for p in problems)


@pytest.mark.parametrize(
    ("field", "rule"),
    [
        ("imei", {"action": "keep", "output": "model"}),
        ("user_id", {"action": "scrub", "output": "brand"}),
        (
            "mac_address",
            {
                "action": "count_bucket",
                "output": "screen_class",
                "edges": [1],
                "labels": ["a", "b"],
            },
        ),
    ],
)
def test_identifier_given_anything_but_drop_is_refused(field: str, rule: dict[str, Any]) -> None:
    data = default_data()
    device_fields(data)[field] = rule
    problems = problems_of(data)
    assert any(f"device_event.{field}: identifier field must be dropped" in p for p in problems)


def test_ip_prefix_needs_an_output_field_the_released_schema_lacks() -> None:
    data = default_data()
    device_fields(data)["ip_address"] = {
        "action": "generalize",
        "kind": "ip_prefix",
        "output": "ip_prefix",
    }
    problems = problems_of(data)
    assert any("'ip_prefix' is not a field of anonymized_device_event" in p for p in problems)


def test_ip_prefix_finer_than_24_bits_is_refused() -> None:
    data = default_data()
    device_fields(data)["ip_address"] = {
        "action": "generalize",
        "kind": "ip_prefix",
        "output": "ip_prefix",
        "ipv4_prefix": 32,
    }
    problems = problems_of(data)
    assert any("ip_address" in p and "ipv4_prefix" in p for p in problems)


def test_free_text_that_is_kept_unscrubbed_is_refused() -> None:
    data = default_data()
    log_fields(data)["message"] = {"action": "keep"}
    problems = problems_of(data)
    assert any("log_event.message: free-text field must be" in p for p in problems)


def test_output_field_missing_from_the_output_schema_is_named() -> None:
    data = default_data()
    device_fields(data)["hardware_version"] = {"action": "keep"}
    problems = problems_of(data)
    assert any(
        "'hardware_version' is not a field of anonymized_device_event" in p for p in problems
    )


def test_two_rules_writing_one_output_are_refused() -> None:
    data = default_data()
    device_fields(data)["browser_type"] = {"action": "keep", "output": "brand"}
    problems = problems_of(data)
    assert any("output 'brand' is already written" in p for p in problems)


def test_output_of_the_wrong_type_is_refused() -> None:
    data = default_data()
    device_fields(data)["battery_charging"] = {"action": "drop"}
    device_fields(data)["plugins"] = {
        "action": "count_bucket",
        "output": "battery_charging",
        "edges": [1],
        "labels": ["none", "some"],
    }
    problems = problems_of(data)
    assert any("output type cannot hold the result of 'count_bucket'" in p for p in problems)


def test_rule_targeting_a_field_the_anonymizer_sets_is_refused() -> None:
    data = default_data()
    device_fields(data)["app_version"] = {"action": "keep", "output": "policy_version"}
    problems = problems_of(data)
    assert any("output 'policy_version' is set by the anonymizer" in p for p in problems)


def test_required_output_without_a_rule_is_named() -> None:
    data = default_data()
    log_fields(data)["event_time"] = {"action": "drop"}
    problems = problems_of(data)
    assert any("required output field 'event_hour' has no rule" in p for p in problems)


def test_bucket_labels_must_match_edges() -> None:
    data = default_data()
    device_fields(data)["battery_level_pct"]["labels"] = ["low", "high"]
    problems = problems_of(data)
    assert any("battery_level_pct" in p and "need 4 labels, got 2" in p for p in problems)


def test_bucket_edges_must_increase() -> None:
    data = default_data()
    device_fields(data)["battery_level_pct"]["edges"] = [20, 80, 50]
    problems = problems_of(data)
    assert any("strictly increasing" in p for p in problems)


def test_unknown_schema_is_named() -> None:
    data = default_data()
    data["schemas"]["purchase_event"] = {
        "output": "anonymized_device_event",
        "fields": {},
        "release": data["schemas"]["device_event"]["release"],
    }
    problems = problems_of(data)
    assert any("no input schema purchase_event.v1" in p for p in problems)


def test_missing_version_is_refused() -> None:
    data = default_data()
    del data["version"]
    problems = problems_of(data)
    assert any(p.startswith("version:") for p in problems)


def test_every_problem_is_listed_at_once() -> None:
    data = default_data()
    device_fields(data)["imei"] = {"action": "keep"}
    del device_fields(data)["model"]
    log_fields(data)["message"] = {"action": "keep"}
    with pytest.raises(PolicyError) as caught:
        parse_policy(data, "test.toml")
    assert len(caught.value.problems) >= 3
    message = str(caught.value)
    assert "test.toml" in message
    assert "device_event.imei" in message
    assert "device_event.model" in message
    assert "log_event.message" in message


def test_file_that_is_not_toml_gives_a_policy_error(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text('version = "1"\n[schemas\n', encoding="utf-8")
    with pytest.raises(PolicyError, match="not valid TOML"):
        load_policy(path)


def test_missing_file_gives_a_policy_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "absent.toml")


# ---------------------------------------------------------------- release ladders


def device_ladders(data: dict[str, Any]) -> dict[str, Any]:
    ladders: dict[str, Any] = data["schemas"]["device_event"]["release"]["ladders"]
    return ladders


def test_every_released_field_of_the_shipped_policy_has_a_ladder_ending_in_withheld() -> None:
    policy = load_policy()
    for name, spec in policy.schemas.items():
        ladders = spec.release.ladders
        assert spec.release.order[0] == "event_hour", name
        for field, rungs in ladders.items():
            if field != "event_hour":
                assert rungs[-1] == "withheld", f"{name}.{field}"


def test_a_kept_field_without_a_ladder_is_refused() -> None:
    data = default_data()
    del device_ladders(data)["brand"]
    data["schemas"]["device_event"]["release"]["order"].remove("brand")
    problems = problems_of(data)
    assert any("output field 'brand' has no ladder" in p for p in problems)


def test_a_ladder_that_does_not_end_in_withheld_is_refused() -> None:
    data = default_data()
    device_ladders(data)["geohash"] = [{"prefix": 4}, {"prefix": 2}]
    problems = problems_of(data)
    assert any("ladders.geohash: the last rung must be 'withheld'" in p for p in problems)


def test_a_prefix_rung_must_be_coarser_than_the_one_below() -> None:
    data = default_data()
    device_ladders(data)["geohash"] = [{"prefix": 3}, {"prefix": 4}, "withheld"]
    problems = problems_of(data)
    assert any("prefix 4 is not coarser than 3" in p for p in problems)


def test_a_prefix_rung_must_be_coarser_than_the_geohash_precision() -> None:
    data = default_data()
    device_ladders(data)["geohash"] = [{"prefix": 5}, "withheld"]
    problems = problems_of(data)
    assert any("prefix 5 is not coarser than 5" in p for p in problems)


def test_an_unknown_rung_is_named() -> None:
    data = default_data()
    device_ladders(data)["brand"] = ["soundex", "withheld"]
    problems = problems_of(data)
    assert any("ladders.brand[0]: unknown rung 'soundex'" in p for p in problems)


def test_a_string_rung_on_a_boolean_field_is_refused() -> None:
    data = default_data()
    device_ladders(data)["battery_charging"] = ["major", "withheld"]
    problems = problems_of(data)
    assert any("battery_charging[0]: 'major' needs a string field" in p for p in problems)


def test_a_map_must_list_every_bucket_label() -> None:
    data = default_data()
    device_ladders(data)["battery_bucket"] = [{"map": {"20-49": "low"}}, "withheld"]
    problems = problems_of(data)
    assert any("battery_bucket[0]: map does not list 0-19, 50-79, 80-100" in p for p in problems)


def test_a_map_into_an_enum_must_use_its_symbols() -> None:
    data = default_data()
    ladder = device_ladders(data)["network_status"]
    ladder[0]["map"]["CELL_5G"] = "FAST"
    problems = problems_of(data)
    assert any("network_status[0]: FAST not symbols of the output enum" in p for p in problems)


def test_the_record_time_is_never_withheld_and_only_gets_coarser() -> None:
    data = default_data()
    device_ladders(data)["event_hour"] = ["6h", "withheld"]
    problems = problems_of(data)
    assert any("event_hour: the record time climbs only 6h and day rungs" in p for p in problems)
    data = default_data()
    device_ladders(data)["event_hour"] = ["day", "6h"]
    problems = problems_of(data)
    assert any("event_hour: time rungs must get coarser" in p for p in problems)


def test_time_rungs_are_for_the_record_time_only() -> None:
    data = default_data()
    device_ladders(data)["app_version"] = ["day", "withheld"]
    problems = problems_of(data)
    assert any("app_version[0]: time rungs are for the record time only" in p for p in problems)


def test_the_order_must_list_every_laddered_field_and_start_with_the_time() -> None:
    data = default_data()
    order = data["schemas"]["device_event"]["release"]["order"]
    order.remove("model")
    order.insert(0, order.pop(order.index("geohash")))
    problems = problems_of(data)
    assert any("laddered fields not listed: model" in p for p in problems)
    assert any("must start with the record time 'event_hour'" in p for p in problems)


def test_a_ladder_for_a_field_no_rule_writes_is_named() -> None:
    data = default_data()
    device_fields(data)["installed_apps"] = {"action": "drop"}
    problems = problems_of(data)
    assert any("'installed_app_bucket' has a ladder but no rule writes it" in p for p in problems)


def test_a_ladder_for_a_field_the_pipeline_sets_is_refused() -> None:
    data = default_data()
    device_ladders(data)["policy_version"] = ["withheld"]
    problems = problems_of(data)
    assert any("ladders.policy_version: set by the pipeline" in p for p in problems)
