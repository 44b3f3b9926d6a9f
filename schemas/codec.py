"""Avro single-object encoding of records: `C3 01` + writer fingerprint (8 bytes, LE) + body.

Decoding finds the writer schema by fingerprint among all versions in the
registry and resolves it to the reader schema (by default the latest version
of the same name, or a pinned version). When writer and reader are the same
version, a reader compiled once per schema does the work (about 3x faster
than fastavro's generic reader); otherwise fastavro resolves the versions.
Encoding likewise runs a writer compiled once per schema (3-5x faster than
fastavro's `schemaless_writer`, same bytes); any value it does not handle
itself goes to fastavro, which writes it or reports the invalid field.

Records are plain dicts as fastavro gives them: enums are symbol strings,
`long` times are ints, and the `date` logical type (consent_record.birth_date)
is a `datetime.date` on read (fastavro also accepts a date on write).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from io import BytesIO
from typing import Any, cast

from fastavro import schemaless_reader, schemaless_writer
from fastavro.validation import ValidationError, validate

from schemas.avro_compiled_reader import BodyReader, compile_reader
from schemas.avro_compiled_writer import BodyWriter, compile_writer
from schemas.errors import DecodeError, EncodeError
from schemas.registry import Registry, SchemaVersion, default_registry

MARKER = b"\xc3\x01"
HEADER_SIZE = 10  # marker (2) + fingerprint (8)

Record = dict[str, Any]
Binary = bytes | bytearray | memoryview


class BadMarkerError(DecodeError):
    """The bytes do not start with the single-object marker C3 01."""


class TruncatedError(DecodeError):
    """The bytes end before the header or the body is complete."""


class UnknownSchemaError(DecodeError):
    """The writer fingerprint matches no schema version the registry holds."""


class CorruptBodyError(DecodeError):
    """The body is not valid Avro for its writer schema (bad index, bad UTF-8, trailing bytes)."""


class SchemaMismatchError(DecodeError):
    """The message was written with another schema than the one the caller expects."""


class IncompatibleSchemaError(DecodeError):
    """The writer version cannot be resolved to the requested reader version."""


class InvalidRecordError(EncodeError):
    """A record does not fit its schema; `fields` names the offending fields (no values)."""

    def __init__(self, message: str, schema: str, fields: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.schema = schema
        self.fields = fields


# --- the codec ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class _Plan:
    """How to read bytes of one writer version as one reader version."""

    writer: SchemaVersion
    reader: SchemaVersion
    compiled: BodyReader | None  # set when writer is reader


@dataclass(frozen=True, slots=True, eq=False)
class _Encoder:
    """How to write records of one schema version: its header and, if supported, compiled code."""

    schema: SchemaVersion
    header: bytes
    compiled: BodyWriter | None


class Codec:
    """Encodes and decodes Avro single-object messages with the schemas of one registry."""

    def __init__(self, registry: Registry | None = None) -> None:
        self.registry = registry if registry is not None else default_registry()
        self._plans: dict[tuple[bytes, int | None], _Plan] = {}
        self._compiled: dict[bytes, BodyReader] = {}
        self._encoders: dict[tuple[str, int | None], _Encoder] = {}

    # encoding

    def fingerprint(self, name: str) -> bytes:
        """Fingerprint (8 bytes, little-endian CRC-64-AVRO) of the latest version of `name`."""
        return self.registry.latest(name).fingerprint

    def encode(self, name: str, record: Mapping[str, Any], version: int | None = None) -> bytes:
        """Frame `record` with the latest (or the given) version of schema `name`."""
        encoder = self._encoders.get((name, version))
        if encoder is None:
            encoder = self._new_encoder(name, version)
        if encoder.compiled is not None:
            out = bytearray(encoder.header)
            try:
                encoder.compiled(out, record)
            except Exception:  # a value the compiled code does not write: let fastavro decide
                pass
            else:
                return bytes(out)
        out_stream = BytesIO()
        out_stream.write(encoder.header)
        try:
            schemaless_writer(out_stream, encoder.schema.parsed, record)
        except Exception as exc:  # fastavro raises TypeError, ValueError, AttributeError, ...
            raise _encode_error(encoder.schema, record) from exc
        return out_stream.getvalue()

    def _new_encoder(self, name: str, version: int | None) -> _Encoder:
        schema = self.registry.latest(name) if version is None else self.registry.get(name, version)
        try:
            compiled: BodyWriter | None = compile_writer(schema.raw)
        except NotImplementedError:
            compiled = None
        encoder = _Encoder(schema=schema, header=MARKER + schema.fingerprint, compiled=compiled)
        self._encoders[(name, version)] = encoder
        return encoder

    # decoding

    def decode(self, data: Binary, reader_version: int | None = None) -> tuple[str, Record]:
        """Decode one message; returns (schema name, record) read as the reader version.

        The reader is the latest version of the writer's schema name unless
        `reader_version` pins another one.
        """
        plan = self._plan(data, reader_version)
        return plan.reader.name, self._read_body(plan, data)

    def decode_as(self, data: Binary, name: str, reader_version: int | None = None) -> Record:
        """Decode one message that must have been written with some version of schema `name`."""
        plan = self._plan(data, reader_version)
        if plan.writer.name != name:
            raise SchemaMismatchError(f"expected a {name} message, got {plan.writer.label}")
        return self._read_body(plan, data)

    def writer_of(self, data: Binary) -> SchemaVersion:
        """The schema version that wrote `data`, read from its header only."""
        return self._plan(data, None).writer

    def _plan(self, data: Binary, reader_version: int | None) -> _Plan:
        if data[:2] != MARKER:
            if len(data) < 2:
                raise TruncatedError(f"message of {len(data)} bytes is shorter than the marker")
            raise BadMarkerError("message does not start with the Avro single-object marker")
        if len(data) < HEADER_SIZE:
            raise TruncatedError(f"message of {len(data)} bytes is shorter than its header")
        fingerprint = bytes(data[2:HEADER_SIZE])
        plan = self._plans.get((fingerprint, reader_version))
        if plan is None:
            plan = self._new_plan(fingerprint, reader_version)
        return plan

    def _new_plan(self, fingerprint: bytes, reader_version: int | None) -> _Plan:
        writer = self.registry.find_fingerprint(fingerprint)
        if writer is None:
            raise UnknownSchemaError(f"unknown writer schema fingerprint {fingerprint.hex()}")
        if reader_version is None:
            reader = self.registry.latest(writer.name)
        else:
            reader = self.registry.get(writer.name, reader_version)
        compiled = None
        if reader is writer:
            compiled = self._compiled.get(fingerprint)
            if compiled is None:
                compiled = self._compiled[fingerprint] = compile_reader(writer.raw)
        plan = _Plan(writer=writer, reader=reader, compiled=compiled)
        self._plans[(fingerprint, reader_version)] = plan
        return plan

    def _read_body(self, plan: _Plan, data: Binary) -> Record:
        buf: bytes = data if isinstance(data, bytes) else bytes(data)
        try:
            if plan.compiled is not None:
                record, end = plan.compiled(buf, HEADER_SIZE)
            else:
                stream = BytesIO(buf)
                stream.seek(HEADER_SIZE)
                read = schemaless_reader(stream, plan.writer.parsed, plan.reader.parsed)
                record = cast(Record, read)  # a record schema reads as a dict
                end = stream.tell()
        except (EOFError, IndexError, struct.error) as exc:
            raise TruncatedError(f"{plan.writer.label} body ends early") from exc
        except Exception as exc:
            if type(exc).__name__ == "SchemaResolutionError":
                raise IncompatibleSchemaError(
                    f"{plan.writer.label} cannot be read as {plan.reader.label}"
                ) from exc
            raise CorruptBodyError(
                f"{plan.writer.label} body is not valid Avro ({type(exc).__name__})"
            ) from exc
        if end != len(buf):
            raise CorruptBodyError(f"{plan.writer.label} body has {len(buf) - end} trailing bytes")
        return record


def _encode_error(schema: SchemaVersion, record: object) -> InvalidRecordError:
    """An error naming the schema and the offending fields, never their values."""
    if not isinstance(record, Mapping):
        return InvalidRecordError(
            f"{schema.label}: record must be a mapping, not {type(record).__name__}", schema.label
        )
    fields: list[str] = []
    try:
        validate(record, schema.parsed, raise_errors=True)
    except ValidationError as invalid:
        prefix = f"{schema.parsed['name']}."
        for error in invalid.errors:
            path = str(error.field).removeprefix(prefix)
            if path not in fields:
                fields.append(path)
    except Exception:  # validation itself may choke on exotic values
        pass
    if not fields:
        return InvalidRecordError(f"{schema.label}: record does not match the schema", schema.label)
    return InvalidRecordError(
        f"{schema.label}: field(s) {', '.join(fields)} do not match the schema",
        schema.label,
        tuple(fields),
    )


@cache
def default_codec() -> Codec:
    """A codec over the default registry, built on first use."""
    return Codec(default_registry())
