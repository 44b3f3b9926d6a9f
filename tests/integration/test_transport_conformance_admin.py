"""Administration and ACLs behave alike on both clients, against the real broker; and the
conformance files together call every method of the Kafka boundary.

Each test runs once per client library (the `client` fixture). The ACL test starts its
own SASL broker with deny-by-default ACLs.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.kafka import ConsumerOptions, TopicPartition, TopicSpec, Transport, base, make_transport
from ingest.kafka.base import AclSpec
from ingest.kafka.config import KafkaSettings, load_settings
from ingest.kafka.errors import AuthorizationError
from ingest.local_broker.broker import LocalBroker
from tests.integration.transport_helpers import new_topics, read

pytestmark = pytest.mark.integration


# --- administration ----------------------------------------------------------------------------


def test_admin_creates_once_describes_configs_and_deletes(client_transport: Transport) -> None:
    name = f"tr-{uuid.uuid4().hex[:12]}"
    spec = TopicSpec(name, 2, 1, {"cleanup.policy": "compact", "retention.ms": "3600000"})
    admin = client_transport.admin()
    try:
        brokers = admin.brokers()
        assert brokers and len({b.node_id for b in brokers}) == len(brokers)
        assert all(b.host and b.port > 0 for b in brokers)
        assert admin.create_topics([spec]) == {name: True}
        assert admin.create_topics([spec]) == {name: False}
        assert name in admin.list_topics()
        info = admin.describe_topics([name, f"absent-{uuid.uuid4().hex}"])
        assert list(info) == [name]
        assert (info[name].partitions, info[name].replication) == (2, 1)
        assert info[name].configs["cleanup.policy"] == "compact"
        assert info[name].configs["retention.ms"] == "3600000"
        assert "segment.bytes" in info[name].configs  # defaults are included too
        admin.delete_topics([name])
        deadline = time.monotonic() + 15
        while name in admin.list_topics() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert name not in admin.list_topics()
    finally:
        admin.close()


SASL_USERS = ("admin", "reader")


@pytest.fixture(scope="module")
def sasl_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, KafkaSettings]]:
    """Settings per user of a private SASL/PLAIN broker with deny-by-default ACLs."""
    passwords = {user: secrets.token_urlsafe(12) for user in SASL_USERS}
    broker = LocalBroker(run_dir=Path(tmp_path_factory.mktemp("sasl")), sasl_users=passwords)
    try:
        bootstrap = broker.start()
    except Exception as exc:  # the run must fail loudly, never skip
        pytest.fail(f"SASL broker did not start: {exc}", pytrace=False)
    try:
        yield {
            user: load_settings(
                bootstrap_servers=bootstrap,
                security_protocol="SASL_PLAINTEXT",
                sasl_mechanism="PLAIN",
                sasl_username=user,
                sasl_password=password,
            )
            for user, password in passwords.items()
        }
    finally:
        broker.stop()


@pytest.mark.acl
def test_created_acls_take_effect_and_denials_raise_authorization_errors(
    sasl_settings: dict[str, KafkaSettings], client: str
) -> None:
    as_admin, as_reader = (
        make_transport(sasl_settings[u].model_copy(update={"client": client})) for u in SASL_USERS
    )
    (topic,) = new_topics(as_admin, partitions=1)
    group = f"g-{uuid.uuid4().hex[:12]}"
    tp = TopicPartition(topic, 0)
    producer = as_admin.producer()
    producer.send(topic, b"v", key=b"k")
    producer.flush(30)
    producer.close()

    denied = as_reader.consumer(ConsumerOptions(group_id=group))
    try:
        with pytest.raises(AuthorizationError):
            denied.end_offsets([tp])
    finally:
        denied.close()

    admin = as_admin.admin()
    try:
        admin.create_acls(
            [
                AclSpec("User:reader", "topic", topic, "read"),
                AclSpec("User:reader", "topic", topic, "describe"),
                AclSpec("User:reader", "group", group[:6], "read", prefixed=True),
            ]
        )
    finally:
        admin.close()
    # granted as soon as create_acls returns: no waiting here
    allowed = as_reader.consumer(ConsumerOptions(group_id=group))
    try:
        assert allowed.end_offsets([tp]) == {tp: 1}
        allowed.assign([tp])
        assert [m.value for m in read(allowed, 1)] == [b"v"]
        allowed.commit({tp: 1})
        assert allowed.committed(tp) == 1
    finally:
        allowed.close()


def test_every_protocol_method_is_exercised_here() -> None:
    """A method added to the boundary needs a behaviour test in these files."""
    files = sorted(Path(__file__).parent.glob("test_transport_conformance_*.py"))
    source = "".join(path.read_text(encoding="utf-8") for path in files)
    protocols = [base.Transport, base.Producer, base.Delivery, base.Consumer, base.Admin]
    untested = [
        f"{protocol.__name__}.{name}"
        for protocol in protocols
        for name, value in vars(protocol).items()
        if callable(value) and not name.startswith("_") and f".{name}(" not in source
    ]
    assert untested == []
