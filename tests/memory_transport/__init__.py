"""An in-memory Kafka behind the project's Transport protocol, so unit tests run the worker
without a broker (test support: never imported by the product).

    cluster = MemoryCluster()
    transport = cluster.transport()      # what Worker, Publisher, ConsentFeed... take
    cluster.fail_commits(1)              # fault hooks: fail_commits, pause_commits,
                                         # fail_deliveries, drop, expire_rebalance, rack
    cluster.transactions()               # introspection: transactions, entries, offsets

What matches Kafka, because the worker relies on it:
- partitions hold offsets from 0; a keyed record goes where Kafka's murmur2 partitioner
  sends it; records keep their headers and timestamp (the send time if none is given);
- transactions: `init_transactions` gives a transactional id a new epoch, fencing the
  older producer (its next call raises FencedError) and aborting what it left open;
  records of an open or aborted transaction are invisible to read_committed consumers,
  whose end offsets are the last stable offsets; commit and abort markers take an
  offset each; offsets sent to a transaction move the group's only at its commit, and
  only if the member is still in the group's current generation (KIP-447);
- consumer groups (`groups.py`): `subscribe` joins at the next `poll`; a member joining
  or leaving starts an eager rebalance, which every member takes part in inside its
  next `poll` (revoke all, rejoin, then assign, the callbacks on the polling thread);
  the generation moves on when all have rejoined, or the rebalance timeout (the
  members' `max_poll_interval_ms`, or `expire_rebalance`) evicts the late; partitions
  go out in ranges; positions start at the committed offsets.

What differs (the tests do not rely on it): a send is appended at once and its delivery
is resolved (no batching, no linger); unkeyed records go round-robin; nothing is
compacted or deleted; members are evicted only at a rebalance's timeout (there is no
session timeout); a closed producer's open transaction is aborted at once (a broker
waits for the transaction timeout); a commit is refused if the group moved on after
`send_offsets_to_transaction` (Kafka checks there only, and keeps the offsets pending);
ACLs are recorded, not enforced; a dropped cluster makes `poll` return nothing after
its timeout (as both clients do) and every other remote call raise UnreachableError.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.memory_transport.clients import (
    MemoryAdmin,
    MemoryDelivery,
    MemoryProducer,
    MemoryTransport,
)
from tests.memory_transport.cluster import (
    DEFAULT_RACK,
    LogEntry,
    MemoryCluster,
    Transaction,
)
from tests.memory_transport.consumer import MemoryConsumer
from tests.memory_transport.faults import CommitPause
from tests.memory_transport.groups import GroupMetadata, OffsetCommit

__all__ = [
    "DEFAULT_RACK",
    "CommitPause",
    "GroupMetadata",
    "LogEntry",
    "MemoryAdmin",
    "MemoryCluster",
    "MemoryConsumer",
    "MemoryDelivery",
    "MemoryProducer",
    "MemoryTransport",
    "OffsetCommit",
    "Transaction",
]

if TYPE_CHECKING:
    # Static conformance, as for the two real clients in ingest/kafka/__init__.py:
    # mypy (which checks this package) fails here when a protocol method is missing or
    # its signature drifted; tests/unit/ingest/kafka/test_transport_protocol.py checks the
    # parameter names at run time.
    from ingest.kafka.base import Admin, Consumer, Delivery, Producer, Transport

    _transport: type[Transport] = MemoryTransport
    _producer: type[Producer] = MemoryProducer
    _delivery: type[Delivery] = MemoryDelivery
    _consumer: type[Consumer] = MemoryConsumer
    _admin: type[Admin] = MemoryAdmin
