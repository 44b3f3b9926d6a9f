"""The anonymization stage: measures and counts fall in their named buckets."""

from __future__ import annotations

import json

import pytest

from tests.unit.consumers.anonymize_support import ANON, device_event, log_event


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
