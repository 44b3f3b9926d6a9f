"""What the transport tests share: fresh topics made through a transport, a consumer
assigned a whole topic, and polling until records arrived.
"""

from __future__ import annotations

import time
import uuid

from ingest.kafka import Consumer, ConsumerOptions, Message, TopicPartition, TopicSpec, Transport


def new_topics(transport: Transport, count: int = 1, partitions: int = 3) -> list[str]:
    """Fresh uuid-named topics, created through `transport`'s admin."""
    names = [f"tr-{uuid.uuid4().hex[:12]}" for _ in range(count)]
    admin = transport.admin()
    try:
        created = admin.create_topics(TopicSpec(n, partitions, 1) for n in names)
    finally:
        admin.close()
    assert created == dict.fromkeys(names, True)
    return names


def read(consumer: Consumer, count: int, timeout_s: float = 60.0) -> list[Message]:
    """Poll until `count` records arrived (or time is up), then briefly for any extra."""
    got: list[Message] = []
    deadline = time.monotonic() + timeout_s
    while len(got) < count and time.monotonic() < deadline:
        got.extend(consumer.poll(500, 0.5))
    got.extend(consumer.poll(500, 1.0))
    return got


def reader(
    transport: Transport, topic: str, partitions: int = 3, **opts: bool | str | None
) -> Consumer:
    """A consumer assigned every partition of `topic` (group-less unless `group_id` is given)."""
    consumer = transport.consumer(ConsumerOptions(**opts))  # type: ignore[arg-type]
    consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
    return consumer
