"""The drift check: does a pydantic model still match its `.avsc` schema?

The unit tests run `drift()` for every model in `schemas.models.MODELS`.
"""

from __future__ import annotations

from datetime import date
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from schemas.model_types import AvroType
from schemas.registry import Registry, default_registry


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
