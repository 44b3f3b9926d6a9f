"""Output records: topics, keys, headers and timestamps as SPEC 3, 5 and 7 ask for them."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from consumers.kanon import PendingEntry, Released
from consumers.pipeline import Rejected
from consumers.route import (
    DEAD_LETTER_HEADERS_CAP,
    DEAD_LETTER_KEY_CAP,
    DEAD_LETTER_MAX_BYTES,
    DEAD_LETTER_PAYLOAD_CAP,
    DEAD_LETTER_TEXT_CAP,
    OutRecord,
    Router,
    new_anon_id,
)
from ingest.kafka import Message
from ingest.kafka.topics import load_topic_set
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


@settings(max_examples=50, deadline=None)
@given(app_id=st.one_of(st.none(), st.text(max_size=300)), version=st.text(max_size=20))
def test_a_groups_records_are_its_content_encoded_whole_each_with_its_own_anon_id(
    app_id: str | None, version: str
) -> None:
    """The content is encoded once per group; every record is byte for byte what
    encoding the whole record with its anon_id gives."""
    codec = Codec()
    router = Router(codec, load_topic_set(), OUTPUTS)
    content = {**RECORD, "app_id": app_id, "policy_version": version}
    entry = PendingEntry("t:0:1", "log_event", "p", {}, source=("t", 0), raw_timestamp_ms=9)
    group = [Released(entry, content, EVENT_HOUR, ()) for _ in range(5)]
    ids = []
    for out in (router.anonymized(r, EVENT_HOUR) for r in group):
        decoded = codec.decode_as(out.value or b"", "anonymized_log_event")
        ids.append(decoded["anon_id"])
        whole = codec.encode("anonymized_log_event", {**content, "anon_id": decoded["anon_id"]})
        assert out.value == whole
    assert len(set(ids)) == 5
    assert content == {**RECORD, "app_id": app_id, "policy_version": version}  # not changed


def test_released_records_go_round_robin_over_the_partitions_given() -> None:
    topics = load_topic_set()
    router = Router(Codec(), topics, OUTPUTS)
    assert router.anonymized(released(), EVENT_HOUR).partition is None, "the client chooses"
    router.spread_over({topics.name("anon_log"): 3, "elsewhere": 5})
    partitions = [router.anonymized(released(), EVENT_HOUR).partition for _ in range(7)]
    assert partitions == [0, 1, 2, 0, 1, 2, 0]


# --- dead letters: a byte budget whatever the rejected record holds ---------------------------

PRODUCER_LIMIT = 1024 * 1024
"""kafka-python's max_request_size default: no dead letter may come near it."""


def rejected(
    value: bytes | None,
    key: bytes | None = b"u-1",
    headers: list[tuple[str, bytes]] | None = None,
    reason: str = "undecodable",
) -> Rejected:
    msg = Message("raw.log-events", 2, 40, key, value, headers or [], 1_700_000_000_000)
    return Rejected(msg, "decode", "DecodeError", reason)


def kafka_bytes(out: OutRecord) -> int:
    """What the record puts on the wire apart from fixed framing: key, value, header bytes."""
    header_bytes = sum(len(name.encode()) + len(value) for name, value in out.headers)
    return len(out.key or b"") + len(out.value or b"") + header_bytes


def letter(out: OutRecord) -> dict[str, Any]:
    return Codec().decode_as(out.value or b"", "dead_letter")


def test_a_small_rejected_record_is_kept_whole_for_replay() -> None:
    topics = load_topic_set()
    headers = [("event-type", b"log_event"), ("schema-fingerprint", b"ab12")]
    out = Router(Codec(), topics, OUTPUTS).dead_letter(rejected(b"\x00junk", headers=headers), 7)
    assert out.topic == topics.name("dead_letter")
    assert out.key == b"u-1", "keyed by the raw key, so a user's letters share a partition"
    got = letter(out)
    assert (got["payload"], got["key"], got["payload_truncated"]) == (b"\x00junk", b"u-1", False)
    assert got["headers"] == [{"name": n, "value": v} for n, v in headers]
    assert got["payload_size"] == 5 and got["key_size"] == 3
    assert got["payload_sha256"] == hashlib.sha256(b"\x00junk").digest()
    assert (got["source_topic"], got["source_partition"], got["source_offset"]) == (
        "raw.log-events",
        2,
        40,
    )
    assert got["source_timestamp"] == 1_700_000_000_000 and got["failed_at"] == 7
    assert out.timestamp_ms == 1_700_000_000_000, "expires with the raw record it came from"


def test_a_1_mb_payload_leaves_only_its_size_and_digest() -> None:
    payload = bytes(range(256)) * 4000  # 1,024,000 bytes: a raw topic accepts it
    out = Router(Codec(), load_topic_set(), OUTPUTS).dead_letter(rejected(payload), 7)
    got = letter(out)
    assert got["payload"] is None
    assert got["payload_truncated"] is True
    assert got["payload_size"] == 1_024_000
    assert got["payload_sha256"] == hashlib.sha256(payload).digest()
    assert got["key"] == b"u-1" and got["reason"] == "undecodable"
    assert kafka_bytes(out) < 4096


def test_a_payload_at_the_cap_is_kept_and_one_byte_more_is_not() -> None:
    router = Router(Codec(), load_topic_set(), OUTPUTS)
    at_cap = letter(router.dead_letter(rejected(b"x" * DEAD_LETTER_PAYLOAD_CAP), 7))
    over = letter(router.dead_letter(rejected(b"x" * (DEAD_LETTER_PAYLOAD_CAP + 1)), 7))
    assert at_cap["payload"] == b"x" * DEAD_LETTER_PAYLOAD_CAP
    assert at_cap["payload_truncated"] is False
    assert over["payload"] is None and over["payload_truncated"] is True


def test_an_oversized_key_is_replaced_by_its_digest_also_as_the_kafka_key() -> None:
    key = b"k" * 900_000
    out = Router(Codec(), load_topic_set(), OUTPUTS).dead_letter(rejected(b"v", key=key), 7)
    got = letter(out)
    digest = hashlib.sha256(key).digest()
    assert out.key == digest
    assert (got["key"], got["key_truncated"], got["key_sha256"]) == (None, True, digest)
    assert got["key_size"] == 900_000
    assert got["payload"] == b"v", "the payload still fits"
    assert kafka_bytes(out) < 4096


def test_oversized_headers_are_replaced_by_their_digest() -> None:
    router = Router(Codec(), load_topic_set(), OUTPUTS)
    for headers in ([("h", b"v" * 600_000)], [("h", b"")] * 200_000, [("n" * 70_000, b"")]):
        out = router.dead_letter(rejected(b"v", headers=headers), 7)
        got = letter(out)
        assert got["headers"] == [] and got["headers_truncated"] is True
        expected = hashlib.sha256()
        for name, value in headers:
            expected.update(len(name).to_bytes(4, "big") + name.encode())
            expected.update(len(value).to_bytes(4, "big") + value)
        assert got["headers_sha256"] == expected.digest()
        assert got["headers_size"] > DEAD_LETTER_HEADERS_CAP
        assert kafka_bytes(out) < 4096


def test_reason_texts_are_cut_without_breaking_a_character() -> None:
    out = Router(Codec(), load_topic_set(), OUTPUTS).dead_letter(
        rejected(b"v", reason="é" * 5000), 7
    )
    reason = str(letter(out)["reason"])
    assert reason == "é" * (DEAD_LETTER_TEXT_CAP // 2)
    assert dict(out.headers)["dlq-reason"] == reason.encode()


def test_every_cap_filled_at_once_stays_within_the_budget() -> None:
    header = ("h" * 100, b"v" * 92)  # 200 bytes with the per-header overhead
    headers = [header] * (DEAD_LETTER_HEADERS_CAP // 200)
    worst = rejected(
        b"p" * DEAD_LETTER_PAYLOAD_CAP,
        key=b"k" * DEAD_LETTER_KEY_CAP,
        headers=headers,
        reason="r" * 10_000,
    )
    msg = worst.msg._replace(topic="t" * 249, partition=2**31 - 1, offset=2**63 - 1)
    out = Router(Codec(), load_topic_set(), OUTPUTS).dead_letter(
        Rejected(msg, "s" * 10_000, "e" * 10_000, worst.reason), 2**62
    )
    got = letter(out)
    assert got["payload_truncated"] is False and got["key_truncated"] is False
    assert got["headers_truncated"] is False and len(got["headers"]) == len(headers)
    assert kafka_bytes(out) <= DEAD_LETTER_MAX_BYTES < PRODUCER_LIMIT // 2


@settings(max_examples=40, deadline=None)
@given(
    payload=st.integers(0, 2 * PRODUCER_LIMIT),
    key=st.integers(0, 2 * DEAD_LETTER_KEY_CAP),
    header_count=st.integers(0, 3000),
    header_size=st.integers(0, 400),
)
def test_no_dead_letter_exceeds_the_budget(
    payload: int, key: int, header_count: int, header_size: int
) -> None:
    headers = [("h", b"v" * header_size)] * header_count
    out = Router(Codec(), load_topic_set(), OUTPUTS).dead_letter(
        rejected(b"p" * payload, key=b"k" * key, headers=headers), 7
    )
    assert kafka_bytes(out) <= DEAD_LETTER_MAX_BYTES
    got = letter(out)
    assert (got["payload"] is not None) == (payload <= DEAD_LETTER_PAYLOAD_CAP)
    assert got["payload_size"] == payload
