"""The consent writer: folds published consent changes into each user's full record, exactly once.

Services publish changes to the consent-changes topic (key = user id); they never
write the compacted consent topic themselves, so two services changing one user's
consent at once cannot overwrite each other's change. Each consent partition has one
writer (a consumer group over the changes topic, one worker's thread): it holds the
full records of its partitions, folds each change by the time the user made it
(`consumers.consent_changes`), and writes every record it changed to the compacted
consent topic in the same Kafka transaction as the offsets of the changes it read.
A writer that lost its partitions is fenced by the group and by its transactional
id; a crashed one is replaced by the partitions' next owner, which reloads the
records from the compacted topic and resumes from the committed offsets.

A change whose record already holds its id (a retry) rewrites the record unchanged,
so a caller waiting for its change to show (`ingest.sdk.consent_client`) always sees it.
The changes topic and the consent topic must have as many partitions (a user's
change and record then share a partition number).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from consumers import metrics as m
from consumers.consent_changes import ConsentChangeError, record_change
from consumers.narrowing import back_off_s
from ingest.errors import TransportError
from ingest.kafka import (
    Consumer,
    ConsumerOptions,
    Message,
    Producer,
    ProducerOptions,
    TopicPartition,
    Transport,
)
from ingest.kafka.consent_store import read_partition
from ingest.kafka.errors import FencedError
from ingest.kafka.topics import TopicSet
from schemas.codec import Codec
from schemas.errors import ConsentgateError, DecodeError

log = logging.getLogger(__name__)

EVENT_TYPE = "event-type"
FINGERPRINT = "schema-fingerprint"


class ConsentWriterError(ConsentgateError):
    """The consent writer cannot run (its topics do not match)."""


class ConsentWriter:
    """Owns the fold of consent changes for the partitions its group assigns it."""

    def __init__(
        self,
        transport: Transport,
        topics: TopicSet,
        codec: Codec,
        *,
        group_id: str,
        transactional_id: str,
        max_poll_records: int = 500,
    ) -> None:
        self._transport = transport
        self._codec = codec
        self._changes = topics.name("consent_changes")
        self._consent = topics.name("consent")
        self._group_id = group_id
        self._transactional_id = transactional_id
        self._max_poll = max_poll_records
        self._records: dict[str, dict[str, Any] | None] = {}
        self._partition_of: dict[str, int] = {}
        self._owned: set[int] = set()
        self._events: list[tuple[str, list[TopicPartition]]] = []
        self._lock = threading.Lock()
        self._headers = [
            (EVENT_TYPE, b"consent_record"),
            (FINGERPRINT, codec.fingerprint("consent_record").hex().encode()),
        ]
        self._producer: Producer | None = None
        self._in_transaction = False
        self.failed: str | None = None
        """Why the writer stopped for good (None while it runs or after a clean stop)."""

    # -- lifecycle -----------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Fold changes until `stop` is set; a fatal error is logged and kept in `failed`."""
        try:
            self._run(stop)
        except FencedError:
            self.failed = "fenced: another consent writer took over this transactional id"
            log.error("consent writer fenced")
        except ConsentgateError as exc:
            self.failed = str(exc)
            log.error("consent writer stopped", extra={"error": str(exc)})

    def _run(self, stop: threading.Event) -> None:
        consumer = self._transport.consumer(
            ConsumerOptions(
                group_id=self._group_id,
                read_committed=True,
                max_poll_records=self._max_poll,
                fetch_max_wait_ms=100,
            )
        )
        try:
            self._check_partitions(consumer)
            self._producer = self._new_producer()
            consumer.subscribe([self._changes], self._on_assign, self._on_revoke)
            failures = 0
            rewind_due = False
            while not stop.is_set():
                try:
                    if rewind_due:
                        self._rewind(consumer)
                        rewind_due = False
                    messages = consumer.poll(self._max_poll, 0.5)
                    self._apply_rebalance()
                    owned = {tp.partition for tp in consumer.assignment()}
                    messages = [msg for msg in messages if msg.partition in owned]
                    if messages:
                        self._fold(consumer, messages)
                        failures = 0
                except FencedError:
                    raise
                except TransportError as exc:
                    # An outage is no reason to stop folding for good (withdrawals would
                    # wait for a restart): abort, back off, and rewind until it works.
                    failures += 1
                    log.error(
                        "consent writer transaction failed; rewinding",
                        extra={"error": str(exc), "failures": failures},
                    )
                    self._abort()
                    rewind_due = True
                    stop.wait(back_off_s(failures))
        finally:
            consumer.close()
            if self._producer is not None:
                try:
                    self._producer.close(10)
                except TransportError:
                    log.warning("consent writer producer close failed")

    def _new_producer(self) -> Producer:
        """A transactional producer; starting it fences and aborts what an earlier one of
        this transactional id left open."""
        producer = self._transport.producer(
            ProducerOptions(transactional_id=self._transactional_id, linger_ms=5)
        )
        producer.init_transactions()
        return producer

    def _check_partitions(self, consumer: Consumer) -> None:
        changes = len(consumer.partitions_for(self._changes))
        consent = len(consumer.partitions_for(self._consent))
        if changes != consent:
            raise ConsentWriterError(
                f"{self._changes} has {changes} partitions and {self._consent} {consent}: "
                "they must have as many (a user's change and record share a partition)"
            )

    # -- rebalances ----------------------------------------------------------------------------

    def _on_assign(self, partitions: list[TopicPartition]) -> None:
        with self._lock:
            self._events.append(("assign", list(partitions)))

    def _on_revoke(self, partitions: list[TopicPartition]) -> None:
        with self._lock:
            self._events.append(("revoke", list(partitions)))

    def _apply_rebalance(self) -> None:
        with self._lock:
            events, self._events = self._events, []
        for kind, partitions in events:
            numbers = {tp.partition for tp in partitions}
            if kind == "revoke":
                self._forget(numbers)
            else:
                self._load(numbers - self._owned)

    def _forget(self, numbers: set[int]) -> None:
        self._owned -= numbers
        gone = [user for user, p in self._partition_of.items() if p in numbers]
        for user in gone:
            self._records.pop(user, None)
            del self._partition_of[user]

    def _load(self, numbers: set[int]) -> None:
        """Read the full records of newly owned partitions from the compacted consent topic."""
        for number in sorted(numbers):
            loaded = 0
            for key, value in read_partition(self._transport, self._consent, number).items():
                user = key.decode("utf-8", errors="replace")
                record = None
                if value is not None:
                    try:
                        record = self._codec.decode_as(value, "consent_record")
                    except DecodeError:
                        log.error("unreadable consent record skipped", extra={"partition": number})
                        continue
                self._records[user] = record
                self._partition_of[user] = number
                loaded += 1
            self._owned.add(number)
            log.info(
                "consent writer partition loaded", extra={"partition": number, "users": loaded}
            )

    def _abort(self) -> None:
        """Abort the open transaction, if any; a producer that cannot is renewed later."""
        if not self._in_transaction or self._producer is None:
            return
        self._in_transaction = False
        try:
            self._producer.abort_transaction()
        except FencedError:
            raise
        except TransportError:
            log.error("consent writer abort failed; the producer will be renewed")
            old, self._producer = self._producer, None
            try:
                old.close(0)
            except TransportError:
                log.warning("closing the old consent writer producer failed")

    def _rewind(self, consumer: Consumer) -> None:
        """Back to the last commit: records reloaded, positions at the committed offsets."""
        if self._producer is None:
            self._producer = self._new_producer()
        owned = {tp.partition for tp in consumer.assignment()}
        self._forget(set(self._owned))
        self._load(owned)
        for number in sorted(owned):
            tp = TopicPartition(self._changes, number)
            committed = consumer.committed(tp)
            consumer.seek(tp, committed if committed is not None else 0)

    # -- the fold ------------------------------------------------------------------------------

    def _fold(self, consumer: Consumer, messages: list[Message]) -> None:
        """One transaction: fold every change, write each touched record, commit the offsets."""
        producer = self._producer
        assert producer is not None
        producer.begin_transaction()
        self._in_transaction = True
        touched: dict[str, int] = {}
        outcomes: dict[str, int] = {}
        offsets: dict[TopicPartition, int] = {}
        for msg in messages:
            offsets[TopicPartition(msg.topic, msg.partition)] = msg.offset + 1
            outcome, user = self._fold_one(msg)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            if user is not None:
                touched[user] = msg.partition
        for user, partition in touched.items():
            record = self._records.get(user)
            value = None if record is None else self._codec.encode("consent_record", record)
            producer.send(
                self._consent,
                value,
                key=user.encode(),
                headers=self._headers,
                partition=partition,
            )
        producer.send_offsets_to_transaction(offsets, consumer.group_metadata())
        producer.commit_transaction()
        self._in_transaction = False
        with m.UPDATE_LOCK:
            for outcome, count in outcomes.items():
                m.CONSENT_CHANGES.labels(outcome).inc(count)

    def _fold_one(self, msg: Message) -> tuple[str, str | None]:
        """(outcome, user whose record to write) for one change message."""
        where = f"{msg.topic}[{msg.partition}]@{msg.offset}"
        if msg.value is None or msg.key is None:
            log.warning("consent change without key or value ignored", extra={"at": where})
            return "invalid", None
        try:
            change = self._codec.decode_as(msg.value, "consent_change")
        except DecodeError as exc:
            log.error(
                "undecodable consent change ignored",
                extra={"at": where, "error": type(exc).__name__},
            )
            return "invalid", None
        user = str(change["user_id"])
        if msg.key != user.encode():
            log.error("consent change key does not match its user", extra={"at": where})
            return "invalid", None
        self._partition_of[user] = msg.partition
        if user in self._records and self._records[user] is None:
            return "after_deletion", user  # the record stays deleted; written again as such
        try:
            record, applied = record_change(self._records.get(user), change, user_id=user)
        except ConsentChangeError as exc:
            log.error("consent change not applicable", extra={"at": where, "error": str(exc)})
            return "invalid", None
        self._records[user] = record
        return ("applied" if applied else "duplicate"), user
