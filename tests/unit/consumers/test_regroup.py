"""The repartition key: one region per key, hot keys split along the grouping's order."""

from __future__ import annotations

from typing import Any

import pytest

from consumers.anonymization_config import load_policy
from consumers.regroup import MIN_COUNTED, SEPARATOR, RegroupKeys
from consumers.release_policy import ReleasePlan
from ingest.kafka.partitioning import key_partition

POLICY = load_policy()
PLANS = {
    name: ReleasePlan(name, spec.output, spec.release, {"policy_version": POLICY.version})
    for name, spec in POLICY.schemas.items()
}
HOUR = 1_767_225_600_000


def device(geohash: str | None, brand: str = "Huawei") -> tuple[Any, ...]:
    """A device record's level-0 values."""
    record: dict[str, Any] = dict.fromkeys(POLICY.schemas["device_event"].release.ladders)
    record.update(event_hour=HOUR, geohash=geohash, brand=brand, model="P40")
    return PLANS["device_event"].level0(record)


def log(log_type: str, brand: str = "Huawei") -> tuple[Any, ...]:
    """A log record's level-0 values."""
    record: dict[str, Any] = dict.fromkeys(POLICY.schemas["log_event"].release.ladders)
    record.update(event_hour=HOUR, log_type=log_type, brand=brand)
    return PLANS["log_event"].level0(record)


def parts(key: bytes) -> list[str]:
    return key.decode().split(SEPARATOR)


def test_a_located_record_is_keyed_by_its_two_character_cell() -> None:
    keys = RegroupKeys(PLANS, hot_share=1.0)
    assert parts(keys.key("device_event", device("wx4g0"), 0)) == ["device_event", "wx"]
    assert parts(keys.key("device_event", device("wx4eq"), 0)) == ["device_event", "wx"]
    assert parts(keys.key("device_event", device(None), 0)) == ["device_event", ""]
    assert parts(keys.key("log_event", log("CRASH"), 0)) == ["log_event", "CRASH"]


def test_a_hot_key_is_split_by_the_next_field_and_a_cold_one_is_not() -> None:
    keys = RegroupKeys(PLANS, hot_share=0.5)
    for n in range(MIN_COUNTED):
        keys.key("device_event", device(None, brand=f"b{n % 3}"), n)
        if n % 10 == 0:
            keys.key("log_event", log("CRASH"), n)
    hot = keys.key("device_event", device(None, brand="Xiaomi"), MIN_COUNTED)
    assert parts(hot) == ["device_event", "", "Xiaomi"]
    cold = keys.key("log_event", log("CRASH", brand="Xiaomi"), MIN_COUNTED)
    assert parts(cold) == ["log_event", "CRASH"]


def test_shares_fade_so_keys_follow_the_traffic() -> None:
    keys = RegroupKeys(PLANS, hot_share=0.5, half_life_ms=1_000)
    for _ in range(MIN_COUNTED * 2):
        keys.key("device_event", device(None), 0)
    assert keys.share("device_event" + SEPARATOR) == 1.0
    for n in range(MIN_COUNTED * 2):
        keys.key("log_event", log("ANR"), 20_000 + n)  # 20 half-lives later
    assert keys.share("device_event" + SEPARATOR) < 0.01
    assert parts(keys.key("device_event", device(None), 20_500)) == ["device_event", ""]


def test_the_hot_share_is_a_fraction() -> None:
    with pytest.raises(ValueError):
        RegroupKeys(PLANS, hot_share=0)


def test_a_placed_key_names_the_partition_kafka_would_pick() -> None:
    keys = RegroupKeys(PLANS, hot_share=1.0)
    key = keys.key("device_event", device("wx4g0"), 0)
    assert keys.partition(key) is None  # not placed: the client picks
    keys.place(6)
    assert keys.partition(key) == key_partition(key, 6)
    other = keys.key("log_event", log("CRASH"), 0)
    assert keys.partition(other) == key_partition(other, 6)
    keys.place(None)  # the topic could not be described
    assert keys.partition(key) is None
