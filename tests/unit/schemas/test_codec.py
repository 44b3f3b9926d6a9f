"""Avro single-object framing: round trips, typed errors, and a fuzzed decoder."""

from __future__ import annotations

import io
from typing import Any

import pytest
from fastavro import schemaless_reader
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.avro_compiled_reader import compile_reader
from schemas.codec import (
    BadMarkerError,
    Codec,
    CorruptBodyError,
    InvalidRecordError,
    SchemaMismatchError,
    TruncatedError,
    UnknownSchemaError,
    default_codec,
)
from schemas.errors import DecodeError, EncodeError
from schemas.models import MODELS
from schemas.registry import default_registry
from tests.unit.schemas.samples import SAMPLES, consent_records, device_events, log_events
from tests.unit.schemas.test_registry import crc64_avro


def _full(name: str, record: dict[str, Any]) -> dict[str, Any]:
    """The record as a reader returns it: every field present, defaults filled in."""
    return MODELS[name].model_validate(record).to_avro()


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_schema_round_trips(name: str) -> None:
    codec = default_codec()
    decoded_name, record = codec.decode(codec.encode(name, SAMPLES[name]))
    assert decoded_name == name
    assert record == _full(name, SAMPLES[name])


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_frame_is_marker_then_le_crc64_of_canonical_form_then_body(name: str) -> None:
    codec = default_codec()
    data = codec.encode(name, SAMPLES[name])
    canonical = default_registry().latest(name).canonical_form
    assert data[:2] == b"\xc3\x01"
    assert data[2:10] == crc64_avro(canonical.encode()).to_bytes(8, "little")
    assert codec.fingerprint(name) == data[2:10]
    body = schemaless_reader(io.BytesIO(data[10:]), default_registry().latest(name).parsed)
    assert body == _full(name, SAMPLES[name])


def test_erasure_request_body_bytes_are_the_avro_binary_encoding() -> None:
    record = {"request_id": "r", "user_id": "u", "cancelled_at": 1, "requested_at": -2}
    data = default_codec().encode("erasure_request", record)
    # string = zig-zag length + utf-8; long = zig-zag varint (1 -> 02, -2 -> 03)
    assert data[10:] == b"\x02r\x02u\x02\x03"


def test_birth_date_decodes_as_a_date() -> None:
    codec = default_codec()
    record = codec.decode_as(
        codec.encode("consent_record", SAMPLES["consent_record"]), "consent_record"
    )
    assert record["birth_date"] == SAMPLES["consent_record"]["birth_date"]


@settings(max_examples=60, deadline=None)
@given(record=device_events)
def test_device_events_round_trip(record: dict[str, Any]) -> None:
    codec = default_codec()
    assert codec.decode(codec.encode("device_event", record)) == ("device_event", record)


@settings(max_examples=60, deadline=None)
@given(record=log_events)
def test_log_events_round_trip(record: dict[str, Any]) -> None:
    codec = default_codec()
    assert codec.decode_as(codec.encode("log_event", record), "log_event") == record


@settings(max_examples=60, deadline=None)
@given(record=consent_records)
def test_consent_records_round_trip(record: dict[str, Any]) -> None:
    codec = default_codec()
    assert codec.decode_as(codec.encode("consent_record", record), "consent_record") == record


@settings(max_examples=60, deadline=None)
@given(record=consent_records)
def test_compiled_reader_agrees_with_fastavro(record: dict[str, Any]) -> None:
    schema = default_registry().latest("consent_record")
    body = default_codec().encode("consent_record", record)[10:]
    compiled, end = compile_reader(schema.raw)(body, 0)
    assert end == len(body)
    assert compiled == schemaless_reader(io.BytesIO(body), schema.parsed)


def _both_readers(raw_schema: dict[str, Any], body: bytes) -> tuple[object, object]:
    """What the compiled reader and fastavro make of `body`: the record, or "error"."""
    results: list[object] = []
    for read in (
        lambda: compile_reader(raw_schema)(body, 0),
        lambda: _fastavro_read(raw_schema, body),
    ):
        try:
            results.append(read())
        except Exception:
            results.append("error")
    return results[0], results[1]


def _fastavro_read(raw_schema: dict[str, Any], body: bytes) -> tuple[object, int]:
    from fastavro import parse_schema

    stream = io.BytesIO(body)
    record = schemaless_reader(stream, parse_schema(raw_schema))
    return record, stream.tell()


_OPTIONAL_STRING = {
    "type": "record",
    "name": "T",
    "fields": [{"name": "s", "type": ["null", "string"]}, {"name": "n", "type": "long"}],
}


@pytest.mark.parametrize(
    "body",
    [
        b"\x02\x06abc\x04",  # the canonical form
        b"\x82\x00\x86\x00abc\x04",  # union index and length as two-byte varints
        b"\x00\x04",  # the null branch
        b"\x80\x00\x04",  # the null branch, two bytes
        b"\x01\x04",  # union index -1
        b"\x04\x04",  # union index 2 (no such branch)
        b"\x81\x00\x04",  # union index -1, two bytes
        b"\x02\x05abc\x04",  # string length -3
        b"\x02\x81\x00abc\x04",  # string length -1, two bytes
        b"\x02\x0aabc",  # string longer than the body
        b"\x02\x7eabc",  # string of 63 bytes, body too short
    ],
)
def test_compiled_reader_agrees_with_fastavro_on_edge_encodings(body: bytes) -> None:
    compiled, generic = _both_readers(_OPTIONAL_STRING, body)
    assert compiled == generic


def test_a_negative_union_index_is_refused_where_fastavro_wraps_it() -> None:
    """fastavro takes index -2 of a two-branch union as branch 0 (a Python list index)."""
    compiled, generic = _both_readers(_OPTIONAL_STRING, b"\x03\x04")
    assert generic == ({"s": None, "n": 2}, 2)
    assert compiled == "error"


@settings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from(["device_event", "log_event"]),
    data=st.data(),
)
def test_compiled_reader_agrees_with_fastavro_on_altered_events(
    name: str, data: st.DataObject
) -> None:
    """A valid event with one byte changed: what the compiled reader reads, fastavro reads.

    The compiled reader may refuse what fastavro takes: a negative union index, which
    fastavro wraps around (the test above); everything it reads, fastavro reads alike.
    """
    record = data.draw(device_events if name == "device_event" else log_events)
    body = bytearray(default_codec().encode(name, record)[10:])
    at = data.draw(st.integers(0, len(body) - 1))
    body[at] = data.draw(st.integers(0, 255))
    compiled, generic = _both_readers(default_registry().latest(name).raw, bytes(body))
    if compiled != "error":
        assert compiled == generic


@settings(max_examples=200, deadline=None)
@given(name=st.sampled_from(sorted(SAMPLES)), garbage=st.binary(max_size=60))
def test_garbage_body_raises_only_decode_errors(name: str, garbage: bytes) -> None:
    codec = default_codec()
    data = codec.encode(name, SAMPLES[name])[:10] + garbage
    try:
        _, record = codec.decode(data)
    except DecodeError:
        return
    schema = default_registry().latest(name)
    assert record == schemaless_reader(io.BytesIO(garbage), schema.parsed)


@pytest.mark.parametrize("data", [b"\xc3\x02" + b"\x00" * 20, b"{}", b"\x00\x00" + b"\x00" * 8])
def test_wrong_marker_raises_bad_marker(data: bytes) -> None:
    with pytest.raises(BadMarkerError):
        default_codec().decode(data)


@pytest.mark.parametrize("keep", [0, 1, 2, 9])
def test_message_shorter_than_header_raises_truncated(keep: int) -> None:
    data = default_codec().encode("erasure_request", SAMPLES["erasure_request"])
    with pytest.raises(TruncatedError):
        default_codec().decode(data[:keep])


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_body_cut_short_raises_truncated(name: str) -> None:
    data = default_codec().encode(name, SAMPLES[name])
    with pytest.raises(TruncatedError):
        default_codec().decode(data[:-1])


def test_trailing_bytes_raise_corrupt_body() -> None:
    data = default_codec().encode("erasure_request", SAMPLES["erasure_request"])
    with pytest.raises(CorruptBodyError, match="trailing"):
        default_codec().decode(data + b"\x00")


def test_unknown_fingerprint_raises_unknown_schema() -> None:
    data = default_codec().encode("erasure_request", SAMPLES["erasure_request"])
    with pytest.raises(UnknownSchemaError):
        default_codec().decode(data[:2] + bytes(8) + data[10:])


def test_decode_as_rejects_a_message_of_another_schema() -> None:
    data = default_codec().encode("erasure_request", SAMPLES["erasure_request"])
    with pytest.raises(SchemaMismatchError, match="erasure_request"):
        default_codec().decode_as(data, "device_event")


def test_decode_errors_are_decode_errors() -> None:
    for error in (BadMarkerError, TruncatedError, UnknownSchemaError, CorruptBodyError):
        assert issubclass(error, DecodeError)
    assert issubclass(InvalidRecordError, EncodeError)


def test_encode_error_names_the_field_but_not_the_value() -> None:
    secret = "not-a-number-490154203237518"
    record = {**SAMPLES["device_event"], "battery_level_pct": secret}
    with pytest.raises(InvalidRecordError) as caught:
        default_codec().encode("device_event", record)
    assert caught.value.fields == ("battery_level_pct",)
    assert "battery_level_pct" in str(caught.value)
    assert "device_event" in str(caught.value)
    assert secret not in str(caught.value)
    assert caught.value.__cause__ is not None


def test_missing_required_field_is_named() -> None:
    record = {k: v for k, v in SAMPLES["log_event"].items() if k != "log_type"}
    with pytest.raises(InvalidRecordError) as caught:
        default_codec().encode("log_event", record)
    assert caught.value.fields == ("log_type",)


def test_non_mapping_record_is_an_encode_error() -> None:
    with pytest.raises(EncodeError, match="mapping"):
        default_codec().encode("erasure_request", ["not", "a", "dict"])  # type: ignore[arg-type]


def test_codec_accepts_bytearray_and_memoryview() -> None:
    codec = Codec()
    data = codec.encode("erasure_request", SAMPLES["erasure_request"])
    assert codec.decode(bytearray(data)) == codec.decode(data)
    assert codec.decode(memoryview(data)) == codec.decode(data)
