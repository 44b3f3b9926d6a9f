"""Read the anonymized topics as plain dicts, for notebooks and the `tail` command.

    from consumers.reader import read_anonymized
    rows = list(read_anonymized("device", max_records=10_000))
    df = pandas.DataFrame(rows)            # one column per output field

Only the analyst topics (`analyst = true` in ingest/kafka/topics.toml) can be
read; anything else raises ReaderError. Only committed records are seen.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from ingest.kafka import ConsumerOptions, TopicPartition, Transport, make_transport
from ingest.kafka.config import KafkaSettings, load_settings
from ingest.kafka.topics import TopicSet, load_topic_set
from schemas.codec import Codec
from schemas.errors import ConsentgateError, DecodeError
from schemas.registry import default_registry

ALIASES = {"device": "anon_device", "log": "anon_log"}


class ReaderError(ConsentgateError):
    """The topic is not an anonymized output, or cannot be read."""


def resolve_topic(name: str, topics: TopicSet) -> str:
    """Full name of an analyst topic given as full name, role or alias; refuse anything else."""
    role = ALIASES.get(name, name)
    if role in topics.analyst_roles:
        return topics.specs[role].name
    allowed = topics.analyst_topics()
    if name in allowed:
        return name
    raise ReaderError(
        f"{name} is not an anonymized output topic; analysts may read only: {', '.join(allowed)}"
    )


def read_anonymized(
    topic: str,
    *,
    settings: KafkaSettings | None = None,
    topics: TopicSet | None = None,
    transport: Transport | None = None,
    from_beginning: bool = True,
    max_records: int | None = None,
    idle_timeout_s: float | None = 5.0,
) -> Iterator[dict[str, Any]]:
    """Yield decoded records of one anonymized topic; stop after max_records or idle timeout.

    idle_timeout_s=None follows the topic forever.
    """
    topics = topics or load_topic_set()
    name = resolve_topic(topic, topics)
    transport = transport or make_transport(settings or load_settings())
    codec = Codec(default_registry())
    consumer = transport.consumer(ConsumerOptions(group_id=None, read_committed=True))
    try:
        partitions = [TopicPartition(name, p) for p in consumer.partitions_for(name)]
        consumer.assign(partitions)
        if from_beginning:
            for tp in partitions:
                consumer.seek(tp, 0)
        else:
            for tp, end in consumer.end_offsets(partitions).items():
                consumer.seek(tp, end)
        yielded = 0
        last = time.monotonic()
        while max_records is None or yielded < max_records:
            batch = consumer.poll(500, 0.5)
            if not batch:
                if idle_timeout_s is not None and time.monotonic() - last >= idle_timeout_s:
                    return
                continue
            last = time.monotonic()
            for msg in batch:
                if msg.value is None:
                    continue
                try:
                    _schema, record = codec.decode(msg.value)
                except DecodeError as exc:
                    raise ReaderError(
                        f"undecodable record at {msg.topic}[{msg.partition}]@{msg.offset}"
                    ) from exc
                yield record
                yielded += 1
                if max_records is not None and yielded >= max_records:
                    return
    finally:
        consumer.close()
