"""`consentgate simulate`: the simulated events, paced at the rate, and reproducible files.

No test here measures speed (that belongs in benchmarks): they check what was sent,
that the simulated times follow the requested rate, and that sending is never ahead
of that schedule, which a slow machine cannot break.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.cli.connection import instant_ms
from ingest.kafka import Transport
from ingest.kafka.topics import TopicSet
from ingest.simulator.fleet import Fleet
from ingest.simulator.simulate import Simulation
from schemas.codec import Codec
from tests.integration.test_cli_publish import cli
from tests.integration.test_publishing import read_all

pytestmark = pytest.mark.integration

START = "2026-03-01T08:00:00Z"
SEED, USERS, RATE, COUNT = 5, 300, 1000.0, 3000
# Sends may run this far ahead of their schedule (simulate._AHEAD_S) plus a schedule slip
# of up to simulate._MAX_LAG_S, and CreateTime is in whole milliseconds.
SLACK_MS = 100


def test_simulate_publishes_exactly_the_simulated_events_never_faster_than_the_rate(
    kafka_bootstrap: str, transport: Transport, topic_set: TopicSet
) -> None:
    done = cli(
        "simulate", "--seed", str(SEED), "--users", str(USERS), "--rate", str(RATE),
        "--events", str(COUNT), "--start", START,
        "--bootstrap", kafka_bootstrap, "--prefix", topic_set.prefix,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"published {COUNT} events" in done.stderr

    start_ms = instant_ms(START)
    expected = list(Simulation(Fleet(SEED, USERS, start_ms)).items(count=COUNT, rate_per_s=RATE))
    offset_of = {i.record["event_id"]: i.send_offset_ms for i in expected if "event_id" in i.record}
    consents = [i for i in expected if i.event_type == "consent_record"]
    assert len(offset_of) == COUNT

    codec = Codec()
    raw = read_all(transport, [topic_set.name("raw_device"), topic_set.name("raw_log")])
    sent = [(codec.decode(m.value)[1], m.timestamp_ms) for m in raw if m.value is not None]
    # The count is right, and they are the very events the seed simulates.
    assert sorted(r["event_id"] for r, _ in sent) == sorted(offset_of)
    assert len(read_all(transport, [topic_set.name("consent")])) == len(consents)

    # The simulated times follow the rate: event n is sent n/RATE s after the start, and
    # every event was collected before it was sent.
    assert max(offset_of.values()) == int((COUNT - 1) * 1000 / RATE)
    for record, _ in sent:
        assert record["event_time"] <= start_ms + offset_of[record["event_id"]]

    # Paced, never a burst: the broker saw the events spread over at least the nominal
    # span. A busy machine only stretches this; nothing here bounds it from above.
    by_offset = sorted((offset_of[r["event_id"]], ts) for r, ts in sent)
    (first_offset, _), (last_offset, _) = by_offset[0], by_offset[-1]
    created = [ts for _, ts in by_offset]
    assert max(created) - min(created) >= last_offset - first_offset - SLACK_MS


def test_simulate_out_is_reproducible_and_publishes_cleanly(
    tmp_path: Path, kafka_bootstrap: str, topic_set: TopicSet
) -> None:
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    for path in (first, second):
        done = cli("simulate", "--seed", "7", "--out", str(path))
        assert done.returncode == 0, done.stderr
    assert first.read_bytes() == second.read_bytes()
    assert len(first.read_bytes().splitlines()) > 10_000  # 10 s at 1 000/s, plus consent

    published = cli(
        "publish", str(first), "--bootstrap", kafka_bootstrap, "--prefix", topic_set.prefix
    )
    assert published.returncode == 0, published.stderr
    assert "rejected 0, undelivered 0" in published.stderr
