"""A transaction sums its batches' stage counts and counts them only when it commits."""

from __future__ import annotations

from collections import Counter

from prometheus_client import REGISTRY

from consumers.pipeline import BatchOutcome, Rejected
from consumers.txn import Txn
from ingest.kafka.base import Message

MSG = Message("raw.log-events", 1, 42, b"u1", b"", [], 0)


def _batch(schema: str, reason: str) -> BatchOutcome:
    out = BatchOutcome(rejected=[Rejected(MSG, "validate", "InvalidRecord", "key_mismatch")])
    out.consumed[schema] += 3
    out.dropped[reason] += 2
    out.removed_fields["precise_location"] += 1
    out.tags["sensitive"] += 4
    out.pii_found["EMAIL"] += 1
    out.minors["passed"] += 1
    out.text_withheld["message"] += 1
    return out


def test_a_transaction_sums_every_stage_counter_of_its_batches() -> None:
    txn = Txn()
    txn.dropped["kanon_suppressed"] += 1  # the worker's own drops stay
    txn.add_outcome(_batch("log_event", "consent_withdrawn"))
    txn.add_outcome(_batch("device_event", "consent_withdrawn"))
    assert txn.consumed == Counter({"log_event": 3, "device_event": 3})
    assert txn.dropped == Counter({"consent_withdrawn": 4, "kanon_suppressed": 1})
    assert txn.removed_fields == Counter({"precise_location": 2})
    assert txn.tags == Counter({"sensitive": 8})
    assert txn.pii_found == Counter({"EMAIL": 2})
    assert txn.minors == Counter({"passed": 2})
    assert txn.text_withheld == Counter({"message": 2})
    assert txn.dead == Counter({"key_mismatch": 2})


def _sample(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_the_stage_counts_reach_their_metrics_on_commit() -> None:
    watched = [
        ("consentgate_consumed_total", {"event_type": "log_event"}, 3),
        ("consentgate_dropped_total", {"reason": "consent_withdrawn"}, 2),
        ("consentgate_dead_lettered_total", {"reason": "key_mismatch"}, 1),
        ("consentgate_fields_removed_total", {"category": "precise_location"}, 1),
        ("consentgate_field_tags_total", {"level": "sensitive"}, 4),
        ("consentgate_pii_found_total", {"type": "EMAIL"}, 1),
        ("consentgate_minor_records_total", {"outcome": "passed"}, 1),
        ("consentgate_text_withheld_total", {"field": "message"}, 1),
    ]
    before = [_sample(name, labels) for name, labels, _n in watched]
    txn = Txn()
    txn.add_outcome(_batch("log_event", "consent_withdrawn"))
    txn.apply_metrics(committed_ms=1_000, batch_seconds=0.01)
    after = [_sample(name, labels) for name, labels, _n in watched]
    assert [a - b for a, b in zip(after, before, strict=True)] == [n for *_x, n in watched]
