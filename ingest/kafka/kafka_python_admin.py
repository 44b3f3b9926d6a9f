"""Topic, broker and ACL administration on kafka-python's KafkaAdminClient."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import kafka.errors as kerr
from kafka.admin import (
    ACL,
    ACLFilter,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    ConfigResource,
    ConfigResourceType,
    KafkaAdminClient,
    ResourcePattern,
    ResourcePatternFilter,
    ResourceType,
)

from ingest.errors import TransportError
from ingest.kafka.base import AclSpec, BrokerInfo, TopicInfo, TopicSpec
from ingest.kafka.config import KafkaSettings
from ingest.kafka.errors import UnreachableError, map_error
from ingest.kafka.kafka_python_config import common_config

_ACL_OPS = {
    "all": ACLOperation.ALL,
    "read": ACLOperation.READ,
    "write": ACLOperation.WRITE,
    "create": ACLOperation.CREATE,
    "describe": ACLOperation.DESCRIBE,
    "describe_configs": ACLOperation.DESCRIBE_CONFIGS,
    "idempotent_write": ACLOperation.IDEMPOTENT_WRITE,
    "alter": ACLOperation.ALTER,
    "delete": ACLOperation.DELETE,
}
_PATTERN = {True: ACLResourcePatternType.PREFIXED, False: ACLResourcePatternType.LITERAL}
_RESOURCES = {
    "topic": ResourceType.TOPIC,
    "group": ResourceType.GROUP,
    "transactional_id": ResourceType.TRANSACTIONAL_ID,
    "cluster": ResourceType.CLUSTER,
}


class KafkaPythonAdmin:
    """Topic, broker and ACL administration."""

    def __init__(self, settings: KafkaSettings) -> None:
        try:
            self._a = KafkaAdminClient(**common_config(settings))
        except kerr.KafkaError as exc:
            raise map_error(exc, "cannot connect admin client") from exc

    def create_topics(self, specs: Iterable[TopicSpec]) -> dict[str, bool]:
        wanted = list(specs)
        existing = set(self.list_topics())
        result = {s.name: False for s in wanted if s.name in existing}
        missing = {
            s.name: {
                "num_partitions": s.partitions,
                "replication_factor": s.replication,
                "configs": dict(s.configs),
            }
            for s in wanted
            if s.name not in existing
        }
        for name, data in missing.items():
            try:
                self._a.create_topics({name: data})
                result[name] = True
            except kerr.TopicAlreadyExistsError:
                result[name] = False
            except kerr.KafkaError as exc:
                raise map_error(exc, f"cannot create topic {name}") from exc
        if missing:
            try:
                self._a.wait_for_topics(list(missing), timeout_ms=30_000)
            except kerr.KafkaError as exc:
                raise map_error(exc, "created topics did not appear") from exc
        return result

    def describe_topics(self, names: Iterable[str]) -> dict[str, TopicInfo]:
        wanted = list(names)
        present = set(self.list_topics())
        wanted = [n for n in wanted if n in present]
        if not wanted:
            return {}
        try:
            meta = self._a.describe_topics(wanted)
            conf = self._a.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, n) for n in wanted],
                config_filter="all",
            )
        except kerr.KafkaError as exc:
            raise map_error(exc, "describe topics failed") from exc
        topic_confs = _topic_configs(conf)
        out: dict[str, TopicInfo] = {}
        for t in meta:
            parts = t.get("partitions") or []
            replication = len(parts[0].get("replica_nodes", [])) if parts else 0
            out[t["name"]] = TopicInfo(
                name=t["name"],
                partitions=len(parts),
                replication=replication,
                configs=topic_confs.get(t["name"], {}),
            )
        return out

    def list_topics(self) -> list[str]:
        try:
            return sorted(self._a.list_topics())
        except kerr.KafkaError as exc:
            raise map_error(exc, "list topics failed") from exc

    def delete_topics(self, names: Iterable[str]) -> None:
        try:
            self._a.delete_topics(list(names))
        except kerr.KafkaError as exc:
            raise map_error(exc, "delete topics failed") from exc

    def brokers(self) -> list[BrokerInfo]:
        try:
            cluster = self._a.describe_cluster()
        except kerr.KafkaError as exc:
            raise map_error(exc, "describe cluster failed") from exc
        return [
            BrokerInfo(
                node_id=int(b.get("broker_id", b.get("node_id", -1))),
                host=str(b.get("host")),
                port=int(b.get("port", 0)),
                rack=b.get("rack") or None,
            )
            for b in cluster.get("brokers", [])
        ]

    def create_acls(self, acls: Iterable[AclSpec]) -> None:
        items = [
            ACL(
                principal=a.principal,
                host="*",
                operation=_ACL_OPS[a.operation],
                permission_type=ACLPermissionType.ALLOW,
                resource_pattern=ResourcePattern(
                    _RESOURCES[a.resource_type],
                    a.name,
                    _PATTERN[a.prefixed],
                ),
            )
            for a in acls
        ]
        try:
            result = self._a.create_acls(items)
        except kerr.KafkaError as exc:
            raise map_error(exc, "create ACLs failed") from exc
        failed = result.get("failed", []) if isinstance(result, dict) else []
        if failed:
            raise TransportError(f"{len(failed)} ACL(s) could not be created")
        self._wait_for_acls(set(items))

    def _wait_for_acls(self, acls: set[Any], timeout_s: float = 30.0) -> None:
        """Until the broker's authorizer lists every new ACL, so the next client is allowed."""
        every = ACLFilter(
            None,
            None,
            ACLOperation.ANY,
            ACLPermissionType.ANY,
            ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY),
        )
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                listed, _error = self._a.describe_acls(every)
            except kerr.KafkaError as exc:
                raise map_error(exc, "created ACLs could not be listed") from exc
            if acls <= set(listed):
                return
            if time.monotonic() > deadline:
                raise UnreachableError("created ACLs did not appear: timed out")
            time.sleep(0.1)

    def close(self) -> None:
        self._a.close()


def _topic_configs(conf: Any) -> dict[str, dict[str, str]]:
    """Flatten kafka-python's describe_configs answer to {topic: {key: value}}."""
    out: dict[str, dict[str, str]] = {}
    if isinstance(conf, dict):
        for by_name in conf.values():
            if not isinstance(by_name, dict):
                continue
            for name, entries in by_name.items():
                flat: dict[str, str] = {}
                for key, data in (entries or {}).items():
                    value = data.get("value") if isinstance(data, dict) else data
                    if value is not None:
                        flat[str(key)] = str(value)
                out[str(name)] = flat
    return out
