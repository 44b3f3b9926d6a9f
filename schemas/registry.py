"""Every version of every Avro schema in `schemas/avro/`, parsed once and indexed by fingerprint.

A file `<name>.v<N>.avsc` holds version N of schema `name`; its record name
must be the CamelCase form of `name` (`device_event` -> `DeviceEvent`). The
fingerprint is the CRC-64-AVRO of the schema's Parsing Canonical Form, as
the 8 little-endian bytes that Avro single-object encoding puts after the
`C3 01` marker.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, cast

from fastavro import parse_schema
from fastavro.schema import fingerprint as avro_fingerprint
from fastavro.schema import to_parsing_canonical_form

from schemas.errors import SchemaError
from schemas.fields import AVRO_DIR

_FILE_NAME = re.compile(r"^(?P<name>[a-z][a-z0-9_]*)\.v(?P<version>[1-9][0-9]*)\.avsc$")
_CAMEL_BOUNDARY = re.compile(r"(?<!^)(?=[A-Z])")


@dataclass(frozen=True, slots=True, eq=False)
class SchemaVersion:
    """One version of one schema: parsed for fastavro, its raw JSON and its fingerprint."""

    name: str
    version: int
    parsed: dict[str, Any]
    raw: dict[str, Any]
    canonical_form: str
    fingerprint: bytes
    path: Path

    @property
    def label(self) -> str:
        """Short human name such as `device_event.v1`, for messages."""
        return f"{self.name}.v{self.version}"


def snake_case(record_name: str) -> str:
    """`AnonymizedDeviceEvent` -> `anonymized_device_event`: the file name of a record."""
    return _CAMEL_BOUNDARY.sub("_", record_name).lower()


def crc64_avro_fingerprint(canonical_form: str) -> bytes:
    """CRC-64-AVRO (Rabin) fingerprint of a canonical form, as 8 little-endian bytes."""
    # fastavro returns the hex of the little-endian byte sequence.
    return bytes.fromhex(avro_fingerprint(canonical_form, "CRC-64-AVRO"))


def load_schema_file(path: Path) -> SchemaVersion:
    """Read, check and parse one `<name>.v<N>.avsc` file."""
    match = _FILE_NAME.match(path.name)
    if match is None:
        raise SchemaError(f"{path.name}: schema files must be named <name>.v<N>.avsc")
    name, version = match["name"], int(match["version"])
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SchemaError(f"cannot read schema {path.name}: {exc}") from exc
    if not isinstance(raw, dict) or raw.get("type") != "record":
        raise SchemaError(f"{path.name}: top level must be an Avro record")
    record_name = str(raw.get("name", ""))
    if snake_case(record_name) != name:
        raise SchemaError(
            f"{path.name}: record name {record_name!r} does not match file name {name!r}"
        )
    try:
        parsed = cast("dict[str, Any]", parse_schema(raw))  # a record parses to a dict
        canonical = to_parsing_canonical_form(raw)
    except Exception as exc:  # fastavro raises several unrelated types
        raise SchemaError(f"{path.name}: invalid Avro schema: {exc}") from exc
    return SchemaVersion(
        name=name,
        version=version,
        parsed=parsed,
        raw=raw,
        canonical_form=canonical,
        fingerprint=crc64_avro_fingerprint(canonical),
        path=path,
    )


class Registry:
    """All schema versions found in one directory, loaded and parsed once."""

    def __init__(self, directory: Path = AVRO_DIR) -> None:
        self.directory = directory
        self._by_fingerprint: dict[bytes, SchemaVersion] = {}
        by_name: dict[str, list[SchemaVersion]] = {}
        paths = sorted(directory.glob("*.avsc"))
        if not paths:
            raise SchemaError(f"no .avsc schema files in {directory}")
        for path in paths:
            schema = load_schema_file(path)
            clash = self._by_fingerprint.get(schema.fingerprint)
            if clash is not None:
                raise SchemaError(
                    f"{path.name} and {clash.path.name} have the same fingerprint "
                    f"{schema.fingerprint.hex()} (identical canonical forms)"
                )
            self._by_fingerprint[schema.fingerprint] = schema
            by_name.setdefault(schema.name, []).append(schema)
        self._versions: dict[str, tuple[SchemaVersion, ...]] = {
            name: tuple(sorted(found, key=lambda s: s.version))
            for name, found in sorted(by_name.items())
        }

    def names(self) -> list[str]:
        """Names of all schemas, sorted."""
        return list(self._versions)

    def versions(self, name: str) -> tuple[SchemaVersion, ...]:
        """Every version of schema `name`, oldest first."""
        try:
            return self._versions[name]
        except KeyError:
            raise SchemaError(f"unknown schema {name!r}") from None

    def latest(self, name: str) -> SchemaVersion:
        """The newest version of schema `name`."""
        return self.versions(name)[-1]

    def get(self, name: str, version: int) -> SchemaVersion:
        """Version `version` of schema `name`."""
        for schema in self.versions(name):
            if schema.version == version:
                return schema
        raise SchemaError(f"schema {name!r} has no version {version}")

    def by_fingerprint(self, fingerprint: bytes) -> SchemaVersion:
        """The schema version whose CRC-64-AVRO fingerprint is `fingerprint` (8 bytes, LE)."""
        try:
            return self._by_fingerprint[fingerprint]
        except KeyError:
            raise SchemaError(f"no schema with fingerprint {bytes(fingerprint).hex()}") from None

    def find_fingerprint(self, fingerprint: bytes) -> SchemaVersion | None:
        """Like `by_fingerprint` but returns None when unknown (for the hot path)."""
        return self._by_fingerprint.get(fingerprint)

    @property
    def fingerprints(self) -> Mapping[bytes, SchemaVersion]:
        """Read-only view of fingerprint -> schema version."""
        return MappingProxyType(self._by_fingerprint)


@cache
def default_registry() -> Registry:
    """The registry of the schemas shipped in `schemas/avro/`, built on first use."""
    return Registry(AVRO_DIR)
