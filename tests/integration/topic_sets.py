"""Topic sets for the integration tests: every pipeline topic, created and deleted per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from ingest.kafka import Transport
from ingest.kafka.topics import ROLES, Role, TopicSet, load_topic_set

PARTITIONS = 3
"""Partitions of each topic of a test's set: enough for two workers to share."""


def create_topics(transport: Transport, topics: TopicSet, roles: Iterable[Role] = ROLES) -> None:
    """The topics of a set (every one unless `roles` says), on the cluster `transport` reaches."""
    admin = transport.admin()
    try:
        admin.create_topics(topics.specs[r] for r in roles)
    finally:
        admin.close()


def create_topic_set(
    transport: Transport, partitions: int = PARTITIONS, prefix: str | None = None
) -> TopicSet:
    """A topic set created on the broker, under a fresh uuid prefix unless one is given."""
    topics = load_topic_set(prefix=prefix or f"t{uuid.uuid4().hex[:10]}.", partitions=partitions)
    create_topics(transport, topics)
    return topics


def delete_topic_set(transport: Transport, topics: TopicSet) -> None:
    """Remove every topic of a set."""
    admin = transport.admin()
    try:
        admin.delete_topics(topics.specs[r].name for r in ROLES)
    finally:
        admin.close()


@contextmanager
def fresh_topic_set(transport: Transport, partitions: int = PARTITIONS) -> Iterator[TopicSet]:
    """A uuid-prefixed topic set for one block, deleted afterwards."""
    topics = create_topic_set(transport, partitions)
    try:
        yield topics
    finally:
        delete_topic_set(transport, topics)
