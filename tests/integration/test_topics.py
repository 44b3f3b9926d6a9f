"""The topic set on a real broker: created idempotently, checked for drift."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest

from ingest.topics import ROLES, load_topic_set
from ingest.transport import Transport

pytestmark = pytest.mark.integration


def _cli(*args: str, bootstrap: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ingest.cli", *args, "--bootstrap", bootstrap],
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
    assert "9 created" in first.stderr
    second = _cli("topics", "create", "--prefix", prefix, bootstrap=kafka_bootstrap)
    assert second.returncode == 0, second.stderr
    assert "0 created, 9 already present" in second.stderr
    check = _cli("topics", "check", "--prefix", prefix, bootstrap=kafka_bootstrap)
    assert check.returncode == 0, check.stdout + check.stderr

    topics = load_topic_set(prefix=prefix)
    admin = transport.admin()
    try:
        info = admin.describe_topics([topics.name("consent"), topics.name("raw_device")])
        assert info[topics.name("consent")].configs["cleanup.policy"] == "compact"
        assert info[topics.name("raw_device")].configs["retention.ms"] == "86400000"
        assert info[topics.name("raw_device")].partitions == 6
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
