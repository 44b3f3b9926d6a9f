"""`consentgate simulate`: a steady rate to the real broker, and reproducible files."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from ingest.topics import TopicSet
from ingest.transport import Transport
from tests.integration.test_cli_publish import cli
from tests.integration.test_publishing import read_all

pytestmark = pytest.mark.integration


def test_simulate_holds_two_thousand_events_per_second_for_ten_seconds(
    kafka_bootstrap: str, transport: Transport, topic_set: TopicSet
) -> None:
    began = time.monotonic()
    done = cli(
        "simulate", "--rate", "2000", "--duration", "10",
        "--bootstrap", kafka_bootstrap, "--prefix", topic_set.prefix,
    )  # fmt: skip
    elapsed = time.monotonic() - began

    assert done.returncode == 0, done.stderr
    assert 9.0 <= elapsed <= 13.0, done.stderr
    events = read_all(transport, [topic_set.name("raw_device"), topic_set.name("raw_log")])
    assert 19_000 <= len(events) <= 21_000
    consents = read_all(transport, [topic_set.name("consent")])
    assert consents  # consent records went to their own topic, not counted above
    # Steady, not bursty: every whole second in the middle carries close to 2 000 events.
    first = min(m.timestamp_ms for m in events)
    per_second = Counter((m.timestamp_ms - first) // 1000 for m in events)
    middle = [per_second[s] for s in range(1, 9)]
    assert all(1_600 <= n <= 2_400 for n in middle), middle


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
