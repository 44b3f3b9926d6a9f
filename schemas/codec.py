"""Avro single-object encoding of records: `C3 01` + writer fingerprint (8 bytes, LE) + body.

Decoding finds the writer schema by fingerprint among all versions in the
registry and resolves it to the reader schema (by default the latest version
of the same name, or a pinned version). When writer and reader are the same
version, a reader compiled once per schema does the work (about 3x faster
than fastavro's generic reader); otherwise fastavro resolves the versions.

Records are plain dicts as fastavro gives them: enums are symbol strings,
`long` times are ints, and the `date` logical type (consent_record.birth_date)
is a `datetime.date` on read (fastavro also accepts a date on write).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from functools import cache
from io import BytesIO
from typing import Any, cast

from fastavro import schemaless_reader, schemaless_writer
from fastavro.validation import ValidationError, validate

from schemas.errors import DecodeError, EncodeError
from schemas.registry import Registry, SchemaVersion, default_registry

MARKER = b"\xc3\x01"
HEADER_SIZE = 10  # marker (2) + fingerprint (8)

Record = dict[str, Any]
_BodyReader = Callable[[bytes, int], tuple[Record, int]]
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


# --- compiled reader for writer == reader ------------------------------------------------------

_unpack_double = struct.Struct("<d").unpack_from
_unpack_float = struct.Struct("<f").unpack_from
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


class _Corrupt(ValueError):
    """Raised inside a compiled reader for invalid (not short) input."""


def _varint_tail(buf: bytes, pos: int, first: int) -> tuple[int, int]:
    """Finish a zig-zag varint whose first byte (>= 0x80) was already read."""
    result = first & 0x7F
    shift = 7
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return (result >> 1) ^ -(result & 1), pos
        shift += 7
        if shift > 63:
            raise _Corrupt("varint longer than 10 bytes")


class _ReaderBuilder:
    """Generates straight-line Python that reads one schema's binary body."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.counter = 0
        self.constants: dict[str, object] = {}
        self.named: dict[str, dict[str, Any]] = {}

    def var(self) -> str:
        self.counter += 1
        return f"v{self.counter}"

    def emit(self, indent: int, line: str) -> None:
        self.lines.append("    " * indent + line)

    def read_long(self, indent: int, target: str) -> None:
        self.emit(indent, "b = buf[pos]; pos += 1")
        self.emit(indent, f"if b < 128: {target} = (b >> 1) ^ -(b & 1)")
        self.emit(indent, f"else: {target}, pos = _varint_tail(buf, pos, b)")

    def register(self, schema: dict[str, Any]) -> None:
        name = str(schema["name"])
        namespace = schema.get("namespace")
        short = name.rsplit(".", 1)[-1]
        self.named[short] = schema
        self.named[name] = schema
        if namespace:
            self.named[f"{namespace}.{short}"] = schema

    def read(self, schema: Any, indent: int, target: str) -> None:
        if isinstance(schema, str):
            if schema in self.named:
                self.read(self.named[schema], indent, target)
                return
            schema = {"type": schema}
        if isinstance(schema, list):
            self.read_union(schema, indent, target)
            return
        kind = schema["type"]
        if isinstance(kind, dict | list):
            self.read(kind, indent, target)
            return
        if kind in ("record", "enum", "fixed"):
            self.register(schema)
        emit = self.emit
        if kind == "null":
            emit(indent, f"{target} = None")
        elif kind == "boolean":
            emit(indent, "b = buf[pos]; pos += 1")
            emit(indent, "if b > 1: raise _Corrupt('boolean byte')")
            emit(indent, f"{target} = b == 1")
        elif kind in ("int", "long"):
            if schema.get("logicalType") == "date":
                days = self.var()
                self.read_long(indent, days)
                emit(indent, f"{target} = _fromordinal({days} + {_EPOCH_ORDINAL})")
            else:
                self.read_long(indent, target)
        elif kind == "double":
            emit(indent, f"{target}, = _unpack_double(buf, pos); pos += 8")
        elif kind == "float":
            emit(indent, f"{target}, = _unpack_float(buf, pos); pos += 4")
        elif kind in ("string", "bytes"):
            size = self.var()
            self.read_long(indent, size)
            emit(indent, f"if {size} < 0: raise _Corrupt('negative length')")
            emit(indent, f"end = pos + {size}")
            emit(indent, "if end > size: raise EOFError")
            decode = ".decode()" if kind == "string" else ""
            emit(indent, f"{target} = buf[pos:end]{decode}; pos = end")
        elif kind == "enum":
            symbols = f"c{len(self.constants)}"
            self.constants[symbols] = tuple(schema["symbols"])
            index = self.var()
            self.read_long(indent, index)
            emit(indent, f"if not 0 <= {index} < {len(schema['symbols'])}:")
            emit(indent + 1, "raise _Corrupt('enum index')")
            emit(indent, f"{target} = {symbols}[{index}]")
        elif kind in ("array", "map"):
            self.read_blocks(schema, indent, target)
        elif kind == "record":
            values = []
            for field in schema["fields"]:
                value = self.var()
                self.read(field["type"], indent, value)
                values.append(f"{field['name']!r}: {value}")
            emit(indent, f"{target} = {{{', '.join(values)}}}")
        elif kind in self.named:
            self.read(self.named[kind], indent, target)
        else:
            raise NotImplementedError(f"compiled reader does not support {kind!r}")

    def read_union(self, branches: list[Any], indent: int, target: str) -> None:
        index = self.var()
        self.read_long(indent, index)
        for position, branch in enumerate(branches):
            self.emit(indent, f"{'if' if position == 0 else 'elif'} {index} == {position}:")
            self.read(branch, indent + 1, target)
        self.emit(indent, "else: raise _Corrupt('union index')")

    def read_blocks(self, schema: dict[str, Any], indent: int, target: str) -> None:
        out, count, item, key, ignored = self.var(), self.var(), self.var(), self.var(), self.var()
        is_map = schema["type"] == "map"
        self.emit(indent, f"{out} = {{}}" if is_map else f"{out} = []")
        self.emit(indent, "while True:")
        self.read_long(indent + 1, count)
        self.emit(indent + 1, f"if {count} == 0: break")
        self.emit(indent + 1, f"if {count} < 0:")
        self.emit(indent + 2, f"{count} = -{count}")
        self.read_long(indent + 2, ignored)  # block size in bytes
        items = schema["values"] if is_map else schema["items"]
        if items != "null":  # every other item takes at least one byte
            self.emit(indent + 1, f"if {count} > size - pos: raise EOFError")
        self.emit(indent + 1, f"for _ in range({count}):")
        if is_map:
            self.read("string", indent + 2, key)
            self.read(schema["values"], indent + 2, item)
            self.emit(indent + 2, f"{out}[{key}] = {item}")
        else:
            self.read(schema["items"], indent + 2, item)
            self.emit(indent + 2, f"{out}.append({item})")
        self.emit(indent, f"{target} = {out}")


def compile_reader(raw_schema: Mapping[str, Any]) -> _BodyReader:
    """Compile a function `(buf, pos) -> (record, end)` reading a body written with `raw_schema`."""
    builder = _ReaderBuilder()
    builder.emit(1, "size = len(buf)")
    builder.read(dict(raw_schema), 1, "result")
    builder.emit(1, "return result, pos")
    source = "def read(buf, pos):\n" + "\n".join(builder.lines) + "\n"
    namespace: dict[str, Any] = {
        "_varint_tail": _varint_tail,
        "_unpack_double": _unpack_double,
        "_unpack_float": _unpack_float,
        "_fromordinal": date.fromordinal,
        "_Corrupt": _Corrupt,
        **builder.constants,
    }
    exec(compile(source, f"<avro reader {raw_schema.get('name')}>", "exec"), namespace)
    reader: _BodyReader = namespace["read"]
    return reader


# --- the codec ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class _Plan:
    """How to read bytes of one writer version as one reader version."""

    writer: SchemaVersion
    reader: SchemaVersion
    compiled: _BodyReader | None  # set when writer is reader


class Codec:
    """Encodes and decodes Avro single-object messages with the schemas of one registry."""

    def __init__(self, registry: Registry | None = None) -> None:
        self.registry = registry if registry is not None else default_registry()
        self._plans: dict[tuple[bytes, int | None], _Plan] = {}
        self._compiled: dict[bytes, _BodyReader] = {}
        self._headers: dict[str, bytes] = {}

    # encoding

    def fingerprint(self, name: str) -> bytes:
        """Fingerprint (8 bytes, little-endian CRC-64-AVRO) of the latest version of `name`."""
        return self.registry.latest(name).fingerprint

    def encode(self, name: str, record: Mapping[str, Any], version: int | None = None) -> bytes:
        """Frame `record` with the latest (or the given) version of schema `name`."""
        schema = self.registry.latest(name) if version is None else self.registry.get(name, version)
        out = BytesIO()
        out.write(MARKER)
        out.write(schema.fingerprint)
        try:
            schemaless_writer(out, schema.parsed, record)
        except Exception as exc:  # fastavro raises TypeError, ValueError, AttributeError, ...
            raise _encode_error(schema, record) from exc
        return out.getvalue()

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
