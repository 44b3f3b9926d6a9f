"""`consentgate publish` against a real broker: valid lines go out, each bad line is named."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ingest.commands.simulate import json_line
from ingest.fleet import Fleet
from ingest.simulate import Simulation
from ingest.topics import TopicSet
from ingest.transport import Transport
from schemas.codec import Codec
from tests.integration.test_publishing import read_all

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
START_MS = 1_767_225_600_000
PROBLEM = re.compile(r"^line (\d+): ([A-Za-z_][\w.]*): (.+)$")


def cli(*args: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    """Run `consentgate ARGS` as a child process from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "ingest.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=timeout_s,
        check=False,
    )


def test_publish_sends_exactly_the_valid_lines_and_names_each_bad_one(
    tmp_path: Path, kafka_bootstrap: str, transport: Transport, topic_set: TopicSet
) -> None:
    items = list(Simulation(Fleet(21, 40, START_MS)).items(count=60, rate_per_s=1000.0))
    good = [json.loads(json_line(item)) for item in items]
    device = next(g for g in good if g["event_type"] == "device_event")
    log = next(g for g in good if g["event_type"] == "log_event")
    secret_user = "8613912345678"
    missing_field = {k: v for k, v in log.items() if k != "event_id"} | {"user_id": secret_user}
    battery = dict(device, battery_level_pct=250, event_id="ffffffff-0000-4000-8000-000000000001")
    unknown_type = dict(device, event_type="heartbeat", user_id=secret_user)
    lines = [json.dumps(g) for g in good]
    bad = {
        3: '{"event_type": "log_event", "user_id": ',  # truncated JSON
        10: json.dumps(missing_field),
        20: json.dumps(battery),
        31: json.dumps(unknown_type),
    }
    for number in sorted(bad):
        lines.insert(number - 1, bad[number])
    source = tmp_path / "mixed.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")

    done = cli("publish", str(source), "--bootstrap", kafka_bootstrap, "--prefix", topic_set.prefix)

    assert done.returncode != 0
    problems = [PROBLEM.match(line) for line in done.stderr.splitlines()]
    reported = {(int(m[1]), m[2]) for m in problems if m}
    assert reported == {
        (3, "record"),
        (10, "event_id"),
        (20, "battery_level_pct"),
        (31, "event_type"),
    }
    for value in (secret_user, "250"):
        assert value not in done.stderr
    assert f"published {len(good)}, rejected 4" in done.stderr

    raw = [topic_set.name("raw_device"), topic_set.name("raw_log"), topic_set.name("consent")]
    codec = Codec()
    back = [codec.decode(m.value)[1] for m in read_all(transport, raw) if m.value is not None]
    ids = sorted(r.get("event_id") or f"consent {r['user_id']} {r['version']}" for r in back)
    expected = sorted(g.get("event_id") or f"consent {g['user_id']} {g['version']}" for g in good)
    assert ids == expected
