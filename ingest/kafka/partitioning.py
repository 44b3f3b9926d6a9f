"""Which partition Kafka's default partitioner gives a keyed record, computed once per key.

The Java client, kafka-python and librdkafka's `murmur2_random` partitioner (the one
the confluent transport configures) put a record with a key in partition
`(murmur2(key) & 0x7FFFFFFF) % partitions`. A producer that sends many records under
few keys (the repartition hop: a key per region) can name that partition itself:
kafka-python would otherwise run murmur2 in Python for every record (about 10 µs of
CPU, measured), where `KeyPartitions` looks each key up once. The records land where
the client's partitioner would have put them.
"""

from __future__ import annotations

from kafka.partitioner.default import murmur2

KEY_CACHE_CAP = 65_536
"""Keys remembered per topic; past that the memory starts again empty (keys come from data)."""


def key_partition(key: bytes, partitions: int) -> int:
    """The default partitioner's partition for `key` on a topic of `partitions` partitions."""
    if partitions < 1:
        raise ValueError(f"a topic has at least one partition, not {partitions}")
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


class KeyPartitions:
    """`key_partition` for one topic, remembering up to KEY_CACHE_CAP keys."""

    def __init__(self, partitions: int) -> None:
        key_partition(b"", partitions)  # refuses a count below one
        self.partitions = partitions
        self._known: dict[bytes, int] = {}

    def __call__(self, key: bytes) -> int:
        """The partition of `key`."""
        known = self._known.get(key)
        if known is None:
            if len(self._known) >= KEY_CACHE_CAP:
                self._known.clear()
            known = self._known[key] = key_partition(key, self.partitions)
        return known
