"""Sensitivity tagging: which fields of a decoded event are present, and what they are.

The tags come from the Avro schema annotations (`schemas.fields.field_tags`), turned
once per schema into a flat plan, so tagging an event is one pass over its fields.
A field is present when its value is not None and not an empty string, list or map;
`0` and `False` are values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from itertools import filterfalse
from operator import itemgetter
from typing import Any

from schemas.errors import ConsentgateError, SchemaError
from schemas.fields import Sensitivity, field_tags


class TaggingError(ConsentgateError):
    """An event names a schema that cannot be read."""


@dataclass(frozen=True, slots=True)
class EventTags:
    """What one event holds: counts per sensitivity, sensitive fields by category, free text."""

    counts: dict[Sensitivity, int]
    sensitive: dict[str, tuple[str, ...]]
    free_text: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _FieldPlan:
    name: str
    sensitivity: Sensitivity
    category: str | None
    free_text: bool


@cache
def _plan(schema_name: str) -> tuple[_FieldPlan, ...]:
    try:
        tags = field_tags(schema_name)
    except SchemaError as exc:
        raise TaggingError(f"no readable schema named {schema_name!r}") from exc
    return tuple(
        _FieldPlan(
            name=tag.name,
            sensitivity=tag.sensitivity,
            category=tag.category if tag.sensitivity is Sensitivity.SENSITIVE else None,
            free_text=tag.free_text,
        )
        for tag in tags.values()
    )


_SIZED = (str, list, tuple, dict)
"""The types whose empty values are absent (`is_present`, `count_levels`)."""


def is_present(value: object) -> bool:
    """True when a field value carries data: not None and not an empty str, list or map."""
    if value is None:
        return False
    if isinstance(value, _SIZED):
        return len(value) > 0
    return True


@cache
def _level_getters(
    schema_name: str,
) -> tuple[tuple[str, Callable[[Any], tuple[Any, ...]], int], ...]:
    """Per sensitivity level: an itemgetter over its fields (always returning a tuple)."""
    out = []
    for level in Sensitivity:
        names = [spec.name for spec in _plan(schema_name) if spec.sensitivity is level]
        if names:
            getter = itemgetter(*names, names[0]) if len(names) == 1 else itemgetter(*names)
            out.append((level.value, getter, len(names)))
    return tuple(out)


def count_levels(schema_name: str, event: Mapping[str, Any]) -> list[tuple[str, int]]:
    """(level, present field count) for one event: the hot-path form of `tag_event().counts`.

    Field values are fetched in C with one itemgetter per level, and only the falsy ones
    (a few per event: None, "", [], 0, False) are looked at in Python: an absent value is
    falsy, and a falsy value is absent when it is None or an empty str, list, tuple or map.
    """
    out = []
    for level, getter, width in _level_getters(schema_name):
        present = width
        for value in filterfalse(None, getter(event)[:width]):
            if value is None or isinstance(value, _SIZED):
                present -= 1
        if present:
            out.append((level, present))
    return out


def tag_event(schema_name: str, event: Mapping[str, Any]) -> EventTags:
    """Tag the present fields of `event` (a decoded `schema_name` record) from its schema."""
    counts = dict.fromkeys(Sensitivity, 0)
    by_category: dict[str, list[str]] = {}
    free_text: list[str] = []
    for spec in _plan(schema_name):
        if not is_present(event.get(spec.name)):
            continue
        counts[spec.sensitivity] += 1
        if spec.category is not None:
            by_category.setdefault(spec.category, []).append(spec.name)
        if spec.free_text:
            free_text.append(spec.name)
    return EventTags(
        counts=counts,
        sensitive={category: tuple(names) for category, names in by_category.items()},
        free_text=tuple(free_text),
    )
