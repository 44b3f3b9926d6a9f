"""Valid records of every schema, and hypothesis strategies built from the models."""

from __future__ import annotations

from datetime import date
from typing import Any

from hypothesis import strategies as st

from schemas.models import ConsentGrant, ConsentRecord, DeviceEvent, LogEvent, PolicyAcceptance

SAMPLES: dict[str, dict[str, Any]] = {
    "device_event": {
        "event_id": "e-1",
        "user_id": "u-1",
        "event_time": 1_700_000_000_000,
        "app_id": "com.example.app",
        "brand": "Huawei",
        "model": "P40",
        "battery_level_pct": 57,
        "latitude": 31.2304,
        "longitude": 121.4737,
        "screen_size_in": 6.5,
        "network_status": "WIFI",
        "installed_apps": ["com.tencent.mm", "com.taobao.taobao"],
        "imei": "490154203237518",
    },
    "log_event": {
        "event_id": "e-2",
        "user_id": "u-1",
        "event_time": 1_700_000_000_001,
        "app_id": "com.example.app",
        "log_type": "PAGE_VIEW",
        "page_url": "https://example.com/item/123?u=1",
        "usage_duration_ms": 1500,
    },
    "consent_change": {
        "user_id": "u-1",
        "change_id": "req-7f3a",
        "kind": "WITHDRAW_CATEGORY",
        "name": "precise_location",
        "made_at": 1_700_000_000_000,
    },
    "consent_record": {
        "user_id": "u-1",
        "version": 3,
        "updated_at": 1_700_000_000_000,
        "account_status": "ACTIVE",
        "policy_acceptances": [{"version": 2, "accepted_at": 1_690_000_000_000}],
        "purposes": {"analytics": {"granted": True, "since": 1_690_000_000_000}},
        "categories": {"precise_location": {"granted": False, "since": 1_695_000_000_000}},
        "birth_date": date(2012, 5, 17),
        "birth_year": 2012,
        "guardian_consent": {"granted": True, "since": 1_690_000_000_000},
    },
    "anonymized_device_event": {
        "anon_id": "a-1",
        "policy_version": "2024-01",
        "min_consent_policy_version": 2,
        "event_hour": 1_699_999_200_000,
        "time_granularity": "HOUR",
        "app_id": "com.example.app",
        "geohash": "wtw3s",
        "network_status": "CELL",
        "installed_app_bucket": "20-39",
    },
    "anonymized_log_event": {
        "anon_id": "a-2",
        "policy_version": "2024-01",
        "event_hour": 1_699_999_200_000,
        "time_granularity": "SIX_HOURS",
        "app_id": None,
        "log_type": "CRASH",
        "message": "NullPointerException at <IMEI> line <*>",
    },
    "dead_letter": {
        "stage": "decode",
        "error_class": "BadMarkerError",
        "reason": "bad_marker",
        "source_topic": "raw.device",
        "source_partition": 3,
        "source_offset": 42,
        "failed_at": 1_700_000_000_000,
        "key": b"u-1",
        "payload": b"\x00\x01garbage",
        "key_size": 3,
        "headers": [{"name": "event-type", "value": b"device_event"}],
        "headers_size": 30,
        "payload_size": 9,
        "payload_sha256": bytes(32),
    },
    "erasure_request": {
        "request_id": "r-1",
        "user_id": "u-1",
        "cancelled_at": 1_700_000_000_000,
        "requested_at": 1_700_000_000_500,
    },
}

EPOCH_MS = st.integers(min_value=0, max_value=2**63 - 1)
IDS = st.text(min_size=1, max_size=12)
TEXT = st.text(max_size=12)
FLOAT32 = st.floats(min_value=0, max_value=1000, width=32)


def opt(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The strategy or None."""
    return st.none() | strategy


def _dump(model: Any) -> dict[str, Any]:
    return dict(model.to_avro())


device_events = st.builds(
    DeviceEvent,
    event_id=IDS,
    user_id=IDS,
    event_time=EPOCH_MS,
    app_id=IDS,
    app_version=opt(TEXT),
    brand=opt(TEXT),
    os_version=opt(TEXT),
    ip_address=opt(TEXT),
    app_state=opt(st.sampled_from(["FOREGROUND", "BACKGROUND"])),
    screen_width_px=opt(st.integers(0, 100_000)),
    screen_size_in=opt(FLOAT32),
    plugins=opt(st.lists(TEXT, max_size=3)),
    bluetooth_enabled=opt(st.booleans()),
    network_status=opt(st.sampled_from(["OFFLINE", "WIFI", "CELL_5G", "UNKNOWN"])),
    battery_level_pct=opt(st.integers(0, 100)),
    signal_strength_dbm=opt(st.integers(-150, 0)),
    free_storage_mb=opt(st.integers(0, 2**63 - 1)),
    imei=opt(TEXT),
    wifi_bssid=opt(TEXT),
    latitude=opt(st.floats(-90, 90)),
    longitude=opt(st.floats(-180, 180)),
    location_accuracy_m=opt(FLOAT32),
    location_source=opt(st.sampled_from(["GPS", "WIFI", "CELL", "UNKNOWN"])),
    installed_apps=opt(st.lists(TEXT, max_size=5)),
).map(_dump)

log_events = st.builds(
    LogEvent,
    event_id=IDS,
    user_id=IDS,
    event_time=EPOCH_MS,
    app_id=IDS,
    log_type=st.sampled_from(["APP_OPEN", "PAGE_VIEW", "USAGE", "CRASH", "SYSTEM"]),
    session_id=opt(TEXT),
    app_open_time=opt(EPOCH_MS),
    usage_duration_ms=opt(st.integers(0, 2**63 - 1)),
    page_url=opt(TEXT),
    message=opt(st.text(max_size=200)),
).map(_dump)

grants = st.builds(ConsentGrant, granted=st.booleans(), since=EPOCH_MS)
consent_records = st.builds(
    ConsentRecord,
    user_id=IDS,
    version=st.integers(0, 2**63 - 1),
    updated_at=EPOCH_MS,
    account_status=st.just("ACTIVE"),
    cancelled_at=opt(EPOCH_MS),
    policy_acceptances=st.lists(
        st.builds(PolicyAcceptance, version=st.integers(0, 2**31 - 1), accepted_at=EPOCH_MS),
        max_size=3,
    ),
    purposes=st.dictionaries(st.sampled_from(["analytics", "personalized_ads"]), grants),
    categories=st.dictionaries(
        st.sampled_from(["device_identifiers", "precise_location", "installed_apps"]), grants
    ),
    birth_date=opt(st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 1, 1))),
    declared_minor=opt(st.booleans()),
    guardian_consent=opt(grants),
).map(_dump)
