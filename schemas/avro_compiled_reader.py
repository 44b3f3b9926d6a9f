"""Avro bodies read by a Python function compiled once per schema.

`compile_reader(schema)` generates `(buf, pos) -> (record, end)`, about 3x faster
than fastavro's generic reader for a schema read as itself. It is checked byte for
byte against fastavro by hypothesis tests in tests/unit/schemas/.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

Record = dict[str, Any]
BodyReader = Callable[[bytes, int], tuple[Record, int]]


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
        # One byte without a call; longer varints (timestamps, most longs) in line too:
        # a call per long cost more than the loop itself.
        emit = self.emit
        emit(indent, "b = buf[pos]; pos += 1")
        emit(indent, f"if b < 128: {target} = (b >> 1) ^ -(b & 1)")
        emit(indent, "else:")
        emit(indent + 1, "r = b & 127; s = 7")
        emit(indent + 1, "while True:")
        emit(indent + 2, "b = buf[pos]; pos += 1; r |= (b & 127) << s")
        emit(indent + 2, "if b < 128: break")
        emit(indent + 2, "s += 7")
        emit(indent + 2, "if s > 63: raise _Corrupt('varint longer than 10 bytes')")
        emit(indent + 1, f"{target} = (r >> 1) ^ -(r & 1)")

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
            # A length under 64 is one even byte: read it without the zig-zag arithmetic.
            size = self.var()
            emit(indent, "b = buf[pos]; pos += 1")
            emit(indent, "if b < 128:")
            emit(indent + 1, "if b & 1: raise _Corrupt('negative length')")
            emit(indent + 1, "end = pos + (b >> 1)")
            emit(indent, "else:")
            emit(indent + 1, f"{size}, pos = _varint_tail(buf, pos, b)")
            emit(indent + 1, f"if {size} < 0: raise _Corrupt('negative length')")
            emit(indent + 1, f"end = pos + {size}")
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
        # Branch i is compared as its zig-zag form 2i: a one-byte index needs no arithmetic.
        index = self.var()
        self.emit(indent, "b = buf[pos]; pos += 1")
        self.emit(indent, f"if b < 128: {index} = b")
        self.emit(indent, "else:")
        self.emit(indent + 1, f"{index}, pos = _varint_tail(buf, pos, b)")
        self.emit(indent + 1, f"{index} = 2 * {index} if {index} >= 0 else -1")
        for position, branch in enumerate(branches):
            self.emit(indent, f"{'if' if position == 0 else 'elif'} {index} == {2 * position}:")
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


def compile_reader(raw_schema: Mapping[str, Any]) -> BodyReader:
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
    reader: BodyReader = namespace["read"]
    return reader
