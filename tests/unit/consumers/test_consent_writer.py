"""The consent writer's loop on the in-memory transport: it rides out an outage mid-commit.

The integration tests (tests/integration/test_consent_changes.py) fold changes on a
real broker; here the cluster drops while a fold commits, so that the commit, the abort
and the rewind after it all fail, which a real broker cannot be made to do on cue.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest

from consumers.consent_changes import GrantPurpose
from consumers.consent_writer import ConsentWriter
from ingest.kafka.consent_store import read_partition
from ingest.kafka.topics import ROLES, TopicSet, load_topic_set
from ingest.sdk.consent_client import ConsentClient
from schemas.codec import Codec
from schemas.registry import default_registry
from tests.integration.worker_harness import wait_for
from tests.memory_transport import MemoryCluster, MemoryTransport

TXN_ID = "consent-writer-test"
SETTLE_S = 60


@pytest.fixture
def cluster() -> MemoryCluster:
    return MemoryCluster()


@pytest.fixture
def topics(cluster: MemoryCluster) -> TopicSet:
    topics = load_topic_set(prefix=f"w{uuid.uuid4().hex[:8]}.", partitions=2)
    cluster.transport().admin().create_topics(topics.specs[r] for r in ROLES)
    return topics


@pytest.fixture
def writer(cluster: MemoryCluster, topics: TopicSet) -> Iterator[ConsentWriter]:
    codec = Codec(default_registry())
    writer = ConsentWriter(
        cluster.transport(), topics, codec, group_id="writers", transactional_id=TXN_ID
    )
    stop = threading.Event()
    thread = threading.Thread(target=writer.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield writer
    finally:
        cluster.reconnect()
        stop.set()
        thread.join()


def _folded(transport: MemoryTransport, topics: TopicSet, user: str) -> bool:
    """True once the consent topic holds a record of `user`."""
    key = user.encode()
    return any(
        key in read_partition(transport, topics.name("consent"), number)
        for number in range(topics.specs["consent"].partitions)
    )


def test_an_outage_during_the_rewind_delays_the_fold_but_never_stops_the_writer(
    cluster: MemoryCluster, topics: TopicSet, writer: ConsentWriter
) -> None:
    transport = cluster.transport()
    client = ConsentClient(transport, topics)
    try:
        client.record("u-before", GrantPurpose(), 1_000)
        wait_for(lambda: _folded(transport, topics, "u-before"), SETTLE_S, "the first fold")
        # The next fold's commit is held, the cluster drops, and the commit is let go:
        # it fails, and so do the abort and the rewind's reads until the cluster is back.
        pause = cluster.pause_commits(transactional_id=TXN_ID)
        client.record("u-during", GrantPurpose(), 2_000)
        wait_for(lambda: pause.waiting == 1, SETTLE_S, "the fold to commit")
        cluster.drop()
        pause.resume()
        wait_for(lambda: pause.waiting == 0, SETTLE_S, "the commit to fail")
        cluster.reconnect()
        wait_for(lambda: _folded(transport, topics, "u-during"), SETTLE_S, "the change folded")
        assert writer.failed is None
        committed = [t for t in cluster.transactions(TXN_ID) if t.state == "committed"]
        assert len(committed) == 2  # the first fold and the retried one, nothing twice
    finally:
        client.close()
