"""The compiled writer: byte-identical to fastavro for every schema, same errors as before."""

from __future__ import annotations

import enum
import io
from datetime import date, datetime
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_writer
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.avro_compiled_writer import compile_writer
from schemas.codec import Codec, InvalidRecordError, default_codec
from schemas.models import MODELS
from schemas.registry import SchemaVersion, default_registry
from tests.unit.schemas.samples import SAMPLES, consent_records, device_events, log_events

VERSIONS = [
    version for name in default_registry().names() for version in default_registry().versions(name)
]


def _fastavro_body(schema: SchemaVersion, record: Any) -> bytes:
    out = io.BytesIO()
    schemaless_writer(out, schema.parsed, record)
    return out.getvalue()


def _compiled_body(schema: SchemaVersion, record: Any) -> bytes:
    out = bytearray()
    compile_writer(schema.raw)(out, record)
    return bytes(out)


# --- records drawn from the Avro schema itself, independently of the writer ----------------------


def _values(schema: Any, named: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values fastavro writes for `schema` (floats include NaN and infinities)."""
    if isinstance(schema, list):
        return st.one_of([_values(branch, named) for branch in schema])
    if isinstance(schema, str):
        if schema in named:
            return _values(named[schema], named)
        schema = {"type": schema}
    kind = schema["type"]
    if isinstance(kind, dict | list):
        return _values(kind, named)
    if kind in ("record", "enum"):
        named[schema["name"]] = named[
            f"{schema.get('namespace', 'consentgate')}.{schema['name']}"
        ] = schema
    if schema.get("logicalType") == "date":
        return st.dates() | st.integers(-(2**31), 2**31 - 1)
    simple: dict[str, st.SearchStrategy[Any]] = {
        "null": st.none(),
        "boolean": st.booleans(),
        "int": st.integers(-(2**31), 2**31 - 1),
        "long": st.integers(-(2**63), 2**63 - 1) | st.integers(0, 2**42),
        "float": st.floats(width=32),
        "double": st.floats(),
        "string": st.text(max_size=80),
        "bytes": st.binary(max_size=80),
    }
    if kind in simple:
        return simple[kind]
    if kind == "enum":
        return st.sampled_from(schema["symbols"])
    if kind == "array":
        return st.lists(_values(schema["items"], named), max_size=70)
    if kind == "map":
        return st.dictionaries(st.text(max_size=8), _values(schema["values"], named), max_size=4)
    if kind == "record":
        return _records(schema, named)
    return _values(named[kind], named)


def _records(schema: dict[str, Any], named: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Records with required fields always present, fields with a default sometimes absent."""
    required: dict[str, st.SearchStrategy[Any]] = {}
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for field in schema["fields"]:
        target = optional if "default" in field else required
        target[field["name"]] = _values(field["type"], named)
    return st.fixed_dictionaries(required, optional=optional)


RECORDS = {version.label: _records(version.raw, {}) for version in VERSIONS}


@pytest.mark.parametrize("schema", VERSIONS, ids=lambda version: version.label)
def test_every_registry_schema_has_a_compiled_writer(schema: SchemaVersion) -> None:
    writer = compile_writer(schema.raw)
    assert callable(writer)


@pytest.mark.parametrize("schema", VERSIONS, ids=lambda version: version.label)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_compiled_writer_matches_fastavro_on_generated_records(
    schema: SchemaVersion, data: st.DataObject
) -> None:
    record = data.draw(RECORDS[schema.label])
    assert _compiled_body(schema, record) == _fastavro_body(schema, record)


@pytest.mark.parametrize("schema", VERSIONS, ids=lambda version: version.label)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_encode_frames_the_fastavro_body(schema: SchemaVersion, data: st.DataObject) -> None:
    record = data.draw(RECORDS[schema.label])
    encoded = default_codec().encode(schema.name, record, schema.version)
    assert encoded == b"\xc3\x01" + schema.fingerprint + _fastavro_body(schema, record)


@settings(max_examples=80, deadline=None)
@given(
    pair=st.tuples(st.just("device_event"), device_events)
    | st.tuples(st.just("log_event"), log_events)
    | st.tuples(st.just("consent_record"), consent_records)
)
def test_model_records_encode_byte_identically_and_round_trip(
    pair: tuple[str, dict[str, Any]],
) -> None:
    name, record = pair
    schema = default_registry().latest(name)
    assert _compiled_body(schema, record) == _fastavro_body(schema, record)
    assert default_codec().decode(default_codec().encode(name, record)) == (name, record)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_samples_round_trip_through_the_compiled_writer(name: str) -> None:
    codec = Codec()
    schema = default_registry().latest(name)
    assert _compiled_body(schema, SAMPLES[name]) == _fastavro_body(schema, SAMPLES[name])
    expected = MODELS[name].model_validate(SAMPLES[name]).to_avro()
    assert codec.decode(codec.encode(name, SAMPLES[name])) == (name, expected)


def test_extra_keys_are_ignored() -> None:
    schema = default_registry().latest("erasure_request")
    record = {**SAMPLES["erasure_request"], "not_in_schema": object()}
    assert _compiled_body(schema, record) == _fastavro_body(schema, SAMPLES["erasure_request"])


def test_long_varints_of_every_length_match_fastavro() -> None:
    schema = default_registry().latest("erasure_request")
    for bits in range(64):
        for value in (2**bits - 1, 2**bits, -(2**bits), -(2**bits) - 1):
            if -(2**63) <= value < 2**63:
                record = {**SAMPLES["erasure_request"], "cancelled_at": value}
                assert _compiled_body(schema, record) == _fastavro_body(schema, record), value


def test_date_is_written_as_days_since_epoch() -> None:
    schema = default_registry().latest("consent_record")
    as_date = _compiled_body(schema, {**SAMPLES["consent_record"], "birth_date": date(1970, 1, 2)})
    as_int = _compiled_body(schema, {**SAMPLES["consent_record"], "birth_date": 1})
    assert as_date == as_int
    assert b"\x02\x02" in as_date  # union branch 1, then day 1


GENERAL_UNION = {
    "type": "record",
    "name": "Mixed",
    "fields": [
        {
            "name": "value",
            "type": [
                "string",
                "null",
                "long",
                {"type": "enum", "name": "Colour", "symbols": ["RED", "GREEN"]},
                "double",
                "boolean",
                {"type": "array", "items": "int"},
                {"type": "record", "name": "Point", "fields": [{"name": "x", "type": "int"}]},
            ],
        }
    ],
}


@settings(max_examples=150, deadline=None)
@given(record=_records(GENERAL_UNION, {}))
def test_general_unions_pick_the_branch_fastavro_picks(record: dict[str, Any]) -> None:
    out = bytearray()
    compile_writer(GENERAL_UNION)(out, record)
    expected = io.BytesIO()
    schemaless_writer(expected, parse_schema(GENERAL_UNION), record)
    assert bytes(out) == expected.getvalue()


def test_float_before_double_union_is_left_to_fastavro() -> None:
    schema = {"type": "record", "name": "F", "fields": [{"name": "v", "type": ["float", "double"]}]}
    with pytest.raises(NotImplementedError):
        compile_writer(schema)


# --- odd and invalid records behave exactly as before the compiled writer ----------------------


class _Network(enum.StrEnum):
    WIFI = "WIFI"


D, L, C = SAMPLES["device_event"], SAMPLES["log_event"], SAMPLES["consent_record"]
AD, AL, DL = (
    SAMPLES["anonymized_device_event"],
    SAMPLES["anonymized_log_event"],
    SAMPLES["dead_letter"],
)

# (schema, record, offending fields) as the fastavro-only codec reported them.
INVALID: dict[str, tuple[str, dict[str, Any], tuple[str, ...]]] = {
    "missing_required_enum": (
        "log_event",
        {k: v for k, v in L.items() if k != "log_type"},
        ("log_type",),
    ),
    "missing_required_string": (
        "device_event",
        {k: v for k, v in D.items() if k != "user_id"},
        ("user_id",),
    ),
    "string_in_optional_int": (
        "device_event",
        {**D, "battery_level_pct": "57"},
        ("battery_level_pct",),
    ),
    "unknown_optional_enum_symbol": (
        "device_event",
        {**D, "network_status": "WIMAX"},
        ("network_status",),
    ),
    "unknown_required_enum_symbol": ("log_event", {**L, "log_type": "NOPE"}, ("log_type",)),
    "int_out_of_range": ("device_event", {**D, "battery_level_pct": 2**31}, ("battery_level_pct",)),
    "long_out_of_range": ("device_event", {**D, "event_time": 2**63}, ("event_time",)),
    "required_long_out_of_range": (
        "anonymized_device_event",
        {**AD, "event_hour": 2**63},
        ("event_hour",),
    ),
    "string_in_double": ("device_event", {**D, "latitude": "north"}, ("latitude",)),
    "ints_in_string_array": ("device_event", {**D, "installed_apps": [1, 2]}, ("installed_apps",)),
    "bool_in_optional_int": (
        "device_event",
        {**D, "battery_level_pct": True},
        ("battery_level_pct",),
    ),
    "tuple_for_array": ("device_event", {**D, "installed_apps": ("a", "b")}, ("installed_apps",)),
    "string_in_boolean": (
        "device_event",
        {**D, "bluetooth_enabled": "yes"},
        ("bluetooth_enabled",),
    ),
    "int_in_boolean": ("device_event", {**D, "bluetooth_enabled": 1}, ("bluetooth_enabled",)),
    "none_in_required_string": (
        "anonymized_log_event",
        {**AL, "policy_version": None},
        ("policy_version",),
    ),
    "string_in_bytes": ("dead_letter", {**DL, "key": "u-1"}, ("key",)),
    "grant_without_since": (
        "consent_record",
        {**C, "purposes": {"analytics": {"granted": True}}},
        ("consentgate.ConsentGrant.since",),
    ),
    "grant_with_string_flag": (
        "consent_record",
        {**C, "guardian_consent": {"granted": "yes", "since": 1}},
        ("guardian_consent", "consentgate.ConsentGrant.granted"),
    ),
    "grant_tagged_with_another_type": (
        "consent_record",
        {**C, "guardian_consent": {"granted": True, "since": 1, "-type": "x.Other"}},
        ("guardian_consent",),
    ),
    "int_map_key": (
        "consent_record",
        {**C, "categories": {1: {"granted": True, "since": 1}}},
        ("categories",),
    ),
    "unencodable_string": ("device_event", {**D, "brand": "\ud800"}, ()),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_record_raises_the_same_error_as_before(case: str) -> None:
    name, record, fields = INVALID[case]
    label = default_registry().latest(name).label
    expected = (
        f"{label}: field(s) {', '.join(fields)} do not match the schema"
        if fields
        else f"{label}: record does not match the schema"
    )
    with pytest.raises(InvalidRecordError) as caught:
        default_codec().encode(name, record)
    assert type(caught.value) is InvalidRecordError
    assert str(caught.value) == expected
    assert caught.value.fields == fields
    assert caught.value.schema == label


# Values the compiled code hands to fastavro, which writes them (as it did before).
ACCEPTED_BY_FASTAVRO: dict[str, tuple[str, dict[str, Any]]] = {
    "int_below_range_in_required_int": ("dead_letter", {**DL, "source_partition": -(2**31) - 1}),
    "ints_in_floats": ("device_event", {**D, "latitude": 31, "screen_size_in": 6}),
    "str_enum_members": (
        "device_event",
        {**D, "network_status": _Network.WIFI, "brand": _Network.WIFI},
    ),
    "datetime_birth_date": ("consent_record", {**C, "birth_date": datetime(2012, 5, 17, 3, 0)}),  # noqa: DTZ001
    "iso_string_birth_date": ("consent_record", {**C, "birth_date": "2012-05-17"}),
    "int_birth_date": ("consent_record", {**C, "birth_date": 15477}),
    "bytearray_payload": ("dead_letter", {**DL, "payload": bytearray(b"ab")}),
}


@pytest.mark.parametrize("case", sorted(ACCEPTED_BY_FASTAVRO))
def test_odd_but_accepted_values_encode_as_fastavro_does(case: str) -> None:
    name, record = ACCEPTED_BY_FASTAVRO[case]
    schema = default_registry().latest(name)
    encoded = default_codec().encode(name, record)
    assert encoded == b"\xc3\x01" + schema.fingerprint + _fastavro_body(schema, record)
