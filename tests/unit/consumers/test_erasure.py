"""One erasure request per cancelled account, sent by the owner of its partition."""

from __future__ import annotations

from consumers.consent_feed import Cancellation
from consumers.erasure import ErasureLedger


def _c(user: str, partition: int) -> Cancellation:
    return Cancellation(user_id=user, cancelled_at=1000, partition=partition)


def test_only_the_owner_sends_and_only_after_reading_its_erasure_partition() -> None:
    ledger = ErasureLedger()
    ledger.note([_c("u1", 0), _c("u2", 1)])
    assert ledger.take_ready({0}) == []  # partition 0 not read yet
    ledger.loaded(0, [])
    assert ledger.take_ready({0}) == [_c("u1", 0)]
    assert ledger.take_ready({0, 1}) == []  # u2's partition not read; u1 already taken


def test_a_request_already_on_the_topic_is_not_sent_again() -> None:
    ledger = ErasureLedger()
    ledger.note([_c("u1", 0)])
    ledger.loaded(0, ["u1"])
    assert ledger.take_ready({0}) == []
    ledger.note([_c("u1", 0)])  # the consent topic is read again after a restart
    assert ledger.take_ready({0}) == []


def test_an_aborted_request_is_due_again_and_a_committed_one_never() -> None:
    ledger = ErasureLedger()
    ledger.loaded(2, [])
    ledger.note([_c("u3", 2)])
    sent = ledger.take_ready({2})
    ledger.aborted(sent)
    again = ledger.take_ready({2})
    assert again == [_c("u3", 2)]
    ledger.committed(again)
    ledger.note([_c("u3", 2)])
    assert ledger.take_ready({2}) == []
