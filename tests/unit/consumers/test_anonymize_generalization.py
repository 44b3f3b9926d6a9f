"""The anonymization stage: versions, times, IP addresses and locations generalized."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from consumers.anonymize import ip_prefix
from tests.unit.consumers.anonymize_support import ANON, device_event


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
