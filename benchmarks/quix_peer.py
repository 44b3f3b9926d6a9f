"""The peer row: the consent workload written with Quix Streams 3.28, exactly-once.

Runs inside benchmarks/.venv-quix (its own environment: Quix pins confluent-kafka
below 2.13), so it imports only the standard library, quixstreams, confluent_kafka
and fastavro, and reads the project's Avro files directly. Work per record, as in
issue 8: decode, consent filter against a table loaded from the consent topic
(analytics purpose granted at the event time and since; account not cancelled),
drop the sensitive fields of categories not granted, geohash the location
(precision 5), build the anonymized record (no identifiers) and re-encode it.
Prints one JSON line: records, seconds, eps, CPU µs/record.
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, cast

import fastavro
from confluent_kafka import Consumer, TopicPartition
from quixstreams import Application  # type: ignore[import-not-found, unused-ignore]

AVRO = Path(__file__).resolve().parents[1] / "schemas" / "avro"
HEADER = 10  # C3 01 + 8-byte fingerprint
BASE32 = "0123456789bcdefghjkmnpqrstuvwxyz"


def _schema(name: str) -> dict[str, Any]:
    raw: dict[str, Any] = json.loads((AVRO / f"{name}.v1.avsc").read_text())
    return raw


_EMPTY = 0xC15D213AA4D7A795


def _table() -> list[int]:
    out = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (_EMPTY & -(fp & 1))
        out.append(fp)
    return out


def _fingerprint(raw: dict[str, Any]) -> bytes:
    """CRC-64-AVRO (Rabin) of the schema's canonical form, little-endian, as the codec frames."""
    canonical = fastavro.schema.to_parsing_canonical_form(raw).encode()
    table, fp = _table(), _EMPTY
    for byte in canonical:
        fp = (fp >> 8) ^ table[(fp ^ byte) & 0xFF]
    return fp.to_bytes(8, "little")


def geohash(lat: float, lon: float, precision: int = 5) -> str:
    """Standard geohash of a point."""
    lat_lo, lat_hi, lon_lo, lon_hi = -90.0, 90.0, -180.0, 180.0
    out: list[str] = []
    bits, ch, even = 0, 0, True
    while len(out) < precision:
        if even:
            mid = (lon_lo + lon_hi) / 2
            if lon >= mid:
                ch, lon_lo = ch * 2 + 1, mid
            else:
                ch, lon_hi = ch * 2, mid
        else:
            mid = (lat_lo + lat_hi) / 2
            if lat >= mid:
                ch, lat_lo = ch * 2 + 1, mid
            else:
                ch, lat_hi = ch * 2, mid
        even = not even
        bits += 1
        if bits == 5:
            out.append(BASE32[ch])
            bits, ch = 0, 0
    return "".join(out)


def _read(data: bytes, schema: Any) -> dict[str, Any]:
    """One Avro body (after the single-object header) as a dict."""
    return cast("dict[str, Any]", fastavro.schemaless_reader(io.BytesIO(data), schema))


def _end_offset(consumer: Any, tp: Any) -> int:
    """High watermark, retried while a fresh topic's leadership settles."""
    for attempt in range(20):
        try:
            return int(consumer.get_watermark_offsets(tp, timeout=10)[1])
        except Exception:
            if attempt == 19:
                raise
            time.sleep(0.5)
    return 0


def load_consent(bootstrap: str, topic: str) -> dict[str, tuple[bool, int | None, dict[str, int]]]:
    """user id -> (cancelled, analytics granted since, {granted category: since})."""
    parsed = fastavro.parse_schema(_schema("consent_record"))
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "quix-peer-consent",
            "enable.auto.commit": False,
        }
    )
    meta = consumer.list_topics(topic, timeout=10)
    parts = [TopicPartition(topic, p, 0) for p in meta.topics[topic].partitions]
    ends = {p.partition: _end_offset(consumer, p) for p in parts}
    consumer.assign(parts)
    table: dict[str, tuple[bool, int | None, dict[str, int]]] = {}
    left = {p for p, end in ends.items() if end > 0}
    while left:
        for msg in consumer.consume(10_000, 1.0):
            if msg.error():
                continue
            user = (msg.key() or b"").decode()
            value = msg.value()
            if value is None:
                table[user] = (True, None, {})
            else:
                rec = _read(value[HEADER:], parsed)
                purpose = rec["purposes"].get("analytics")
                since = purpose["since"] if purpose and purpose["granted"] else None
                cats = {c: g["since"] for c, g in rec["categories"].items() if g["granted"]}
                table[user] = (rec["account_status"] == "CANCELLED", since, cats)
            partition = int(msg.partition() or 0)
            if int(msg.offset() or 0) + 1 >= ends[partition]:
                left.discard(partition)
    consumer.close()
    return table


def make_transform(
    schema_name: str, table: dict[str, tuple[bool, int | None, dict[str, int]]]
) -> Any:
    """The per-record function: bytes in, anonymized bytes (or None when filtered) out."""
    raw = _schema(schema_name)
    reader = fastavro.parse_schema(raw)
    out_raw = _schema(f"anonymized_{schema_name}")
    writer = fastavro.parse_schema(out_raw)
    prefix = b"\xc3\x01" + _fingerprint(out_raw)
    by_category: dict[str, list[str]] = {}
    for f in raw["fields"]:
        if f.get("category"):
            by_category.setdefault(f["category"], []).append(f["name"])
    out_fields = [f["name"] for f in out_raw["fields"]]
    carried = [name for name in out_fields if name in {f["name"] for f in raw["fields"]}]
    template = dict.fromkeys(out_fields)
    template.update(time_granularity="HOUR", generalization_level=0, policy_version="1")

    def transform(value: bytes) -> bytes | None:
        event = _read(value[HEADER:], reader)
        state = table.get(event["user_id"])
        t = event["event_time"]
        if state is None or state[0] or state[1] is None or state[1] > t:
            return None
        granted = state[2]
        for category, names in by_category.items():
            since = granted.get(category)
            if since is None or since > t:
                for name in names:
                    event[name] = None
        out = template.copy()
        for name in carried:
            out[name] = event[name]
        out["anon_id"] = str(uuid.uuid4())
        out["event_hour"] = t - t % 3_600_000
        lat, lon = event.get("latitude"), event.get("longitude")
        if "geohash" in out and lat is not None and lon is not None:
            out["geohash"] = geohash(lat, lon)
        buf = io.BytesIO()
        buf.write(prefix)
        fastavro.schemaless_writer(buf, writer, out)
        return buf.getvalue()

    return transform


def main(argv: list[str] | None = None) -> int:
    """Run the Quix application until `--events` records were processed; print the result."""
    parser = argparse.ArgumentParser(prog="quix_peer")
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args(argv)
    p = args.prefix
    table = load_consent(args.bootstrap, f"{p}consent.state")
    seen = {"n": 0, "t0": 0.0, "cpu0": 0.0}
    apps: list[Any] = []

    def cpu() -> float:
        u = resource.getrusage(resource.RUSAGE_SELF)
        return u.ru_utime + u.ru_stime

    app = Application(
        broker_address=args.bootstrap,
        consumer_group=f"{p}quix-peer",
        auto_offset_reset="earliest",
        processing_guarantee="exactly-once",
        commit_interval=0.5,
        consumer_poll_timeout=0.1,
        loglevel="WARNING",
        use_changelog_topics=False,
        state_dir=args.state_dir,
        on_message_processed=lambda topic, partition, offset: processed(),
    )
    apps.append(app)
    watchdog = threading.Timer(args.timeout, app.stop)
    watchdog.daemon = True
    watchdog.start()

    def processed() -> None:
        if not seen["n"]:
            seen["t0"], seen["cpu0"] = time.monotonic(), cpu()
        seen["n"] += 1
        if seen["n"] >= args.events:
            apps[0].stop()

    for raw_name, schema, out_name in (
        ("raw.device-events", "device_event", "quix.anonymized.device-events"),
        ("raw.log-events", "log_event", "quix.anonymized.log-events"),
    ):
        source = app.topic(p + raw_name, value_deserializer="bytes", key_deserializer="bytes")
        sink = app.topic(p + out_name, value_serializer="bytes", key_serializer="bytes")
        sdf = app.dataframe(source)
        sdf = sdf.apply(make_transform(schema, table)).filter(lambda v: v is not None)
        sdf.to_topic(sink, key=lambda _v: None)
    app.run()
    elapsed = time.monotonic() - seen["t0"]
    n = int(seen["n"])
    print(
        json.dumps(
            {
                "records": n,
                "seconds": round(elapsed, 3),
                "eps": round(n / elapsed) if elapsed > 0 else 0,
                "cpu_us_per_record": round((cpu() - seen["cpu0"]) * 1e6 / n, 1) if n else None,
                "consent_users": len(table),
            }
        ),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
