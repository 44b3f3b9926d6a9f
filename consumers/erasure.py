"""Which cancelled accounts still need their one erasure request, and who sends it.

Every worker reads every cancellation from the consent topic; only the owner
of the raw partition with the consent record's partition number sends the
request (user ids key both topics, so the numbers match), once that owner has
read which requests its erasure partition already holds. Pure bookkeeping:
the worker sends, and reports what committed or aborted.
"""

from __future__ import annotations

from collections.abc import Iterable

from consumers.consent_feed import Cancellation


class ErasureLedger:
    """Due cancellations, requests already on the erasure topic, partitions read."""

    def __init__(self) -> None:
        self._due: dict[str, Cancellation] = {}
        self._sent: set[str] = set()
        self._loaded: set[int] = set()

    def note(self, cancellations: Iterable[Cancellation]) -> None:
        """Cancellations seen on the consent topic."""
        for cancellation in cancellations:
            if cancellation.user_id not in self._sent:
                self._due[cancellation.user_id] = cancellation

    def needs_loading(self, partition: int) -> bool:
        """Whether the erasure partition with this number has not been read yet."""
        return partition not in self._loaded

    def loaded(self, partition: int, user_ids: Iterable[str]) -> None:
        """Requests already committed on one erasure partition."""
        self._sent.update(user_ids)
        self._loaded.add(partition)
        for user_id in list(self._due):
            if user_id in self._sent:
                del self._due[user_id]

    def take_ready(self, owned_partitions: set[int]) -> list[Cancellation]:
        """Due requests this worker should send now (removed from due until aborted)."""
        ready = [
            c
            for c in self._due.values()
            if c.partition in owned_partitions and c.partition in self._loaded
        ]
        for cancellation in ready:
            del self._due[cancellation.user_id]
        return [c for c in ready if c.user_id not in self._sent]

    def committed(self, sent: Iterable[Cancellation]) -> None:
        """Requests whose transaction committed."""
        self._sent.update(c.user_id for c in sent)

    def aborted(self, sent: Iterable[Cancellation]) -> None:
        """Requests whose transaction aborted: due again."""
        for cancellation in sent:
            self._due[cancellation.user_id] = cancellation
