"""tag_event(): present fields counted by sensitivity, grouped by category, free text listed."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumers.tagging import EventTags, TaggingError, count_levels, is_present, tag_event
from schemas.fields import Sensitivity, field_tags

BASE = {"event_id": "e-1", "user_id": "u-1", "event_time": 1732543200000, "app_id": "com.x"}


def test_identifiers_and_location_are_grouped_by_consent_category() -> None:
    event: dict[str, Any] = {
        **BASE,
        "model": "Mate 60",
        "imei": "490154203237518",
        "mac_address": "3C:22:FB:12:34:56",
        "latitude": 39.9042,
        "longitude": 116.4074,
        "wifi_ssid": None,
        "installed_apps": ["com.tencent.mm"],
    }
    tags = tag_event("device_event", event)
    assert tags.sensitive == {
        "device_identifiers": ("imei", "mac_address"),
        "precise_location": ("latitude", "longitude"),
        "installed_apps": ("installed_apps",),
    }
    assert tags.counts == {
        Sensitivity.TECHNICAL: 2,  # app_id, model
        Sensitivity.PERSONAL: 3,  # event_id, user_id, event_time
        Sensitivity.SENSITIVE: 5,
    }
    assert tags.free_text == ()


def test_absent_none_and_empty_values_are_not_counted() -> None:
    event: dict[str, Any] = {
        **BASE,
        "imei": "",
        "installed_apps": [],
        "android_id": None,
        "brand": "",
    }
    tags = tag_event("device_event", event)
    assert tags == EventTags(
        counts={Sensitivity.TECHNICAL: 1, Sensitivity.PERSONAL: 3, Sensitivity.SENSITIVE: 0},
        sensitive={},
        free_text=(),
    )


def test_zero_and_false_are_values() -> None:
    event: dict[str, Any] = {
        **BASE,
        "bluetooth_enabled": False,
        "battery_level_pct": 0,
        "latitude": 0.0,
    }
    tags = tag_event("device_event", event)
    assert tags.counts[Sensitivity.TECHNICAL] == 3
    assert tags.sensitive == {"precise_location": ("latitude",)}


def test_present_free_text_fields_of_a_log_event_are_listed() -> None:
    event: dict[str, Any] = {
        **BASE,
        "log_type": "CRASH",
        "message": "crash at imei=490154203237518",
        "page_url": None,
        "ip_address": "10.1.2.3",
    }
    tags = tag_event("log_event", event)
    assert tags.free_text == ("message",)
    assert tags.counts[Sensitivity.PERSONAL] == 5  # event_id, user_id, event_time, ip, message
    assert tags.sensitive == {}


def test_fields_unknown_to_the_schema_are_ignored() -> None:
    tags = tag_event("log_event", {**BASE, "log_type": "USAGE", "not_in_schema": "x"})
    assert sum(tags.counts.values()) == 5


def test_unknown_schema_raises_a_tagging_error_without_event_values() -> None:
    with pytest.raises(TaggingError) as info:
        tag_event("no_such_schema", {"imei": "490154203237518"})
    assert "490154203237518" not in str(info.value)


@pytest.mark.parametrize(
    ("value", "present"),
    [(None, False), ("", False), ([], False), ({}, False), (0, True), (False, True), ("a", True)],
)
def test_presence_of_a_value(value: object, present: bool) -> None:
    assert is_present(value) is present


@given(
    st.fixed_dictionaries(
        {},
        optional={
            name: st.one_of(
                st.sampled_from([None, "", [], {}, (), 0, 0.0, False, b""]),
                st.text(max_size=3),
                st.integers(),
                st.lists(st.integers(), max_size=2),
            )
            for name in field_tags("device_event")
        },
    )
)
def test_fast_level_counts_equal_the_full_tagging(partial: dict[str, object]) -> None:
    event = dict.fromkeys(field_tags("device_event"))
    event.update(partial)
    full = {level.value: n for level, n in tag_event("device_event", event).counts.items() if n}
    assert dict(count_levels("device_event", event)) == full
