"""Avro bodies written by a Python function compiled once per schema.

`compile_writer(schema)` generates `(out, record)`, appending the same bytes
fastavro's `schemaless_writer` would write, 3-5x faster; it raises on any value it
does not handle itself so that the codec can hand the record to fastavro. It is
checked byte for byte against fastavro by hypothesis tests in tests/unit/schemas/.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from numbers import Integral, Real
from typing import Any, cast

from schemas.avro_compiled_reader import _EPOCH_ORDINAL

_pack_double = struct.Struct("<d").pack
_pack_float = struct.Struct("<f").pack
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
BodyWriter = Callable[[bytearray, Any], None]


class _Unwritable(ValueError):
    """Raised inside a compiled writer for any value it does not write itself."""


def _varint(zigzag: int) -> bytes:
    """Varint bytes of an already zig-zagged (non-negative) integer."""
    z = zigzag
    if z < 0x80:
        return bytes((z,))
    if z < 1 << 14:
        return bytes((z & 127 | 128, z >> 7))
    if z < 1 << 28:
        low, z = z & 16383, z >> 14
        head = (low & 127 | 128, low >> 7 | 128)
        return bytes((*head, z)) if z < 0x80 else bytes((*head, z & 127 | 128, z >> 7))
    # 5 bytes and more (epoch-ms times take 6 until 2039): split off 28 bits to shift small ints
    low, z = z & 0xFFFFFFF, z >> 28
    out = bytearray((low & 127 | 128, low >> 7 & 127 | 128, low >> 14 & 127 | 128, low >> 21 | 128))
    while z > 0x7F:
        out.append(z & 127 | 128)
        z >>= 7
    out.append(z)
    return bytes(out)


# Loose type tests of fastavro's validators: a value failing one cannot take that union branch.
_BRANCH_TESTS = {
    "null": "{v} is None",
    "boolean": "isinstance({v}, bool)",
    "int": "isinstance({v}, _Integral) and not isinstance({v}, bool)",
    "long": "isinstance({v}, _Integral) and not isinstance({v}, bool)",
    "date": "isinstance({v}, (date, str, _Integral)) and not isinstance({v}, bool)",
    "float": "isinstance({v}, _Real) and not isinstance({v}, bool)",
    "double": "isinstance({v}, _Real) and not isinstance({v}, bool)",
    "string": "isinstance({v}, str)",
    "bytes": "isinstance({v}, (bytes, bytearray))",
    "array": "isinstance({v}, (_Sequence, _array)) and not isinstance({v}, str)",
    "map": "isinstance({v}, _Mapping)",
    "record": "isinstance({v}, _Mapping)",
}


class _WriterBuilder:
    """Generates straight-line Python that appends one schema's binary body to a bytearray.

    The code writes only values of the exact Python types fastavro gives on read
    (str, int, float, bool, bytes, list, dict, date) and raises otherwise, so that
    the caller can hand anything unusual to fastavro.
    """

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.counter = 0
        self.constants: dict[str, object] = {}
        self.named: dict[str, dict[str, Any]] = {}
        self.open: set[str] = set()  # records being generated (recursion is not supported)

    def var(self) -> str:
        self.counter += 1
        return f"v{self.counter}"

    def constant(self, value: object) -> str:
        name = f"c{len(self.constants)}"
        self.constants[name] = value
        return name

    def emit(self, indent: int, line: str) -> None:
        self.lines.append("    " * indent + line)

    def write_long(
        self, indent: int, value: str, low: int = _LONG_MIN, high: int = _LONG_MAX
    ) -> None:
        """Range-check the int `value` and append it as a zig-zag varint."""
        emit, zigzag = self.emit, self.var()
        emit(indent, f"if {value} < {low} or {value} > {high}: raise _Unwritable")
        emit(indent, f"{zigzag} = ({value} << 1) ^ ({value} >> 63)")
        emit(indent, f"if {zigzag} < 128: append({zigzag})")
        emit(indent, f"else: out += _varint({zigzag})")

    def write_size(self, indent: int, size: str) -> None:
        self.emit(indent, f"if {size} < 64: append({size} << 1)")
        self.emit(indent, f"else: out += _varint({size} << 1)")

    def resolve(self, schema: Any) -> dict[str, Any]:
        """The schema as a dict, following names and nested type dicts."""
        if isinstance(schema, str):
            return self.named.get(schema, {"type": schema})
        if isinstance(schema, list):
            return {"type": "union", "branches": schema}
        kind = schema["type"]
        if isinstance(kind, dict | list):
            return self.resolve(kind)
        if kind in ("record", "enum", "fixed"):
            name = str(schema["name"])
            short = name.rsplit(".", 1)[-1]
            for alias in (name, short, f"{schema.get('namespace')}.{short}"):
                self.named[alias] = schema
        elif kind in self.named:
            return self.named[kind]
        return cast(dict[str, Any], schema)

    def kind(self, schema: dict[str, Any]) -> str:
        logical = schema.get("logicalType")
        if logical is None:
            return str(schema["type"])
        if logical == "date" and schema["type"] == "int":
            return "date"
        raise NotImplementedError(f"compiled writer does not support {logical!r}")

    def write(self, schema: Any, indent: int, value: str, in_union: bool = False) -> None:
        """Append the encoding of the Python value held in variable `value`."""
        resolved = self.resolve(schema)
        kind, emit = self.kind(resolved), self.emit
        if kind == "null":
            emit(indent, f"if {value} is not None: raise _Unwritable")
        elif kind == "boolean":
            emit(indent, f"if {value} is True: append(1)")
            emit(indent, f"elif {value} is False: append(0)")
            emit(indent, "else: raise _Unwritable")
        elif kind in ("int", "long", "date"):
            if kind == "date":
                emit(
                    indent,
                    f"if type({value}) is date: {value} = {value}.toordinal() - {_EPOCH_ORDINAL}",
                )
            emit(indent, f"if type({value}) is not int: raise _Unwritable")
            if kind == "long":
                self.write_long(indent, value)
            else:
                self.write_long(indent, value, _INT_MIN, _INT_MAX)
        elif kind in ("float", "double"):
            pack = "_pack_double" if kind == "double" else "_pack_float"
            emit(indent, f"if type({value}) is not float and type({value}) is not int:")
            emit(indent + 1, "raise _Unwritable")
            emit(indent, f"out += {pack}({value})")
        elif kind in ("string", "bytes"):
            data, size = self.var(), self.var()
            if kind == "string":
                emit(indent, f"if type({value}) is not str: raise _Unwritable")
                emit(indent, f"{data} = {value}.encode()")
            else:
                emit(indent, f"if type({value}) is not bytes and type({value}) is not bytearray:")
                emit(indent + 1, "raise _Unwritable")
                data = value
            emit(indent, f"{size} = len({data})")
            self.write_size(indent, size)
            emit(indent, f"out += {data}")
        elif kind == "enum":
            codes = {symbol: _varint(i << 1) for i, symbol in enumerate(resolved["symbols"])}
            emit(indent, f"out += {self.constant(codes)}[{value}]")
        elif kind in ("array", "map"):
            self.write_blocks(resolved, indent, value)
        elif kind == "record":
            self.write_record(resolved, indent, value, in_union)
        elif kind == "union":
            self.write_union(resolved["branches"], indent, value)
        else:
            raise NotImplementedError(f"compiled writer does not support {kind!r}")

    def write_record(self, schema: dict[str, Any], indent: int, value: str, in_union: bool) -> None:
        name = str(schema["name"])
        if name in self.open:
            raise NotImplementedError("compiled writer does not support recursive records")
        self.open.add(name)
        self.emit(indent, f"if type({value}) is not dict: raise _Unwritable")
        if in_union:  # fastavro's union matching rejects a record tagged with another name
            self.emit(indent, f"if '-type' in {value}: raise _Unwritable")
        for field in schema["fields"]:
            item, key = self.var(), repr(field["name"])
            if "default" in field:
                default = field["default"]
                fallback = "" if default is None else f", {self.constant(default)}"
                self.emit(indent, f"{item} = {value}.get({key}{fallback})")
            elif "null" in field["type"]:  # fastavro writes None for such a missing field
                self.emit(indent, f"{item} = {value}.get({key})")
            else:
                self.emit(indent, f"{item} = {value}[{key}]")
            self.write(field["type"], indent, item)
        self.open.discard(name)

    def write_blocks(self, schema: dict[str, Any], indent: int, value: str) -> None:
        emit, size, item, key = self.emit, self.var(), self.var(), self.var()
        is_map = schema["type"] == "map"
        emit(indent, f"if type({value}) is not {'dict' if is_map else 'list'}: raise _Unwritable")
        emit(indent, f"if {value}:")
        emit(indent + 1, f"{size} = len({value})")
        self.write_size(indent + 1, size)
        if is_map:
            emit(indent + 1, f"for {key}, {item} in {value}.items():")
            self.write("string", indent + 2, key)
            self.write(schema["values"], indent + 2, item)
        else:
            emit(indent + 1, f"for {item} in {value}:")
            self.write(schema["items"], indent + 2, item)
        emit(indent, "append(0)")

    def write_union(self, branches: list[Any], indent: int, value: str) -> None:
        kinds = [self.kind(self.resolve(branch)) for branch in branches]
        if len(kinds) == 2 and kinds[0] == "null":
            self.emit(indent, f"if {value} is None: append(0)")
            self.emit(indent, "else:")
            self.emit(indent + 1, "append(2)")
            self.write(branches[1], indent + 1, value, in_union=True)
            return
        if "float" in kinds and "double" in kinds[kinds.index("float") :]:
            raise NotImplementedError("compiled writer does not support float before double")
        if sum(kind in ("map", "record") for kind in kinds) > 1:
            raise NotImplementedError("compiled writer does not support several mapping branches")
        for position, (branch, kind) in enumerate(zip(branches, kinds, strict=True)):
            if kind == "enum":
                symbols = self.constant(tuple(self.resolve(branch)["symbols"]))
                test = f"{value} in {symbols}"
            elif kind in _BRANCH_TESTS:
                test = _BRANCH_TESTS[kind].format(v=value)
            else:
                raise NotImplementedError(f"compiled writer does not support {kind!r} in unions")
            self.emit(indent, f"{'if' if position == 0 else 'elif'} {test}:")
            self.emit(indent + 1, f"out += {self.constant(_varint(position << 1))}")
            self.write(branch, indent + 1, value, in_union=True)
        self.emit(indent, "else: raise _Unwritable")


def compile_writer(raw_schema: Mapping[str, Any]) -> BodyWriter:
    """Compile a function `(out, record) -> None` appending the body of `record` to `out`.

    It writes the same bytes as fastavro's `schemaless_writer` and raises
    (any exception) for a value it does not handle; the caller then lets
    fastavro write the record or report the error. Raises NotImplementedError
    for a schema using types it does not support.
    """
    builder = _WriterBuilder()
    builder.emit(1, "append = out.append")
    builder.write(dict(raw_schema), 1, "record")
    namespace: dict[str, Any] = {
        "type": type,
        "_varint": _varint,
        "_pack_double": _pack_double,
        "_pack_float": _pack_float,
        "_Unwritable": _Unwritable,
        "_Integral": Integral,
        "_Real": Real,
        "_Sequence": Sequence,
        "_Mapping": Mapping,
        "_array": array,
        "date": date,
        **builder.constants,
    }
    # Keyword defaults turn every global the code uses into a fast local.
    bound = ", ".join(f"{name}={name}" for name in namespace)
    source = f"def write(out, record, *, {bound}):\n" + "\n".join(builder.lines) + "\n"
    exec(compile(source, f"<avro writer {raw_schema.get('name')}>", "exec"), namespace)
    writer: BodyWriter = namespace["write"]
    return writer
