"""The pure parts of `publish` and `simulate`: line format, problem reports, options."""

from __future__ import annotations

import argparse
import io
import json
from datetime import date
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from ingest.cli import publish, simulate
from ingest.cli.connection import instant_ms
from ingest.cli.main import build_parser
from ingest.cli.simulate import FIXED_START, Tally, json_line
from ingest.errors import validation_problems
from ingest.simulator.fleet import Fleet
from ingest.simulator.simulate import Item, Simulation
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


def _lines(data: bytes, limit: int) -> list[tuple[int, bytes | None]]:
    return list(publish.read_lines(io.BytesIO(data), limit))


def test_a_line_over_the_limit_is_skipped_whole_and_the_numbering_goes_on() -> None:
    data = b"a" * 10 + b"\n" + b"b" * 11 + b"\n" + b"c" * 5000 + b"\n" + b"d" * 10
    assert _lines(data, limit=10) == [(1, b"a" * 10 + b"\n"), (2, None), (3, None), (4, b"d" * 10)]


def test_a_long_last_line_without_a_newline_is_skipped() -> None:
    assert _lines(b"{}\n" + b"x" * 100, limit=10) == [(1, b"{}\n"), (2, None)]


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        (b'{"a": 1}', 1),
        (b'{"a": [1, {"b": []}]}', 4),
        (b'{"a": "[[[[{{{{"}', 1),  # brackets inside strings do not count
        (b'{"a": "say \\"[[[\\"", "b": [[]]}', 3),  # nor after an escaped quote
        (b"[" * 5000 + b"]" * 5000, 5000),
        (b"", 0),
    ],
)
def test_nesting_depth_counts_only_structural_brackets(text: bytes, depth: int) -> None:
    assert publish.nesting_depth(text) == depth


class _Recorder:
    """Stands in for the Publisher in a pure test: remembers what it was asked to publish."""

    def __init__(self) -> None:
        self.published: list[dict[str, object]] = []

    def publish(self, data: dict[str, object]) -> None:
        self.published.append(data)


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (None, f"record: line longer than {publish.MAX_LINE_BYTES} bytes"),
        (b"[" * 100_000 + b"]" * 100_000, f"record: nested deeper than {publish.MAX_DEPTH}"),
        (b'{"a":' * 40 + b"1" + b"}" * 40, f"record: nested deeper than {publish.MAX_DEPTH}"),
        (b"[1, 2]", "record: not a JSON object"),
        (b'{"a": ', "record: invalid JSON"),
        (b'{"a": "\xff"}', "record: not valid UTF-8"),
    ],
)
def test_a_bad_line_is_a_problem_not_an_exception(raw: bytes | None, problem: str) -> None:
    recorder = _Recorder()
    problems = publish._problems(raw, recorder)  # type: ignore[arg-type]
    assert len(problems) == 1 and problems[0].startswith(problem)
    assert recorder.published == []


def test_a_line_just_inside_the_depth_limit_is_published() -> None:
    recorder = _Recorder()
    nested = b'{"a":' * (publish.MAX_DEPTH - 1) + b"{}" + b"}" * (publish.MAX_DEPTH - 1)
    assert publish._problems(nested, recorder) == []  # type: ignore[arg-type]
    assert len(recorder.published) == 1


class _FakeClock:
    """A monotonic clock that moves only when slept on, or when a send takes time."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class _PacedSink:
    """Records the clock reading of every send; the first send can stall."""

    def __init__(self, clock: _FakeClock, first_send_stall_s: float = 0.0) -> None:
        self.clock = clock
        self.stall = first_send_stall_s
        self.sent: list[tuple[float, int]] = []
        self.producer = object()

    def send_valid(self, event_type: str, record: dict[str, object]) -> None:
        self.sent.append((self.clock(), int(record["n"])))  # type: ignore[call-overload]
        self.clock.now += self.stall
        self.stall = 0.0

    def close(self) -> None:
        pass


def _paced(offsets: list[int], stall_s: float = 0.0) -> tuple[float, list[tuple[float, int]]]:
    clock = _FakeClock()
    sink = _PacedSink(clock, stall_s)
    items = iter(Item("log_event", {"n": off}, off) for off in offsets)
    start = clock()
    simulate.publish_paced(sink, items, clock=clock, sleep=clock.sleep)  # type: ignore[arg-type]
    return start, sink.sent


def test_paced_publishing_sends_each_item_no_earlier_than_its_offset() -> None:
    offsets = [i * 5 for i in range(400)]  # 200 events/s for 2 s
    start, sent = _paced(offsets)
    assert [n for _, n in sent] == offsets
    for at, offset in sent:
        assert at - start >= offset / 1000 - simulate._AHEAD_S
    assert sent[-1][0] - start == pytest.approx(offsets[-1] / 1000, abs=simulate._SLEEP_STEP_S)


def test_after_a_stall_the_schedule_slips_instead_of_bursting() -> None:
    offsets = [i * 5 for i in range(400)]
    _, sent = _paced(offsets, stall_s=1.0)  # the first send blocks for a second
    gaps = [(b - a, nb - na) for (a, na), (b, nb) in pairwise(sent)]
    # Never faster than the rate: consecutive sends are at least their offsets apart.
    assert all(dt >= doff / 1000 - simulate._AHEAD_S for dt, doff in gaps[1:])
    assert sent[-1][0] - sent[1][0] >= (offsets[-1] - offsets[1]) / 1000 - simulate._AHEAD_S
