"""The publishing SDK: validate, encode, key by user id, send with type and fingerprint headers.

with Publisher.connect() as pub:
    pub.publish(DeviceEvent(...))            # or a dict with event_type
    pub.publish_consent(ConsentRecord(...))
# leaving the block flushes; undelivered records raise DeliveryError
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from pydantic import BaseModel, ValidationError

from ingest.errors import DeliveryError, PublishError, TransportError
from ingest.kafka import Producer, ProducerOptions, Transport, make_transport
from ingest.kafka.base import Delivery
from ingest.kafka.config import KafkaSettings, load_settings
from ingest.kafka.topics import TopicSet, load_topic_set
from ingest.sdk.metrics import FLUSH_SECONDS, PUBLISH_FAILED, PUBLISH_REJECTED, PUBLISHED
from schemas.codec import Codec
from schemas.errors import EncodeError
from schemas.models import MODELS, validate_event
from schemas.registry import default_registry

EVENT_TYPE_HEADER = "event-type"
FINGERPRINT_HEADER = "schema-fingerprint"
PUBLISHABLE = ("device_event", "log_event", "consent_record")
_ROLE = {"device_event": "raw_device", "log_event": "raw_log", "consent_record": "consent"}

# Throughput-oriented defaults, chosen by measurement. lz4 over none, 50k simulated events,
# kafka-python, local broker, busy 2-core box: 150 vs 440 bytes per record in the log (2.9x
# less on the wire and disk), 180 vs 200 us CPU per record (fewer bytes to frame and send
# outweigh compressing them), 2.6-4.2k vs 2.1-2.5k records/s.
PUBLISHER_OPTIONS = ProducerOptions(linger_ms=20, batch_size=512 * 1024, compression="lz4")


class Publisher:
    """Publishes device events, log events and consent records to the raw topics."""

    def __init__(
        self,
        transport: Transport,
        topics: TopicSet,
        options: ProducerOptions = PUBLISHER_OPTIONS,
        codec: Codec | None = None,
    ) -> None:
        self._transport = transport
        self._topics = topics
        self._options = options
        self._codec = codec or Codec(default_registry())
        self._producer: Producer | None = None
        self._model_types: dict[type[BaseModel], str] = {
            cls: name for name, cls in MODELS.items() if name in PUBLISHABLE
        }
        self._headers = {
            name: [
                (EVENT_TYPE_HEADER, name.encode()),
                (FINGERPRINT_HEADER, self._codec.fingerprint(name).hex().encode()),
            ]
            for name in PUBLISHABLE
        }
        self._topic_of = {name: topics.name(_ROLE[name]) for name in PUBLISHABLE}  # type: ignore[arg-type]

    @classmethod
    def connect(
        cls,
        settings: KafkaSettings | None = None,
        topics: TopicSet | None = None,
        options: ProducerOptions = PUBLISHER_OPTIONS,
    ) -> Publisher:
        """A publisher from environment settings (or the given ones)."""
        return cls(make_transport(settings or load_settings()), topics or load_topic_set(), options)

    @property
    def producer(self) -> Producer:
        """The underlying producer, created on first use."""
        if self._producer is None:
            self._producer = self._transport.producer(self._options)
        return self._producer

    def publish(
        self, event: BaseModel | Mapping[str, Any], event_type: str | None = None
    ) -> Delivery:
        """Validate and send one event; returns its delivery handle. Invalid input raises."""
        name, record = self._prepare(event, event_type)
        return self.send_valid(name, record)

    def publish_consent(self, record: BaseModel | Mapping[str, Any]) -> Delivery:
        """Validate and send one full consent record (key = its user id)."""
        return self.publish(record, "consent_record")

    def send_valid(self, event_type: str, record: Mapping[str, Any]) -> Delivery:
        """Encode and send an already validated Avro-ready dict (the fast path)."""
        try:
            value = self._codec.encode(event_type, record)
        except EncodeError:
            PUBLISH_REJECTED.labels(event_type).inc()
            raise
        delivery = self.producer.send(
            self._topic_of[event_type],
            value,
            key=str(record["user_id"]).encode(),
            headers=self._headers[event_type],
        )
        PUBLISHED.labels(event_type).inc()
        return delivery

    def tombstone(self, user_id: str) -> Delivery:
        """Delete a user's consent state (read by the pipeline as account cancelled)."""
        return self.producer.send(self._topic_of["consent_record"], None, key=user_id.encode())

    def _prepare(
        self, event: BaseModel | Mapping[str, Any], event_type: str | None
    ) -> tuple[str, dict[str, Any]]:
        if isinstance(event, BaseModel):
            name = self._model_types.get(type(event))
            if name is None or (event_type and event_type != name):
                raise PublishError(f"cannot publish a {type(event).__name__}")
            return name, event.model_dump()
        data = dict(event)
        name = event_type or data.pop("event_type", None)
        data.pop("event_type", None)
        if name not in PUBLISHABLE:
            PUBLISH_REJECTED.labels("unknown").inc()
            raise PublishError(f"event_type: must be one of {', '.join(PUBLISHABLE)}")
        try:
            model = validate_event(name, data)
        except ValidationError:
            PUBLISH_REJECTED.labels(name).inc()
            raise
        return name, model.model_dump()

    def flush(self, timeout_s: float = 30.0) -> None:
        """Wait for every record sent so far; raise DeliveryError if any was not taken."""
        if self._producer is None:
            return
        with FLUSH_SECONDS.time():
            try:
                self._producer.flush(timeout_s)
            except DeliveryError as exc:
                PUBLISH_FAILED.inc(exc.failed)
                raise

    def close(self, timeout_s: float = 30.0) -> None:
        """Flush, then release the producer; undelivered records raise DeliveryError."""
        producer = self._producer
        if producer is None:
            return
        try:
            self.flush(timeout_s)
        except DeliveryError:
            # Release the producer without waiting again, and without letting a close
            # failure hide the delivery failure the caller needs to see.
            self._producer = None
            with contextlib.suppress(TransportError):
                producer.close(0)
            raise
        self._producer = None
        producer.close(timeout_s)

    def __enter__(self) -> Publisher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
