"""Read a topic's committed records from its start to the end offsets it has now."""

from __future__ import annotations

import time
from collections.abc import Iterator

from ingest.errors import TransportError
from ingest.kafka import ConsumerOptions, Message, TopicPartition, Transport


def read_messages(
    transport: Transport, topic: str, timeout_s: float = 30.0, only: int | None = None
) -> Iterator[Message]:
    """Every committed record of a topic (or of partition `only`), up to today's end offsets.

    Raises TransportError when the end is not reached within `timeout_s`.
    """
    consumer = transport.consumer(
        ConsumerOptions(group_id=None, read_committed=True, max_poll_records=10_000)
    )
    try:
        numbers = consumer.partitions_for(topic) if only is None else [only]
        partitions = [TopicPartition(topic, p) for p in numbers]
        consumer.assign(partitions)
        ends = consumer.end_offsets(partitions)
        for tp in partitions:
            consumer.seek(tp, 0)
        deadline = time.monotonic() + timeout_s
        remaining = {tp for tp, end in ends.items() if end > 0}
        while remaining:
            if time.monotonic() > deadline:
                raise TransportError(f"timed out reading {topic} to its end")
            yield from consumer.poll(5000, 0.5)
            remaining = {tp for tp in remaining if consumer.position(tp) < ends[tp]}
    finally:
        consumer.close()
