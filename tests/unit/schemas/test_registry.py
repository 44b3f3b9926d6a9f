"""The registry loads every schema version once and indexes it by its Avro fingerprint."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from schemas.errors import SchemaError
from schemas.fields import AVRO_DIR
from schemas.registry import Registry, default_registry

FIXTURES = Path(__file__).parent / "fixtures"
EXPECTED_NAMES = [
    "anonymized_device_event",
    "anonymized_log_event",
    "consent_change",
    "consent_record",
    "dead_letter",
    "device_event",
    "erasure_request",
    "log_event",
]

# CRC-64-AVRO exactly as the Avro specification writes it ("Schema Fingerprints").
EMPTY = 0xC15D213AA4D7A795
_TABLE = []
for _i in range(256):
    _fp = _i
    for _ in range(8):
        _fp = (_fp >> 1) ^ (EMPTY & -(_fp & 1))
    _TABLE.append(_fp)


def crc64_avro(data: bytes) -> int:
    """Reference CRC-64-AVRO of `data`."""
    fp = EMPTY
    for byte in data:
        fp = (fp >> 8) ^ _TABLE[(fp ^ byte) & 0xFF]
    return fp


def test_reference_crc_matches_the_avro_spec_test_vector() -> None:
    # share/test/data/schema-tests.txt in apache/avro: "null" -> 7195948357588979594
    assert crc64_avro(b'"null"') == 7195948357588979594


def test_every_shipped_schema_is_loaded() -> None:
    assert default_registry().names() == EXPECTED_NAMES


@pytest.mark.parametrize("name", EXPECTED_NAMES)
def test_fingerprint_is_little_endian_crc64_of_canonical_form(name: str) -> None:
    schema = default_registry().latest(name)
    expected = crc64_avro(schema.canonical_form.encode()).to_bytes(8, "little")
    assert schema.fingerprint == expected
    assert default_registry().by_fingerprint(expected) is schema


@pytest.mark.parametrize("name", EXPECTED_NAMES)
def test_canonical_form_drops_docs_and_custom_attributes(name: str) -> None:
    canonical = default_registry().latest(name).canonical_form
    assert '"doc"' not in canonical
    assert '"sensitivity"' not in canonical
    assert " " not in canonical  # no whitespace between tokens
    assert json.loads(canonical)["name"].startswith("consentgate.")


def test_default_registry_is_built_once() -> None:
    assert default_registry() is default_registry()


def test_versions_are_sorted_and_latest_is_the_newest() -> None:
    registry = Registry(FIXTURES / "avro_v2")
    assert [s.version for s in registry.versions("device_event")] == [1, 2]
    assert registry.latest("device_event").version == 2
    assert (
        registry.get("device_event", 1).fingerprint != registry.latest("device_event").fingerprint
    )


def test_unknown_name_and_fingerprint_raise_schema_error() -> None:
    with pytest.raises(SchemaError):
        default_registry().latest("no_such_event")
    with pytest.raises(SchemaError):
        default_registry().by_fingerprint(b"\x00" * 8)
    assert default_registry().find_fingerprint(b"\x00" * 8) is None


def test_two_files_with_the_same_canonical_form_are_rejected(tmp_path: Path) -> None:
    shutil.copy(AVRO_DIR / "erasure_request.v1.avsc", tmp_path / "erasure_request.v1.avsc")
    raw = json.loads((AVRO_DIR / "erasure_request.v1.avsc").read_text())
    raw["doc"] = "only the documentation differs"
    (tmp_path / "erasure_request.v2.avsc").write_text(json.dumps(raw))
    with pytest.raises(SchemaError, match="same fingerprint"):
        Registry(tmp_path)


def test_file_name_that_disagrees_with_record_name_is_rejected(tmp_path: Path) -> None:
    shutil.copy(AVRO_DIR / "erasure_request.v1.avsc", tmp_path / "dead_letter.v1.avsc")
    with pytest.raises(SchemaError, match="does not match file name"):
        Registry(tmp_path)


@pytest.mark.parametrize("file_name", ["erasure_request.avsc", "erasure_request.v0.avsc"])
def test_badly_named_file_is_rejected(tmp_path: Path, file_name: str) -> None:
    shutil.copy(AVRO_DIR / "erasure_request.v1.avsc", tmp_path / file_name)
    with pytest.raises(SchemaError, match=r"<name>\.v<N>\.avsc"):
        Registry(tmp_path)


def test_invalid_avro_is_rejected(tmp_path: Path) -> None:
    bad = {"type": "record", "name": "ErasureRequest", "fields": [{"name": "x", "type": "nope"}]}
    (tmp_path / "erasure_request.v1.avsc").write_text(json.dumps(bad))
    with pytest.raises(SchemaError, match="invalid Avro"):
        Registry(tmp_path)


def test_empty_directory_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match=r"no \.avsc"):
        Registry(tmp_path)
