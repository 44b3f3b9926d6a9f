"""The broker's side of the in-memory Kafka: logs, transactions, groups (`groups.py`), faults.

Every piece of state sits behind one condition variable, `MemoryCluster.cond`; the
clients (`clients.py`, `consumer.py`) hold it for each call and wait on it in `poll`,
and every change notifies it. The sections marked "with `cond` held" serve the clients;
the rest is the tests' view: fault hooks and introspection, each taking `cond` itself.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from ingest.errors import TransportError
from ingest.kafka.base import AclSpec, Headers, TopicPartition, TopicSpec
from ingest.kafka.errors import UnreachableError
from tests.memory_transport.faults import CommitClaim, CommitPause, DeliveryFault
from tests.memory_transport.groups import Group, GroupMetadata, OffsetCommit

if TYPE_CHECKING:
    from tests.memory_transport.clients import MemoryTransport

DEFAULT_RACK = "cn-north-1a"
"""The local broker's rack (README): inside the worker's default residency allow-list."""

TxnState = Literal["open", "committed", "aborted"]


@dataclass(eq=False, slots=True)
class Transaction:
    """One producer transaction as the broker sees it: what it wrote, which offsets it commits."""

    serial: int
    transactional_id: str
    epoch: int
    state: TxnState = "open"
    writes: list[tuple[TopicPartition, int]] = field(default_factory=list)
    offsets: dict[TopicPartition, int] = field(default_factory=dict)
    group: GroupMetadata | None = None
    doomed: str | None = None
    """Why it can only be aborted now (a failed send, a stale group, an injected fault)."""


@dataclass(eq=False, slots=True)
class LogEntry:
    """One offset of a partition: a record, or a transaction's commit or abort marker."""

    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers
    timestamp_ms: int
    transaction: Transaction | None = None
    control: bool = False
    """A marker: it takes an offset, as in Kafka, and is never delivered."""

    def visible(self, read_committed: bool) -> bool:
        """Whether a consumer delivers it (read_committed: only committed transactions)."""
        if self.control:
            return False
        txn = self.transaction
        return not read_committed or txn is None or txn.state == "committed"


@dataclass(slots=True)
class _Partition:
    entries: list[LogEntry] = field(default_factory=list)
    open_from: dict[int, int] = field(default_factory=dict)
    """First offset each open transaction wrote here: the stable end stops at the lowest."""

    def stable_end(self) -> int:
        return min(self.open_from.values(), default=len(self.entries))


@dataclass(slots=True)
class _Topic:
    spec: TopicSpec
    partitions: list[_Partition]


class MemoryCluster:
    """One in-memory Kafka cluster; `transport()` gives clients of it (see the package doc)."""

    def __init__(self, name: str = "memory", *, brokers: int = 1, rack: str | None = DEFAULT_RACK):
        self.bootstrap_servers = f"memory://{name}"
        self.broker_count = brokers
        self.rack = rack
        """Every broker's rack, read at each `Admin.brokers()`: change it to fail residency."""
        self.acls: list[AclSpec] = []
        """ACLs created so far (recorded, not enforced)."""
        self.cond = threading.Condition()
        self._topics: dict[str, _Topic] = {}
        self._groups: dict[str, Group] = {}
        self._epochs: dict[str, int] = {}
        self._open: dict[str, Transaction] = {}
        self._transactions: list[Transaction] = []
        self._serials = itertools.count(1)
        self._member_ids = itertools.count(1)
        self._commit_faults: list[CommitClaim] = []
        self._commit_pauses: list[CommitPause] = []
        self._delivery_faults: list[DeliveryFault] = []
        self._down = False

    def transport(self) -> MemoryTransport:
        """A transport whose clients talk to this cluster."""
        from tests.memory_transport.clients import MemoryTransport

        return MemoryTransport(self)

    # -- fault hooks ------------------------------------------------------------------------

    def drop(self) -> None:
        """The cluster stops answering: calls raise UnreachableError, polls return nothing."""
        with self.cond:
            self._down = True
            self.cond.notify_all()

    def reconnect(self) -> None:
        """The cluster answers again, with every record and offset it had."""
        with self.cond:
            self._down = False
            self.cond.notify_all()

    def fail_commits(
        self,
        count: int = 1,
        *,
        transactional_id: str | None = None,
        writing_to: Iterable[str] = (),
        with_offsets: bool | None = None,
    ) -> None:
        """Make the next `count` matching `commit_transaction` calls raise TransactionError.

        A transaction matches when it has this transactional id (any if None), wrote to
        one of the `writing_to` topics (any if empty), and was or was not sent consumer
        offsets (either if None). It stays open, to be aborted.
        """
        with self.cond:
            claim = CommitClaim(transactional_id, frozenset(writing_to), with_offsets, count)
            self._commit_faults.append(claim)

    def pause_commits(
        self,
        *,
        transactional_id: str | None = None,
        writing_to: Iterable[str] = (),
        with_offsets: bool | None = None,
    ) -> CommitPause:
        """Hold matching `commit_transaction` calls until the pause is resumed; matching is
        as in `fail_commits`."""
        with self.cond:
            claim = CommitClaim(transactional_id, frozenset(writing_to), with_offsets)
            pause = CommitPause(self.cond, claim)
            self._commit_pauses.append(pause)
            return pause

    def expire_rebalance(self, group_id: str) -> None:
        """The group's rebalance timeout runs out now: members that have not rejoined are
        evicted (their later offsets refused), the others move to the next generation."""
        with self.cond:
            group = self._groups.get(group_id)
            if group is not None:
                group.expire(self._partition_counts())
                self.cond.notify_all()

    def fail_deliveries(self, count: int = 1, *, topic: str | None = None) -> None:
        """The next `count` records sent (to `topic`, or to any) are not acknowledged."""
        with self.cond:
            self._delivery_faults.append(DeliveryFault(count, topic))

    # -- introspection ----------------------------------------------------------------------

    @property
    def down(self) -> bool:
        """True between `drop()` and `reconnect()`."""
        return self._down

    def entries(self, topic: str, partition: int) -> list[LogEntry]:
        """Every offset of a partition, markers and aborted records included."""
        with self.cond:
            return list(self.partition(TopicPartition(topic, partition)).entries)

    def transactions(self, transactional_id: str | None = None) -> list[Transaction]:
        """Transactions begun so far (of one transactional id, or all), oldest first."""
        with self.cond:
            return [
                t
                for t in self._transactions
                if transactional_id is None or t.transactional_id == transactional_id
            ]

    def committed_offsets(self, group_id: str) -> dict[TopicPartition, int]:
        """A group's committed offsets."""
        with self.cond:
            group = self._groups.get(group_id)
            return dict(group.committed) if group else {}

    def offset_commits(self, group_id: str) -> list[OffsetCommit]:
        """Every offset commit of a group, oldest first."""
        with self.cond:
            group = self._groups.get(group_id)
            return list(group.commits) if group else []

    def members(self, group_id: str) -> list[str]:
        """A group's member ids, those waiting for a rebalance to complete included."""
        with self.cond:
            group = self._groups.get(group_id)
            return sorted(group.members) if group else []

    def assignment(self, group_id: str) -> dict[str, frozenset[TopicPartition]]:
        """The last completed generation's partitions per member of a group."""
        with self.cond:
            group = self._groups.get(group_id)
            return dict(group.assignment) if group else {}

    # -- topics (with `cond` held) --------------------------------------------------------

    def check_up(self, what: str) -> None:
        """Raise UnreachableError while the cluster is dropped."""
        if self._down:
            raise UnreachableError(f"{what}: the cluster does not answer")

    def topic_names(self) -> list[str]:
        return sorted(self._topics)

    def spec(self, name: str) -> TopicSpec | None:
        topic = self._topics.get(name)
        return topic.spec if topic else None

    def create(self, spec: TopicSpec) -> bool:
        """Create a topic; False if it exists."""
        if spec.name in self._topics:
            return False
        if spec.partitions < 1:
            raise TransportError(f"cannot create topic {spec.name}: no partitions")
        self._topics[spec.name] = _Topic(spec, [_Partition() for _ in range(spec.partitions)])
        return True

    def delete(self, name: str) -> None:
        if self._topics.pop(name, None) is None:
            raise TransportError(f"delete topics failed: {name} does not exist")

    def partition_count(self, topic: str) -> int:
        """Partitions of a topic; TransportError if it does not exist."""
        found = self._topics.get(topic)
        if found is None:
            raise TransportError(f"topic {topic} does not exist")
        return len(found.partitions)

    def partition(self, tp: TopicPartition) -> _Partition:
        """A partition's log; TransportError if it does not exist."""
        count = self.partition_count(tp.topic)
        if not 0 <= tp.partition < count:
            raise TransportError(f"{tp.topic}[{tp.partition}] does not exist")
        return self._topics[tp.topic].partitions[tp.partition]

    def has(self, tp: TopicPartition) -> bool:
        topic = self._topics.get(tp.topic)
        return topic is not None and 0 <= tp.partition < len(topic.partitions)

    def end(self, tp: TopicPartition, read_committed: bool) -> int:
        """The end a consumer reads to: the last stable offset, or the high watermark."""
        log = self.partition(tp)
        return log.stable_end() if read_committed else len(log.entries)

    def append(
        self,
        tp: TopicPartition,
        key: bytes | None,
        value: bytes | None,
        headers: Headers,
        timestamp_ms: int,
        txn: Transaction | None,
    ) -> int:
        """Append one record; returns its offset."""
        log = self.partition(tp)
        offset = len(log.entries)
        log.entries.append(LogEntry(offset, key, value, headers, timestamp_ms, txn))
        if txn is not None:
            log.open_from.setdefault(txn.serial, offset)
            txn.writes.append((tp, offset))
        self.cond.notify_all()
        return offset

    def take_delivery_fault(self, topic: str) -> bool:
        """True when an injected delivery failure claims this record."""
        for fault in self._delivery_faults:
            if fault.left > 0 and fault.topic in (None, topic):
                fault.left -= 1
                return True
        return False

    # -- transactions (with `cond` held) --------------------------------------------------

    def init_producer(self, transactional_id: str) -> int:
        """A new epoch for the id: earlier producers are fenced, their open transaction aborted."""
        epoch = self._epochs.get(transactional_id, -1) + 1
        self._epochs[transactional_id] = epoch
        stale = self._open.get(transactional_id)
        if stale is not None:
            self.finish(stale, commit=False)
        return epoch

    def epoch(self, transactional_id: str) -> int:
        return self._epochs.get(transactional_id, -1)

    def begin(self, transactional_id: str, epoch: int) -> Transaction:
        txn = Transaction(next(self._serials), transactional_id, epoch)
        self._transactions.append(txn)
        self._open[transactional_id] = txn
        return txn

    def wait_if_paused(self, txn: Transaction) -> None:
        """Block while a pause holds this transaction's commit (the lock is let go meanwhile)."""
        for pause in self._commit_pauses:
            if pause.hold(txn):
                return

    def take_commit_fault(self, txn: Transaction) -> bool:
        """True when an injected commit failure claims this transaction."""
        for fault in self._commit_faults:
            if fault.matches(txn):
                fault.left -= 1
                return True
        return False

    def finish(self, txn: Transaction, *, commit: bool) -> None:
        """Commit or abort: a marker on every partition written, offsets only on commit."""
        txn.state = "committed" if commit else "aborted"
        for tp in dict.fromkeys(tp for tp, _ in txn.writes):
            if not self.has(tp):
                continue  # deleted meanwhile
            log = self._topics[tp.topic].partitions[tp.partition]
            log.open_from.pop(txn.serial, None)
            marker = LogEntry(len(log.entries), None, None, [], 0, txn, control=True)
            log.entries.append(marker)
        if commit and txn.offsets and txn.group is not None and txn.group.group_id is not None:
            self.group(txn.group.group_id).commit(txn.offsets, txn)
        if self._open.get(txn.transactional_id) is txn:
            del self._open[txn.transactional_id]
        self.cond.notify_all()

    # -- groups (with `cond` held) --------------------------------------------------------

    def group(self, group_id: str) -> Group:
        return self._groups.setdefault(group_id, Group())

    def committed(self, group_id: str, tp: TopicPartition) -> int | None:
        group = self._groups.get(group_id)
        return group.committed.get(tp) if group else None

    def stale(self, metadata: GroupMetadata) -> str | None:
        """Why offsets of this member are refused now, or None."""
        if metadata.group_id is None:
            return "the consumer has no group id"
        return self.group(metadata.group_id).stale(metadata)

    def join(
        self, group_id: str, topics: Iterable[str], member_id: str | None, timeout_s: float
    ) -> str:
        """(Re)join a member (a new id if the group evicted it); returns its id."""
        group = self.group(group_id)
        if member_id is None or member_id not in group.members:
            member_id = f"member-{next(self._member_ids):06d}"
        group.join(member_id, topics, timeout_s, self._partition_counts())
        self.cond.notify_all()
        return member_id

    def leave(self, group_id: str, member_id: str) -> None:
        self.group(group_id).leave(member_id, self._partition_counts())
        self.cond.notify_all()

    def must_rejoin(self, group_id: str, member_id: str) -> bool:
        group = self.group(group_id)
        before = group.generation
        rejoin = group.must_rejoin(member_id, self._partition_counts())
        if group.generation != before:
            self.cond.notify_all()  # the timeout completed the rebalance
        return rejoin

    def _partition_counts(self) -> dict[str, int]:
        return {name: len(topic.partitions) for name, topic in self._topics.items()}
