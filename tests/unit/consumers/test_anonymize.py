"""The anonymization stage: table tests per rule kind, and properties over random events."""

from __future__ import annotations

import copy
import json
import re
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from fastavro import parse_schema
from fastavro.validation import validate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumers.anonymization_config import (
    DEFAULT_POLICY_PATH,
    AnonymizationPolicy,
    load_policy,
)
from consumers.anonymize import AnonymizationError, Anonymizer, ip_prefix
from consumers.release_policy import ReleasePlan
from consumers.url_template import url_template
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


# ---------------------------------------------------------------- buckets


@pytest.mark.parametrize(
    ("level", "bucket"),
    [
        (0, "0-19"),
        (19, "0-19"),
        (20, "20-49"),
        (49, "20-49"),
        (50, "50-79"),
        (80, "80-100"),
        (100, "80-100"),
        (101, None),
        (-1, None),
        (None, None),
    ],
)
def test_battery_level_falls_in_its_named_bucket(level: int | None, bucket: str | None) -> None:
    result = ANON.anonymize("device_event", device_event(battery_level_pct=level))
    assert result.record["battery_bucket"] == bucket


@pytest.mark.parametrize(
    ("dbm", "bucket"),
    [
        (-150, "very_poor"),
        (-111, "very_poor"),
        (-110, "poor"),
        (-90, "fair"),
        (-85, "good"),
        (-71, "good"),
        (-70, "excellent"),
        (0, "excellent"),
        (5, None),
        (-151, None),
    ],
)
def test_signal_strength_falls_in_its_named_bucket(dbm: int, bucket: str | None) -> None:
    result = ANON.anonymize("device_event", device_event(signal_strength_dbm=dbm))
    assert result.record["signal_bucket"] == bucket


@pytest.mark.parametrize(
    ("free_mb", "bucket"),
    [
        (0, "lt1GiB"),
        (1023, "lt1GiB"),
        (1024, "1-4GiB"),
        (5000, "4-16GiB"),
        (20000, "16-64GiB"),
        (65536, "ge64GiB"),
        (10**9, "ge64GiB"),
        (-5, None),
    ],
)
def test_free_storage_falls_in_its_named_bucket(free_mb: int, bucket: str | None) -> None:
    result = ANON.anonymize("device_event", device_event(free_storage_mb=free_mb))
    assert result.record["storage_bucket"] == bucket


@pytest.mark.parametrize(
    ("width", "height", "screen_class"),
    [
        (1080, 2400, "FHD"),
        (2400, 1080, "FHD"),
        (720, 1280, "HD"),
        (719, 5000, "SD"),
        (1440, 3200, "QHD+"),
        (1080, None, None),
        (None, None, None),
        (0, 1920, None),
    ],
)
def test_screen_class_is_bucketed_on_the_short_side(
    width: int | None, height: int | None, screen_class: str | None
) -> None:
    event = device_event(screen_width_px=width, screen_height_px=height)
    assert ANON.anonymize("device_event", event).record["screen_class"] == screen_class


@pytest.mark.parametrize(
    ("duration_ms", "bucket"),
    [
        (0, "lt10s"),
        (9999, "lt10s"),
        (10000, "10s-1m"),
        (59999, "10s-1m"),
        (60000, "1-5m"),
        (600000, "5-30m"),
        (1800000, "30m-1h"),
        (3600000, "ge1h"),
        (-1, None),
        (8 * 86400000, None),
    ],
)
def test_usage_duration_falls_in_its_named_bucket(duration_ms: int, bucket: str | None) -> None:
    result = ANON.anonymize("log_event", log_event(usage_duration_ms=duration_ms))
    assert result.record["usage_bucket"] == bucket


def test_out_of_range_measure_is_nulled_and_says_why() -> None:
    result = ANON.anonymize("device_event", device_event(battery_level_pct=250))
    assert result.record["battery_bucket"] is None
    assert result.issues == {"battery_bucket": "out_of_range"}


def test_boolean_in_a_numeric_field_is_not_bucketed() -> None:
    result = ANON.anonymize("device_event", device_event(battery_level_pct=True))
    assert result.record["battery_bucket"] is None
    assert result.issues == {"battery_bucket": "invalid"}


@pytest.mark.parametrize(
    ("apps", "bucket"),
    [([], "0"), (["a"], "1-19"), (["a"] * 19, "1-19"), (["a"] * 20, "20-39"), (["a"] * 500, "60+")],
)
def test_installed_apps_become_a_coarse_count_bucket(apps: list[str], bucket: str) -> None:
    record = ANON.anonymize("device_event", device_event(installed_apps=apps)).record
    assert record["installed_app_bucket"] == bucket
    assert "a" not in json.dumps(record["installed_app_bucket"])


def test_installed_apps_that_are_not_a_list_are_nulled_and_say_why() -> None:
    result = ANON.anonymize("device_event", device_event(installed_apps="com.a"))
    assert result.record["installed_app_bucket"] is None
    assert result.issues == {"installed_app_bucket": "invalid"}


# ---------------------------------------------------------------- generalization


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("14.2.1", "14.2"),
        ("13", "13"),
        ("Android 13", "13"),
        ("10.0.19045", "10.0"),
        ("iOS 17.1.2", "17.1"),
        ("HarmonyOS 4.0.0.115", "4.0"),
        ("07.01", "7.1"),
        ("Pie", None),
        ("", None),
    ],
)
def test_os_version_becomes_major_minor(version: str, expected: str | None) -> None:
    record = ANON.anonymize("device_event", device_event(os_version=version)).record
    assert record["os_version"] == expected


def test_event_time_is_truncated_to_its_utc_hour() -> None:
    millis = 1_790_000_123_456
    moment = datetime.fromtimestamp(millis / 1000, tz=UTC)
    expected = int(moment.replace(minute=0, second=0, microsecond=0).timestamp() * 1000)
    result = ANON.anonymize("device_event", device_event(event_time=millis))
    assert result.record["event_hour"] == expected


@pytest.mark.parametrize(
    ("address", "prefix"),
    [
        ("203.0.113.77", "203.0.113.0/24"),
        ("10.1.2.255", "10.1.2.0/24"),
        ("2001:db8:85a3:1234:5678::1", "2001:db8:85a3::/48"),
        ("2408:8207:aaaa:bbbb::1", "2408:8207:aaaa::/48"),
        ("::ffff:198.51.100.9", "198.51.100.0/24"),
        ("fe80::1%eth0", "fe80::/48"),
        ("999.1.1.1", None),
        ("not-an-ip", None),
    ],
)
def test_ip_address_becomes_its_24_or_48_network(address: str, prefix: str | None) -> None:
    assert ip_prefix(address) == prefix


def test_default_policy_drops_the_ip_address() -> None:
    result = ANON.anonymize("device_event", device_event(ip_address="203.0.113.77"))
    assert "ip_prefix" not in result.record
    assert "203.0.113" not in repr(result)


def test_location_becomes_a_precision_5_geohash() -> None:
    # Tiananmen Square; wx4g0 is the 5-character cell around it.
    record = ANON.anonymize("device_event", device_event(latitude=39.9042, longitude=116.4074))
    assert record.record["geohash"] == "wx4g0"


@pytest.mark.parametrize(
    ("latitude", "longitude", "geohash"),
    [
        (90.0, 180.0, "zzzzz"),
        (-90.0, -180.0, "00000"),
        (0.0, 0.0, "s0000"),
        (-0.01, -0.01, "7zzzz"),
    ],
)
def test_geohash_covers_the_edges_of_the_map(
    latitude: float, longitude: float, geohash: str
) -> None:
    result = ANON.anonymize("device_event", device_event(latitude=latitude, longitude=longitude))
    assert result.record["geohash"] == geohash


@pytest.mark.parametrize(
    ("latitude", "longitude", "issue"),
    [(91.0, 10.0, "out_of_range"), (float("nan"), 10.0, "invalid"), (10.0, None, "incomplete")],
)
def test_impossible_location_gives_no_geohash(
    latitude: float, longitude: float | None, issue: str
) -> None:
    result = ANON.anonymize("device_event", device_event(latitude=latitude, longitude=longitude))
    assert result.record["geohash"] is None
    assert result.issues["geohash"] == issue


# ---------------------------------------------------------------- URLs and text


@pytest.mark.parametrize(
    ("url", "template"),
    [
        (
            "https://m.example.cn/user/12345/orders?id=9&phone=13812345678#x",
            "https://m.example.cn/user/{id}/orders",
        ),
        ("https://a.example.com", "https://a.example.com"),
        ("HTTPS://Shop.Example.com:8443/cart/", "https://shop.example.com:8443/cart/"),
        ("https://bob:secret@example.com/home", "https://example.com/home"),
        (
            "https://a.cn/item/550e8400-e29b-41d4-a716-446655440000/view",
            "https://a.cn/item/{id}/view",
        ),
        ("https://a.cn/obj/5f2b9c0e4d1a7b3c9e8f", "https://a.cn/obj/{id}"),
        ("https://a.cn/u/alice%40mail.com/feed", "https://a.cn/u/{id}/feed"),
        ("https://a.cn/call/+86-138-1234-5678", "https://a.cn/call/{id}"),
        ("https://a.cn/imei/490154203237518", "https://a.cn/imei/{id}"),
        ("https://a.cn/page;jsessionid=A1B2C3/next", "https://a.cn/page/next"),
        ("https://a.cn/v2/iphone15/reviews", "https://a.cn/v2/iphone15/reviews"),
        ("http://192.168.1.20:8080/admin", "http://{ip}:8080/admin"),
        ("myapp://product/123", "myapp://product/{id}"),
    ],
)
def test_url_becomes_a_template_without_ids_or_query(url: str, template: str) -> None:
    assert url_template(url) == template


@pytest.mark.parametrize(
    "url",
    [
        "/relative/123",
        "mailto:alice@example.com",
        "http://[::1",
        "https://a.cn:99999/",
        "",
        "x",
        "https://a.cn/has space",
        "https://a.cn/\x00",
    ],
)
def test_malformed_url_gives_none(url: str) -> None:
    assert url_template(url) is None


def test_malformed_page_url_is_nulled_and_counted_not_raised() -> None:
    result = ANON.anonymize("log_event", log_event(page_url="http://[::1/oops"))
    assert result.record["url_template"] is None
    assert result.issues == {"url_template": "malformed_url"}


def test_message_is_scrubbed_and_findings_are_counted() -> None:
    text = "crash for alice@example.com, call 13812345678 or bob@example.org"
    result = ANON.anonymize("log_event", log_event(message=text))
    assert result.record["message"] == "crash for <EMAIL>, call <NUMBER> or <EMAIL>"
    assert result.pii_found == {"EMAIL": 2, "NUMBER": 1}


def test_message_numbers_ids_and_quoted_values_are_masked_after_scrubbing() -> None:
    first = ANON.anonymize("log_event", log_event(message="queue depth 729 of 5034 in 'q-17'"))
    second = ANON.anonymize("log_event", log_event(message="queue depth 12 of 80 in 'main'"))
    assert first.record["message"] == second.record["message"] == "queue depth <*> of <*> in <*>"


def test_system_event_is_masked_like_a_message() -> None:
    result = ANON.anonymize("log_event", log_event(system_event="wifi_connected_2402"))
    assert result.record["system_event"] == "<*>"


def test_failing_scrubber_nulls_the_text_instead_of_raising() -> None:
    anon = Anonymizer(POLICY, failing_scrubber)
    result = anon.anonymize("log_event", log_event(message="alice@example.com"))
    assert result.record["message"] is None
    assert result.issues["message"] == "failed"


def test_real_scrubber_plugs_in() -> None:
    scrub_module = pytest.importorskip("consumers.scrub")
    anon = Anonymizer(POLICY, scrub_module.scrub)
    result = anon.anonymize("log_event", log_event(message="mail alice@example.com now"))
    assert "alice@example.com" not in repr(result.record)


# ---------------------------------------------------------------- the level-0 record


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


# ---------------------------------------------------------------- properties


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


def test_anonymizer_accepts_a_policy_object() -> None:
    assert isinstance(POLICY, AnonymizationPolicy)
    assert ANON.output_schema("log_event") == "anonymized_log_event"


def test_the_records_own_identifiers_are_removed_from_its_free_text() -> None:
    """A user id or session id has no pattern; the record itself says which values to remove."""
    from consumers.anonymization_config import load_policy
    from consumers.scrub import scrub as real_scrub

    anonymizer = Anonymizer(load_policy(), real_scrub)
    event = _log_event_for_own_values()
    out = anonymizer.anonymize("log_event", event)
    text = repr(out.record)
    for value in (event["user_id"], event["session_id"], event["event_id"]):
        assert value not in text
    assert out.record["message"] == "token refresh failed for user <USER_ID> in <SESSION_ID>"
    assert out.record["url_template"] == "https://m.example.cn/u/{id}/home"
    assert out.pii_found["USER_ID"] == 1  # the URL's id segment was already templated


def _log_event_for_own_values() -> dict[str, object]:
    return {
        "event_id": "evt-77120",
        "user_id": "8841920331",
        "event_time": 1_780_000_000_000,
        "app_id": "com.example.app",
        "app_version": "1.0.0",
        "brand": "Xiaomi",
        "model": "14",
        "os_name": "Android",
        "os_version": "14.0.1",
        "ip_address": None,
        "time_zone": "Asia/Shanghai",
        "log_type": "CRASH",
        "session_id": "sess-4410",
        "app_open_time": None,
        "usage_duration_ms": None,
        "page_url": "https://m.example.cn/u/8841920331/home?x=1",
        "message": "token refresh failed for user 8841920331 in sess-4410",
        "system_event": None,
    }
