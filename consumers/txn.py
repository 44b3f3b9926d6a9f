"""What one open transaction has produced and consumed, applied to metrics only on commit."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from consumers import metrics as m
from consumers.consent_feed import Cancellation
from consumers.kanon import PendingEntry
from consumers.pipeline import BatchOutcome, StageCounts
from ingest.kafka.base import TopicPartition


@dataclass(slots=True)
class Txn(StageCounts):
    """Accumulates a transaction's effects; nothing is counted until it commits.

    The stage counters (consumed, dropped, tags, ...) are `StageCounts`'s, summed
    over the transaction's batches; the worker adds its own drops to `dropped`.
    """

    group_metadata: Any = None
    started: float = field(default_factory=time.monotonic)
    records: int = 0
    offsets: dict[TopicPartition, int] = field(default_factory=dict)
    produced: Counter[str] = field(default_factory=Counter)
    forwarded: Counter[str] = field(default_factory=Counter)
    dead: Counter[str] = field(default_factory=Counter)
    generalized: Counter[str] = field(default_factory=Counter)
    capped: Counter[str] = field(default_factory=Counter)
    regrouped: Counter[str] = field(default_factory=Counter)
    suppressed: int = 0
    hold_ms: list[int] = field(default_factory=list)
    e2e_base: list[tuple[int, int]] = field(default_factory=list)  # (raw ts, hold ms)
    added: dict[str, PendingEntry] = field(default_factory=dict)  # new, not yet checkpointed
    removed: set[str] = field(default_factory=set)  # left the window, were checkpointed
    erased: list[Cancellation] = field(default_factory=list)

    def add_outcome(self, outcome: BatchOutcome) -> None:
        """Fold one processed batch's counts in; each reject counts as a dead letter."""
        self.add_counts(outcome)
        for rejected in outcome.rejected:
            self.dead[rejected.reason] += 1

    def apply_metrics(self, committed_ms: int, batch_seconds: float) -> None:
        """Count everything this transaction did; called after a successful commit."""
        for event_type, n in self.consumed.items():
            m.CONSUMED.labels(event_type).inc(n)
        for event_type, n in self.forwarded.items():
            m.FORWARDED.labels(event_type).inc(n)
        for reason, n in self.dropped.items():
            m.DROPPED.labels(reason).inc(n)
        for reason, n in self.dead.items():
            m.DEAD_LETTERED.labels(reason).inc(n)
        for role, n in self.produced.items():
            m.PRODUCED.labels(role).inc(n)
        for category, n in self.removed_fields.items():
            m.FIELDS_REMOVED.labels(category).inc(n)
        for level, n in self.tags.items():
            m.TAGS.labels(level).inc(n)
        for kind, n in self.pii_found.items():
            m.PII_FOUND.labels(kind).inc(n)
        for outcome, n in self.minors.items():
            m.MINORS.labels(outcome).inc(n)
        for level, n in self.generalized.items():
            m.GENERALIZED.labels(level).inc(n)
        for name, n in self.text_withheld.items():
            m.TEXT_WITHHELD.labels(name).inc(n)
        for direction, n in self.regrouped.items():
            m.REGROUPED.labels(direction).inc(n)
        for action, n in self.capped.items():
            m.KANON_CAPPED.labels(action).inc(n)
        if self.suppressed:
            m.SUPPRESSED.inc(self.suppressed)
        if self.erased:
            m.ERASURES.inc(len(self.erased))
        for held in self.hold_ms:
            m.HOLD_SECONDS.observe(held / 1000)
        for raw_ts, held in self.e2e_base:
            m.E2E_SECONDS.observe(max(0, committed_ms - raw_ts - held) / 1000)
        m.BATCH_SECONDS.observe(batch_seconds)
        m.TRANSACTIONS.labels("committed").inc()
