"""`consentgate publish` against a real broker: valid lines go out, each bad line is named.

Also the CLI's report of refused SASL credentials, on a broker with SASL/PLAIN.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from ingest.cli.publish import MAX_DEPTH, MAX_LINE_BYTES
from ingest.cli.simulate import json_line
from ingest.kafka import Transport
from ingest.kafka.topics import TopicSet
from ingest.simulator.fleet import Fleet
from ingest.simulator.simulate import Simulation
from schemas.codec import Codec
from tests.integration.test_acl import sasl_broker  # noqa: F401  (the SASL broker fixture)
from tests.integration.test_publishing import read_all

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
START_MS = 1_767_225_600_000
PROBLEM = re.compile(r"^line (\d+): ([A-Za-z_][\w.]*): (.+)$")


def cli(
    *args: str, timeout_s: float = 120, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `consentgate ARGS` as a child process from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "ingest.cli.main", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=timeout_s,
        check=False,
        env=None if env is None else {**os.environ, **env},
    )


def _ids(transport: Transport, topic_set: TopicSet) -> list[str]:
    raw = [topic_set.name("raw_device"), topic_set.name("raw_log"), topic_set.name("consent")]
    codec = Codec()
    back = [codec.decode(m.value)[1] for m in read_all(transport, raw) if m.value is not None]
    return sorted(r.get("event_id") or f"consent {r['user_id']} {r['version']}" for r in back)


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

    expected = sorted(g.get("event_id") or f"consent {g['user_id']} {g['version']}" for g in good)
    assert _ids(transport, topic_set) == expected


def _sized(event: dict[str, object], event_id: str, size: int) -> str:
    """`event` as one JSON line of exactly `size` bytes, padded in its free-text message."""
    line = json.dumps(dict(event, event_id=event_id, message=""))
    return json.dumps(dict(event, event_id=event_id, message="x" * (size - len(line))))


def test_publish_survives_deep_and_huge_lines_and_publishes_the_rest(
    tmp_path: Path, kafka_bootstrap: str, transport: Transport, topic_set: TopicSet, client: str
) -> None:
    items = list(Simulation(Fleet(22, 30, START_MS)).items(count=30, rate_per_s=1000.0))
    good = [json.loads(json_line(item)) for item in items]
    log = next(g for g in good if g["event_type"] == "log_event")
    at_limit = _sized(log, "ffffffff-0000-4000-8000-00000000000a", MAX_LINE_BYTES)
    over_limit = _sized(log, "ffffffff-0000-4000-8000-00000000000b", 2 * 1024 * 1024)
    assert len(at_limit.encode()) == MAX_LINE_BYTES
    lines = [json.dumps(g) for g in good]
    bad = {
        2: "[" * 100_000 + "]" * 100_000,  # a RecursionError for json.loads
        5: over_limit,
        11: '{"a":' * (MAX_DEPTH + 1) + "1" + "}" * (MAX_DEPTH + 1),
        14: "[1, 2, 3]",
    }
    lines.insert(7, at_limit)  # line 8: as long as a line may be, and valid
    for number in sorted(bad):
        lines.insert(number - 1, bad[number])
    source = tmp_path / "hostile.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")

    done = cli(
        "publish", str(source), "--bootstrap", kafka_bootstrap, "--prefix", topic_set.prefix,
        "--client", client,
    )  # fmt: skip

    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    problems = [PROBLEM.match(line) for line in done.stderr.splitlines()]
    reported = {(int(m[1]), m[3]) for m in problems if m}
    assert reported == {
        (2, f"nested deeper than {MAX_DEPTH} levels"),
        (5, f"line longer than {MAX_LINE_BYTES} bytes"),
        (11, f"nested deeper than {MAX_DEPTH} levels"),
        (14, "not a JSON object"),
    }
    assert done.stderr.splitlines()[-1] == f"published {len(good) + 1}, rejected 4, undelivered 0"
    expected = sorted(
        [g.get("event_id") or f"consent {g['user_id']} {g['version']}" for g in good]
        + ["ffffffff-0000-4000-8000-00000000000a"]
    )
    assert _ids(transport, topic_set) == expected


@pytest.mark.acl
def test_a_wrong_sasl_password_is_reported_as_an_authentication_failure(
    sasl_broker: tuple[str, dict[str, str]],  # noqa: F811
) -> None:
    # confluent-kafka only: kafka-python 3.0.12 loses the broker's SaslAuthenticate error
    # (it drops the bytes read with the connection close) and reports a timeout.
    bootstrap, passwords = sasl_broker
    wrong = "not-" + passwords["producer"]
    env = {
        "CONSENTGATE_BOOTSTRAP_SERVERS": bootstrap,
        "CONSENTGATE_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "CONSENTGATE_SASL_MECHANISM": "PLAIN",
        "CONSENTGATE_SASL_USERNAME": "producer",
        "CONSENTGATE_SASL_PASSWORD": wrong,
        "CONSENTGATE_SASL_PASSWORD_FILE": "",  # empty: unset
    }
    done = cli("topics", "check", "--client", "confluent", "--prefix", "auth.", env=env)

    assert done.returncode == 1, done.stderr
    last = done.stderr.splitlines()[-1]
    assert last.startswith("consentgate topics: authentication failed for principal 'producer'")
    assert "CONSENTGATE_SASL_USERNAME" in last
    assert wrong not in done.stderr and passwords["producer"] not in done.stderr
