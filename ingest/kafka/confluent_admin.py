"""Topic, broker and ACL administration on confluent-kafka's AdminClient."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

import confluent_kafka as ck
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ConfigResource,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)

from ingest.errors import TransportError
from ingest.kafka.base import (
    AclSpec,
    BrokerInfo,
    TopicInfo,
    TopicSpec,
)
from ingest.kafka.config import KafkaSettings
from ingest.kafka.confluent_common import (
    METADATA_TIMEOUT_S,
    build_client,
    common_config,
    map_confluent_error,
)
from ingest.kafka.errors import (
    UnreachableError,
)

log = logging.getLogger(__name__)

_ACL_OPS = {
    "all": AclOperation.ALL,
    "read": AclOperation.READ,
    "write": AclOperation.WRITE,
    "create": AclOperation.CREATE,
    "describe": AclOperation.DESCRIBE,
    "describe_configs": AclOperation.DESCRIBE_CONFIGS,
    "idempotent_write": AclOperation.IDEMPOTENT_WRITE,
    "alter": AclOperation.ALTER,
    "delete": AclOperation.DELETE,
}
_PATTERN = {True: ResourcePatternType.PREFIXED, False: ResourcePatternType.LITERAL}
_RESOURCES = {
    "topic": ResourceType.TOPIC,
    "group": ResourceType.GROUP,
    "transactional_id": ResourceType.TRANSACTIONAL_ID,
    "cluster": ResourceType.BROKER,  # librdkafka's name for the cluster resource (4)
}


class ConfluentAdmin:
    """Topic, broker and ACL administration."""

    def __init__(self, settings: KafkaSettings) -> None:
        self._a = build_client(AdminClient, common_config(settings), "admin")

    def _metadata(self) -> Any:
        try:
            return self._a.list_topics(timeout=METADATA_TIMEOUT_S)
        except ck.KafkaException as exc:
            self._a.poll(0)  # serve error callbacks: a refused login maps to AuthenticationError
            raise map_confluent_error(exc, "list topics failed") from exc

    def create_topics(self, specs: Iterable[TopicSpec]) -> dict[str, bool]:
        wanted = list(specs)
        existing = set(self.list_topics())
        result = {s.name: False for s in wanted if s.name in existing}
        missing = [
            NewTopic(s.name, s.partitions, s.replication, config=dict(s.configs))
            for s in wanted
            if s.name not in existing
        ]
        if not missing:
            return result
        futures = self._a.create_topics(missing, operation_timeout=30, request_timeout=30)
        for name, future in futures.items():
            try:
                future.result()
                result[name] = True
            except ck.KafkaException as exc:
                if exc.args[0].code() != ck.KafkaError.TOPIC_ALREADY_EXISTS:
                    raise map_confluent_error(exc, f"cannot create topic {name}") from exc
                result[name] = False
        self._wait_for([t.topic for t in missing])
        return result

    def _wait_for(self, names: list[str], timeout_s: float = 30.0) -> None:
        """Until every topic has a leader for each partition (as kafka-python's wait_for_topics)."""
        deadline = time.monotonic() + timeout_s
        while True:
            topics = self._metadata().topics
            ready = all(
                n in topics
                and topics[n].error is None
                and topics[n].partitions
                and all(p.leader >= 0 for p in topics[n].partitions.values())
                for n in names
            )
            if ready:
                return
            if time.monotonic() > deadline:
                raise UnreachableError("created topics did not appear: timed out")
            time.sleep(0.1)

    def describe_topics(self, names: Iterable[str]) -> dict[str, TopicInfo]:
        topics = self._metadata().topics
        wanted = [n for n in names if n in topics]
        if not wanted:
            return {}
        resources = [ConfigResource(ResourceType.TOPIC, n) for n in wanted]
        out: dict[str, TopicInfo] = {}
        try:
            for res, future in self._a.describe_configs(resources, request_timeout=30).items():
                entries = future.result()
                name = res.name
                parts = topics[name].partitions
                first = parts[min(parts)] if parts else None
                out[name] = TopicInfo(
                    name=name,
                    partitions=len(parts),
                    replication=len(first.replicas) if first is not None else 0,
                    configs={k: str(e.value) for k, e in entries.items() if e.value is not None},
                )
        except ck.KafkaException as exc:
            raise map_confluent_error(exc, "describe topics failed") from exc
        return out

    def list_topics(self) -> list[str]:
        return sorted(self._metadata().topics)

    def delete_topics(self, names: Iterable[str]) -> None:
        wanted = list(names)
        if not wanted:
            return
        try:
            for future in self._a.delete_topics(wanted, operation_timeout=30).values():
                future.result()
        except ck.KafkaException as exc:
            raise map_confluent_error(exc, "delete topics failed") from exc

    def brokers(self) -> list[BrokerInfo]:
        try:
            cluster = self._a.describe_cluster(request_timeout=METADATA_TIMEOUT_S).result()
        except ck.KafkaException as exc:
            raise map_confluent_error(exc, "describe cluster failed") from exc
        return [
            BrokerInfo(node_id=int(n.id), host=str(n.host), port=int(n.port), rack=n.rack or None)
            for n in cluster.nodes
        ]

    def create_acls(self, acls: Iterable[AclSpec]) -> None:
        bindings = [
            AclBinding(
                _RESOURCES[a.resource_type],
                a.name,
                _PATTERN[a.prefixed],
                a.principal,
                "*",
                _ACL_OPS[a.operation],
                AclPermissionType.ALLOW,
            )
            for a in acls
        ]
        bindings = list(dict.fromkeys(bindings))  # librdkafka refuses duplicates
        if not bindings:
            return
        failed = 0
        for future in self._a.create_acls(bindings, request_timeout=30).values():
            try:
                future.result()
            except ck.KafkaException:
                failed += 1
        if failed:
            raise TransportError(f"{failed} ACL(s) could not be created")
        self._wait_for_acls(set(bindings))

    def _wait_for_acls(self, bindings: set[Any], timeout_s: float = 30.0) -> None:
        """Until the broker's authorizer lists every new ACL, so the next client is allowed."""
        anything: Any = None  # the filter's wildcard for names, principals and hosts
        every = AclBindingFilter(
            ResourceType.ANY,
            anything,
            ResourcePatternType.ANY,
            anything,
            anything,
            AclOperation.ANY,
            AclPermissionType.ANY,
        )
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                listed = set(self._a.describe_acls(every, request_timeout=10).result())
            except ck.KafkaException as exc:
                raise map_confluent_error(exc, "created ACLs could not be listed") from exc
            if bindings <= listed:
                return
            if time.monotonic() > deadline:
                raise UnreachableError("created ACLs did not appear: timed out")
            time.sleep(0.1)

    def close(self) -> None:
        """Nothing to release: librdkafka's admin client closes when collected."""
