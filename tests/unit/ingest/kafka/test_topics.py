"""The topic set's derived configs."""

from __future__ import annotations

from ingest.kafka.topics import HOUR_MS, ROLES, load_topic_set, segment_ms_for


def test_every_topic_with_a_retention_rolls_segments_well_inside_it() -> None:
    topics = load_topic_set()
    for role in ROLES:
        configs = topics.specs[role].configs
        if "retention.ms" in configs:
            retention, segment = int(configs["retention.ms"]), int(configs["segment.ms"])
            assert segment == segment_ms_for(retention)
            assert HOUR_MS <= segment <= max(HOUR_MS, retention // 24)
    assert segment_ms_for(86_400_000) == HOUR_MS
    assert segment_ms_for(30 * 86_400_000) == 24 * HOUR_MS
