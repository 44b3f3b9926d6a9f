"""Consent changes through the SDK, late, twice and from two services at once (SPEC 5).

Changes go through `ingest.sdk.consent_client.ConsentClient` to the consent-changes topic and
the consent writer of a real worker folds them. The expected decisions come from a naive
fold of each user's whole history in the order the changes were made (the oracle of
tests.unit.consumers.test_consent_property), never from the pipeline's code. Passing
events pair up on an app version of their own (k = 2), so the released records show
which events passed and which kept their location.
"""

from __future__ import annotations

import random
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from consumers.consent import ConsentRules
from consumers.consent_changes import (
    AcceptPolicy,
    GrantCategory,
    GrantPurpose,
    SetBirth,
    WithdrawCategory,
    WithdrawPurpose,
    fold,
)
from ingest.kafka import ProducerOptions, Transport
from ingest.kafka.consent_store import read_consent
from ingest.kafka.topics import TopicSet
from ingest.metrics_text import by_label
from ingest.sdk.consent_client import ChangeReceipt, ConsentClient
from ingest.sdk.publisher import Publisher
from schemas.codec import Codec
from schemas.fields import field_tags
from tests.integration.fault_helpers import accounting, held
from tests.integration.worker_harness import dump, read_topic, start_worker, wait_for
from tests.unit.consumers.test_consent_property import Step, oracle

pytestmark = pytest.mark.integration

HOUR = 3_600_000
S = 1000
LOC = "precise_location"
RULES = ConsentRules(missing_birth_needs_guardian=True)
USERS = 24


def _hour_start(now_ms: int) -> int:
    """Ten minutes into the previous UTC hour: every change and event shares one hour."""
    return now_ms - now_ms % HOUR - HOUR + 10 * 60 * S


def histories(t0: int, rng: random.Random) -> dict[str, list[Step]]:
    """Each user: an adult who accepted policy 3, then grants and withdrawals, some at one ms."""
    out: dict[str, list[Step]] = {}
    for n in range(USERS):
        steps = [Step(t0, "birth", birth=(None, 1980, None)), Step(t0, "accept", version=3)]
        at = t0 + rng.randint(1, 60) * S
        for _ in range(rng.randint(2, 6)):
            key = rng.choice(("analytics", "analytics", LOC))
            steps.append(Step(at, rng.choice(("grant", "grant", "withdraw")), key=key))
            at += rng.choice((0, 1, 9, 2 * S, 30 * S))  # equal times and near misses
        out[f"cc-{uuid.uuid4().hex[:6]}-{n:02d}"] = steps
    return out


def _change(step: Step) -> Any:
    if step.kind == "birth":
        return SetBirth(*step.birth)
    if step.kind == "accept":
        return AcceptPolicy(step.version)
    if step.key == "analytics":
        return GrantPurpose() if step.kind == "grant" else WithdrawPurpose()
    return GrantCategory(LOC) if step.kind == "grant" else WithdrawCategory(LOC)


def event_times(steps: list[Step], end: int) -> list[int]:
    """Instants that matter: around every change, and between them."""
    times = sorted({s.at + d for s in steps for d in (-1, 0, 1)} | {end})
    return [t for t in times if t >= steps[0].at][:8]


def device_event(user_id: str, at: int, version: str) -> dict[str, Any]:
    event: dict[str, Any] = dict.fromkeys(field_tags("device_event"))
    event.update(
        event_id=str(uuid.uuid4()),
        user_id=user_id,
        event_time=at,
        app_id="com.example.consent",
        app_version=version,
        brand="Xiaomi",
        model="Redmi Note 12",
        os_name="Android",
        os_version="13.0.1",
        latitude=39.908722,
        longitude=116.397499,
        location_source="GPS",
    )
    return event


def pair_up(
    passes: list[tuple[str, int, tuple[str | None, bool]]], t0: int
) -> tuple[dict[tuple[str, int], str], list[dict[str, Any]]]:
    """A version per passing event shared with one event of another person of its class
    (located or not); an event left without a partner gets a twin from a filler user."""
    versions: dict[tuple[str, int], str] = {}
    twins: list[dict[str, Any]] = []
    by_class: dict[bool, list[tuple[str, int]]] = {}
    for user, at, (_reason, located) in passes:
        by_class.setdefault(located, []).append((user, at))
    for located, members in sorted(by_class.items()):
        counts = Counter(user for user, _at in members)
        members.sort(key=lambda m: (-counts[m[0]], m[0], m[1]))
        half = (len(members) + 1) // 2
        for i in range(half):
            version = f"8.{len(versions) + len(twins)}.0"
            versions[members[i]] = version
            if i + half < len(members):
                partner = members[i + half]
                assert partner[0] != members[i][0], "one person holds over half of a class"
                versions[partner] = version
            else:
                twin = device_event(f"cc-twin-{uuid.uuid4().hex[:6]}", t0 + 5 * S, version)
                if not located:
                    twin.update(latitude=None, longitude=None, location_source=None)
                twins.append(twin)
    return versions, twins


def test_late_and_duplicated_changes_decide_every_event_as_the_naive_fold(
    kafka_bootstrap: str,
    transport: Transport,
    topic_set: TopicSet,
    group_id: str,
    tmp_path: Path,
    client: str,
) -> None:
    rng = random.Random(20261130)
    t0 = _hour_start(int(time.time() * 1000))
    users = histories(t0, rng)
    # Publication: every change once in a shuffled order (so many arrive late), a fifth twice.
    sends = [(u, i) for u, steps in users.items() for i in range(len(steps))]
    rng.shuffle(sends)
    sends += rng.sample(sends, len(sends) // 5)
    worker = start_worker(
        kafka_bootstrap,
        topic_set,
        tmp_path,
        group=group_id,
        extra=["--k", "2", "--max-delay", "8", "--client", client],
    )
    try:
        worker.wait_ready()
        first_arrival: dict[tuple[str, int], int] = {}
        receipts: list[ChangeReceipt] = []
        with ConsentClient(transport, topic_set) as consent:
            for n, (user, i) in enumerate(sends):
                step = users[user][i]
                receipts.append(consent.record(user, _change(step), step.at, f"{user}-{i}"))
                first_arrival.setdefault((user, i), n)
            records = consent.wait(receipts, timeout_s=60)
        assert set(records) == set(users)

        # The naive fold: each user's changes by the time they were made, ties by first arrival.
        now = int(time.time() * 1000)
        planned: list[tuple[str, int, tuple[str | None, bool]]] = []
        for user, steps in users.items():
            order = sorted(range(len(steps)), key=lambda i: (steps[i].at, first_arrival[(user, i)]))
            timeline = [steps[i] for i in order]
            for at in event_times(timeline, t0 + 30 * 60 * S):
                reason, allowed, _minor = oracle(timeline, at, now, RULES)
                planned.append((user, at, (reason, LOC in allowed)))
        passes = [p for p in planned if p[2][0] is None]
        assert len(passes) > 10 and len(planned) - len(passes) > 10, "both outcomes occur"
        versions, extra_events = pair_up(passes, t0)
        with ConsentClient(transport, topic_set) as consent:
            granted = [
                SetBirth(birth_year=1980),
                AcceptPolicy(3),
                GrantPurpose(),
                GrantCategory(LOC),
            ]
            twins = [
                consent.record(twin["user_id"], change, t0 - 60 * S)
                for twin in extra_events
                for change in granted
            ]
            consent.wait(twins, timeout_s=60)
        events = [device_event(u, at, versions.get((u, at), "1.0.0")) for u, at, _ in planned]
        with Publisher(transport, topic_set, ProducerOptions(linger_ms=200)) as pub:
            for event in [*events, *extra_events]:
                pub.send_valid("device_event", event)
        total = len(events) + len(extra_events)

        def settled() -> bool:
            samples = worker.metrics()
            left, right = accounting(samples)
            return left == right == total and held(samples) == 0

        try:
            wait_for(settled, timeout_s=60, what=f"{total} events settled")
        except AssertionError:
            raise AssertionError(f"{dump(worker.metrics())}\n{worker.diagnosis()}") from None
        samples = worker.metrics()
    finally:
        assert worker.stop() == 0, worker.log()

    dropped = by_label(samples, "consentgate_dropped_total", "reason")
    assert dropped.get("kanon_suppressed", 0) == 0, dump(dropped)
    want = Counter(reason for _u, _at, (reason, _loc) in planned if reason is not None)
    assert Counter({r: int(n) for r, n in dropped.items() if n and r != "kanon_suppressed"}) == want
    codec = Codec()
    got = Counter()
    for msg in read_topic(transport, topic_set.name("anon_device")):
        assert msg.value is not None
        record = codec.decode_as(msg.value, "anonymized_device_event")
        got[(record["app_version"], record["geohash"] is not None)] += 1
    expected = Counter()
    for (user, at), version in versions.items():
        located = next(loc for u, a, (_r, loc) in planned if (u, a) == (user, at))
        expected[(version[: version.rindex(".")], located)] += 1
    for twin in extra_events:
        expected[(twin["app_version"][:-2], twin["latitude"] is not None)] += 1
    assert got == expected, f"missing {expected - got}, unexpected {got - expected}"


def test_two_services_changing_one_user_at_once_lose_no_change(
    kafka_bootstrap: str,
    transport: Transport,
    topic_set: TopicSet,
    group_id: str,
    tmp_path: Path,
) -> None:
    user = f"cc-both-{uuid.uuid4().hex[:6]}"
    base = int(time.time() * 1000) - 10 * 60 * S
    plans = {
        "a": [
            (GrantCategory(LOC) if n % 2 else WithdrawCategory(LOC), base + 2 * n * S)
            for n in range(40)
        ],
        "b": [
            (GrantPurpose() if n % 2 else WithdrawPurpose(), base + (2 * n + 1) * S)
            for n in range(40)
        ],
    }
    receipts: dict[str, list[ChangeReceipt]] = {}
    worker = start_worker(kafka_bootstrap, topic_set, tmp_path, group=group_id)
    try:
        worker.wait_ready()

        def service(name: str) -> None:
            with ConsentClient(transport, topic_set) as consent:
                receipts[name] = [
                    consent.record(user, change, at, f"{name}-{n}")
                    for n, (change, at) in enumerate(plans[name])
                ]

        threads = [threading.Thread(target=service, args=(name,)) for name in plans]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        with ConsentClient(transport, topic_set) as consent:
            record = consent.wait([r for rs in receipts.values() for r in rs], timeout_s=60)[user]
        assert record is not None

        # The CLI records a change once, however often it is sent with its id.
        for _ in range(2):
            done = subprocess.run(
                [
                    sys.executable, "-m", "ingest.cli.main", "consent", "grant", user,
                    "--category", "installed_apps", "--change-id", "cli-1",
                    "--bootstrap", kafka_bootstrap, "--prefix", topic_set.prefix,
                ],
                capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            assert "1 change(s) applied" in done.stderr
    finally:
        assert worker.stop() == 0, worker.log()

    ids = {c["change_id"] for c in record["changes"]} | set(record["compacted_ids"])
    assert ids >= {f"{name}-{n}" for name in plans for n in range(40)}, "no change lost"
    history = [c for c in record["changes"]]
    state = fold(history)
    assert (record["purposes"], record["categories"]) == (state["purposes"], state["categories"])
    assert record["purposes"]["analytics"] == {"granted": True, "since": base + 79 * S}
    assert record["categories"][LOC] == {"granted": True, "since": base + 78 * S}
    _found, latest = read_consent(transport, topic_set, user)
    assert latest is not None
    assert [c["change_id"] for c in latest["changes"]].count("cli-1") == 1
    assert latest["categories"]["installed_apps"]["granted"] is True
