"""The pure parts of `dlq`: choosing dead letters, planning a replay, and what is printed."""

from __future__ import annotations

import argparse
import hashlib
import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from consumers.pipeline import Rejected
from consumers.route import DEAD_LETTER_PAYLOAD_CAP, Router
from ingest.cli import dlq
from ingest.cli.dlq import count_lines, listing_line, parse_positions
from ingest.cli.dlq_letters import Letter, Selection, read_letters
from ingest.cli.dlq_replay import (
    Plan,
    chunks,
    expired_log_keys,
    log_entry,
    plan_replay,
    replay_summary,
    replay_transactions,
    replayed_identities,
)
from ingest.cli.main import build_parser
from ingest.errors import TransportError
from ingest.kafka import Message
from ingest.kafka.base import Headers
from ingest.kafka.topics import load_topic_set
from schemas.codec import Codec

TOPICS = load_topic_set(prefix="p.")
RAW_DEVICE, RAW_LOG = TOPICS.name("raw_device"), TOPICS.name("raw_log")
RAW = {RAW_DEVICE, RAW_LOG}
LOG = TOPICS.name("dead_letter_replays")
USER = b"user-4711"
SECRET = b'{"phone":"13812345678","imei":"490154203237518"}'
FAILED_AT = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def dead_letter(
    offset: int,
    *,
    reason: str = "undecodable",
    stage: str = "decode",
    value: bytes | None = SECRET,
    source: str = "raw_log",
    failed_at: int = FAILED_AT,
    headers: Headers | None = None,
) -> Message:
    """A dead letter as the worker writes it, at `offset` of partition 1 of the topic."""
    topic = {"raw_log": RAW_LOG, "raw_device": RAW_DEVICE}.get(source, source)
    raw = Message(topic, 2, 100 + offset, USER, value, headers or [("event-type", b"log")], 5)
    out = Router(Codec(), TOPICS, {}).dead_letter(
        Rejected(raw, stage, "DecodeError", reason), failed_at
    )
    return Message(out.topic, 1, offset, out.key, out.value, out.headers, failed_at)


def letters(*messages: Message, selection: Selection | None = None) -> list[Letter]:
    found, unreadable = read_letters(messages, Codec(), selection or Selection(), keep=True)
    assert unreadable == 0
    return found


def test_positions_parse_and_mistakes_are_argument_errors() -> None:
    assert parse_positions("0:5, 2:17,0:5") == {(0, 5), (2, 17)}
    for bad in ("0", "a:1", "1:-2", "1:2,", ":3"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_positions(bad)


def test_replay_needs_offsets_or_a_reason_but_not_both() -> None:
    parser = build_parser([dlq])
    assert parser.parse_args(["dlq", "replay", "--reason", "undecodable"]).reason == "undecodable"
    for argv in (["dlq", "replay"], ["dlq", "replay", "--offsets", "0:1", "--reason", "r"]):
        with pytest.raises(SystemExit) as exc:
            parser.parse_args(argv)
        assert exc.value.code == 2


@pytest.mark.parametrize(
    ("selection", "chosen"),
    [
        (Selection(), [0, 1, 2, 3]),
        (Selection(reason="key_mismatch"), [1]),
        (Selection(stage="validate"), [1]),
        (Selection(positions=frozenset({(1, 2), (1, 3), (0, 0)})), [2, 3]),
        (Selection(sources=frozenset({TOPICS.name("raw_device")})), [2]),
        (Selection(since_ms=FAILED_AT + 1000), [3]),
        (Selection(until_ms=FAILED_AT + 1000), [0, 1, 2]),
        (Selection(reason="undecodable", since_ms=FAILED_AT, until_ms=FAILED_AT + 1000), [0, 2]),
    ],
)
def test_a_selection_chooses_by_every_criterion_given(
    selection: Selection, chosen: list[int]
) -> None:
    messages = [
        dead_letter(0),
        dead_letter(1, reason="key_mismatch", stage="validate"),
        dead_letter(2, source="raw_device"),
        dead_letter(3, failed_at=FAILED_AT + 1000),
    ]
    assert [letter.offset for letter in letters(*messages, selection=selection)] == chosen


def test_a_letter_keeps_its_original_record_for_replay() -> None:
    headers = [("event-type", b"log_event"), ("schema-fingerprint", b"ab")]
    (letter,) = letters(dead_letter(4, headers=headers))
    assert letter.original is not None
    assert (letter.original.key, letter.original.value) == (USER, SECRET)
    assert letter.original.headers == headers
    assert (letter.source_partition, letter.source_offset, letter.source_timestamp) == (2, 104, 5)
    assert letter.payload_sha256 == hashlib.sha256(SECRET).digest()
    assert (letter.key_size, letter.payload_size, letter.cut) == (len(USER), len(SECRET), ())


def test_a_version_1_dead_letter_is_read_with_its_sizes_worked_out() -> None:
    envelope = {
        "stage": "decode",
        "error_class": "DecodeError",
        "reason": "undecodable",
        "source_topic": TOPICS.name("raw_log"),
        "source_partition": 0,
        "source_offset": 9,
        "failed_at": FAILED_AT,
        "key": USER,
        "payload": SECRET,
    }
    value = Codec().encode("dead_letter", envelope, version=1)
    msg = Message(TOPICS.name("dead_letter"), 0, 3, USER, value, [], FAILED_AT)
    (letter,) = letters(msg)
    assert (letter.key_size, letter.payload_size, letter.header_count) == (9, len(SECRET), 0)
    assert letter.cut == ()


def test_an_unreadable_dead_letter_is_counted_not_fatal() -> None:
    junk = Message(TOPICS.name("dead_letter"), 0, 0, None, b"\x00junk", [], 0)
    found, unreadable = read_letters([junk, dead_letter(1)], Codec(), Selection(), keep=False)
    assert ([f.offset for f in found], unreadable) == ([1], 1)
    assert found[0].original is None, "show keeps no values in memory"


def _log(*pairs: tuple[Letter, int]) -> dict[bytes, bytes | None]:
    return {letter.log_key: log_entry(letter, at) for letter, at in pairs}


def test_a_replay_skips_what_the_log_holds_and_refuses_what_was_cut() -> None:
    big = b"x" * (DEAD_LETTER_PAYLOAD_CAP + 1)
    done, fresh, cut, elsewhere = letters(
        dead_letter(0), dead_letter(1), dead_letter(2, value=big), dead_letter(3, source="other")
    )
    log: Mapping[bytes, bytes | None] = {**_log((done, 1)), b"9:9": None, b"junk": b"{"}
    plan = plan_replay([done, fresh, cut, elsewhere], replayed_identities(log), RAW)
    assert plan.already == [done] and plan.replay == [fresh]
    assert [(letter.offset, why) for letter, why in plan.refused] == [
        (2, "payload kept only as a digest"),
        (3, "its source is not a raw topic of this topic set"),
    ]


def test_a_log_entry_of_another_letter_at_the_same_position_does_not_count() -> None:
    (old,) = letters(dead_letter(0, failed_at=FAILED_AT - 86_400_000))
    (new,) = letters(dead_letter(0))  # the dead-letter topic was re-created
    plan = plan_replay([new], replayed_identities(_log((old, 1))), RAW)
    assert plan.replay == [new]


def test_the_summary_is_one_line_with_every_outcome() -> None:
    a, b, c = letters(dead_letter(0), dead_letter(1), dead_letter(2))
    plan = Plan(replay=[a, b], already=[c], refused=[(c, "payload kept only as a digest")])
    assert replay_summary(plan, 2) == (
        "dlq replay: 2 replayed, 1 already replayed, 1 not replayable (of 4 selected)"
    )
    assert replay_summary(plan, 1).endswith("; 1 not replayed: the run failed")


def test_nothing_printed_by_show_holds_a_value_or_a_key() -> None:
    found = letters(dead_letter(0), dead_letter(1, reason="key_mismatch"))
    printed = "\n".join([*count_lines(found, 0), *(listing_line(f, False) for f in found)])
    for secret in (SECRET, USER, b"13812345678", b"490154203237518", b"event-type"):
        assert secret.decode() not in printed
        assert secret.hex() not in printed
    assert hashlib.sha256(USER).hexdigest()[:16] not in printed
    assert "payload=" + f"{len(SECRET)} B" in printed


def test_show_counts_by_reason_stage_and_source_and_lists_positions() -> None:
    found = letters(
        dead_letter(0),
        dead_letter(1, reason="key_mismatch", stage="validate"),
        dead_letter(2, value=b"y" * 300_000),
    )
    raw_log = TOPICS.name("raw_log")
    assert count_lines(found, 2) == [
        "dead letters: 3 (2 unreadable)",
        "by reason: key_mismatch 1, undecodable 2",
        "by stage: decode 2, validate 1",
        f"by source: {raw_log} 3",
    ]
    line = listing_line(found[2], True)
    assert line.startswith("1:2  2026-01-01T00:00:00Z  reason=undecodable stage=decode")
    assert f"source={raw_log}[2]@102" in line
    assert "payload=300,000 B (digest only)" in line and "cut=payload" in line
    assert f"sha256={hashlib.sha256(b'y' * 300_000).hexdigest()[:16]}" in line
    assert line.endswith("replayed=yes")


def test_chunks_bound_records_and_bytes() -> None:
    small = letters(*(dead_letter(n, value=b"v" * 100) for n in range(5)))
    assert [len(c) for c in chunks(small, 2, 10**9)] == [2, 2, 1]
    assert [len(c) for c in chunks(small, 100, 250)] == [2, 2, 1]
    assert [len(c) for c in chunks(small, 100, 50)] == [1, 1, 1, 1, 1], "one letter always fits"


def test_log_entries_of_letters_gone_from_the_topic_are_tombstoned() -> None:
    log = {b"0:3": b"{}", b"0:9": b"{}", b"1:2": b"{}", b"1:4": None, b"x": b"{}"}
    assert expired_log_keys(log, {0: 5, 1: 3}) == [b"0:3", b"1:2"]


class ListProducer:
    """A list-backed stand-in for the transactional producer: records each call."""

    def __init__(self, fail_on_commit: int | None = None) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.commits = 0
        self.fail_on_commit = fail_on_commit

    def begin_transaction(self) -> None:
        self.calls.append(("begin", None))

    def send(self, topic: str, value: bytes | None, **kwargs: Any) -> None:
        self.calls.append(("send", (topic, value, kwargs)))

    def commit_transaction(self) -> None:
        self.commits += 1
        if self.commits == self.fail_on_commit:
            raise TransportError("commit_transaction failed: KafkaTimeoutError")
        self.calls.append(("commit", None))

    def abort_transaction(self) -> None:
        self.calls.append(("abort", None))


def test_each_replayed_record_goes_with_its_log_entry_in_one_transaction() -> None:
    found = letters(*(dead_letter(n) for n in range(3)))
    producer = ListProducer()
    counts = list(replay_transactions(producer, found, LOG, [b"0:1"], chunk_records=2))  # type: ignore[arg-type]
    assert counts == [2, 1]
    kinds = [kind for kind, _ in producer.calls]
    assert kinds == ["begin", *["send"] * 5, "commit", "begin", "send", "send", "commit"]
    sends = [args for kind, args in producer.calls if kind == "send"]
    topic, value, kwargs = sends[0]
    assert (topic, value) == (TOPICS.name("raw_log"), SECRET)
    assert kwargs == {
        "key": USER,
        "headers": [("event-type", b"log")],
        "partition": 2,
        "timestamp_ms": 5,
    }
    assert sends[1][0] == LOG and sends[1][2] == {"key": b"1:0"}
    assert json.loads(sends[1][1])["identity"] == found[0].identity
    assert sends[4] == (LOG, None, {"key": b"0:1"}), "tombstones go with the first transaction"


def test_a_failed_transaction_is_aborted_and_the_error_raised_after_earlier_commits() -> None:
    found = letters(*(dead_letter(n) for n in range(3)))
    producer = ListProducer(fail_on_commit=2)
    done: list[int] = []
    with pytest.raises(TransportError):
        for count in replay_transactions(producer, found, LOG, chunk_records=2):  # type: ignore[arg-type]
            done.append(count)
    assert done == [2]
    assert producer.calls[-1] == ("abort", None)


def test_dead_letters_live_exactly_as_long_as_the_raw_records() -> None:
    path = Path(__file__).resolve().parents[4] / "ingest" / "kafka" / "topics.toml"
    topics = tomllib.loads(path.read_text(encoding="utf-8"))["topics"]
    raw = {topics["raw_device"]["retention_ms"], topics["raw_log"]["retention_ms"]}
    assert raw == {86_400_000}
    assert topics["dead_letter"]["retention_ms"] in raw
    assert topics["dead_letter_replays"]["cleanup_policy"] == "compact"
