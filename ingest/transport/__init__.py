"""The Kafka boundary: pick a transport implementation by configuration."""

from __future__ import annotations

import importlib
import importlib.util

from ingest.config import KafkaSettings
from ingest.errors import ConfigError
from ingest.transport.base import (
    Admin,
    Consumer,
    ConsumerOptions,
    Message,
    Producer,
    ProducerOptions,
    TopicPartition,
    TopicSpec,
    Transport,
)

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
        from ingest.transport.kafka_python import KafkaPythonTransport

        return KafkaPythonTransport(settings)
    if settings.client == "confluent":
        if importlib.util.find_spec("confluent_kafka") is None:
            raise ConfigError(
                "client 'confluent' needs confluent-kafka: pip install 'consentgate[librdkafka]'"
            )
        try:
            module = importlib.import_module("ingest.transport.confluent")
        except ModuleNotFoundError:
            raise ConfigError("client 'confluent' is not available in this version") from None
        transport: Transport = module.ConfluentTransport(settings)
        return transport
    raise ConfigError(f"unknown Kafka client {settings.client!r}")
