"""5,000 generated bad records beside good ones, through a real worker: no crash, no stall,
every record accounted for.

The cases are drawn by a seeded generator from mutations of valid records (truncations, byte
flips, wrong fingerprints, length prefixes claiming gigabytes, empty and oversized
values, keys that do not match, impossible times, odd text) and sent with good records
in between. The property: the worker stays up and ready, commits to the end of every
raw partition, the accounting identity holds, and every bad record that could not be
judged is a dead letter that names its source offset, never more than once.
"""

from __future__ import annotations

import random
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from ingest.kafka import ProducerOptions, Transport
from ingest.metrics_text import metric_sum
from schemas.codec import Codec
from tests.integration.fault_helpers import (
    assert_accounting,
    build_workload,
    committed_lag,
    publish_consents,
)
from tests.integration.topic_sets import fresh_topic_set
from tests.integration.worker_harness import read_topic, running_worker, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.badinput]

CASES = 5_000
MAX_OVERSIZED = 12
CODEC = Codec()


def _varint(n: int) -> bytes:
    zigzag = (n << 1) ^ (n >> 63)
    out = bytearray()
    while True:
        byte = zigzag & 0x7F
        zigzag >>= 7
        if zigzag:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _text(rng: random.Random) -> str:
    """Text from every corner of Unicode but surrogates: controls, marks, CJK, emoji."""
    ranges = [(0, 0x7F), (0x80, 0x36F), (0x4E00, 0x9FFF), (0xE000, 0xFFFF), (0x1F300, 0x1FAFF)]
    out = []
    for _ in range(rng.randrange(300)):
        low, high = rng.choice(ranges)
        out.append(chr(rng.randint(low, high)))
    return "".join(out)


def _case(
    kind: str, rng: random.Random, good: dict[str, Any], name: str
) -> tuple[bytes, bytes | None]:
    """(key, value) of one bad record of `kind`, drawn from a valid `good` record."""
    key = good["user_id"].encode()
    valid = CODEC.encode(name, {**good, "event_id": str(uuid.UUID(int=rng.getrandbits(128)))})
    if kind == "random":
        return key, rng.randbytes(rng.randrange(600))
    if kind == "truncated":
        return key, valid[: rng.randrange(len(valid))]
    if kind == "flipped":
        raw = bytearray(valid)
        for _ in range(rng.randint(1, 4)):
            raw[rng.randrange(10, len(raw))] ^= rng.randint(1, 255)
        return key, bytes(raw)
    if kind == "fingerprint":
        return key, valid[:2] + rng.randbytes(8) + valid[10:]
    if kind == "huge_length":
        # The body starts with a string length: claim far more than the record holds.
        return key, valid[:10] + _varint(rng.randint(1 << 20, 1 << 62)) + valid[11:]
    if kind == "empty":
        return key, rng.choice([None, b""])
    if kind == "oversized":
        return key, valid[:10] + b"\x01" * rng.randint(600_000, 900_000)
    if kind == "key_mismatch":
        return rng.randbytes(rng.randrange(1, 40)), valid
    if kind == "bad_time":
        when = rng.choice([-1, 0, 2**62, int(time.time() * 1000) + 10**12])
        return key, CODEC.encode(name, {**good, "event_id": str(uuid.uuid4()), "event_time": when})
    assert kind == "odd_text"
    field = "message" if name == "log_event" else "model"
    return key, CODEC.encode(name, {**good, "event_id": str(uuid.uuid4()), field: _text(rng)})


KINDS = (
    "random", "truncated", "flipped", "fingerprint", "huge_length",
    "empty", "oversized", "key_mismatch", "bad_time", "odd_text",
)  # fmt: skip


@pytest.mark.parametrize("seed", [20261201])
def test_five_thousand_bad_records_are_all_accounted_for(
    seed: int, transport: Transport, kafka_bootstrap: str, tmp_path: Path
) -> None:
    rng = random.Random(seed)
    now_ms = int(time.time() * 1000)
    workload = build_workload(seed=21, users=40, count=600, now_ms=now_ms)
    goods = workload.events
    kinds: Counter[str] = Counter()
    with fresh_topic_set(transport) as topics:
        publish_consents(transport, topics, workload)
        topic_of = {"device_event": topics.name("raw_device"), "log_event": topics.name("raw_log")}
        producer = transport.producer(ProducerOptions(linger_ms=20))
        sent_bad: set[tuple[str, int, int]] = set()
        deliveries = []
        try:
            for n in range(CASES):
                name, good = goods[n % len(goods)]
                kind = rng.choice(KINDS)
                if kind == "oversized" and kinds[kind] >= MAX_OVERSIZED:
                    kind = "truncated"  # a few suffice, and each costs a megabyte
                kinds[kind] += 1
                key, value = _case(kind, rng, good, name)
                sending = producer.send(topic_of[name], value, key=key)
                deliveries.append((topic_of[name], sending))
                if n % 10 == 0:  # good records in between
                    producer.send(
                        topic_of[name], CODEC.encode(name, good), key=good["user_id"].encode()
                    )
            producer.flush(120)
        finally:
            producer.close(10)
        for topic, delivery in deliveries:
            partition, offset = delivery.result(0)
            sent_bad.add((topic, partition, offset))
        assert all(kinds[k] > 0 for k in KINDS), kinds
        with running_worker(kafka_bootstrap, topics, tmp_path, group="bad") as worker:
            wait_for(
                lambda: worker.proc.poll() is None and committed_lag(transport, topics, "bad") == 0,
                300,
                "every record committed",
            )
            samples = assert_accounting(worker)
            assert worker.get("/readyz")[0] == 200
            assert metric_sum(samples, "consentgate_batch_failures_total") == 0
            dead = metric_sum(samples, "consentgate_dead_lettered_total")
        letters = read_topic(transport, topics.name("dead_letter"))
        assert len(letters) == dead
        sources = [
            (letter["source_topic"], letter["source_partition"], letter["source_offset"])
            for letter in (CODEC.decode_as(m.value or b"", "dead_letter") for m in letters)
        ]
        assert len(set(sources)) == len(sources), "a record was dead-lettered twice"
        assert set(sources) <= sent_bad, "a good record was dead-lettered"
        assert max(len(m.value or b"") for m in letters) < 1024 * 1024
        # Every case but those the pipeline can judge (odd text, some flips) is a dead letter.
        undecodable = sum(
            kinds[k]
            for k in (
                "random",
                "truncated",
                "fingerprint",
                "huge_length",
                "empty",
                "oversized",
                "key_mismatch",
                "bad_time",
            )
        )
        assert dead >= undecodable - kinds["random"]  # a random blob is rarely, but may be, valid
        assert dead <= CASES
