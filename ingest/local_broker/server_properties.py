"""The local broker's configuration: its server.properties and a KRaft cluster id.

One node is broker and controller at once, on the loopback, PLAINTEXT or SASL/PLAIN
with the ACL authorizer; the settings a single node needs for transactions and
consumer groups are here too. Passwords go only into the JAAS lines of the file.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Mapping
from pathlib import Path

from ingest.errors import BrokerError

HOST = "127.0.0.1"
_USER_RE = re.compile(r"[A-Za-z0-9._-]+")
_PLAIN_MODULE = "org.apache.kafka.common.security.plain.PlainLoginModule required"


def new_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64 without padding, no leading '-'."""
    while True:
        cid = base64.urlsafe_b64encode(os.urandom(16)).decode("ascii").rstrip("=")
        if not cid.startswith("-"):
            return cid


def _jaas(username: str, password: str, users: Mapping[str, str]) -> str:
    """One PLAIN JAAS line: client credentials plus the users the listener accepts."""
    accepted = " ".join(f'user_{name}="{pw}"' for name, pw in users.items())
    return f'{_PLAIN_MODULE} username="{username}" password="{password}" {accepted};'


def _check_users(users: Mapping[str, str]) -> None:
    """Refuse user names or passwords that cannot be written into a JAAS line safely."""
    if "admin" not in users:
        raise BrokerError("sasl_users must include 'admin' (the super user)")
    for name, password in users.items():
        if not _USER_RE.fullmatch(name):
            raise BrokerError("SASL user names may only hold letters, digits, '.', '_' and '-'")
        if not password or any(c in password for c in '"\\') or not password.isprintable():
            raise BrokerError(
                f"the password of SASL user {name!r} is empty or holds a quote, "
                "a backslash or a control character"
            )


def render_properties(
    *,
    port: int,
    controller_port: int,
    data_dir: Path,
    rack: str,
    sasl_users: Mapping[str, str] | None = None,
    node_id: int = 1,
) -> str:
    """The server.properties of a one-node KRaft broker+controller (PLAINTEXT or SASL/PLAIN)."""
    protocol = "SASL_PLAINTEXT" if sasl_users else "PLAINTEXT"
    ctl_protocol = "SASL_PLAINTEXT" if sasl_users else "PLAINTEXT"
    props: dict[str, str | int] = {
        "process.roles": "broker,controller",
        "node.id": node_id,
        "controller.quorum.voters": f"{node_id}@{HOST}:{controller_port}",
        "listeners": f"{protocol}://{HOST}:{port},CONTROLLER://{HOST}:{controller_port}",
        "advertised.listeners": f"{protocol}://{HOST}:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": protocol,
        "listener.security.protocol.map": f"{protocol}:{protocol},CONTROLLER:{ctl_protocol}",
        "log.dirs": str(data_dir),
        "broker.rack": rack,
        "num.partitions": 1,
        "auto.create.topics.enable": "false",
        "group.initial.rebalance.delay.ms": 0,
        # One node: without these, transactions and consumer groups fail silently.
        "offsets.topic.replication.factor": 1,
        "offsets.topic.num.partitions": 8,
        "transaction.state.log.replication.factor": 1,
        "transaction.state.log.min.isr": 1,
        "transaction.state.log.num.partitions": 8,
        "share.coordinator.state.topic.replication.factor": 1,
        "share.coordinator.state.topic.min.isr": 1,
        "min.insync.replicas": 1,
        "default.replication.factor": 1,
    }
    if sasl_users:
        _check_users(sasl_users)
        admin_pw = sasl_users["admin"]
        props |= {
            "sasl.enabled.mechanisms": "PLAIN",
            "sasl.mechanism.inter.broker.protocol": "PLAIN",
            # The broker registers with its controller over SASL too, else as User:ANONYMOUS.
            "sasl.mechanism.controller.protocol": "PLAIN",
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "allow.everyone.if.no.acl.found": "false",
            "super.users": "User:admin",
            "listener.name.sasl_plaintext.plain.sasl.jaas.config": _jaas(
                "admin", admin_pw, sasl_users
            ),
            "listener.name.controller.plain.sasl.jaas.config": _jaas(
                "admin", admin_pw, {"admin": admin_pw}
            ),
        }
    lines = [
        "# Written by ingest.local_broker for the local development broker; rewritten each start."
    ]
    lines += [f"{key}={value}" for key, value in props.items()]
    return "\n".join(lines) + "\n"
