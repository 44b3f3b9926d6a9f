"""The Kafka boundary: everything that talks to a cluster; the transport picked by configuration.

`base` is the one narrow interface (`Transport` and the protocols it hands out),
`kafka_python*` and `confluent*` its two implementations, `errors` the errors both
raise. Beside them: `config` (connection settings), `topics` and `topics.toml` (the
topic set), `acl` (the ACLs of deploy/acl/acls.toml), `topic_reader` and
`consent_store` (reading a topic to its end, the consent record). This module exports
the interface's names and `make_transport`.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

from ingest.errors import ConfigError
from ingest.kafka.base import (
    Admin,
    Consumer,
    ConsumerOptions,
    Delivery,
    Message,
    Producer,
    ProducerOptions,
    TopicPartition,
    TopicSpec,
    Transport,
)
from ingest.kafka.config import KafkaSettings

__all__ = [
    "Admin",
    "Consumer",
    "ConsumerOptions",
    "Message",
    "Producer",
    "ProducerOptions",
    "TopicPartition",
    "TopicSpec",
    "Transport",
    "make_transport",
]


def make_transport(settings: KafkaSettings) -> Transport:
    """The transport named by `settings.client`; a one-line error if it is not installed."""
    if settings.client == "kafka-python":
        from ingest.kafka.kafka_python import KafkaPythonTransport

        return KafkaPythonTransport(settings)
    if settings.client == "confluent":
        if importlib.util.find_spec("confluent_kafka") is None:
            raise ConfigError(
                "client 'confluent' needs confluent-kafka: pip install 'consentgate[librdkafka]'"
            )
        from ingest.kafka.confluent import ConfluentTransport

        return ConfluentTransport(settings)
    raise ConfigError(f"unknown Kafka client {settings.client!r}")


if TYPE_CHECKING:
    # Static conformance: mypy fails here when either implementation lacks a protocol
    # method or one's signature drifted (tests/unit/ingest/kafka/test_transport_protocol.py
    # checks the same at run time, tests/integration/test_transport_conformance_*.py the
    # behaviour).
    from ingest.kafka import confluent as _ck
    from ingest.kafka import confluent_admin as _ck_admin
    from ingest.kafka import confluent_consumer as _ck_consumer
    from ingest.kafka import confluent_producer as _ck_producer
    from ingest.kafka import kafka_python as _kp
    from ingest.kafka import kafka_python_admin as _kp_admin

    _kp_transport: type[Transport] = _kp.KafkaPythonTransport
    _kp_producer: type[Producer] = _kp.KafkaPythonProducer
    _kp_delivery: type[Delivery] = _kp._Delivery
    _kp_consumer: type[Consumer] = _kp.KafkaPythonConsumer
    _kp_admin_: type[Admin] = _kp_admin.KafkaPythonAdmin

    _ck_transport: type[Transport] = _ck.ConfluentTransport
    _ck_producer_: type[Producer] = _ck_producer.ConfluentProducer
    _ck_delivery: type[Delivery] = _ck_producer._Delivery
    _ck_consumer_: type[Consumer] = _ck_consumer.ConfluentConsumer
    _ck_admin_: type[Admin] = _ck_admin.ConfluentAdmin
