"""Output records: topics, keys and the headers SPEC 3 and 5 ask for."""

from __future__ import annotations

from consumers.kanon import PendingEntry
from consumers.route import Router
from ingest.topics import load_topic_set
from schemas.codec import Codec

RECORD = {
    "anon_id": "8f14e45f-ceea-4e67-a8b1-0f1f3bd1f5a2",
    "event_hour": 1_767_225_600_000,
    "time_granularity": "HOUR",
    "app_id": "com.example.app",
    "generalization_level": 0,
    "policy_version": "3",
    "log_type": "USAGE",
}


def test_released_record_carries_type_fingerprint_and_provenance_and_no_key() -> None:
    codec = Codec()
    topics = load_topic_set()
    entry = PendingEntry("t:0:1", "log_event", "p", dict(RECORD), meta=("v=4;policy=2", 0))
    out = Router(codec, topics).anonymized(entry)
    assert out.topic == topics.name("anon_log")
    assert out.key is None
    assert dict(out.headers) == {
        "event-type": b"anonymized_log_event",
        "schema-fingerprint": codec.fingerprint("anonymized_log_event").hex().encode(),
        "consent-provenance": b"v=4;policy=2",
    }
    decoded = codec.decode_as(out.value or b"", "anonymized_log_event")
    assert decoded["policy_version"] == "3"
    assert decoded["anon_id"] == RECORD["anon_id"]


def test_released_records_go_round_robin_over_the_partitions_given() -> None:
    topics = load_topic_set()
    router = Router(Codec(), topics)
    entry = PendingEntry("t:0:1", "log_event", "p", dict(RECORD), meta=("v=1;policy=2", 0))
    assert router.anonymized(entry).partition is None, "no counts: the client chooses"
    router.spread_over({topics.name("anon_log"): 3, "elsewhere": 5})
    assert [router.anonymized(entry).partition for _ in range(7)] == [0, 1, 2, 0, 1, 2, 0]
