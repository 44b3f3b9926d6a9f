"""The pure parts of `publish` and `simulate`: line format, problem reports, options."""

from __future__ import annotations

import argparse
import json
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from ingest.cli import build_parser
from ingest.commands import publish, simulate
from ingest.commands.connection import instant_ms
from ingest.commands.simulate import FIXED_START, Tally, json_line
from ingest.errors import validation_problems
from ingest.fleet import Fleet
from ingest.simulate import Item, Simulation
from schemas.models import validate_event

START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z, written out by hand


@pytest.fixture(scope="module")
def items() -> list[Item]:
    return list(Simulation(Fleet(13, 120, START_MS)).items(count=1_500, rate_per_s=1000.0))


def _parse(*argv: str) -> argparse.Namespace:
    return build_parser([publish, simulate]).parse_args(list(argv))


def test_json_lines_validate_back_to_the_simulated_records(items: list[Item]) -> None:
    for item in items:
        data = json.loads(json_line(item))
        assert data.pop("event_type") == item.event_type
        dumped = validate_event(item.event_type, data).model_dump()
        assert {key: dumped[key] for key in item.record} == item.record
        assert all(dumped[key] in ([], None) for key in dumped.keys() - item.record.keys())


def test_json_lines_write_birth_dates_as_iso_strings(items: list[Item]) -> None:
    dated = [i for i in items if isinstance(i.record.get("birth_date"), date)]
    assert dated
    for item in dated:
        assert json.loads(json_line(item))["birth_date"] == item.record["birth_date"].isoformat()


def test_json_lines_are_single_lines_starting_with_the_event_type(items: list[Item]) -> None:
    for item in items:
        line = json_line(item)
        assert "\n" not in line
        assert line.startswith(f'{{"event_type": "{item.event_type}"')


def test_fixed_start_is_new_year_2026_utc() -> None:
    assert instant_ms(FIXED_START) == START_MS
    assert instant_ms("2026-01-01T08:00:00+08:00") == START_MS
    assert instant_ms("2026-01-01T00:00:00") == START_MS  # no offset means UTC


def test_events_and_duration_exclude_each_other() -> None:
    with pytest.raises(SystemExit):
        _parse("simulate", "--events", "10", "--duration", "5")


def test_simulate_defaults_match_the_documented_ones() -> None:
    args = _parse("simulate")
    assert (args.users, args.rate, args.seed) == (2000, 1000.0, 7)
    assert args.events is None and args.duration is None and args.out is None


def test_summary_reports_events_consents_time_and_rate() -> None:
    tally = Tally(events=20_000, consents=1_234, undelivered=0, elapsed_s=10.0)
    assert tally.summary("published") == (
        "simulate: published 20000 events and 1234 consent records in 10.0 s "
        "(2,000 events/s), undelivered 0"
    )


@given(
    battery=st.integers(min_value=101, max_value=10**9),
    user_id=st.from_regex(r"[1-9][0-9]{9}", fullmatch=True),
)
def test_validation_problems_name_the_field_but_never_the_value(battery: int, user_id: str) -> None:
    data = {"user_id": user_id, "event_time": "yesterday", "battery_level_pct": battery}
    with pytest.raises(ValidationError) as caught:
        validate_event("device_event", data)
    problems = validation_problems(caught.value)
    fields = {p.split(": ", 1)[0] for p in problems}
    assert fields == {"event_id", "app_id", "event_time", "battery_level_pct"}
    text = "\n".join(problems)
    assert str(battery) not in text and user_id not in text and "yesterday" not in text
