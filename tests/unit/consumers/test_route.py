"""Output records: topics, keys, headers and timestamps as SPEC 3, 5 and 7 ask for them."""

from __future__ import annotations

import uuid

from consumers.kanon import PendingEntry, Released
from consumers.route import Router, new_anon_id
from ingest.topics import load_topic_set
from schemas.codec import Codec

HOUR = 3_600_000
EVENT_HOUR = 1_767_225_600_000
RECORD = {
    "event_hour": EVENT_HOUR,
    "time_granularity": "HOUR",
    "app_id": "com.example.app",
    "policy_version": "3",
    "min_consent_policy_version": 2,
    "log_type": "USAGE",
}
OUTPUTS = {"device_event": "anonymized_device_event", "log_event": "anonymized_log_event"}


def released(timestamp_ms: int = EVENT_HOUR) -> Released:
    entry = PendingEntry("t:0:1", "log_event", "p", {}, source=("t", 0), raw_timestamp_ms=9)
    return Released(entry, dict(RECORD), timestamp_ms, ())


def test_released_record_has_no_key_and_only_headers_shared_by_every_record() -> None:
    codec = Codec()
    topics = load_topic_set()
    out = Router(codec, topics, OUTPUTS).anonymized(released(), EVENT_HOUR + 5 * HOUR)
    assert out.topic == topics.name("anon_log")
    assert out.key is None
    assert dict(out.headers) == {
        "event-type": b"anonymized_log_event",
        "schema-fingerprint": codec.fingerprint("anonymized_log_event").hex().encode(),
    }
    decoded = codec.decode_as(out.value or b"", "anonymized_log_event")
    assert decoded["policy_version"] == "3"
    assert decoded["min_consent_policy_version"] == 2
    assert uuid.UUID(decoded["anon_id"]).version == 4


def test_the_kafka_timestamp_is_the_released_time_bucket_not_the_release_instant() -> None:
    router = Router(Codec(), load_topic_set(), OUTPUTS)
    out = router.anonymized(released(), EVENT_HOUR + 5 * HOUR + 1234)
    assert out.timestamp_ms == EVENT_HOUR


def test_an_event_dated_in_the_future_is_stamped_with_the_current_hour() -> None:
    router = Router(Codec(), load_topic_set(), OUTPUTS)
    now = EVENT_HOUR - 3 * HOUR + 1234
    assert router.anonymized(released(), now).timestamp_ms == EVENT_HOUR - 3 * HOUR


def test_each_released_record_gets_a_fresh_anon_id() -> None:
    codec = Codec()
    router = Router(codec, load_topic_set(), OUTPUTS)
    ids = {
        codec.decode_as(
            router.anonymized(released(), EVENT_HOUR).value or b"", "anonymized_log_event"
        )["anon_id"]
        for _ in range(50)
    }
    assert len(ids) == 50
    assert all(uuid.UUID(i).version == 4 for i in ids)
    assert uuid.UUID(new_anon_id()).variant == uuid.RFC_4122


def test_released_records_go_round_robin_over_the_partitions_given() -> None:
    topics = load_topic_set()
    router = Router(Codec(), topics, OUTPUTS)
    assert router.anonymized(released(), EVENT_HOUR).partition is None, "the client chooses"
    router.spread_over({topics.name("anon_log"): 3, "elsewhere": 5})
    partitions = [router.anonymized(released(), EVENT_HOUR).partition for _ in range(7)]
    assert partitions == [0, 1, 2, 0, 1, 2, 0]
