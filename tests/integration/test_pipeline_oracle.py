"""End to end: a hand-built consent scenario through a real worker equals the oracle's outcome.

Consent records are published and acknowledged before the events they govern; a second wave
of withdrawals follows once the first wave of events has left the pipeline, and then events
collected before those withdrawals. The oracle (tests.integration.scenario_oracle) says,
for each event, pass or the first drop reason and which sensitive categories survive.
Passing events pair up on an app version of their own (two persons each, every other
released value equal), so with k = 2 each pair leaves as one group that names it, and
nothing is suppressed. No analyst output carries anything per person (SPEC 5): which
consent record an event was judged on shows only in the outcomes and the counters.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from ingest.kafka import ProducerOptions, Transport
from ingest.kafka.topics import TopicSet
from ingest.metrics_text import by_label
from ingest.sdk.publisher import Publisher
from schemas.codec import Codec
from tests.integration.fault_helpers import accounting, held
from tests.integration.pipeline_scenario import build_scenario, scenario_start
from tests.integration.scenario_oracle import expectations
from tests.integration.scenario_records import (
    build_event,
    consent_records,
    iter_events,
    pair_versions,
    released_shape,
    removed_fields,
)
from tests.integration.scenario_types import CATEGORIES, Rules, UserScript
from tests.integration.worker_harness import WorkerProcess, dump, read_topic, start_worker, wait_for

pytestmark = pytest.mark.integration

RULES = Rules(min_policy_version=2)
K = 2
# A wave reaches the worker in one poll or two, well inside one hold window.
WORKER_ARGS = ("--k", str(K), "--max-delay", "8", "--min-policy-version", "2")
# One linger window for a whole wave, so each wave reaches the broker as one request.
OPTIONS = ProducerOptions(linger_ms=200, batch_size=1024 * 1024)
SUPPRESSED = "kanon_suppressed"


def publish_consents(pub: Publisher, users: list[UserScript], wave: int) -> int:
    """Publish every consent record of a wave and wait for Kafka's acknowledgement."""
    sent = 0
    for user in users:
        for record in consent_records(user, wave):
            if record is None:
                pub.tombstone(user.user_id)
            else:
                pub.send_valid("consent_record", record)
            sent += 1
    pub.flush()
    return sent


def publish_events(
    pub: Publisher, users: list[UserScript], wave: int, versions: dict[str, str]
) -> dict[str, dict[str, Any]]:
    """Publish a wave's events (acknowledged); returns each event dict by its tag."""
    sent: dict[str, dict[str, Any]] = {}
    for user, planned in iter_events(users, wave):
        event = build_event(user, planned, versions.get(planned.tag, "1.0.0"))
        pub.send_valid(planned.schema, event)
        sent[planned.tag] = event
    pub.flush()
    return sent


def settled(worker: WorkerProcess, consumed: int) -> bool:
    """Every published event consumed, nothing held, and the books balance."""
    samples = worker.metrics()
    left, right = accounting(samples)
    return left == consumed and held(samples) == 0 and left == right


def wait_settled(worker: WorkerProcess, consumed: int) -> None:
    """Bounded wait for `settled`, with the worker's log on failure."""
    try:
        wait_for(lambda: settled(worker, consumed), timeout_s=45, what=f"{consumed} processed")
    except AssertionError:
        raise AssertionError(f"{dump(worker.metrics())}\n{worker.diagnosis()}") from None


def read_outputs(
    transport: Transport, topics: TopicSet
) -> list[tuple[str, dict[str, Any], dict[str, bytes]]]:
    """(schema, decoded record, headers) of every committed anonymized output."""
    codec = Codec()
    out = []
    for topic, schema in (
        (topics.name("anon_device"), "anonymized_device_event"),
        (topics.name("anon_log"), "anonymized_log_event"),
    ):
        for msg in read_topic(transport, topic):
            assert msg.value is not None, "anonymized records are never tombstones"
            out.append((schema, codec.decode_as(msg.value, schema), dict(msg.headers)))
    return out


def shown(schema: str, record: dict[str, Any]) -> tuple[str, str, bool, bool]:
    """What an output says of its event: schema, version, location kept, app count kept."""
    event_schema = schema.removeprefix("anonymized_")
    located = record.get("geohash") is not None
    apps = record.get("installed_app_bucket") is not None
    return (record["app_version"], event_schema, located, apps)


def test_anonymized_output_equals_the_consent_oracle(
    kafka_bootstrap: str,
    transport: Transport,
    topic_set: TopicSet,
    group_id: str,
    tmp_path: Path,
    client: str,
) -> None:
    """Drops by reason, released records, surviving sensitive fields and erasures."""
    t0 = scenario_start(int(time.time() * 1000))
    users = build_scenario(t0, f"oracle-{group_id}")
    verdicts = expectations(users, RULES)
    assert {v.reason for v in verdicts} >= {
        "unknown_user",
        "account_cancelled",
        "policy_version_too_old",
        "minor_without_guardian_consent",
        "consent_withdrawn",
        "no_analytics_consent",
        None,
    }, "the scenario covers every reason"
    versions = pair_versions(users, verdicts)
    assert K == 2 and len(versions) == sum(v.reason is None for v in verdicts)

    pub = Publisher(transport, topic_set, OPTIONS)
    publish_consents(pub, users, 1)
    events = publish_events(pub, users, 1, versions)
    worker = start_worker(
        kafka_bootstrap,
        topic_set,
        tmp_path,
        group=group_id,
        extra=[*WORKER_ARGS, "--client", client],
    )
    try:
        worker.wait_ready()
        wait_settled(worker, len(events))
        publish_consents(pub, users, 2)
        events.update(publish_events(pub, users, 2, versions))
        wait_settled(worker, len(events))
        samples = worker.metrics()
    finally:
        pub.close()
        code = worker.stop()
    assert code == 0, worker.log()
    left, right = accounting(samples)
    assert left == right == len(events), "SPEC 9 accounting identity"

    # (a) every drop counted under the oracle's reason; nothing suppressed, nothing dead-lettered
    dropped = by_label(samples, "consentgate_dropped_total", "reason")
    assert dropped.get(SUPPRESSED, 0) == 0, dump(dropped)
    got_reasons = Counter({r: int(n) for r, n in dropped.items() if n and r != SUPPRESSED})
    want_reasons = Counter(v.reason for v in verdicts if v.reason is not None)
    assert got_reasons == want_reasons
    assert sum(by_label(samples, "consentgate_dead_lettered_total", "reason").values()) == 0
    by_tag = {v.tag: v for v in verdicts}
    want_removed: Counter[str] = Counter()
    for tag, event in events.items():
        want_removed.update(removed_fields(event, by_tag[tag]))
    got_removed = by_label(samples, "consentgate_fields_removed_total", "category")
    assert {c: int(got_removed.get(c, 0)) for c in CATEGORIES} == {
        c: want_removed[c] for c in CATEGORIES
    }

    # (b) the released records are exactly the oracle's passes, each once, and (c) each
    # shows a location and an app count exactly where its category survives
    planned_by_tag = {e.tag: e for u in users for e in u.events}
    expected = Counter(
        (versions[v.tag][: versions[v.tag].rindex(".")], *released_shape(planned_by_tag[v.tag], v))
        for v in verdicts
        if v.reason is None
    )
    outputs = read_outputs(transport, topic_set)
    got = Counter(shown(schema, record) for schema, record, _headers in outputs)
    assert got == expected, f"missing {expected - got}, unexpected {got - expected}"
    assert all(headers.keys() == {"event-type", "schema-fingerprint"} for *_r, headers in outputs)

    # (e) one erasure request per cancelled account (cancelled record or tombstone)
    codec = Codec()
    erasures = Counter(
        codec.decode_as(msg.value, "erasure_request")["user_id"]
        for msg in read_topic(transport, topic_set.name("erasure"))
        if msg.value is not None
    )
    cancelled = {
        u.user_id for u in users if any(s.kind in ("cancel", "tombstone") for s in u.steps)
    }
    assert erasures == Counter(cancelled)
