"""The topic set on a real broker: created idempotently, checked for drift."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest

from ingest.kafka import Transport
from ingest.kafka.topics import ROLES, Role, load_topic_set

pytestmark = pytest.mark.integration


def _cli(*args: str, bootstrap: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ingest.cli.main", *args, "--bootstrap", bootstrap],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_topics_create_twice_then_check_passes_and_consent_is_compacted(
    kafka_bootstrap: str, transport: Transport
) -> None:
    prefix = f"c{uuid.uuid4().hex[:8]}."
    first = _cli("topics", "create", "--prefix", prefix, bootstrap=kafka_bootstrap)
    assert first.returncode == 0, first.stderr
    assert f"{len(ROLES)} created" in first.stderr
    second = _cli("topics", "create", "--prefix", prefix, bootstrap=kafka_bootstrap)
    assert second.returncode == 0, second.stderr
    assert f"0 created, {len(ROLES)} already present" in second.stderr
    check = _cli("topics", "check", "--prefix", prefix, bootstrap=kafka_bootstrap)
    assert check.returncode == 0, check.stdout + check.stderr

    topics = load_topic_set(prefix=prefix)
    admin = transport.admin()
    try:
        roles: tuple[Role, ...] = (
            "consent", "raw_device", "raw_log", "dead_letter", "dead_letter_replays",
        )  # fmt: skip
        found = admin.describe_topics(topics.name(r) for r in roles)
        info = {r: found[topics.name(r)] for r in roles}
        assert info["consent"].configs["cleanup.policy"] == "compact"
        assert info["raw_device"].configs["retention.ms"] == "86400000"
        # Dead letters hold raw records: they live no longer than the raw topics keep them.
        assert info["dead_letter"].configs["retention.ms"] == "86400000"
        assert info["raw_log"].configs["retention.ms"] == "86400000"
        # Closed segments are what Kafka deletes: an hour each, so a day means about a day.
        assert info["raw_device"].configs["segment.ms"] == "3600000"
        assert info["dead_letter"].configs["segment.ms"] == "3600000"
        assert info["dead_letter_replays"].configs["cleanup.policy"] == "compact"
        assert info["raw_device"].partitions == 6
        admin.delete_topics(topics.specs[r].name for r in ROLES)
    finally:
        admin.close()


def test_topics_check_reports_drift_and_exits_nonzero(
    kafka_bootstrap: str, transport: Transport
) -> None:
    prefix = f"d{uuid.uuid4().hex[:8]}."
    topics = load_topic_set(prefix=prefix, partitions=2)
    admin = transport.admin()
    try:
        admin.create_topics(topics.specs[r] for r in ROLES if r != "erasure")
        check = _cli("topics", "check", "--prefix", prefix, bootstrap=kafka_bootstrap)
        assert check.returncode == 1
        assert f"drift: {topics.name('erasure')}: missing" in check.stdout
        assert "2 partitions, expected 6" in check.stdout
        admin.delete_topics(topics.specs[r].name for r in ROLES if r != "erasure")
    finally:
        admin.close()


def test_topics_list_prints_one_prefixed_name_per_line(kafka_bootstrap: str) -> None:
    done = _cli("topics", "list", "--prefix", "x.", bootstrap=kafka_bootstrap)
    assert done.returncode == 0
    names = done.stdout.split()
    assert len(names) == len(ROLES)
    assert all(n.startswith("x.") for n in names)
    assert "x.consent.state" in names
