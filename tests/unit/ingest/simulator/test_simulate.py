"""The synthetic fleet and its event stream: determinism, schema validity, realism of the mix."""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from datetime import UTC, date, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import fastavro
import pytest
from fastavro.validation import validate
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.simulator.fleet import Fleet, FleetError, battery
from ingest.simulator.simulate import CURRENT_POLICY_VERSION, Item, Simulation, SimulationError
from schemas.fields import consent_vocabulary

START_MS = 1_717_200_000_000  # 2024-06-01 00:00 UTC
AVRO_DIR = Path(__file__).resolve().parents[4] / "schemas" / "avro"
SCHEMA_NAMES = ("device_event", "log_event", "consent_record")
CHINA_BOX = (18.0, 53.6, 73.5, 135.1)
PHONE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
EMAIL = re.compile(r"[\w.]+(@|%40)[\w]+\.(com|cn)")
FIFTEEN_DIGITS = re.compile(r"(?<!\d)\d{15}(?!\d)")
COORDINATES = re.compile(r"\d{2,3}\.\d{6}")


def _raw_schema(name: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((AVRO_DIR / f"{name}.v1.avsc").read_text())
    return result


def _luhn_ok(number: str) -> bool:
    """Independent Luhn check: double every second digit from the right."""
    total = 0
    for position, ch in enumerate(reversed(number)):
        digit = int(ch)
        if position % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def _run(seed: int, users: int, count: int) -> list[Item]:
    return list(Simulation(Fleet(seed, users, START_MS)).items(count=count, rate_per_s=2000.0))


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    return Fleet(11, 400, START_MS)


@pytest.fixture(scope="module")
def stream(fleet: Fleet) -> list[Item]:
    return list(Simulation(fleet).items(count=20_000, rate_per_s=2000.0))


@pytest.fixture(scope="module")
def consents(stream: list[Item]) -> dict[str, list[dict[str, Any]]]:
    by_user: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in stream:
        if item.event_type == "consent_record":
            by_user[item.record["user_id"]].append(item.record)
    return by_user


def _events(stream: list[Item]) -> list[dict[str, Any]]:
    return [i.record for i in stream if i.event_type != "consent_record"]


def test_same_seed_and_start_give_identical_items() -> None:
    assert _run(5, 60, 3_000) == _run(5, 60, 3_000)


def test_different_seed_gives_different_items() -> None:
    assert _run(5, 60, 500) != _run(6, 60, 500)


def test_shorter_count_is_a_prefix_of_a_longer_run() -> None:
    long = _run(8, 60, 2_000)
    short = _run(8, 60, 700)
    assert long[: len(short)] == short


def test_items_can_be_iterated_twice_with_the_same_result(fleet: Fleet) -> None:
    sim = Simulation(fleet)
    assert list(sim.items(count=800)) == list(sim.items(count=800))


def test_count_counts_events_but_not_consent_records(stream: list[Item]) -> None:
    assert len(_events(stream)) == 20_000
    assert sum(i.event_type == "consent_record" for i in stream) > 0


def test_duration_bounds_the_nominal_send_offsets(fleet: Fleet) -> None:
    items = list(Simulation(fleet).items(duration_ms=1_500, rate_per_s=1_000.0))
    events = [i for i in items if i.event_type != "consent_record"]
    assert len(events) == 1_500
    assert max(i.send_offset_ms for i in items) < 1_500


def test_send_offsets_never_decrease_and_follow_the_rate(stream: list[Item]) -> None:
    offsets = [i.send_offset_ms for i in stream]
    assert offsets == sorted(offsets)
    assert 9_990 <= offsets[-1] <= 10_000  # 20 000 events at 2 000 per second


def test_every_item_validates_against_its_schema_and_has_every_field(stream: list[Item]) -> None:
    parsed = {name: fastavro.parse_schema(_raw_schema(name)) for name in SCHEMA_NAMES}
    fields = {name: {f["name"] for f in _raw_schema(name)["fields"]} for name in SCHEMA_NAMES}
    seen: Counter[str] = Counter()
    for item in stream:
        assert set(item.record) == fields[item.event_type]
        assert validate(item.record, parsed[item.event_type], raise_errors=False), item.event_type
        seen[item.event_type] += 1
    assert set(seen) == set(SCHEMA_NAMES)


def test_mix_is_about_forty_percent_device_events(stream: list[Item]) -> None:
    kinds = Counter(i.event_type for i in stream if i.event_type != "consent_record")
    assert 0.34 <= kinds["device_event"] / 20_000 <= 0.46
    log_types = Counter(i.record["log_type"] for i in stream if i.event_type == "log_event")
    assert set(log_types) == {"APP_OPEN", "PAGE_VIEW", "USAGE", "CRASH", "SYSTEM"}


def test_events_are_collected_before_their_nominal_send_time(stream: list[Item]) -> None:
    lags = [
        START_MS + i.send_offset_ms - i.record["event_time"]
        for i in stream
        if i.event_type != "consent_record"
    ]
    assert min(lags) >= 0
    assert sorted(lags)[len(lags) // 2] < 10 * 60_000


def test_each_registered_users_consent_precedes_their_first_event(stream: list[Item]) -> None:
    first_consent: dict[str, int] = {}
    first_event: dict[str, int] = {}
    for index, item in enumerate(stream):
        target = first_consent if item.event_type == "consent_record" else first_event
        target.setdefault(item.record["user_id"], index)
    assert first_consent
    for user_id, index in first_consent.items():
        assert index < first_event[user_id]


def test_about_three_percent_of_events_come_from_users_without_consent(
    stream: list[Item], consents: dict[str, list[dict[str, Any]]]
) -> None:
    unknown = sum(e["user_id"] not in consents for e in _events(stream))
    assert 0.015 <= unknown / 20_000 <= 0.05


def test_consent_snapshots_step_version_by_one_and_keep_since_while_unchanged(
    consents: dict[str, list[dict[str, Any]]],
) -> None:
    for records in consents.values():
        for before, after in pairwise(records):
            assert after["version"] == before["version"] + 1
            assert after["updated_at"] >= before["updated_at"]
            for table in ("purposes", "categories"):
                for name, state in after[table].items():
                    old = before[table].get(name)
                    if old is not None and old["granted"] == state["granted"]:
                        assert state["since"] == old["since"]
                    else:
                        assert state["since"] == after["updated_at"]


def test_consent_names_come_from_the_vocabulary(consents: dict[str, list[dict[str, Any]]]) -> None:
    vocabulary = consent_vocabulary()
    for records in consents.values():
        for record in records:
            assert set(record["purposes"]) <= set(vocabulary.purposes)
            assert set(record["categories"]) <= set(vocabulary.categories)


def _transitions(consents: dict[str, list[dict[str, Any]]]) -> Counter[str]:
    seen: Counter[str] = Counter()
    for records in consents.values():
        for before, after in pairwise(records):
            if after["account_status"] == "CANCELLED" != before["account_status"]:
                seen["cancel"] += 1
            for table in ("purposes", "categories"):
                for name, state in after[table].items():
                    old = before[table].get(name)
                    if old is not None and old["granted"] and not state["granted"]:
                        seen["withdraw"] += 1
                    if old is not None and not old["granted"] and state["granted"]:
                        seen["regrant"] += 1
    return seen


def test_timelines_contain_withdrawals_regrants_and_cancellations(
    consents: dict[str, list[dict[str, Any]]],
) -> None:
    seen = _transitions(consents)
    assert seen["withdraw"] > 0
    assert seen["regrant"] > 0
    assert seen["cancel"] > 0


def _age_at(record: dict[str, Any], day: date) -> int | None:
    born: date | None = record["birth_date"]
    if born is None and record["birth_year"] is not None:
        born = date(record["birth_year"], 12, 31)
    if born is None:
        return None
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def test_minors_appear_with_and_without_guardian_consent(
    consents: dict[str, list[dict[str, Any]]],
) -> None:
    today = datetime.fromtimestamp(START_MS / 1000, tz=UTC).date()
    with_guardian = without_guardian = 0
    for records in consents.values():
        age = _age_at(records[0], today)
        if age is not None and age < 18:
            guardian = records[0]["guardian_consent"]
            if guardian is not None and guardian["granted"]:
                with_guardian += 1
            else:
                without_guardian += 1
    assert with_guardian > 0
    assert without_guardian > 0


def test_some_users_are_on_an_old_policy_version(
    consents: dict[str, list[dict[str, Any]]],
) -> None:
    latest = [r[-1]["policy_acceptances"][-1]["version"] for r in consents.values()]
    assert CURRENT_POLICY_VERSION in latest
    assert any(v < CURRENT_POLICY_VERSION for v in latest)


def test_some_events_are_collected_just_before_and_after_a_consent_change(
    stream: list[Item],
) -> None:
    changed_at: dict[str, int] = {}
    before_published_after = after = 0
    for item in stream:
        record = item.record
        if item.event_type == "consent_record":
            if record["version"] > 1 and record["updated_at"] > START_MS - 600_000:
                changed_at[record["user_id"]] = record["updated_at"]
            continue
        change = changed_at.get(record["user_id"])
        if change is not None and record["event_time"] < change:
            before_published_after += 1
        if change is not None and change <= record["event_time"] < change + 600_000:
            after += 1
    assert before_published_after > 0
    assert after > 0


def test_some_urls_and_crash_messages_carry_personal_data(stream: list[Item]) -> None:
    logs = [i.record for i in stream if i.event_type == "log_event"]
    urls = [r["page_url"] for r in logs if r["page_url"]]
    crashes = [r["message"] for r in logs if r["log_type"] == "CRASH"]
    assert any(PHONE.search(u) for u in urls)
    assert any(EMAIL.search(u) for u in urls)
    assert any("lat=" in u and COORDINATES.search(u) for u in urls)
    assert sum(bool(PHONE.search(u) or EMAIL.search(u)) for u in urls) < len(urls) / 2
    assert any(PHONE.search(m) or EMAIL.search(m) for m in crashes)
    assert any(_luhn_ok(m) for c in crashes for m in FIFTEEN_DIGITS.findall(c))
    assert any(COORDINATES.search(m) for m in crashes)


def test_imeis_are_luhn_valid_and_stable_per_user(stream: list[Item]) -> None:
    imei_of: dict[str, str] = {}
    for item in stream:
        imei = item.record.get("imei")
        if item.event_type == "device_event" and imei is not None:
            assert len(imei) == 15
            assert _luhn_ok(imei)
            assert imei_of.setdefault(item.record["user_id"], imei) == imei
    assert imei_of


def test_five_most_popular_models_cover_over_forty_percent_of_devices() -> None:
    models = Counter((u.device.brand, u.device.model) for u in Fleet(3, 2_000, START_MS).users)
    assert sum(n for _, n in models.most_common(5)) > 0.4 * 2_000
    assert len(models) > 15


def test_all_coordinates_fall_inside_mainland_china(fleet: Fleet, stream: list[Item]) -> None:
    lat_min, lat_max, lon_min, lon_max = CHINA_BOX
    points = [(u.home_lat, u.home_lon) for u in fleet.users]
    points += [(u.work_lat, u.work_lon) for u in fleet.users]
    points += [
        (i.record["latitude"], i.record["longitude"])
        for i in stream
        if i.event_type == "device_event" and i.record["latitude"] is not None
    ]
    assert len(points) > 2 * len(fleet.users)
    for lat, lon in points:
        assert lat_min <= lat <= lat_max
        assert lon_min <= lon <= lon_max


def test_device_attributes_stay_in_realistic_ranges(stream: list[Item]) -> None:
    devices = [i.record for i in stream if i.event_type == "device_event"]
    signals = [d["signal_strength_dbm"] for d in devices if d["signal_strength_dbm"] is not None]
    assert all(-130 <= s <= -25 for s in signals)
    assert all(1 <= d["battery_level_pct"] <= 100 for d in devices)
    assert {d["app_state"] for d in devices} == {"FOREGROUND", "BACKGROUND"}
    assert any(d["ip_address"] and ":" in d["ip_address"] for d in devices)
    assert all(8 <= len(d["installed_apps"]) <= 60 for d in devices if d["installed_apps"])
    android = [d for d in devices if d["os_name"] == "Android"]
    assert android
    assert all(d["android_id"] for d in android)
    assert all(d["android_id"] is None for d in devices if d["os_name"] == "iOS")


def test_free_storage_never_grows_for_a_device(stream: list[Item]) -> None:
    readings: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for item in stream:
        if item.event_type == "device_event":
            r = item.record
            readings[r["user_id"]].append((r["event_time"], r["free_storage_mb"]))
    for series in readings.values():
        storage = [mb for _, mb in sorted(series)]
        assert storage == sorted(storage, reverse=True)


def test_battery_charges_overnight_and_drains_by_day(fleet: Fleet) -> None:
    for user in fleet.users[:50]:
        d = user.device
        day = 20 * 24 * 3_600_000
        morning, evening = day + 9 * 3_600_000, day + 21 * 3_600_000
        night = day + int((d.plug_hour + 2.0) * 3_600_000)  # two hours after plugging in
        level_am, charging_am = battery(d, morning, 0, foreground=False)
        level_pm, _ = battery(d, evening, 0, foreground=False)
        level_night, charging_night = battery(d, night, 0, foreground=False)
        assert not charging_am
        assert level_pm < level_am
        assert level_night > level_pm or level_night == 100
        assert charging_night or level_night == 100


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**32), users=st.integers(1, 40))
def test_any_seed_yields_schema_valid_records(seed: int, users: int) -> None:
    parsed = {name: fastavro.parse_schema(_raw_schema(name)) for name in SCHEMA_NAMES}
    items = list(Simulation(Fleet(seed, users, START_MS)).items(count=300))
    assert sum(i.event_type != "consent_record" for i in items) == 300
    for item in items:
        assert validate(item.record, parsed[item.event_type], raise_errors=False)


def test_impossible_parameters_are_refused(fleet: Fleet) -> None:
    with pytest.raises(FleetError):
        Fleet(1, 0, START_MS)
    with pytest.raises(SimulationError):
        Simulation(fleet, unknown_share=1.5)
    with pytest.raises(SimulationError):
        Simulation(fleet).items(count=10, rate_per_s=0.0)
