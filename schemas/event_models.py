"""The raw events a publisher sends: `DeviceEvent` and `LogEvent`."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field

from schemas.model_types import (
    AppState,
    AvroDouble,
    AvroFloat,
    AvroInt,
    AvroLong,
    AvroModel,
    Count,
    EpochMs,
    Id,
    LocationSource,
    LogType,
    NetworkStatus,
)


class _EventCommon(AvroModel):
    """The fields both raw events start with (same order as in their .avsc files)."""

    event_id: Id
    user_id: Id
    event_time: EpochMs
    app_id: Id
    app_version: str | None = None
    brand: str | None = None
    model: str | None = None
    os_name: str | None = None
    os_version: str | None = None
    ip_address: str | None = None
    time_zone: str | None = None


class DeviceEvent(_EventCommon):
    """Device attributes, identifiers, signal and location of one device at one instant."""

    schema_name: ClassVar[str] = "device_event"

    app_state: AppState | None = None
    screen_width_px: Annotated[Count, Field(le=100_000)] | None = None
    screen_height_px: Annotated[Count, Field(le=100_000)] | None = None
    screen_size_in: Annotated[AvroFloat, Field(ge=0, le=1000)] | None = None
    hardware_version: str | None = None
    software_version: str | None = None
    browser_type: str | None = None
    plugins: list[str] | None = None
    bluetooth_enabled: bool | None = None
    network_status: NetworkStatus | None = None
    battery_level_pct: Annotated[AvroInt, Field(ge=0, le=100)] | None = None
    battery_charging: bool | None = None
    signal_strength_dbm: Annotated[AvroInt, Field(ge=-150, le=0)] | None = None
    free_storage_mb: Annotated[AvroLong, Field(ge=0)] | None = None
    imei: str | None = None
    mac_address: str | None = None
    android_id: str | None = None
    advertising_id: str | None = None
    serial_number: str | None = None
    wifi_bssid: str | None = None
    wifi_ssid: str | None = None
    latitude: Annotated[AvroDouble, Field(ge=-90, le=90)] | None = None
    longitude: Annotated[AvroDouble, Field(ge=-180, le=180)] | None = None
    location_accuracy_m: Annotated[AvroFloat, Field(ge=0)] | None = None
    location_source: LocationSource | None = None
    installed_apps: list[str] | None = None


class LogEvent(_EventCommon):
    """One network-log entry: app open, page view, usage, crash or system event."""

    schema_name: ClassVar[str] = "log_event"

    log_type: LogType
    session_id: str | None = None
    app_open_time: EpochMs | None = None
    usage_duration_ms: Annotated[AvroLong, Field(ge=0)] | None = None
    page_url: str | None = None
    message: str | None = None
    system_event: str | None = None
