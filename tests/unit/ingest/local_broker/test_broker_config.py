"""server.properties of the local broker, cluster ids, and that passwords stay out of sight."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from ingest.errors import BrokerError
from ingest.local_broker.broker import LocalBroker
from ingest.local_broker.jars import kafka_version
from ingest.local_broker.server_properties import new_cluster_id, render_properties

USERS = {"admin": "Adm1n-pw-7f3a", "ingest": "Ing3st-pw-91bc", "analyst": "An4lyst-pw-0d2e"}


def _parse(text: str) -> dict[str, str]:
    """A minimal .properties reader: key=value lines, '#' comments, no continuation lines."""
    props: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"line without '=': {line!r}"
        assert key not in props, f"duplicate key {key}"
        props[key] = value
    return props


def _plain(tmp: Path) -> dict[str, str]:
    return _parse(
        render_properties(port=19092, controller_port=19093, data_dir=tmp / "data", rack="cn-r1")
    )


def _sasl(tmp: Path) -> str:
    return render_properties(
        port=19092, controller_port=19093, data_dir=tmp / "data", rack="cn-r1", sasl_users=USERS
    )


def test_single_node_settings_are_all_present(tmp_path: Path) -> None:
    expected = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": "1@127.0.0.1:19093",
        "listeners": "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093",
        "advertised.listeners": "PLAINTEXT://127.0.0.1:19092",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(tmp_path / "data"),
        "broker.rack": "cn-r1",
        "auto.create.topics.enable": "false",
        "group.initial.rebalance.delay.ms": "0",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "min.insync.replicas": "1",
        "default.replication.factor": "1",
    }
    props = _plain(tmp_path)
    assert {k: props.get(k) for k in expected} == expected


def test_plaintext_broker_has_no_authorizer_or_sasl(tmp_path: Path) -> None:
    props = _plain(tmp_path)
    assert not [k for k in props if "sasl" in k or "authorizer" in k or k == "super.users"]


def test_sasl_broker_authorizes_with_admin_as_only_super_user(tmp_path: Path) -> None:
    props = _parse(_sasl(tmp_path))
    assert props["authorizer.class.name"] == (
        "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    )
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["super.users"] == "User:admin"
    assert props["listeners"] == "SASL_PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["advertised.listeners"] == "SASL_PLAINTEXT://127.0.0.1:19092"
    assert props["inter.broker.listener.name"] == "SASL_PLAINTEXT"
    assert props["sasl.enabled.mechanisms"] == "PLAIN"
    assert props["sasl.mechanism.inter.broker.protocol"] == "PLAIN"


def test_sasl_controller_listener_authenticates_too(tmp_path: Path) -> None:
    props = _parse(_sasl(tmp_path))
    protocol_map = dict(p.split(":") for p in props["listener.security.protocol.map"].split(","))
    assert protocol_map == {"SASL_PLAINTEXT": "SASL_PLAINTEXT", "CONTROLLER": "SASL_PLAINTEXT"}
    assert props["sasl.mechanism.controller.protocol"] == "PLAIN"
    controller_jaas = props["listener.name.controller.plain.sasl.jaas.config"]
    assert 'username="admin"' in controller_jaas
    assert f'password="{USERS["admin"]}"' in controller_jaas


def test_sasl_listener_accepts_every_user(tmp_path: Path) -> None:
    jaas = _parse(_sasl(tmp_path))["listener.name.sasl_plaintext.plain.sasl.jaas.config"]
    assert jaas.startswith("org.apache.kafka.common.security.plain.PlainLoginModule required ")
    assert jaas.endswith(";")
    for name, password in USERS.items():
        assert f'user_{name}="{password}"' in jaas


def test_passwords_appear_only_in_jaas_lines(tmp_path: Path) -> None:
    for line in _sasl(tmp_path).splitlines():
        if line.partition("=")[0].endswith(".sasl.jaas.config"):
            continue
        assert not [pw for pw in USERS.values() if pw in line], line


def test_sasl_users_without_admin_are_refused(tmp_path: Path) -> None:
    with pytest.raises(BrokerError, match="admin"):
        render_properties(
            port=1, controller_port=2, data_dir=tmp_path, rack="r", sasl_users={"bob": "pw-1"}
        )


@pytest.mark.parametrize("password", ['pa"ss-x9', "pa\\ss-x9", "pa\nss-x9", ""])
def test_unsafe_password_is_refused_without_echoing_it(tmp_path: Path, password: str) -> None:
    with pytest.raises(BrokerError) as err:
        render_properties(
            port=1, controller_port=2, data_dir=tmp_path, rack="r", sasl_users={"admin": password}
        )
    if password:
        assert password not in str(err.value)


def test_broker_repr_names_users_but_not_passwords(tmp_path: Path) -> None:
    text = repr(LocalBroker(tmp_path, sasl_users=USERS))
    assert "analyst" in text
    assert not [pw for pw in USERS.values() if pw in text]


def test_cluster_ids_are_16_random_bytes_in_urlsafe_base64() -> None:
    ids = [new_cluster_id() for _ in range(500)]
    assert len(set(ids)) == 500
    for cid in ids:
        assert len(cid) == 22 and "=" not in cid and not cid.startswith("-")
        assert len(base64.urlsafe_b64decode(cid + "==")) == 16


def test_pom_pins_kafka_4_3_1() -> None:
    assert kafka_version() == "4.3.1"
