"""pydantic v2 models of the Avro schemas, for the edges (SDK, JSON lines, CLI) only.

Each model matches its `.avsc` field for field; `drift()` proves it, and the
unit tests run it for every model. The hot path uses plain dicts instead:
`model.to_avro()` gives the dict the codec encodes.
"""

from __future__ import annotations

from datetime import date
from types import UnionType
from typing import Annotated, Any, ClassVar, Literal, Self, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from schemas.errors import ConsentgateError
from schemas.fields import consent_vocabulary
from schemas.registry import Registry, default_registry

INT_MIN, INT_MAX = -(2**31), 2**31 - 1
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1


class AvroType:
    """Marks which Avro number type an `int` or `float` field has (int/long, float/double)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"AvroType({self.name!r})"


AvroInt = Annotated[int, AvroType("int"), Field(ge=INT_MIN, le=INT_MAX)]
AvroLong = Annotated[int, AvroType("long"), Field(ge=LONG_MIN, le=LONG_MAX)]
EpochMs = Annotated[int, AvroType("long"), Field(ge=0, le=LONG_MAX)]
Count = Annotated[int, AvroType("int"), Field(ge=0, le=INT_MAX)]
AvroFloat = Annotated[float, AvroType("float"), Field(allow_inf_nan=False)]
AvroDouble = Annotated[float, AvroType("double"), Field(allow_inf_nan=False)]
Id = Annotated[str, StringConstraints(min_length=1, max_length=512)]
Geohash = Annotated[str, StringConstraints(pattern=r"^[0-9b-hjkmnp-z]{1,6}$")]

AppState = Literal["FOREGROUND", "BACKGROUND"]
NetworkStatus = Literal[
    "OFFLINE", "WIFI", "CELL_2G", "CELL_3G", "CELL_4G", "CELL_5G", "ETHERNET", "UNKNOWN"
]
ReleasedNetworkStatus = Literal[
    "OFFLINE", "WIFI", "CELL_2G", "CELL_3G", "CELL_4G", "CELL_5G", "ETHERNET", "UNKNOWN", "CELL"
]
LocationSource = Literal["GPS", "WIFI", "CELL", "UNKNOWN"]
LogType = Literal["APP_OPEN", "PAGE_VIEW", "USAGE", "CRASH", "SYSTEM"]
TimeGranularity = Literal["HOUR", "SIX_HOURS", "DAY"]
AccountStatus = Literal["ACTIVE", "CANCELLED"]


class UnknownEventTypeError(ConsentgateError, ValueError):
    """A JSON-lines input names an event type that has no model."""


class AvroModel(BaseModel):
    """Base of every model: unknown fields are rejected; `to_avro()` gives the codec's dict."""

    model_config = ConfigDict(extra="forbid")
    schema_name: ClassVar[str]

    def to_avro(self) -> dict[str, Any]:
        """The record as the plain dict `schemas.codec.Codec.encode` takes."""
        return self.model_dump()


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


class ConsentGrant(AvroModel):
    """State of one purpose or category: granted or withdrawn, and since when."""

    granted: bool
    since: EpochMs


class PolicyAcceptance(AvroModel):
    """One accepted privacy-policy version and when."""

    version: Annotated[AvroInt, Field(ge=0)]
    accepted_at: EpochMs


ConsentChangeKind = Literal[
    "GRANT_PURPOSE",
    "WITHDRAW_PURPOSE",
    "GRANT_CATEGORY",
    "WITHDRAW_CATEGORY",
    "ACCEPT_POLICY",
    "SET_BIRTH",
    "GRANT_GUARDIAN",
    "WITHDRAW_GUARDIAN",
    "CANCEL",
]
_NEEDS_NAME = {"GRANT_PURPOSE", "WITHDRAW_PURPOSE", "GRANT_CATEGORY", "WITHDRAW_CATEGORY"}


def _check_birth_year(birth_date: date | None, birth_year: int | None) -> None:
    if birth_date is not None and birth_year is not None and birth_date.year != birth_year:
        raise ValueError("birth_year disagrees with birth_date")


class _ChangeFields(AvroModel):
    """What a consent change says (shared by the published change and its applied form)."""

    change_id: Id
    kind: ConsentChangeKind
    name: str | None = None
    policy_version: Annotated[AvroInt, Field(ge=1)] | None = None
    birth_date: date | None = None
    birth_year: Annotated[AvroInt, Field(ge=1900, le=2200)] | None = None
    declared_minor: bool | None = None
    made_at: EpochMs

    @model_validator(mode="after")
    def _check_kind(self) -> Self:
        vocabulary = consent_vocabulary()
        if self.kind in _NEEDS_NAME:
            names = vocabulary.purposes if "PURPOSE" in self.kind else vocabulary.categories
            if self.name not in names:
                raise ValueError(f"{self.kind} needs a name among {sorted(names)}")
        elif self.name is not None:
            raise ValueError(f"{self.kind} takes no name")
        if (self.kind == "ACCEPT_POLICY") != (self.policy_version is not None):
            raise ValueError("policy_version goes with ACCEPT_POLICY, and only with it")
        birth = (self.birth_date, self.birth_year, self.declared_minor)
        if self.kind != "SET_BIRTH" and any(v is not None for v in birth):
            raise ValueError("birth data goes with SET_BIRTH only")
        _check_birth_year(self.birth_date, self.birth_year)
        return self


class ConsentChange(_ChangeFields):
    """One change a user made to their consent, published by a backend service (SPEC 5)."""

    schema_name: ClassVar[str] = "consent_change"

    user_id: Id


class AppliedConsentChange(_ChangeFields):
    """A change folded into a consent record, with its arrival order at the writer."""

    seq: AvroLong


class ConsentRecord(AvroModel):
    """A user's full latest consent state; purpose and category names come from the vocabulary."""

    schema_name: ClassVar[str] = "consent_record"

    user_id: Id
    version: Annotated[AvroLong, Field(ge=0)]
    updated_at: EpochMs
    account_status: AccountStatus
    cancelled_at: EpochMs | None = None
    policy_acceptances: list[PolicyAcceptance] = Field(default_factory=list)
    purposes: dict[str, ConsentGrant] = Field(default_factory=dict)
    categories: dict[str, ConsentGrant] = Field(default_factory=dict)
    birth_date: date | None = None
    birth_year: Annotated[AvroInt, Field(ge=1900, le=2200)] | None = None
    declared_minor: bool | None = None
    guardian_consent: ConsentGrant | None = None
    changes: list[AppliedConsentChange] = Field(default_factory=list)
    compacted_before: EpochMs | None = None
    compacted_ids: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check_consistency(self) -> Self:
        vocabulary = consent_vocabulary()
        unknown_purposes = sorted(set(self.purposes) - set(vocabulary.purposes))
        if unknown_purposes:
            raise ValueError(f"unknown purposes {unknown_purposes}")
        unknown_categories = sorted(set(self.categories) - set(vocabulary.categories))
        if unknown_categories:
            raise ValueError(f"unknown categories {unknown_categories}")
        if self.account_status == "CANCELLED" and self.cancelled_at is None:
            raise ValueError("a CANCELLED account needs cancelled_at")
        _check_birth_year(self.birth_date, self.birth_year)
        return self


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


MODELS: dict[str, type[AvroModel]] = {
    model.schema_name: model
    for model in (
        DeviceEvent,
        LogEvent,
        ConsentRecord,
        ConsentChange,
        AnonymizedDeviceEvent,
        AnonymizedLogEvent,
        DeadLetter,
        ErasureRequest,
    )
}
"""Schema name -> model class, one entry per `.avsc` schema."""

EVENT_MODELS: dict[str, type[AvroModel]] = {
    name: MODELS[name] for name in ("device_event", "log_event", "consent_record")
}
"""The event types a publisher may send as JSON lines."""


def validate_event(event_type: str, data: dict[str, Any]) -> AvroModel:
    """Validate one JSON-lines input; raises pydantic.ValidationError when it is invalid."""
    model = EVENT_MODELS.get(event_type)
    if model is None:
        raise UnknownEventTypeError(
            f"unknown event type {event_type!r}; expected one of {sorted(EVENT_MODELS)}"
        )
    return model.model_validate(data)


# --- drift check: do the models still match the .avsc files? ------------------------------------


def drift(model: type[BaseModel], schema_name: str, registry: Registry | None = None) -> list[str]:
    """Differences between `model` and the latest `schema_name` schema; empty when they match.

    Compares field names, nullability (`T | None` against `["null", T]`) and base
    types (string, int/long via `AvroType`, float/double, boolean, bytes, date,
    enum symbols, array, map and nested records), recursively.
    """
    schema = (registry if registry is not None else default_registry()).latest(schema_name)
    problems: list[str] = []
    _compare_record(model, schema.raw, schema_name, {}, problems)
    return problems


def _compare_record(
    model: Any, record: dict[str, Any], path: str, named: dict[str, Any], problems: list[str]
) -> None:
    _register(record, named)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        problems.append(f"{path}: avro record {record['name']}, model {model!r}")
        return
    if model.__name__ != record["name"]:
        problems.append(f"{path}: model {model.__name__}, avro record {record['name']}")
    fields = model.model_fields
    avro_fields = {field["name"]: field for field in record["fields"]}
    for name in avro_fields.keys() - fields.keys():
        problems.append(f"{path}.{name}: in the schema, missing from the model")
    for name in fields.keys() - avro_fields.keys():
        problems.append(f"{path}.{name}: in the model, missing from the schema")
    for name, info in fields.items():
        if name in avro_fields:
            markers = [item for item in info.metadata if isinstance(item, AvroType)]
            _compare(
                info.annotation,
                markers,
                avro_fields[name]["type"],
                f"{path}.{name}",
                named,
                problems,
            )


def _register(schema: dict[str, Any], named: dict[str, Any]) -> None:
    named[schema["name"]] = schema
    if schema.get("namespace"):
        named[f"{schema['namespace']}.{schema['name']}"] = schema


def _unwrap(annotation: Any, markers: list[AvroType]) -> tuple[Any, list[AvroType]]:
    """Strip `Annotated[...]` layers, collecting their AvroType markers."""
    while get_origin(annotation) is Annotated:
        annotation, *extra = get_args(annotation)
        markers = markers + [item for item in extra if isinstance(item, AvroType)]
    return annotation, markers


def _compare(
    annotation: Any,
    markers: list[AvroType],
    avro: Any,
    path: str,
    named: dict[str, Any],
    problems: list[str],
) -> None:
    annotation, markers = _unwrap(annotation, markers)
    py_args = get_args(annotation) if get_origin(annotation) in (Union, UnionType) else ()
    py_nullable = type(None) in py_args
    if py_nullable:
        rest = [arg for arg in py_args if arg is not type(None)]
        annotation = rest[0] if len(rest) == 1 else Union[tuple(rest)]  # noqa: UP007
        annotation, markers = _unwrap(annotation, markers)
    avro_nullable = isinstance(avro, list) and "null" in avro
    if isinstance(avro, list):
        rest_avro = [branch for branch in avro if branch != "null"]
        if len(rest_avro) != 1:
            problems.append(f"{path}: unions other than [null, T] are not supported")
            return
        avro = rest_avro[0]
    if py_nullable != avro_nullable:
        problems.append(f"{path}: nullable in the {'model' if py_nullable else 'schema'} only")
    if isinstance(avro, str) and avro in named:
        avro = named[avro]
    if isinstance(avro, dict) and isinstance(avro["type"], dict | list):
        avro = avro["type"]
    kind = avro if isinstance(avro, str) else avro["type"]
    if isinstance(avro, dict) and avro.get("logicalType") == "date":
        kind = "date"
    origin, args = get_origin(annotation), get_args(annotation)
    if kind == "record":
        _compare_record(annotation, avro, path, named, problems)
        return
    if kind == "enum":
        _register(avro, named)
        if origin is not Literal or set(args) != set(avro["symbols"]):
            problems.append(f"{path}: avro enum {avro['symbols']}, model {annotation!r}")
        return
    if kind == "array":
        if origin is not list:
            problems.append(f"{path}: avro array, model {annotation!r}")
            return
        _compare(args[0], [], avro["items"], f"{path}[]", named, problems)
        return
    if kind == "map":
        if origin is not dict or args[0] is not str:
            problems.append(f"{path}: avro map, model {annotation!r}")
            return
        _compare(args[1], [], avro["values"], f"{path}{{}}", named, problems)
        return
    python_kind = _python_kind(annotation, markers)
    if python_kind != kind:
        problems.append(f"{path}: avro {kind}, model {python_kind}")


def _python_kind(annotation: Any, markers: list[AvroType]) -> str:
    """The Avro primitive a Python annotation stands for, as far as it can tell."""
    simple = {str: "string", bool: "boolean", bytes: "bytes", date: "date", type(None): "null"}
    if annotation in simple:
        return simple[annotation]
    if annotation in (int, float):
        if len({marker.name for marker in markers}) == 1:
            return markers[-1].name
        return f"{annotation.__name__} without one AvroType marker"
    return repr(annotation)
