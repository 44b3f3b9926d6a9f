"""The anonymization stage: properties over random events."""

from __future__ import annotations

import json
from typing import Any

from fastavro.validation import validate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumers.release_policy import ReleasePlan
from schemas.fields import field_tags, schema_path
from tests.unit.consumers.anonymize_support import ANON, DEVICE_OUT, LOG_OUT, POLICY


def geohash_bounds(geohash: str) -> tuple[float, float, float, float]:
    """(lat_lo, lat_hi, lon_lo, lon_hi) of a geohash cell, decoded bit by bit."""
    alphabet = "0123456789bcdefghjkmnpqrstuvwxyz"
    lat, lon = [-90.0, 90.0], [-180.0, 180.0]
    even = True
    for char in geohash:
        bits = alphabet.index(char)
        for shift in range(4, -1, -1):
            interval = lon if even else lat
            middle = (interval[0] + interval[1]) / 2
            interval[0 if (bits >> shift) & 1 else 1] = middle
            even = not even
    return lat[0], lat[1], lon[0], lon[1]


SAFE_TEXT = st.text(st.characters(blacklist_characters=":.@", codec="utf-8"), max_size=20)
ID = st.uuids(version=4).map(lambda u: f"id-{u.hex}")
MAC = st.binary(min_size=6, max_size=6).map(lambda b: ":".join(f"{x:02x}" for x in b))


def coordinate(limit: int) -> st.SearchStrategy[float]:
    """Degrees with exactly six decimals, so their decimal string is distinctive."""
    micro = st.integers(-limit * 10**6, limit * 10**6)
    return micro.filter(lambda n: n % 10 != 0 and abs(n) >= 10_000).map(lambda n: n / 1e6)


COORD_LAT = coordinate(90)
COORD_LON = coordinate(180)
VERSION = st.one_of(SAFE_TEXT, st.from_regex(r"\A[0-9]{1,3}(\.[0-9]{1,3}){0,3}\Z"))

IDENTIFIER_VALUES = {
    "event_id": ID,
    "user_id": ID,
    "session_id": ID,
    "imei": st.integers(10**14, 10**15 - 1).map(str),
    "mac_address": MAC,
    "android_id": st.binary(min_size=8, max_size=8).map(bytes.hex),
    "advertising_id": st.uuids(version=4).map(str),
    "serial_number": st.uuids(version=4).map(lambda u: f"SN{u.hex[:12].upper()}"),
    "wifi_bssid": MAC,
    "wifi_ssid": st.uuids(version=4).map(lambda u: f"ssid-{u.hex[:10]}"),
    "ip_address": st.ip_addresses().map(str),
}
OVERRIDES: dict[str, st.SearchStrategy[Any]] = {
    **IDENTIFIER_VALUES,
    "event_time": st.integers(0, 4_102_444_800_000),
    "latitude": COORD_LAT,
    "longitude": COORD_LON,
    "os_version": VERSION,
    "app_version": VERSION,
}


def avro_strategy(avro_type: Any) -> st.SearchStrategy[Any]:
    """Values valid for an Avro type (generated independently of the anonymizer)."""
    if isinstance(avro_type, list):
        return st.one_of(*(avro_strategy(branch) for branch in avro_type))
    if isinstance(avro_type, dict):
        if avro_type["type"] == "enum":
            return st.sampled_from(avro_type["symbols"])
        if avro_type["type"] == "array":
            return st.lists(avro_strategy(avro_type["items"]), max_size=12)
    simple: dict[str, st.SearchStrategy[Any]] = {
        "null": st.none(),
        "string": SAFE_TEXT,
        "int": st.integers(-(2**31), 2**31 - 1),
        "long": st.integers(-(2**63), 2**63 - 1),
        "float": st.floats(width=32),
        "double": st.floats(),
        "boolean": st.booleans(),
    }
    return simple[avro_type]


def event_strategy(schema_name: str) -> st.SearchStrategy[dict[str, Any]]:
    schema = json.loads(schema_path(schema_name).read_text("utf-8"))
    parts: dict[str, st.SearchStrategy[Any]] = {}
    for avro_field in schema["fields"]:
        name, avro_type = avro_field["name"], avro_field["type"]
        strategy = OVERRIDES.get(name, avro_strategy(avro_type))
        nullable = isinstance(avro_type, list) and "null" in avro_type
        parts[name] = st.none() | strategy if nullable and name in OVERRIDES else strategy
    return st.fixed_dictionaries(parts)


@st.composite
def log_events(draw: st.DrawFn) -> dict[str, Any]:
    """Random log events; half carry the event's own user and session ids in the page URL."""
    event = draw(event_strategy("log_event"))
    if draw(st.booleans()):
        host = draw(st.sampled_from(["m.example.cn", "shop.example.com"]))
        tail = draw(st.sampled_from(["home", "orders", "v2/list"]))
        event["page_url"] = (
            f"https://{host}/u/{event['user_id']}/{tail}?session={event['session_id']}#frag"
        )
    return event


def assert_no_identifier_survives(schema_name: str, event: dict[str, Any], result: Any) -> None:
    identifiers = {name for name, tag in field_tags(schema_name).items() if tag.identifier}
    assert not identifiers & set(result.record)
    text = repr(result)
    for name in IDENTIFIER_VALUES:
        value = event.get(name)
        if value is not None:
            assert value not in text, name
    for name in ("latitude", "longitude"):
        if event.get(name) is not None:
            assert repr(event[name]) not in text


PROPERTY_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@PROPERTY_SETTINGS
@given(event_strategy("device_event"))
def test_random_device_event_leaves_no_identifier_and_a_valid_record(event: dict[str, Any]) -> None:
    result = ANON.anonymize("device_event", event)
    assert validate(released(result.record, "device_event"), DEVICE_OUT, raise_errors=True)
    assert_no_identifier_survives("device_event", event, result)
    geohash = result.record["geohash"]
    if event["latitude"] is not None and event["longitude"] is not None:
        assert geohash is not None
        assert len(geohash) <= 6
        lat_lo, lat_hi, lon_lo, lon_hi = geohash_bounds(geohash)
        assert lat_lo <= event["latitude"] <= lat_hi
        assert lon_lo <= event["longitude"] <= lon_hi
    else:
        assert geohash is None


@PROPERTY_SETTINGS
@given(log_events())
def test_random_log_event_leaves_no_identifier_and_a_valid_record(event: dict[str, Any]) -> None:
    result = ANON.anonymize("log_event", event)
    assert validate(released(result.record, "log_event"), LOG_OUT, raise_errors=True)
    assert_no_identifier_survives("log_event", event, result)


def released(record: dict[str, Any], schema: str) -> dict[str, Any]:
    """A level-0 record as it would be released ungeneralized, with its stage fields."""
    spec = POLICY.schemas[schema]
    plan = ReleasePlan(schema, spec.output, spec.release, {"policy_version": POLICY.version})
    level0 = plan.level0(record)
    return {**plan.output(level0), "anon_id": "a-1"}
