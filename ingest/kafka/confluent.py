"""The optional fast transport: confluent-kafka (librdkafka), with kafka-python's behaviour.

Differences that callers may notice are listed in `ConfluentTransport`'s docstring.
Its clients live beside it: `confluent_producer`, `confluent_consumer`, `confluent_admin`.
"""

from __future__ import annotations

from ingest.kafka.base import ConsumerOptions, ProducerOptions
from ingest.kafka.config import KafkaSettings
from ingest.kafka.confluent_admin import ConfluentAdmin
from ingest.kafka.confluent_consumer import ConfluentConsumer
from ingest.kafka.confluent_producer import ConfluentProducer


class ConfluentTransport:
    """Builds confluent-kafka clients for one cluster; constructors make no network calls.

    Differences from kafka-python a caller may notice: constructors never fail on an
    unreachable cluster (failures show at flush, poll or the first metadata call);
    records to a missing topic fail at flush (DeliveryError) rather than at send;
    poll() raises AuthorizationError and fatal errors instead of only logging them;
    group_metadata() of a group-less consumer names a private throwaway group.
    """

    name = "confluent"

    def __init__(self, settings: KafkaSettings) -> None:
        self.settings = settings
        self.bootstrap_servers = settings.bootstrap_servers or ""

    def producer(self, options: ProducerOptions | None = None) -> ConfluentProducer:
        return ConfluentProducer(self.settings, options or ProducerOptions())

    def consumer(self, options: ConsumerOptions | None = None) -> ConfluentConsumer:
        return ConfluentConsumer(self.settings, options or ConsumerOptions())

    def admin(self) -> ConfluentAdmin:
        return ConfluentAdmin(self.settings)


__all__ = ["ConfluentTransport"]
