"""SPEC 11 on a real broker with SASL/PLAIN and the KRaft StandardAuthorizer.

Producers may only write raw topics; the pipeline reads raw and consent and
writes mainland topics; analysts may only read the anonymized topics;
operations read dead letters and replay them to raw topics through their replay
log. The ACLs come from deploy/acl/acls.toml through `consentgate topics acls`.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from consumers.consent_changes import (
    AcceptPolicy,
    GrantPurpose,
    apply_change,
)
from consumers.pipeline import Rejected
from consumers.route import Router
from ingest.cli.dlq_replay import DLQ_TRANSACTIONAL_ID
from ingest.errors import DeliveryError
from ingest.kafka import (
    ConsumerOptions,
    Message,
    ProducerOptions,
    TopicPartition,
    make_transport,
)
from ingest.kafka.config import KafkaSettings, load_settings
from ingest.kafka.errors import AuthorizationError
from ingest.kafka.topics import ROLES, TopicSet, load_topic_set
from ingest.local_broker.broker import LocalBroker
from ingest.metrics_text import metric_sum
from ingest.sdk.consent_client import ConsentClient
from ingest.sdk.publisher import Publisher
from ingest.simulator.fleet import Fleet
from ingest.simulator.simulate import Simulation
from schemas.codec import Codec
from tests.integration.worker_harness import start_worker, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.acl]

USERS = ("admin", "producer", "consent-service", "pipeline", "analyst", "consentgate-ops")


@pytest.fixture(scope="module")
def sasl_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """A private broker with SASL/PLAIN users and deny-by-default ACLs."""
    passwords = {user: secrets.token_urlsafe(12) for user in USERS}
    broker = LocalBroker(run_dir=tmp_path_factory.mktemp("sasl"), sasl_users=passwords)
    try:
        bootstrap = broker.start()
    except Exception as exc:
        pytest.fail(f"SASL broker did not start: {exc}", pytrace=False)
    try:
        yield bootstrap, passwords
    finally:
        broker.stop()


def _env(bootstrap: str, user: str, password: str) -> dict[str, str]:
    return {
        "CONSENTGATE_BOOTSTRAP_SERVERS": bootstrap,
        "CONSENTGATE_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "CONSENTGATE_SASL_MECHANISM": "PLAIN",
        "CONSENTGATE_SASL_USERNAME": user,
        "CONSENTGATE_SASL_PASSWORD": password,
    }


def _as(bootstrap: str, passwords: dict[str, str], user: str) -> KafkaSettings:
    return load_settings(
        bootstrap_servers=bootstrap,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="PLAIN",
        sasl_username=user,
        sasl_password=passwords[user],
    )


@pytest.fixture(scope="module")
def secured(sasl_broker: tuple[str, dict[str, str]]) -> tuple[str, dict[str, str], TopicSet]:
    """Topics created and ACLs applied by the super user through the CLI."""
    bootstrap, passwords = sasl_broker
    topics = load_topic_set(prefix="acl.")
    env = {**os.environ, **_env(bootstrap, "admin", passwords["admin"])}
    for action in ("create", "acls"):
        done = subprocess.run(
            [sys.executable, "-m", "ingest.cli.main", "topics", action, "--prefix", "acl."],
            capture_output=True, text=True, env=env, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert passwords["admin"] not in done.stderr + done.stdout
    return bootstrap, passwords, topics


def _end_offsets(settings: KafkaSettings, topic: str) -> dict[TopicPartition, int]:
    consumer = make_transport(settings).consumer(ConsumerOptions(group_id=None))
    try:
        return consumer.end_offsets([TopicPartition(topic, 0)])
    finally:
        consumer.close()


def test_producer_writes_raw_topics_only(secured: tuple[str, dict[str, str], TopicSet]) -> None:
    bootstrap, passwords, topics = secured
    settings = _as(bootstrap, passwords, "producer")
    sim = Simulation(Fleet(3, 20, int(time.time() * 1000)))
    events = [i for i in sim.items(count=20, rate_per_s=100) if i.event_type != "consent_record"]
    with Publisher(make_transport(settings), topics) as pub:
        for item in events:
            pub.send_valid(item.event_type, item.record)
    fast = ProducerOptions(delivery_timeout_ms=5000, request_timeout_ms=2000, linger_ms=0)
    producer = make_transport(settings).producer(fast)
    try:
        producer.send(topics.name("anon_device"), b"x", key=b"k")
        with pytest.raises(DeliveryError):
            producer.flush(15)
    finally:
        producer.close(5)
    assert _read_count(_as(bootstrap, passwords, "admin"), topics.name("raw_log")) > 0
    assert _read_count(settings, topics.name("raw_log")) == 0


def _read_count(settings: KafkaSettings, topic: str) -> int:
    """Records a principal can fetch from a topic in a few seconds (denied: none, or an error)."""
    consumer = make_transport(settings).consumer(ConsumerOptions(group_id=None))
    got = 0
    try:
        partitions = [TopicPartition(topic, p) for p in range(6)]
        consumer.assign(partitions)
        for tp in partitions:
            consumer.seek(tp, 0)
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            got += len(consumer.poll(500, 0.5))
    except AuthorizationError:
        return 0
    finally:
        consumer.close()
    return got


def test_analyst_reads_only_anonymized_topics(
    secured: tuple[str, dict[str, str], TopicSet],
) -> None:
    bootstrap, passwords, topics = secured
    settings = _as(bootstrap, passwords, "analyst")
    assert _end_offsets(settings, topics.name("anon_device"))
    for role in (
        "raw_device", "raw_log", "consent", "dead_letter", "kanon_pending", "kanon_repartition",
    ):  # fmt: skip
        with pytest.raises(AuthorizationError):
            _end_offsets(settings, topics.name(role))
    admin = _as(bootstrap, passwords, "admin")
    assert _read_count(admin, topics.name("raw_log")) > 0
    assert _read_count(settings, topics.name("raw_log")) == 0


def test_pipeline_runs_with_only_its_own_grants(
    secured: tuple[str, dict[str, str], TopicSet], tmp_path: Path
) -> None:
    bootstrap, passwords, topics = secured
    now = int(time.time() * 1000)
    consent = _as(bootstrap, passwords, "consent-service")
    with ConsentClient(make_transport(consent), topics) as client:
        receipts = [
            client.record("acl-user", AcceptPolicy(3), now - 60_000),
            client.record("acl-user", GrantPurpose(), now - 60_000),
        ]
    with Publisher(make_transport(consent), topics) as pub:
        pub.publish_consent(apply_change(None, GrantPurpose(), now, user_id="acl-intruder"))
        with pytest.raises(DeliveryError):  # services publish changes; only the writer folds
            pub.flush(15)
    producer = _as(bootstrap, passwords, "producer")
    sim = Simulation(Fleet(5, 30, now - 30_000))
    sent = 0
    with Publisher(make_transport(producer), topics) as pub:
        for item in sim.items(count=200, rate_per_s=1000):
            if item.event_type != "consent_record":
                pub.send_valid(item.event_type, item.record)
                sent += 1
    worker = start_worker(
        bootstrap, topics, tmp_path, group="consentgate-pipeline",
        env=_env(bootstrap, "pipeline", passwords["pipeline"]), extra=["--max-delay", "1"],
    )  # fmt: skip
    try:
        worker.wait_ready(90)
        with ConsentClient(make_transport(consent), topics) as client:
            folded = client.wait(receipts, timeout_s=60)["acl-user"]
        assert folded is not None and folded["purposes"]["analytics"]["granted"] is True
        wait_for(
            lambda: metric_sum(worker.metrics(), "consentgate_consumed_total") >= sent,
            90,
            "the pipeline principal to consume every raw event",
        )
        assert (
            metric_sum(worker.metrics(), "consentgate_transactions_total", outcome="aborted") == 0
        )
    finally:
        worker.stop()
    assert passwords["pipeline"] not in worker.log()
    assert all(topics.specs[r].name.startswith("acl.") for r in ROLES)


def _dlq(bootstrap: str, password: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **_env(bootstrap, "consentgate-ops", password)}
    return subprocess.run(
        [sys.executable, "-m", "ingest.cli.main", "dlq", *args, "--prefix", "acl."],
        capture_output=True, text=True, env=env, timeout=180, check=False,
    )  # fmt: skip


def test_operations_show_and_replay_dead_letters_and_nothing_else(
    secured: tuple[str, dict[str, str], TopicSet],
) -> None:
    bootstrap, passwords, topics = secured
    admin = _as(bootstrap, passwords, "admin")
    now = int(time.time() * 1000)
    probe = b"\x00acl probe " + secrets.token_hex(4).encode()
    raw = Message(topics.name("raw_log"), 1, 7, b"acl-ops-user", probe, [("event-type", b"x")], now)
    letter = Router(Codec(), topics, {}).dead_letter(
        Rejected(raw, "decode", "DecodeError", "acl_probe"), now
    )
    writer = make_transport(admin).producer(ProducerOptions(linger_ms=0))
    try:  # as the pipeline would have written it; this test is about operations' grants
        writer.send(letter.topic, letter.value, key=letter.key, headers=letter.headers)
        writer.flush(30)
    finally:
        writer.close(5)

    shown = _dlq(bootstrap, passwords["consentgate-ops"], "show", "--reason", "acl_probe")
    assert shown.returncode == 0, shown.stderr
    assert "dead letters: 1" in shown.stdout and "acl-ops-user" not in shown.stdout
    for _ in range(2):
        done = _dlq(bootstrap, passwords["consentgate-ops"], "replay", "--reason", "acl_probe")
        assert done.returncode == 0, done.stderr
    assert "dlq replay: 0 replayed, 1 already replayed" in done.stdout
    consumer = make_transport(admin).consumer(ConsumerOptions(group_id=None))
    try:
        tp = TopicPartition(topics.name("raw_log"), 1)
        consumer.assign([tp])
        consumer.seek(tp, 0)
        deadline = time.monotonic() + 30
        copies: list[Message] = []
        while time.monotonic() < deadline and not copies:
            copies = [m for m in consumer.poll(500, 0.5) if m.value == probe]
    finally:
        consumer.close()
    assert [(m.key, m.timestamp_ms) for m in copies] == [(b"acl-ops-user", now)]
    assert passwords["consentgate-ops"] not in shown.stderr + done.stderr

    ops = _as(bootstrap, passwords, "consentgate-ops")
    assert _read_count(ops, topics.name("raw_log")) == 0, "replays raw records, never reads them"
    for role in ("consent", "kanon_pending", "kanon_repartition", "anon_device"):
        with pytest.raises(AuthorizationError):
            _end_offsets(ops, topics.name(role))
    fast = ProducerOptions(delivery_timeout_ms=5000, request_timeout_ms=2000, linger_ms=0)
    producer = make_transport(ops).producer(fast)
    try:
        producer.send(topics.name("dead_letter"), b"x", key=b"k")
        with pytest.raises(DeliveryError):
            producer.flush(15)
    finally:
        producer.close(5)
    assert DLQ_TRANSACTIONAL_ID.startswith("consentgate-ops")
    foreign = make_transport(ops).producer(
        ProducerOptions(transactional_id="acl.consentgate-worker-0")
    )
    try:
        with pytest.raises(AuthorizationError):
            foreign.init_transactions(15)
    finally:
        foreign.close(5)
