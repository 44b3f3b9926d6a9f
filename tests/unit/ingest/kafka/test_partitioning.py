"""Kafka's default partition of a keyed record, and the per-key memory of it."""

from __future__ import annotations

import pytest

from ingest.kafka import partitioning
from ingest.kafka.partitioning import KeyPartitions, key_partition


@pytest.mark.parametrize(
    ("key", "partition"),
    # The Java client's partitions on a 1,000-partition topic (kafka-python's own
    # compatibility vectors); tests/integration/test_transport.py checks a live broker.
    [(b"", 681), (b"a", 524), (b"ab", 434), (b"abc", 107), (b"123456789", 566), (b"\x00 ", 742)],
)
def test_a_key_gets_the_java_clients_partition(key: bytes, partition: int) -> None:
    assert key_partition(key, 1000) == partition


# Java's Utils.murmur2 of these bytes (signed 32-bit), from Kafka's own tests.
JAVA_MURMUR2 = [
    (b"21", -973932308),
    (b"foobar", -790332482),
    (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829),
    (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    (b"abc", 479470107),
]


@pytest.mark.parametrize(("data", "signed"), JAVA_MURMUR2)
def test_the_hash_is_javas_murmur2(data: bytes, signed: int) -> None:
    assert partitioning.murmur2(data) == signed & 0xFFFFFFFF


def test_a_topic_has_at_least_one_partition() -> None:
    with pytest.raises(ValueError, match="at least one partition"):
        key_partition(b"k", 0)
    with pytest.raises(ValueError, match="at least one partition"):
        KeyPartitions(0)


def test_remembered_partitions_equal_computed_ones_past_the_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(partitioning, "KEY_CACHE_CAP", 8)
    place = KeyPartitions(6)
    keys = [f"device_event\x1fregion-{i}".encode() for i in range(30)]
    for _ in range(2):
        assert [place(k) for k in keys] == [key_partition(k, 6) for k in keys]
    assert len(place._known) <= 8
