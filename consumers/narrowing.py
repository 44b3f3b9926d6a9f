"""Failed transactions in a row, and how a worker narrows its batches to find the cause.

A transaction can fail for the cluster's sake (an outage, a rebalance) or for a
record's (one the stages or the producer choke on). The worker aborts, rewinds and
tries again with a growing back-off. After `limit` failures in a row it goes
careful: one raw record per transaction, for as many records as the failing batch
held (at most CAREFUL_MAX_RECORDS). A record that then fails `limit` times alone,
while the sink passes a fresh check, is known to be the cause: the worker sets it
aside as a dead letter and moves on (consumers.worker). Any commit resets the count.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from enum import Enum

from ingest.kafka.base import Message

log = logging.getLogger(__name__)

CAREFUL_MAX_RECORDS = 5_000
"""At most this many raw records are taken one per transaction after repeated failures."""


def back_off_s(failures: int) -> float:
    """The wait after `failures` failed tries in a row: doubling from 0.2 s, at most 5 s."""
    return min(5.0, 0.1 * 2.0**failures)


class Next(Enum):
    """What the worker does after a failed transaction."""

    BACK_OFF = "back_off"  # wait, then try the same batch again
    GO_CAREFUL = "go_careful"  # take one record per transaction from now on
    SUSPECT = "suspect"  # the one record of the transaction failed alone `limit` times


@dataclass(slots=True)
class Narrowing:
    """The failure count and careful mode of one worker."""

    limit: int
    failures: int = 0
    """Failed transactions since the last commit."""
    careful: int = 0
    """Raw records still to take one per transaction."""
    polled: list[Message] = field(default_factory=list)
    """What the open transaction consumed, while careful."""

    def poll_limit(self, max_records: int) -> int:
        """How many records the next poll may take."""
        return 1 if self.careful else max_records

    def took(self, messages: list[Message]) -> None:
        """Note what a careful transaction consumed."""
        if self.careful:
            self.polled.extend(messages)

    def commit_due(self, records: int) -> bool:
        """While careful, every transaction commits its one record at once."""
        return bool(self.careful) and records > 0

    def committed(self, records: int) -> None:
        """A transaction of `records` raw records committed."""
        self.failures = 0
        self.polled = []
        if self.careful:
            self.careful = max(0, self.careful - records)
            if not self.careful:
                log.info("batches succeed again: back to full batches")

    def failed(self, records: int | None) -> tuple[Next, Message | None]:
        """A transaction (of `records` raw records, None if none was open) failed."""
        self.failures += 1
        polled, self.polled = self.polled, []
        # Careful: each transaction takes one polled record (it may fail before counting it).
        alone = bool(self.careful) and records is not None and len(polled) == 1
        if self.failures >= self.limit and not self.careful:
            self.careful = min(CAREFUL_MAX_RECORDS, max(1, records or 1))
            self.failures = 0
            log.warning(
                "transactions keep failing: taking one record per transaction",
                extra={"records": self.careful},
            )
            return Next.GO_CAREFUL, None
        if alone and self.failures >= self.limit:
            return Next.SUSPECT, polled[0]
        return Next.BACK_OFF, None

    def back_off_s(self) -> float:
        """The wait before the next try (`back_off_s`)."""
        return back_off_s(self.failures)

    def set_aside(self) -> None:
        """The suspect left as a dead letter: the count starts again."""
        self.failures = 0

    @property
    def progressing(self) -> bool:
        """False once failures reach the limit (readiness drops)."""
        return self.failures < self.limit
