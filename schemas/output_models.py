"""What the pipeline writes: the anonymized events, dead letters and erasure requests."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field

from schemas.model_types import (
    AppState,
    AvroInt,
    AvroLong,
    AvroModel,
    Count,
    EpochMs,
    Geohash,
    Id,
    LogType,
    ReleasedNetworkStatus,
    TimeGranularity,
)


class _AnonymizedCommon(AvroModel):
    """The fields both anonymized outputs start with (same order as in their .avsc files)."""

    anon_id: Id
    policy_version: Id
    min_consent_policy_version: Annotated[AvroInt, Field(ge=1)] | None = None
    event_hour: EpochMs
    time_granularity: TimeGranularity
    app_id: Id | None = None
    app_version: str | None = None
    brand: str | None = None
    model: str | None = None
    os_name: str | None = None
    os_version: str | None = None


class AnonymizedDeviceEvent(_AnonymizedCommon):
    """Anonymized device event for aggregate analysis."""

    schema_name: ClassVar[str] = "anonymized_device_event"

    geohash: Geohash | None = None
    network_status: ReleasedNetworkStatus | None = None
    app_state: AppState | None = None
    battery_bucket: str | None = None
    battery_charging: bool | None = None
    storage_bucket: str | None = None
    screen_class: str | None = None
    signal_bucket: str | None = None
    installed_app_bucket: str | None = None


class AnonymizedLogEvent(_AnonymizedCommon):
    """Anonymized network-log event for aggregate analysis."""

    schema_name: ClassVar[str] = "anonymized_log_event"

    log_type: LogType | None = None
    usage_bucket: str | None = None
    url_template: str | None = None
    system_event: str | None = None
    message: str | None = None


class DeadLetterHeader(AvroModel):
    """One header of a dead-lettered record."""

    name: str
    value: bytes | None = None


class DeadLetter(AvroModel):
    """Envelope of an input the pipeline could not decode or judged invalid (within caps)."""

    schema_name: ClassVar[str] = "dead_letter"

    stage: Id
    error_class: Id
    reason: Id
    source_topic: Id
    source_partition: Count
    source_offset: Annotated[AvroLong, Field(ge=0)]
    source_timestamp: EpochMs | None = None
    failed_at: EpochMs
    key: bytes | None = None
    payload: bytes | None = None
    key_size: Count | None = None
    key_truncated: bool = False
    key_sha256: bytes | None = None
    headers: list[DeadLetterHeader] = Field(default_factory=list)
    headers_size: Count = 0
    headers_truncated: bool = False
    headers_sha256: bytes | None = None
    payload_size: Annotated[AvroLong, Field(ge=0)] | None = None
    payload_truncated: bool = False
    payload_sha256: bytes | None = None


class ErasureRequest(AvroModel):
    """One request per cancelled account, telling downstream stores to erase the user's data."""

    schema_name: ClassVar[str] = "erasure_request"

    request_id: Id
    user_id: Id
    cancelled_at: EpochMs
    requested_at: EpochMs
