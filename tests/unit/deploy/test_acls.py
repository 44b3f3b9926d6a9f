"""The ACL file grants each principal exactly its part of SPEC section 11, on real topic names."""

from __future__ import annotations

import tomllib
from collections import defaultdict
from pathlib import Path
from typing import Any

from kafka.admin import ACLOperation, ACLResourcePatternType, ResourceType

from consumers.settings import PipelineSettings
from ingest.cli.dlq_replay import DLQ_TRANSACTIONAL_ID

REPO = Path(__file__).resolve().parents[3]
ACLS = REPO / "deploy" / "acl" / "acls.toml"
TOPICS = REPO / "ingest" / "kafka" / "topics.toml"
CLUSTER = "kafka-cluster"


def _acls() -> dict[str, Any]:
    return tomllib.loads(ACLS.read_text(encoding="utf-8"))


def _topics_file() -> dict[str, Any]:
    """The topic file read directly, independent of ingest.kafka.topics."""
    return tomllib.loads(TOPICS.read_text(encoding="utf-8"))


def _topic_names() -> dict[str, str]:
    """Role -> topic name relative to the prefix."""
    return {role: entry["name"] for role, entry in _topics_file()["topics"].items()}


def _topic_grants() -> dict[str, dict[str, set[str]]]:
    """Principal key -> operation -> literal topic names it may use."""
    out: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for key, principal in _acls()["principals"].items():
        for grant in principal["grants"]:
            if grant["resource"] != "TOPIC":
                continue
            for op in grant["operations"]:
                out[key][op] |= set(grant["names"])
    return out


def test_every_grant_uses_kafka_vocabulary() -> None:
    acls = _acls()
    assert acls["version"] == 1
    for resource in acls["prefixed_resources"]:
        assert resource in ResourceType.__members__
    for key, principal in acls["principals"].items():
        assert principal["principal"] == f"User:{key}"
        assert principal["doc"].strip()
        assert principal["grants"], key
        for grant in principal["grants"]:
            assert set(grant) == {"resource", "pattern", "names", "operations"}, key
            assert grant["resource"] in ResourceType.__members__, key
            assert grant["pattern"] in ACLResourcePatternType.__members__, key
            assert grant["pattern"] in {"LITERAL", "PREFIXED"}, key
            assert grant["names"], key
            for op in grant["operations"]:
                assert op in ACLOperation.__members__, (key, op)
            if grant["resource"] == "CLUSTER":
                assert grant["names"] == [CLUSTER], key


def test_topic_grants_are_literal_names_from_the_topic_file() -> None:
    known = set(_topic_names().values())
    for key, principal in _acls()["principals"].items():
        for grant in principal["grants"]:
            if grant["resource"] == "TOPIC":
                assert grant["pattern"] == "LITERAL", key
                assert set(grant["names"]) <= known, (key, set(grant["names"]) - known)


def test_the_four_principals_of_the_spec_and_operations_exist() -> None:
    assert set(_acls()["principals"]) == {
        "producer",
        "consent-service",
        "pipeline",
        "analyst",
        "consentgate-ops",
    }


def test_analysts_read_only_topics_marked_analyst() -> None:
    analyst_topics = {e["name"] for e in _topics_file()["topics"].values() if e.get("analyst")}
    assert analyst_topics
    grants = _topic_grants()["analyst"]
    assert grants["READ"] == analyst_topics
    assert set(grants) <= {"READ", "DESCRIBE"}
    assert grants["DESCRIBE"] <= analyst_topics


def test_analysts_have_no_transactional_or_cluster_rights() -> None:
    for grant in _acls()["principals"]["analyst"]["grants"]:
        assert grant["resource"] in {"TOPIC", "GROUP"}
        assert set(grant["operations"]) <= {"READ", "DESCRIBE"}


def test_producers_write_only_the_raw_topics() -> None:
    names = _topic_names()
    grants = _topic_grants()["producer"]
    assert set(grants) == {"WRITE", "DESCRIBE"}
    assert grants["WRITE"] == {names["raw_device"], names["raw_log"]}


def test_services_publish_changes_and_only_the_consent_writer_writes_the_consent_topic() -> None:
    names = _topic_names()
    writers = {key for key, ops in _topic_grants().items() if names["consent"] in ops["WRITE"]}
    assert writers == {"pipeline"}, "one writer per user: no change lost to a concurrent write"
    assert _topic_grants()["consent-service"]["WRITE"] == {names["consent_changes"]}
    assert names["consent"] in _topic_grants()["consent-service"]["READ"]


def test_the_pipeline_reads_raw_and_consent_and_writes_mainland_and_consent_state() -> None:
    names = _topic_names()
    marker = _topics_file()["mainland_marker"]
    grants = _topic_grants()["pipeline"]
    assert {names["raw_device"], names["raw_log"], names["consent"]} <= grants["READ"]
    assert names["consent_changes"] in grants["READ"]
    mainland = {n for n in names.values() if n.startswith(marker)}
    assert grants["WRITE"] == mainland - {names["dead_letter_replays"]} | {names["consent"]}
    inputs = {names["raw_device"], names["raw_log"], names["consent"], names["consent_changes"]}
    assert grants["READ"] - inputs <= mainland


def test_only_the_pipeline_reads_raw_topics_and_the_checkpoint() -> None:
    names = _topic_names()
    guarded = {
        names["raw_device"],
        names["raw_log"],
        names["kanon_pending"],
        names["kanon_repartition"],
    }
    for key, ops in _topic_grants().items():
        if key != "pipeline":
            assert not ops["READ"] & guarded, key


def test_only_operations_read_the_dead_letters_and_their_replay_log() -> None:
    names = _topic_names()
    for role in ("dead_letter", "dead_letter_replays"):
        readers = {key for key, ops in _topic_grants().items() if names[role] in ops["READ"]}
        assert readers == {"consentgate-ops"}, (role, readers)


def test_every_topic_has_one_writing_principal_and_raw_topics_a_replaying_one() -> None:
    names = _topic_names()
    raw = {names["raw_device"], names["raw_log"]}
    for role, name in names.items():
        writers = {key for key, ops in _topic_grants().items() if name in ops["WRITE"]}
        if name in raw:
            assert writers == {"producer", "consentgate-ops"}, (role, writers)
        else:
            assert len(writers) == 1, (role, writers)


def test_operations_replay_to_raw_topics_only_under_their_own_transactional_ids() -> None:
    names = _topic_names()
    ops = _acls()["principals"]["consentgate-ops"]["grants"]
    grants = _topic_grants()["consentgate-ops"]
    assert grants["READ"] == {names["dead_letter"], names["dead_letter_replays"]}
    assert grants["WRITE"] == {names["raw_device"], names["raw_log"], names["dead_letter_replays"]}
    assert {g["resource"] for g in ops} == {"TOPIC", "TRANSACTIONAL_ID"}, "no group, no cluster"
    (txn,) = [g for g in ops if g["resource"] == "TRANSACTIONAL_ID"]
    assert txn["pattern"] == "PREFIXED" and set(txn["operations"]) == {"WRITE", "DESCRIBE"}
    pipeline = _acls()["principals"]["pipeline"]["grants"]
    worker_ids = [n for g in pipeline if g["resource"] == "TRANSACTIONAL_ID" for n in g["names"]]
    for mine in txn["names"]:
        assert not any(mine.startswith(w) or w.startswith(mine) for w in worker_ids)
    assert DLQ_TRANSACTIONAL_ID.startswith(tuple(txn["names"]))


def test_the_pipeline_holds_its_group_and_transactional_ids() -> None:
    grants = _acls()["principals"]["pipeline"]["grants"]
    by_resource = {g["resource"]: g for g in grants if g["resource"] != "TOPIC"}
    assert by_resource["GROUP"]["pattern"] == "PREFIXED"
    assert "READ" in by_resource["GROUP"]["operations"]
    assert by_resource["TRANSACTIONAL_ID"]["pattern"] == "PREFIXED"
    assert {"WRITE", "DESCRIBE"} <= set(by_resource["TRANSACTIONAL_ID"]["operations"])
    assert by_resource["CLUSTER"]["operations"] == ["IDEMPOTENT_WRITE"]
    defaults = PipelineSettings.model_fields
    assert any(
        str(defaults["group_id"].default).startswith(n) for n in by_resource["GROUP"]["names"]
    )
    prefixes = by_resource["TRANSACTIONAL_ID"]["names"]
    assert any(str(defaults["transactional_id_prefix"].default).startswith(n) for n in prefixes)
