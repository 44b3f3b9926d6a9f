"""Privacy of the analyst stream: k persons behind every visible content, no identifier anywhere.

Simulated fleet traffic runs through real workers (one per Kafka client, and two in one
group) with the default k = 10. Each released record is read back whole, as an analyst
reads it: values, headers, key and Kafka timestamp. `benchmarks.privacy_oracle`, which
shares no code with the pipeline, counts from the input the persons whose consented
events could have produced each content (SPEC 7). A second test scans every output byte
for the identifiers the input carried.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from benchmarks.privacy_oracle import Index, candidates
from ingest.kafka import Message, ProducerOptions, Transport
from ingest.kafka.topics import TopicSet
from ingest.metrics_text import Samples, merge, metric_sum
from ingest.sdk.publisher import Publisher
from ingest.simulator.fleet import Fleet, luhn_check_digit
from ingest.simulator.simulate import Simulation
from schemas.codec import Codec
from schemas.fields import field_tags
from tests.integration.fault_helpers import accounting, held
from tests.integration.worker_harness import (
    WorkerProcess,
    dump,
    read_topic,
    start_worker,
    wait_for,
)

pytestmark = pytest.mark.integration

K = 10
HOLD_S = 4
OPTIONS = ProducerOptions(linger_ms=50, batch_size=1024 * 1024)
OUTPUT_SCHEMA = {"anon_device": "anonymized_device_event", "anon_log": "anonymized_log_event"}
IDENTIFIER_FIELDS = (
    "imei",
    "mac_address",
    "android_id",
    "advertising_id",
    "serial_number",
    "wifi_bssid",
    "wifi_ssid",
    "user_id",
    "event_id",
    "session_id",
    "ip_address",
)
TEXT_PATTERNS = {
    "phone": re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)"),
    "email": re.compile(r"[\w.+-]+(?:@|%40)[\w-]+(?:\.[\w-]+)+"),
    "ipv4": re.compile(r"(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?![\d.])"),
    "resident_id": re.compile(r"(?<!\d)\d{17}[\dXx](?!\d)"),
    # a latitude,longitude pair, or a lat=/lng= query value (not any decimal: "18.909958"
    # inside "120.79.18.909958" is a malformed server address, not a place)
    "coordinate": re.compile(
        r"-?\d{1,3}\.\d{4,}(?=\s*,\s*-?\d{1,3}\.\d{4,})|(?<=,)-?\d{1,3}\.\d{4,}"
        r"|(?<=lat=)-?\d{1,3}\.\d+|(?<=lng=)-?\d{1,3}\.\d+|(?<=lon=)-?\d{1,3}\.\d+"
    ),
}
MIN_NEEDLE = 5


def publish(pub: Publisher, items: Iterable[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Publish (event type, record) pairs in order; returns the events (not consent)."""
    events = []
    for event_type, record in items:
        pub.send_valid(event_type, record)
        if event_type != "consent_record":
            events.append(record)
    pub.flush()
    return events


def simulated(start_ms: int, seed: int, users: int = 250, count: int = 3000) -> list[Any]:
    """A fleet's consent records and events (with their send offsets), in publish order."""
    fleet = Fleet(seed=seed, users=users, start_ms=start_ms)
    return list(Simulation(fleet).items(count=count, rate_per_s=500))


def run_until_settled(
    bootstrap: str,
    topics: TopicSet,
    group: str,
    log_dir: Path,
    consumed: int,
    *,
    workers: int = 1,
    client: str = "kafka-python",
    feed: threading.Thread | None = None,
) -> Samples:
    """Run workers until every event is consumed and nothing is held; SIGTERM; metrics."""
    extra = ("--max-delay", str(HOLD_S), "--client", client)
    procs: list[WorkerProcess] = [
        start_worker(bootstrap, topics, log_dir, index=i, group=group, extra=extra)
        for i in range(workers)
    ]
    try:
        for worker in procs:
            worker.wait_ready()
        if feed is not None:
            feed.start()
            feed.join()

        def totals() -> Samples:
            return merge(worker.metrics() for worker in procs)

        def settled() -> bool:
            samples = totals()
            left, right = accounting(samples)
            return left == right == consumed and held(samples) == 0

        try:
            # Generous: two workers and a repartition hop on a busy 2-core machine.
            wait_for(settled, timeout_s=300, what=f"{consumed} events processed")
        except AssertionError:
            raise AssertionError(f"{dump(totals())}\n{procs[0].diagnosis()}") from None
        samples = totals()
    finally:
        codes = [worker.stop() for worker in procs]
    assert codes == [0] * workers, procs[0].log()
    return samples


def outputs(transport: Transport, topics: TopicSet) -> list[tuple[str, Message]]:
    """(output schema, message) of every committed record on both anonymized topics."""
    return [
        (schema, msg)
        for role, schema in OUTPUT_SCHEMA.items()
        for msg in read_topic(transport, topics.name(role))  # type: ignore[arg-type]
    ]


@pytest.mark.timeout(600)
@pytest.mark.parametrize(
    ("client_name", "workers"),
    [("kafka-python", 1), ("confluent", 1), ("kafka-python", 2)],
    ids=["kafka-python", "confluent", "kafka-python-2-workers"],
)
def test_every_visible_content_could_come_from_k_persons_of_the_input(
    kafka_bootstrap: str,
    transport: Transport,
    topic_set: TopicSet,
    group_id: str,
    tmp_path: Path,
    client_name: str,
    workers: int,
) -> None:
    """A paced run of 400 users' traffic; persons counted from the input, not the pipeline."""
    start_ms = int(time.time() * 1000) - 60_000
    items = simulated(start_ms, seed=20261130, users=400, count=6000)
    consents = {i.record["user_id"]: i.record for i in items if i.event_type == "consent_record"}
    events = [(i.event_type, i.record) for i in items if i.event_type != "consent_record"]
    with Publisher(transport, topic_set, OPTIONS) as pub:
        publish(pub, [("consent_record", record) for record in consents.values()])

    def feed() -> None:
        began = time.monotonic()
        with Publisher(transport, topic_set, ProducerOptions(linger_ms=20)) as pub:
            for n, (event_type, record) in enumerate(events):
                wait = began + n / 600 - time.monotonic()  # about 10 s of traffic
                if wait > 0:
                    time.sleep(wait)
                pub.send_valid(event_type, record)

    samples = run_until_settled(
        kafka_bootstrap,
        topic_set,
        group_id,
        tmp_path,
        len(events),
        workers=workers,
        client=client_name,
        feed=threading.Thread(target=feed),
    )

    codec = Codec()
    index = Index(candidates(events, consents))
    released = 0
    short: Counter[int] = Counter()
    contents: dict[tuple[Any, ...], int] = {}
    for schema, msg in outputs(transport, topic_set):
        assert msg.value is not None and msg.key is None
        assert dict(msg.headers) == {
            "event-type": schema.encode(),
            "schema-fingerprint": codec.fingerprint(schema).hex().encode(),
        }
        record = codec.decode_as(msg.value, schema)
        assert msg.timestamp_ms == record["event_hour"], "the timestamp is the released time"
        record.pop("anon_id")
        key = (schema, tuple(sorted(record.items(), key=lambda kv: kv[0])))
        if key not in contents:
            contents[key] = index.persons_behind(schema.removeprefix("anonymized_"), record, K)
        if contents[key] < K:
            short[contents[key]] += 1
        released += 1
    forwarded = metric_sum(samples, "consentgate_forwarded_total")
    assert released == forwarded >= 0.6 * len(events), "most of the traffic was released"
    assert not short, f"records whose content fewer than {K} persons could produce: {dict(short)}"
    suppressed = metric_sum(samples, "consentgate_kanon_suppressed_total")
    assert suppressed <= 0.05 * (released + suppressed)


def handmade(start_ms: int) -> list[tuple[str, dict[str, Any]]]:
    """12 consenting adults sharing one QI tuple, with distinctive identifiers everywhere."""
    items: list[tuple[str, dict[str, Any]]] = []
    long_ago = start_ms - 86_400_000
    for i in range(12):
        user_id = f"77{i:08d}"
        phone, email, ip = f"1390000{i:04d}", f"handmade.user{i}@example.cn", f"203.0.113.{i + 10}"
        lat, lon = 30.592812 + i * 1e-5, 114.305511 + i * 1e-5
        imei = f"3520990{i:07d}"
        grant = {"granted": True, "since": long_ago}
        items.append(
            (
                "consent_record",
                {
                    "user_id": user_id,
                    "version": 1,
                    "updated_at": long_ago,
                    "account_status": "ACTIVE",
                    "cancelled_at": None,
                    "policy_acceptances": [{"version": 3, "accepted_at": long_ago}],
                    "purposes": {"analytics": grant},
                    "categories": {
                        c: grant
                        for c in ("device_identifiers", "precise_location", "installed_apps")
                    },
                    "birth_date": None,
                    "birth_year": 1985,
                    "declared_minor": None,
                    "guardian_consent": None,
                },
            )
        )
        common = {
            "user_id": user_id,
            "app_id": "com.example.handmade",
            "app_version": "7.7.7-handmade",
            "brand": "Huawei",
            "model": "Mate 60 Pro",
            "os_name": "HarmonyOS",
            "os_version": "4.0.1",
            "ip_address": ip,
            "time_zone": "Asia/Shanghai",
        }
        for n in range(2):
            device = dict.fromkeys(field_tags("device_event"))
            device.update(common)
            device.update(
                event_id=str(uuid.uuid4()),
                event_time=start_ms + n * 1000 + i,
                imei=imei + luhn_check_digit(imei),
                mac_address=f"DE:AD:BE:EF:{i:02X}:01",
                android_id=f"feedface{i:08x}",
                advertising_id=str(uuid.uuid4()),
                serial_number=f"HMSERIAL{i:04d}X",
                wifi_bssid=f"de:ad:be:ef:{i:02x}:99",
                wifi_ssid=f"HandmadeNet-{i:02d}",
                latitude=lat,
                longitude=lon,
                location_accuracy_m=8.0,
                location_source="GPS",
                installed_apps=["com.tencent.mm", "com.handmade.secret"],
            )
            items.append(("device_event", device))
        session = str(uuid.uuid4())
        texts = [
            ("PAGE_VIEW", f"https://m.example.cn/u/{phone}/orders?email={email}&ip={ip}", None),
            ("CRASH", None, f"bind failed for {phone} / {email} from {ip} at {lat:.6f},{lon:.6f}"),
            (
                "SYSTEM",
                None,
                f"wifi connected: SSID=HandmadeNet-{i:02d} BSSID=de:ad:be:ef:{i:02x}:99",
            ),
        ]
        for n, (log_type, url, message) in enumerate(texts):
            log = dict.fromkeys(field_tags("log_event"))
            log.update(common)
            log.update(
                event_id=str(uuid.uuid4()),
                event_time=start_ms + n * 1000 + i,
                log_type=log_type,
                session_id=session,
                page_url=url,
                message=message,
                system_event="wifi_connected" if log_type == "SYSTEM" else None,
            )
            items.append(("log_event", log))
    return items


def needles(events: list[dict[str, Any]]) -> dict[bytes, str]:
    """Every identifier value the input carried (lower-cased bytes) -> what kind it is."""
    found: dict[str, str] = {}
    for event in events:
        for name in IDENTIFIER_FIELDS:
            value = event.get(name)
            if value:
                found[str(value)] = name
        for name in ("latitude", "longitude"):
            value = event.get(name)
            if value is not None:
                found[f"{value:.4f}"] = name
                found[repr(value)] = name
        for name in ("page_url", "message"):
            text = event.get(name) or ""
            for kind, pattern in TEXT_PATTERNS.items():
                for match in pattern.findall(text):
                    found[match] = f"{kind} in {name}"
                    found[match.replace("%40", "@")] = f"{kind} in {name}"
    return {k.lower().encode(): v for k, v in found.items() if len(k) >= MIN_NEEDLE}


def test_no_input_identifier_reaches_the_anonymized_topics(
    kafka_bootstrap: str, transport: Transport, topic_set: TopicSet, group_id: str, tmp_path: Path
) -> None:
    """Keys, values and every header of every output record, scanned as raw bytes."""
    start_ms = int(time.time() * 1000) - 240_000
    fleet = [(i.event_type, i.record) for i in simulated(start_ms, seed=4242)]
    items = fleet + handmade(start_ms)
    with Publisher(transport, topic_set, OPTIONS) as pub:
        events = publish(pub, items)
    run_until_settled(kafka_bootstrap, topic_set, group_id, tmp_path, len(events))

    codec = Codec()
    blobs: list[tuple[bytes, dict[str, Any]]] = []
    handmade_released = 0
    for schema, msg in outputs(transport, topic_set):
        assert msg.value is not None
        record = codec.decode_as(msg.value, schema)
        handmade_released += record["app_version"] in ("7.7", "7")
        stamp = str(msg.timestamp_ms).encode()
        parts = [msg.key or b"", msg.value, stamp, *(k.encode() + b"=" + v for k, v in msg.headers)]
        blobs.append((b"\x00".join(parts).lower(), record))
    assert handmade_released >= 30, "the distinctive batch was released, not suppressed"
    assert len(blobs) >= 300

    haystack = b"\x01".join(blob for blob, _record in blobs)
    grams = {haystack[i : i + MIN_NEEDLE] for i in range(len(haystack) - MIN_NEEDLE + 1)}
    leaks: Counter[tuple[str, str]] = Counter()
    for needle, kind in needles(events).items():
        if needle[:MIN_NEEDLE] in grams and needle in haystack:
            for blob, record in blobs:
                if needle in blob:
                    leaks[(kind, where(record, needle.decode()))] += 1
    report = {f"{kind} in {place}": n for (kind, place), n in leaks.items()}
    assert not leaks, f"identifier values in output records (kind in field: count): {report}"


def where(record: dict[str, Any], needle: str) -> str:
    """Which output field holds `needle`, with the record's log type (no value shown)."""
    fields = [k for k, v in record.items() if isinstance(v, str) and needle in v.lower()]
    kind = "/".join(str(record[k]) for k in ("log_type", "system_event") if record.get(k))
    return f"{','.join(fields) or 'raw bytes'}{f' ({kind})' if kind else ''}"
