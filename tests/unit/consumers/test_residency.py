"""The mainland residency check on the sink cluster's brokers and the target topics."""

from __future__ import annotations

from consumers.residency import check_residency
from ingest.kafka.base import BrokerInfo

ALLOW = ("cn-north-*", "cn-east-*")
TARGETS = ("p.mainland.anonymized.device-events", "p.mainland.erasure-requests")


def _mainland(topic: str) -> bool:
    return topic.startswith("p.mainland.")


def _broker(node_id: int, rack: str | None) -> BrokerInfo:
    return BrokerInfo(node_id=node_id, host="localhost", port=9092 + node_id, rack=rack)


def _kinds(brokers: list[BrokerInfo], targets: tuple[str, ...] = TARGETS) -> list[str]:
    result = check_residency(brokers, ALLOW, targets, _mainland)
    assert result.ok == (not result.problems)
    return [kind for kind, _text in result.problems]


def test_brokers_in_allowed_racks_with_mainland_targets_pass() -> None:
    assert _kinds([_broker(1, "cn-north-1a"), _broker(2, "cn-east-2b")]) == []


def test_one_broker_outside_the_allowed_racks_fails() -> None:
    assert _kinds([_broker(1, "cn-north-1a"), _broker(2, "us-east-1a")]) == ["rack_outside"]


def test_a_pattern_matches_the_whole_rack_not_a_substring() -> None:
    assert _kinds([_broker(1, "xcn-north-1a")]) == ["rack_outside"]


def test_broker_without_a_rack_fails() -> None:
    assert _kinds([_broker(1, None)]) == ["rack_missing"]


def test_target_topic_without_the_mainland_marker_fails() -> None:
    assert _kinds([_broker(1, "cn-north-1a")], (*TARGETS, "p.raw.device-events")) == [
        "topic_prefix"
    ]


def test_a_cluster_reporting_no_brokers_fails() -> None:
    assert _kinds([]) == ["no_brokers"]


def test_a_non_callable_topic_check_fails_every_target() -> None:
    result = check_residency([_broker(1, "cn-north-1a")], ALLOW, TARGETS, None)
    assert not result.ok
    assert [kind for kind, _ in result.problems] == ["topic_prefix", "topic_prefix"]


def test_problem_texts_name_the_broker_and_rack() -> None:
    result = check_residency([_broker(7, "us-east-1a")], ALLOW, TARGETS, _mainland)
    assert "7" in result.problems[0][1] and "us-east-1a" in result.problems[0][1]
