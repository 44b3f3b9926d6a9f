"""Schema evolution: writers are found by fingerprint and resolved to the reader version."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas.codec import Codec, UnknownSchemaError
from schemas.registry import Registry
from tests.unit.schemas.samples import SAMPLES

V2_DIR = Path(__file__).parent / "fixtures" / "avro_v2"


@pytest.fixture(scope="module")
def codec_v2() -> Codec:
    """A codec over device_event v1 and v2 (v2 adds an optional `thermal_state`)."""
    return Codec(Registry(V2_DIR))


def test_encode_writes_the_latest_version(codec_v2: Codec) -> None:
    data = codec_v2.encode("device_event", SAMPLES["device_event"])
    assert codec_v2.writer_of(data).version == 2
    assert codec_v2.fingerprint("device_event") == data[2:10]


def test_v1_bytes_decode_with_the_v2_reader_and_the_new_field_is_none(codec_v2: Codec) -> None:
    v1_bytes = Codec().encode("device_event", SAMPLES["device_event"])  # shipped v1-only registry
    name, record = codec_v2.decode(v1_bytes)
    assert name == "device_event"
    assert record["thermal_state"] is None
    assert record["imei"] == SAMPLES["device_event"]["imei"]
    assert record["latitude"] == SAMPLES["device_event"]["latitude"]


def test_v2_bytes_read_with_a_pinned_v1_reader_drop_the_new_field(codec_v2: Codec) -> None:
    v2_bytes = codec_v2.encode("device_event", {**SAMPLES["device_event"], "thermal_state": "hot"})
    record = codec_v2.decode_as(v2_bytes, "device_event", reader_version=1)
    assert "thermal_state" not in record
    assert record["battery_level_pct"] == SAMPLES["device_event"]["battery_level_pct"]
    assert codec_v2.decode(v2_bytes)[1]["thermal_state"] == "hot"


def test_v1_writer_read_as_v1_is_not_resolved(codec_v2: Codec) -> None:
    v1_bytes = codec_v2.encode("device_event", SAMPLES["device_event"], version=1)
    _, record = codec_v2.decode(v1_bytes, reader_version=1)
    assert "thermal_state" not in record


def test_a_registry_without_the_v2_writer_cannot_decode_v2_bytes(codec_v2: Codec) -> None:
    v2_bytes = codec_v2.encode("device_event", SAMPLES["device_event"])
    with pytest.raises(UnknownSchemaError):
        Codec().decode(v2_bytes)
